"""ABR algorithms: an open registry of compiled policies, and Python policies.

>>> from abrsim.abr import available, make
>>> available()
['bb', 'bba0', 'bola', 'bolae', 'dashjs', 'dynamic', 'dynamicdash', 'fastmpc', 'robustmpc', 'throughput']
>>> make("bola", gamma_p=4.0).params["gamma_p"]
4.0

Compiled policies are numba functions registered with :func:`register` (the built-ins register
the same way, one module per algorithm family: :mod:`abrsim.abr.bola`, ...); the session loop
is compiled once per policy, on first use, and cached. Third-party packages register theirs
through the ``abrsim.policies`` entry-point group. Python policies are plain classes, loaded
from a file named explicitly (:func:`load_policy`, ``abrsim run --policy FILE:NAME``); see
docs/policies.md.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, Protocol

import numpy as np

from abrsim.abr import _kernels
from abrsim.abr._observation import Observation
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import Ladder
from abrsim.model import PlayerModel

__all__ = [
    "ALGORITHMS",
    "AbrPolicy",
    "AlgorithmSpec",
    "KernelPolicy",
    "Observation",
    "ParamSpec",
    "PythonPolicy",
    "available",
    "check_policy",
    "estimator_arrays",
    "load_policy",
    "make",
    "quality_utilities",
    "register",
]


class AbrPolicy(Protocol):
    """What every policy implements (the shape follows Gymnasium's ``Env``)."""

    name: str

    def reset(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> None:
        """Start a new session on ``ladder``."""

    def choose(self, obs: Observation) -> int | tuple[int, float]:
        """Return the rung of the next segment, or the rung and a pause (s) before requesting it."""


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter of an algorithm.

    Args:
        name: parameter name, with its unit.
        default: default value (its type is the parameter's type).
        doc: one line saying what it does.
        choices: for a text parameter, the accepted values (encoded as their index).
        minimum: smallest accepted value for a number (inclusive), if any.
    """

    name: str
    default: float | int | bool | str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, value: Any, algorithm: str) -> float | int | bool | str:
        """Convert ``value`` (possibly text from the CLI) to this parameter's type and check it.

        Raises:
            InputError: if the value has the wrong type or is out of range.
        """
        where = f"{algorithm}.{self.name}"
        try:
            if isinstance(self.default, bool):
                if isinstance(value, str):
                    value = {"true": True, "false": False, "1": True, "0": False}[value.lower()]
                value = bool(value)
            elif isinstance(self.default, str):
                value = str(value)
                if value not in self.choices:
                    raise InputError(f"got {value!r}, expected one of: {', '.join(self.choices)}",
                                     field=where)
            else:
                value = type(self.default)(value)
                low = -np.inf if self.minimum is None else self.minimum
                high = np.inf if self.maximum is None else self.maximum
                if not (np.isfinite(value) and low <= value <= high):
                    bound = "" if self.minimum is None else f" >= {self.minimum:g}"
                    bound += "" if self.maximum is None else f" and <= {self.maximum:g}"
                    raise InputError(f"got {value!r}, expected a finite number{bound}", field=where)
        except InputError:
            raise
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f"got {value!r}, expected a {type(self.default).__name__}", field=where
            ) from None
        return value

    def encode(self, value: float | int | bool | str) -> float:
        """The value as the float the kernel reads."""
        if isinstance(value, str):
            return float(self.choices.index(value))
        return float(value)


@dataclass(frozen=True)
class AlgorithmSpec:
    """A registered compiled policy: its numba functions, parameters and documentation.

    Made by :func:`register`; see there for what each function does.
    """

    name: str
    summary: str
    citation: str
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)
    check_ladder: Callable[[Mapping[str, Any], Ladder], None] | None = None
    state_size: Callable[[int], int] = field(default=lambda rungs: 1)
    reset: Any = None
    choose: Any = None
    event: Any = None
    abandon: Any = None
    can_abandon: Any = None
    abandon_after: Any = None
    reads_estimates: Any = None
    sources: tuple[str, ...] = ()

    def param(self, name: str) -> ParamSpec:
        """The parameter ``name``.

        Raises:
            UnknownNameError: if the algorithm has no such parameter.
        """
        for spec in self.params:
            if spec.name == name:
                return spec
        raise UnknownNameError(f"parameter of {self.name}", name, [p.name for p in self.params])

    def loops(self, checking: bool = True) -> dict[str, Any]:
        """The fast engine's session loops compiled for this policy (once per process; cached on disk).

        With ``checking`` False, the loops without abandonment checkpoints (see
        :func:`abrsim.engine._session.specialise`).
        """
        entry = _LOOPS.get((id(self), checking))
        if entry is None:
            from abrsim.engine._session import specialise

            entry = _LOOPS[id(self), checking] = (self, specialise(
                self.name, {"reset": self.reset, "choose": self.choose, "event": self.event,
                            "abandon": self.abandon, "can_abandon": self.can_abandon,
                            "abandon_after": self.abandon_after, "reads_estimates": self.reads_estimates},
                self.sources, checking))
        return entry[1]


# By (id(spec), checking), holding the spec so that its id stays its own.
_LOOPS: dict[tuple[int, bool], tuple[AlgorithmSpec, dict[str, Any]]] = {}


_REGISTRY: dict[str, AlgorithmSpec] = {}
#: The registered compiled policies by name (a read-only view; add with :func:`register`).
ALGORITHMS: Mapping[str, AlgorithmSpec] = MappingProxyType(_REGISTRY)
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def register(
    name: str,
    *,
    choose: Any,
    reset: Any = None,
    event: Any = None,
    abandon: Any = None,
    can_abandon: Any = None,
    abandon_after: Any = None,
    reads_estimates: Any = None,
    state_size: int | Callable[[int], int] = 1,
    params: tuple[ParamSpec, ...] = (),
    summary: str = "",
    citation: str = "",
    check_ladder: Callable[[Mapping[str, Any], Ladder], None] | None = None,
    modules: tuple[ModuleType, ...] = (),
    replace: bool = False,
) -> AlgorithmSpec:
    """Register a compiled policy under ``name`` (then ``make(name)``, ``abrsim run --abr name``).

    Every function is a numba function (``numba.njit``, ideally ``cache=True``) of arrays and
    scalars, with these signatures (``params`` holds the parameters in the order of ``params``,
    encoded as floats; ``obs`` is the observation array indexed by ``abrsim.abr._kernels.OBS_*``):

    - ``choose(params, state, obs, bitrates_bps, size_bits) -> (rung, pause_s)``;
    - ``reset(params, state, bitrates_bps, segment_duration_s)`` at the start of each session
      (default: zero the state);
    - ``event(params, state, obs, event, bitrates_bps)`` after a full-buffer wait and after
      each completed or abandoned download (``EVENT_*``; default: ignore);
    - ``abandon(params, state, obs, bitrates_bps) -> rung`` at each abandonment checkpoint,
      ``-1`` to go on (default: never);
    - ``can_abandon(params) -> bool``: whether the player needs to check at all (default: true
      when ``abandon`` is given);
    - ``abandon_after(params, state, obs, bitrates_bps, rate_bps) -> elapsed_s`` (optional): at an
      abandonment checkpoint where ``abandon`` went on, the earliest elapsed time (``obs``'s
      ``OBS_ELAPSED_S`` scale) at which ``abandon`` could answer a rung while the download goes on
      at ``rate_bps`` and the buffer drains (``np.inf``: not at that rate). It must never be late:
      the fast engine skips the checkpoints before it (results stay identical to the bit). Without
      it, or when it answers a time already past, every checkpoint is checked;
    - ``reads_estimates(params) -> bool``: whether any of the functions reads the player's
      estimates, ``OBS_THROUGHPUT_BPS`` or ``OBS_LATENCY_S`` (default: true). When it is false
      the fast engine leaves both at 0 and skips the estimator (results stay identical to the
      bit, provided no function reads them).

    ``state_size`` is the length of the state array, or a function of the ladder's rung count.
    The session loop is compiled for the policy on its first use and cached on disk under a
    name that includes a digest of the functions' modules (and of ``modules``, for helpers
    elsewhere), so an edited policy compiles anew.

    Raises:
        InputError: if the name is malformed or taken (without ``replace``), or a function is
            not a numba function.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"got {name!r}, expected a lower-case name of letters, digits and _", field="name")
    if name in _REGISTRY and not replace:
        raise InputError(f"a policy named {name!r} is already registered; pass replace=True to replace it",
                         field="name")
    functions = {
        "choose": choose,
        "reset": _kernels.no_reset if reset is None else reset,
        "event": _kernels.no_event if event is None else event,
        "abandon": _kernels.no_abandon if abandon is None else abandon,
        "can_abandon": can_abandon if can_abandon is not None else (
            _kernels.never_abandons if abandon is None else _kernels.always_abandons),
        "reads_estimates": _kernels.always_reads_estimates if reads_estimates is None else reads_estimates,
    }
    if abandon_after is not None:
        functions["abandon_after"] = abandon_after
    from numba.core import config
    from numba.core.registry import CPUDispatcher

    for key, function in functions.items():
        # With NUMBA_DISABLE_JIT=1, numba.njit returns the plain function: accept those then.
        if not (isinstance(function, CPUDispatcher) or (config.DISABLE_JIT and inspect.isfunction(function))):
            raise InputError(f"got {function!r}, expected a numba function (numba.njit)",
                             field=f"{name}.{key}")
    if not all(isinstance(p, ParamSpec) for p in params):
        raise InputError("expected a tuple of abrsim.abr.ParamSpec", field=f"{name}.params")
    size = state_size if callable(state_size) else (lambda rungs, n=int(state_size): n)
    files = {inspect.getsourcefile(getattr(f, "py_func", f)) or "" for f in functions.values()}
    files |= {str(module.__file__) for module in modules}
    spec = AlgorithmSpec(
        name=name, summary=summary, citation=citation, params=tuple(params), check_ladder=check_ladder,
        state_size=size, sources=tuple(sorted(f for f in files if f)), **functions)
    _REGISTRY[name] = spec
    return spec


_PLUGINS_LOADED = False


def _load_plugins() -> None:
    """Register the policies of installed packages (entry-point group ``abrsim.policies``), once.

    Each entry point names a module (importing it registers its policies) or a callable
    (called with no arguments).

    Raises:
        InputError: if an entry point cannot be loaded.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    for point in entry_points(group="abrsim.policies"):
        try:
            loaded = point.load()
            if callable(loaded) and not isinstance(loaded, ModuleType):
                loaded()
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{type(exc).__name__}: {exc}", field="abrsim.policies",
                             source=f"entry point {point.name} = {point.value}") from exc


def available() -> list[str]:
    """Names of the registered algorithms (built-in and from installed packages), sorted."""
    _load_plugins()
    return sorted(ALGORITHMS)


def make(name: str, **params: Any) -> KernelPolicy:
    """Build the registered algorithm ``name`` with some parameters changed from their defaults.

    Raises:
        UnknownNameError: if the algorithm or a parameter is unknown.
        InputError: if a parameter value is invalid.
    """
    _load_plugins()
    try:
        spec = ALGORITHMS[name]
    except KeyError:
        raise UnknownNameError("algorithm", name, available()) from None
    return KernelPolicy(spec, **params)


class KernelPolicy:
    """A registered algorithm with its parameters: the object users see.

    The fast engine reads :attr:`spec` and :meth:`param_array` and runs the kernel itself;
    :meth:`reset` and :meth:`choose` run the same kernel one decision at a time.
    """

    def __init__(self, spec: AlgorithmSpec, **params: Any) -> None:
        self.spec = spec
        self.name = spec.name
        values = {p.name: p.default for p in spec.params}
        for key, value in params.items():
            values[key] = spec.param(key).coerce(value, spec.name)
        self.params: dict[str, float | int | bool | str] = values
        self.explicit = frozenset(params)

    def __repr__(self) -> str:
        return f"make({self.name!r}, **{self.params!r})"

    def resolved(self, model: PlayerModel | None) -> KernelPolicy:
        """This policy with the model preset's algorithm defaults applied where not set explicitly."""
        if model is None:
            return self
        changes = {}
        for key, value in model.algorithm_defaults:
            algorithm, _, name = key.partition(".")
            if algorithm == self.name and name not in self.explicit:
                changes[name] = value
        if not changes:
            return self
        policy = KernelPolicy(self.spec, **{k: self.params[k] for k in self.explicit}, **changes)
        policy.explicit = self.explicit
        return policy

    @property
    def params_json(self) -> str:
        """The parameters as canonical JSON (sorted keys), for results tables."""
        return json.dumps(self.params, sort_keys=True, separators=(",", ":"))

    def param_array(self, ladder: Ladder | None = None) -> np.ndarray:
        """Parameters in the order the kernel reads them (plus per-rung data some options need).

        Raises:
            InputError: if an option needs the ladder and none is given.
        """
        values = [p.encode(self.params[p.name]) for p in self.spec.params]
        if self.params.get("utility") == "quality":
            if ladder is None or ladder.quality is None:
                raise InputError("BOLA's quality utility needs a ladder with a quality table",
                                 field=f"{self.name}.utility")
            values += quality_utilities(ladder).tolist()
        return np.array(values, dtype=np.float64)

    def check(self, ladder: Ladder) -> None:
        """Validate the parameters against a ladder (scikit-learn style: at first use).

        Raises:
            InputError: if a parameter cannot work with this ladder.
        """
        if self.spec.check_ladder is not None:
            self.spec.check_ladder(self.params, ladder)

    def state_array(self, ladder: Ladder) -> np.ndarray:
        """A zeroed per-session state array sized for ``ladder``."""
        return np.zeros(int(self.spec.state_size(ladder.rung_count)), dtype=np.float64)

    def can_abandon(self, ladder: Ladder | None = None) -> bool:
        """Whether the policy ever abandons with these parameters (the player skips checks otherwise)."""
        return bool(self.spec.can_abandon(self.param_array(ladder)))

    def decider(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> KernelDecider:
        """One session's decisions, as the discrete-event player drives them (see :class:`KernelDecider`)."""
        del rng  # the built-in algorithms are deterministic
        return KernelDecider(self.resolved(model), ladder)

    def reset(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> None:
        """Start a session: validate, then let the kernel fill the state arrays."""
        self.check(ladder)
        self.ladder_ = ladder
        self.segments_ = model.segments_played(ladder)
        self.decider_ = self.decider(ladder, model, rng)

    def choose(self, obs: Observation) -> tuple[int, float]:
        """Run one decision of the kernel."""
        values = obs.as_array(self.segments_, self.ladder_.segment_duration_s)
        rung, pause_s = self.decider_.choose(values)
        return int(rung), float(pause_s)


class KernelDecider:
    """One session of a compiled policy, one call at a time (the engines' decision interface).

    ``choose``, ``event`` and ``abandon`` take the observation array (``OBS_*``) the session
    step fills; the Python-policy decider (:class:`abrsim.abr._python.PythonDecider`) has the
    same methods.
    """

    def __init__(self, policy: KernelPolicy, ladder: Ladder) -> None:
        spec = policy.spec
        self.name = policy.name
        policy.check(ladder)
        self._params = policy.param_array(ladder)
        self._state = policy.state_array(ladder)
        self._bitrates_bps = ladder.bitrates_bps
        self._rungs = ladder.rung_count
        self._size_bits = ladder.size_bits
        self._segment_duration_s = float(ladder.segment_duration_s)
        self._choose = spec.choose
        self._event = spec.event
        self._abandon = spec.abandon
        self.can_abandon = bool(spec.can_abandon(self._params))
        spec.reset(self._params, self._state, self._bitrates_bps, self._segment_duration_s)

    def compile(self, abandon: bool = True) -> None:
        """Compile the calls :meth:`choose`, :meth:`event` and (with ``abandon``) :meth:`abandon` make,
        without making them (numba's cache keeps them; see :mod:`abrsim._ahead`)."""
        from numba import typeof

        obs = np.zeros(_kernels.OBS_SIZE)
        calls = [(self._choose, (self._params, self._state, obs, self._bitrates_bps, self._size_bits)),
                 (self._event, (self._params, self._state, obs, _kernels.EVENT_DONE, self._bitrates_bps))]
        if abandon:
            calls.append((self._abandon, (self._params, self._state, obs, self._bitrates_bps)))
        for function, args in calls:
            function.compile(tuple(typeof(value) for value in args))

    def choose(self, obs: np.ndarray) -> tuple[int, float]:
        """The next segment's rung and a pause before its request.

        Raises:
            InputError: if the policy chose a rung outside the ladder.
        """
        rung, pause_s = self._choose(self._params, self._state, obs, self._bitrates_bps, self._size_bits)
        if not 0 <= rung < self._rungs:
            raise InputError(f"chose rung {rung}, expected 0 to {self._rungs - 1}",
                             field=f"{self.name}.choose")
        return rung, pause_s

    def event(self, obs: np.ndarray, event: int) -> None:
        """A full-buffer wait, a completed or an abandoned download (``EVENT_*``)."""
        self._event(self._params, self._state, obs, event, self._bitrates_bps)

    def abandon(self, obs: np.ndarray) -> int:
        """At a checkpoint: the rung to abandon the download for, or -1.

        Raises:
            InputError: if the policy answered a rung outside the ladder.
        """
        rung = self._abandon(self._params, self._state, obs, self._bitrates_bps)
        if not -1 <= rung < self._bitrates_bps.shape[0]:
            raise InputError(f"abandoned for rung {rung}, expected -1 (go on) or 0 to "
                             f"{self._bitrates_bps.shape[0] - 1}", field=f"{self.name}.abandon")
        return rung


def quality_utilities(ladder: Ladder) -> np.ndarray:
    """Per-rung utilities from the ladder's quality: mean quality per rung, shifted so rung 0 is 0 and
    scaled to the span of the log-bitrate utilities ``ln(b_top / b_0)``, so ``gamma_p`` keeps its meaning.

    Raises:
        InputError: if the ladder has no quality table or its mean quality does not rise with the rung.
    """
    if ladder.quality is None:
        raise InputError(f"ladder {ladder.name!r} has no quality table", field="quality")
    mean_quality = ladder.quality.mean(axis=0)
    span = mean_quality[-1] - mean_quality[0]
    if ladder.rung_count > 1 and not span > 0:
        raise InputError(f"ladder {ladder.name!r}: mean quality of the top rung ({mean_quality[-1]:g}) "
                         "is not "
                         f"above rung 0's ({mean_quality[0]:g}); expected quality rising with the rung",
                         field="quality")
    if ladder.rung_count == 1:
        return np.zeros(1)
    log_span = float(np.log(ladder.bitrates_bps[-1] / ladder.bitrates_bps[0]))
    return (mean_quality - mean_quality[0]) / span * log_span


def estimator_arrays(model: PlayerModel, segment_duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's parameter array and a zeroed state array, as the kernels read them."""
    values = model.ewma_half_lives_s if model.estimator == "ewma" else model.sliding_window_sizes
    est_params = np.zeros(_kernels.EST_PARAMS, dtype=np.float64)
    est_params[0] = _kernels.EST_EWMA if model.estimator == "ewma" else _kernels.EST_SLIDING
    est_params[1] = len(values)
    est_params[2:2 + len(values)] = values
    est_params[10] = segment_duration_s
    return est_params, np.zeros(_kernels.EST_STATE_SIZE, dtype=np.float64)


# The built-in families register themselves; then Python policies (they use the names above).
from abrsim.abr import bola, buffer_based, dashjs, hybrid, mpc, throughput  # noqa: E402, F401
from abrsim.abr._python import PythonPolicy, check_policy, load_policy  # noqa: E402
