"""Python policies: plain classes loaded from a file the user names, run by both engines.

A policy class has ``choose(obs)`` returning a rung (or ``(rung, pause_s)``), and optionally
``reset(ladder, model, rng)`` (called at the start of every session), ``on_download(obs,
abandoned)`` (after every download) and ``abandon(obs)`` (at abandonment checkpoints, when the
player model checks: a lower rung to abandon for, or None / -1 to go on). It is built with no
arguments, a new instance for every session. See docs/policies.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import operator
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from abrsim.abr._kernels import EVENT_ABANDONED, EVENT_WAIT, NO_RUNG
from abrsim.abr._observation import Observation
from abrsim.errors import InputError
from abrsim.ladder import Ladder
from abrsim.model import PlayerModel

__all__ = ["PolicyError", "PythonDecider", "PythonPolicy", "check_policy", "load_policy"]

#: What a user's code raising is its error: a ``sys.exit()`` or ``exit()`` in a policy too, which
#: would otherwise end the command quietly with its exit code. (Ctrl-C, KeyboardInterrupt, is not.)
_RAISED = (Exception, SystemExit)


class PolicyError(InputError):
    """A user policy that cannot be loaded or misbehaved; ``details`` holds its traceback, if any."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 details: str = "") -> None:
        super().__init__(message, source=source, line=line)
        self.details = details


def _where(exc: BaseException, path: Path) -> int | None:
    """The line of ``path`` where ``exc`` was raised (the innermost frame in that file)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path:
            line = frame.lineno
    return line


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_MODULES: dict[Path, ModuleType] = {}


def _import(path: Path) -> ModuleType:
    module = _MODULES.get(path)
    if module is not None:
        return module
    name = "abrsim_policy_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise PolicyError(f"syntax error: {exc.msg}", source=_shown(path), line=exc.lineno,
                          details=traceback.format_exc()) from None
    except _RAISED as exc:
        del sys.modules[name]
        raise PolicyError(f"importing it raised {type(exc).__name__}: {exc}", source=_shown(path),
                          line=_where(exc, path), details=traceback.format_exc()) from None
    _MODULES[path] = module
    return module


def load_policy(reference: str) -> Any:
    """Load the policy ``NAME`` from ``FILE.py`` (``reference`` is ``"FILE.py:NAME"``).

    ``NAME`` is a class of the file (a Python policy, returned as a :class:`PythonPolicy`), a
    function or other callable (a policy trained on :mod:`abrsim.gym`'s environment: observation
    -> rung, run through :class:`abrsim.gym.EnvPolicy`), or the name of a compiled policy the file
    registers when imported (returned as ``abrsim.abr.make(NAME)``). Only the file named is
    imported (its own imports are its business); nothing is scanned.

    Raises:
        PolicyError: if the reference is malformed, the file is missing or does not import, or
            ``NAME`` is neither a class with a ``choose`` method nor a policy the file registered.
    """
    file_part, sep, name = str(reference).rpartition(":")
    if not sep or not file_part or not name.isidentifier():
        raise PolicyError(f"got {reference!r}, expected FILE.py:ClassName", source="--policy")
    path = Path(file_part).expanduser()
    if path.suffix != ".py":
        raise PolicyError(f"got {file_part!r}, expected a .py file", source="--policy")
    if not path.is_file():
        raise PolicyError("no such file", source=_shown(path))
    path = path.resolve()
    module = _import(path)
    factory = getattr(module, name, None)
    from abrsim.abr import ALGORITHMS, make

    compiled = ALGORITHMS.get(name)
    if not inspect.isclass(factory) and compiled is not None and str(path) in compiled.sources:
        return make(name)
    if factory is None:
        classes = sorted(n for n, v in vars(module).items()
                         if inspect.isclass(v) and v.__module__ == module.__name__)
        raise PolicyError(f"no class {name!r}; the file defines: {', '.join(classes) or 'no classes'}",
                          source=_shown(path))
    if not inspect.isclass(factory) and callable(factory):
        factory = _env_policy(factory, path)  # a trained policy: observation -> rung (abrsim.gym)
    if not inspect.isclass(factory):
        raise PolicyError(f"{name!r} is a {type(factory).__name__}, expected a class", source=_shown(path))
    for method in ("choose", "reset", "on_download", "abandon"):
        attribute = getattr(factory, method, None)
        if attribute is None and method == "choose":
            raise PolicyError(f"class {name} has no choose(obs) method", source=_shown(path),
                              line=inspect.getsourcelines(factory)[1])
        if attribute is not None and not callable(attribute):
            raise PolicyError(f"{name}.{method} is not a method", source=_shown(path))
    return PythonPolicy(factory, path, name)


def _env_policy(function: Any, path: Path) -> type:
    """A function or callable object of a policy file as an :class:`abrsim.gym.EnvPolicy`."""
    try:
        from abrsim.gym.policy import EnvPolicy
    except ImportError as exc:
        raise PolicyError(f"a function as a policy is a trained policy of abrsim.gym, which needs gymnasium "
                          f"({exc}): pip install 'abrsim[gym]'", source=_shown(path)) from None
    try:
        return EnvPolicy.wrap(function)
    except ValueError as exc:
        raise PolicyError(str(exc), source=_shown(path)) from None


class PythonPolicy:
    """A Python policy class, as the engines, results and sweeps handle it.

    Args:
        factory: the class (built with no arguments, a new instance for every session).
        path: the file it comes from (for messages and results).
        name: the name results show (default: the class's ``name`` attribute, else its name).
    """

    def __init__(self, factory: type, path: Path | str = "<python>", name: str | None = None) -> None:
        self.factory = factory
        self.path = Path(path)
        self.class_name = name or factory.__name__
        self.name = str(getattr(factory, "name", None) or self.class_name)
        self.reference = f"{self.path}:{self.class_name}"
        self.params: dict[str, Any] = {}
        self.explicit: frozenset[str] = frozenset()
        self.listens_to_downloads = callable(getattr(factory, "on_download", None))
        self.has_abandon = callable(getattr(factory, "abandon", None))

    def __repr__(self) -> str:
        return f"load_policy({self.reference!r})"

    @property
    def params_json(self) -> str:
        return "{}"

    def resolved(self, model: PlayerModel | None) -> PythonPolicy:
        return self

    def check(self, ladder: Ladder) -> None:
        """Nothing to check before the run (see :func:`check_policy` for a trial run)."""

    def param_array(self, ladder: Ladder | None = None) -> np.ndarray:
        return np.zeros(0)

    def can_abandon(self, ladder: Ladder | None = None) -> bool:
        return self.has_abandon

    def instance(self) -> Any:
        """A new instance of the class.

        Raises:
            PolicyError: if building it raises.
        """
        try:
            return self.factory()
        except _RAISED as exc:
            raise self._error(exc, "__init__") from None

    def decider(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> PythonDecider:
        """One session's decisions (a new instance, reset for the session)."""
        return PythonDecider(self, ladder, model, rng)

    def _error(self, exc: BaseException, method: str) -> PolicyError:
        hint = " (what a policy is given is read-only)" if "read-only" in str(exc) else ""
        said = f": {exc}" if str(exc) else ""
        return PolicyError(f"{self.class_name}.{method} raised {type(exc).__name__}{said}{hint}",
                           source=_shown(self.path), line=_where(exc, self.path),
                           details="".join(traceback.format_exception(exc)))

    def _bad(self, method: str, message: str) -> PolicyError:
        return PolicyError(f"{self.class_name}.{method} {message}", source=_shown(self.path))

    # The AbrPolicy protocol, for callers that drive a policy one decision at a time.
    def reset(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> None:
        self.instance_ = self.instance()
        reset = getattr(self.instance_, "reset", None)
        if reset is not None:
            reset(ladder, model, rng)

    def choose(self, obs: Observation) -> Any:
        return self.instance_.choose(obs)


class PythonDecider:
    """One session of a Python policy, with the engines' decision interface (``KernelDecider``'s).

    Validates every answer: a rung in range (a Python int or a numpy integer), a pause that is a
    finite number >= 0.
    """

    def __init__(self, policy: PythonPolicy, ladder: Ladder, model: PlayerModel,
                 rng: np.random.Generator) -> None:
        self.policy = policy
        self.instance = policy.instance()
        self.rungs = ladder.rung_count
        self._tables = (ladder.bitrates_bps, ladder.size_bits, ladder.quality)
        self._values: np.ndarray | None = None
        self._view: Observation | None = None
        self._choose = self.instance.choose
        self._on_download = getattr(self.instance, "on_download", None)
        self._abandon = getattr(self.instance, "abandon", None)
        self.can_abandon = self._abandon is not None
        reset = getattr(self.instance, "reset", None)
        if reset is not None:
            try:
                reset(ladder, model, rng)
            except _RAISED as exc:
                raise policy._error(exc, "reset") from None

    def _observe(self, obs: np.ndarray) -> Observation:
        if obs is not self._values:
            self._values = obs
            self._view = Observation.over(obs, *self._tables)
        return self._view  # type: ignore[return-value]

    def choose(self, obs: np.ndarray) -> tuple[int, float]:
        view = self._observe(obs)
        try:
            answer = self._choose(view)
        except _RAISED as exc:
            raise self.policy._error(exc, "choose") from None
        if type(answer) is int:
            rung, pause_s = answer, 0.0
        else:
            rung, pause_s = self._unpack(answer, view)
        if not 0 <= rung < self.rungs:
            raise self.policy._bad("choose", f"returned rung {rung} for segment {view.segment_index}, "
                                   f"expected 0 to {self.rungs - 1}")
        return rung, pause_s

    def _unpack(self, answer: Any, view: Observation) -> tuple[int, float]:
        """A rung of another integer type, or ``(rung, pause_s)``."""
        pause: Any = 0.0
        if isinstance(answer, tuple) and len(answer) == 2:
            answer, pause = answer
        try:
            if isinstance(answer, bool | np.bool_):
                raise TypeError
            rung = operator.index(answer)
        except TypeError:
            raise self.policy._bad(
                "choose", f"returned {answer!r} ({type(answer).__name__}) for segment {view.segment_index}, "
                "expected a rung (int) or (rung, pause_s)") from None
        try:
            pause_s = math.nan if isinstance(pause, bool | np.bool_) else float(pause)
        except (TypeError, ValueError):
            pause_s = math.nan
        if not (math.isfinite(pause_s) and pause_s >= 0.0):
            raise self.policy._bad("choose", f"returned a pause of {pause!r}, expected a finite number of "
                                   "seconds >= 0")
        return rung, pause_s

    def event(self, obs: np.ndarray, event: int) -> None:
        if self._on_download is None or event == EVENT_WAIT:
            return
        try:
            self._on_download(self._observe(obs), event == EVENT_ABANDONED)
        except _RAISED as exc:
            raise self.policy._error(exc, "on_download") from None

    def abandon(self, obs: np.ndarray) -> int:
        view = self._observe(obs)
        try:
            answer = self._abandon(view)  # type: ignore[misc]
        except _RAISED as exc:
            raise self.policy._error(exc, "abandon") from None
        if answer is None:
            return NO_RUNG
        try:
            if isinstance(answer, bool | np.bool_):
                raise TypeError
            rung = operator.index(answer)
        except TypeError:
            raise self.policy._bad("abandon", f"returned {answer!r}, expected a rung, -1 or None") from None
        if not -1 <= rung < self.rungs:
            raise self.policy._bad("abandon", f"returned rung {rung}, expected -1 (go on) or 0 to "
                                   f"{self.rungs - 1}")
        return rung


def check_policy(policy: PythonPolicy | str, ladder: Ladder | None = None, traces: list[Any] | None = None,
                 seed: int = 0) -> list[str]:
    """Try a policy before a long run: whole sessions, twice with the same seed.

    Checks that it loads, builds, resets and answers with rungs in range on every decision,
    that it does not change what it is given (the observation and the ladder's arrays are
    read-only, so a write raises), and that the same seed gives the same sessions. Returns what
    was checked, one line each.

    Raises:
        PolicyError: at the first problem, with the policy's own traceback in ``details``.
    """
    from abrsim._data import data_dir
    from abrsim.engine.fast import run_batch
    from abrsim.engine.step import SES_SEGMENTS
    from abrsim.ladder import load_ladder
    from abrsim.model import SABRE
    from abrsim.trace import load_traces

    if isinstance(policy, str):
        policy = load_policy(policy)
    ladder = load_ladder("hls") if ladder is None else ladder
    traces = load_traces([data_dir("traces")]) if traces is None else traces
    if not isinstance(policy, PythonPolicy):  # a compiled policy a file registered
        done = [f"loaded the compiled policy {policy.name!r}"]
        source = policy.name
    else:
        done = [f"loaded {_shown(policy.path)}:{policy.class_name} (results name {policy.name!r})"]
        source = _shown(policy.path)
    tables = [np.array(table) for table in (ladder.bitrates_bps, ladder.size_bits)]
    first = run_batch(traces, ladder, policy, seed=seed)
    second = run_batch(traces, ladder, policy, seed=seed)
    if not all(np.array_equal(a, b) for a, b in zip(tables, (ladder.bitrates_bps, ladder.size_bits),
                                                     strict=True)):
        raise PolicyError(f"{policy.name} changed the ladder it was given (its bitrates or sizes); "
                          "copy what you want to change", source=source)
    segments = int(first.session[:, SES_SEGMENTS].sum())
    done.append(f"{len(traces)} sessions, {segments} segments on ladder {ladder.name!r}: every rung in range")
    if not (np.array_equal(first.rungs, second.rungs) and np.array_equal(first.log, second.log)):
        raise PolicyError(f"{policy.name} is not deterministic: two runs with seed {seed} chose "
                          "different rungs (draw randomness from the rng given to reset)", source=source)
    done.append(f"deterministic: a second run with seed {seed} made the same sessions")
    if policy.can_abandon(ladder):
        run_batch(traces[:2], ladder, policy, SABRE, seed=seed)
        done.append("abandon: answered at every checkpoint of the sabre model")
    return done
