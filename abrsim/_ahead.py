"""Compile ahead: on a cold numba cache, another process compiles what a run will need next.

A first run spends most of its time compiling, one function after another, on one core. While
this process compiles its first session loop, :class:`CompileAhead` has a helper process (a
fork of this one, on a spare CPU) compile into numba's disk cache:

- the kernels that loop calls, in the reverse of the order this process needs them: numba
  types the loop without compiling it, noting each kernel call and its types, then the helper
  compiles them from the last, while this process compiles from the first; each loads what the
  other has saved;
- the QoE metrics kernel;
- the other algorithms' loops.

When this process gets to a job the helper has started, it waits for it and loads the result; a
job not started yet it does itself (and the helper then finds it cached). :func:`from_both_ends`
is the same for work that must all be compiled before a run starts (``abrsim simulate``: a
one-viewer run of the first group, then each algorithm's calls, then the QoE kernel; ``abrsim
sweep``: every loop its workers will run, before it forks them): this process takes the jobs
from the first, the helper from the last. The jobs run the real
code on a tiny session of the same types, so they compile the very code this process needs.
Nothing depends on them: a job that fails or a helper that dies only means this process
compiles that piece itself, as it would have anyway.

It is off with one CPU, with numba's JIT off, where there is no ``fork`` (not Linux) or this
process runs other threads (forking those is unsafe), when everything is already cached, and
when the environment sets ``ABRSIM_COMPILE_AHEAD=0``. The helper runs in its own session
(Ctrl-C does not reach it), says nothing, and ends without running this process's exit code;
:meth:`CompileAhead.close` ends it if it is still running (never in the middle of a save to the
cache).

While the helper lives, numba's cache saves and loads take a file lock in both processes
(:func:`_lock_the_cache`): numba keeps a function's overloads in one index, and two processes
saving overloads of one function at the same time could otherwise leave an entry pointing at
the other's data.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

__all__ = ["CompileAhead", "compile_ahead", "from_both_ends", "quietly"]

#: Longest wait for one job before this process compiles the piece itself, seconds.
JOB_TIMEOUT_S = 120.0
#: How long the helper has to end after SIGTERM (it may be saving to the cache) before SIGKILL, seconds.
GRACE_S = 5.0

#: A job: (key, what to call).
Job = tuple[str, Callable[[], None]]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def enabled() -> bool:
    """Whether compiling ahead can help here and is safe (see the module's notes)."""
    from numba import config

    return (os.environ.get("ABRSIM_COMPILE_AHEAD", "1") != "0" and not config.DISABLE_JIT
            and sys.platform.startswith("linux") and threading.active_count() == 1 and _cpus() > 1)


class CompileAhead:
    """``jobs`` running, one after the other, in a helper process (none if ``jobs`` is empty);
    :meth:`wait` for one by key."""

    def __init__(self, jobs: Sequence[Job], close_fds: Sequence[int] = ()) -> None:
        self._keys = {key for key, _ in jobs}
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self._partial = b""  # the start of a report line not ended yet
        self._pid = 0
        self._reports = -1
        self._unlock: Callable[[], None] = lambda: None
        if not jobs:
            return
        self._unlock = _lock_the_cache()
        reports, report = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:  # no helper (e.g. a process limit): this process compiles everything
            os.close(reports)
            os.close(report)
            self.close()
            return
        if pid == 0:  # the helper
            os.close(reports)
            for fd in close_fds:  # (e.g. a lock this process holds: the helper must not hold it on)
                with contextlib.suppress(OSError):
                    os.close(fd)
            _helper(jobs, report)  # never returns
        os.close(report)
        self._pid = pid
        self._reports = reports

    def wait(self, key: str) -> None:
        """Return once job ``key`` has ended (done or failed), the helper has died, or after
        :data:`JOB_TIMEOUT_S`; at once if the helper has not started it (the caller does it then)."""
        if key not in self._keys:
            return
        self._read(block=False)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while key in self._started and key not in self._finished:
            if not self._read(block=True, timeout_s=deadline - time.monotonic()):
                self.close()  # the helper died, or took too long
                return

    def _read(self, block: bool, timeout_s: float = 0.0) -> bool:
        """Take in the helper's reports (``start KEY`` / ``done KEY`` lines): all that are ready, or
        (``block``) at least one read. False if the helper's output ended or the wait timed out."""
        if self._reports < 0:
            return False
        while True:
            ready, _, _ = select.select([self._reports], [], [], max(0.0, timeout_s) if block else 0.0)
            if not ready:
                return not block
            data = os.read(self._reports, 65536)
            if not data:
                return False
            *lines, self._partial = (self._partial + data).split(b"\n")
            for line in lines:
                what, _, key = line.decode(errors="replace").partition(" ")
                (self._started if what == "start" else self._finished).add(key)
            block = False

    def close(self) -> None:
        """End the helper if it is still running (its half-compiled work is simply lost): SIGTERM,
        which it holds back while it saves to the cache, then SIGKILL after a grace period."""
        if self._pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_S
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(self._pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() > deadline:
                        os.kill(self._pid, signal.SIGKILL)
                        os.waitpid(self._pid, 0)
                        break
                    time.sleep(0.01)
            self._pid = 0
        if self._reports >= 0:
            os.close(self._reports)
            self._reports = -1
        self._unlock()
        self._unlock = lambda: None
        self._finished |= self._keys

    def __enter__(self) -> CompileAhead:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def from_both_ends(jobs: Sequence[Job], close_fds: Sequence[int] = ()) -> None:
    """Run ``jobs`` in this process from the first, while a helper (when :func:`enabled`) runs them
    from the last: the two meet in the middle.

    Before each job this process waits for the helper if the helper has started it, then runs it
    (a load from numba's cache when the helper has done it). A job's errors reach the caller
    (wrap it in :func:`quietly` to leave them to the real run). ``close_fds``: descriptors
    the helper closes (a lock this process holds).
    """
    with compile_ahead(list(reversed(jobs[1:])), close_fds) as ahead:
        for key, job in jobs:
            ahead.wait(key)
            job()


def quietly(job: Callable[[], None]) -> Callable[[], None]:
    """``job``, with its errors left to the real run, which meets the same ones and reports them
    (interrupts still stop it)."""

    def run() -> None:
        with contextlib.suppress(Exception):
            job()

    return run


def compile_ahead(jobs: Sequence[Job], close_fds: Sequence[int] = ()) -> CompileAhead:
    """Start ``jobs`` in a helper process when :func:`enabled` (a spare CPU: more than one in this
    process's affinity); the helper closes ``close_fds``."""
    return CompileAhead(jobs if jobs and enabled() else (), close_fds)


def _helper(jobs: Sequence[Job], report: int) -> None:
    """The helper's life: its own session, quiet, each job reported, then out without this
    process's exit code (``os._exit``)."""
    status = 0
    try:
        os.setsid()
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # whatever this process set
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        quiet = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(quiet, fd)
        for key, job in jobs:
            os.write(report, f"start {key}\n".encode())
            with contextlib.suppress(Exception):  # the parent compiles it itself
                job()
            os.write(report, f"done {key}\n".encode())
    except BaseException:  # whatever happens, never return into the parent's code
        status = 1
    finally:
        os._exit(status)


def _lock_the_cache() -> Callable[[], None]:
    """Make numba's cache saves and loads take a file lock next to the index they touch (exclusive
    to save, shared to load), in this process and in the helper it forks; returns the undo.

    numba saves an entry as: read the index, write it with the new entry, then write the data file.
    Two processes saving overloads of one function at once could both pick the same data file, and
    a load between the two writes could read another entry's data. With the lock a save is whole
    to every other process; and SIGTERM is held back during a save, so that
    :meth:`CompileAhead.close` never leaves an entry without its data.
    """
    import fcntl

    from numba.core import caching

    cls = getattr(caching, "IndexDataCacheFile", None)
    if cls is None or not all(hasattr(cls, name) for name in ("save", "load", "flush")):
        return lambda: None  # another numba: without the lock, as numba itself runs
    originals = {name: getattr(cls, name) for name in ("save", "load", "flush")}

    def locked(name: str, mode: int) -> Callable[..., Any]:
        original = originals[name]

        def call(self: Any, *args: Any) -> Any:
            try:
                lock = os.open(f"{self._index_path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            except (OSError, AttributeError):  # a read-only cache (nothing is saved there), another numba
                return original(self, *args)
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM} if name == "save" else set())
            try:
                fcntl.flock(lock, mode)
                return original(self, *args)
            finally:
                os.close(lock)
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

        return call

    cls.save = locked("save", fcntl.LOCK_EX)
    cls.flush = locked("flush", fcntl.LOCK_EX)
    cls.load = locked("load", fcntl.LOCK_SH)

    def undo() -> None:
        for name, original in originals.items():
            setattr(cls, name, original)

    return undo


# ----------------------------------------------------------------------------------------------
# The jobs (run in the helper)
# ----------------------------------------------------------------------------------------------


def engine_job(policy: Any, ladder: Any, model: Any) -> None:
    """Compile what the loop of ``policy`` calls for ``ladder`` and ``model``, in the reverse of
    the order the parent needs it: numba types the loop (without compiling it, which is the
    parent's part), noting each kernel it calls with the types it calls it with; then the kernels
    are compiled, those met last first, while the parent compiles from the start."""
    import numba

    from abrsim._jit import is_cached
    from abrsim.engine.fast import compiled_loops

    loops = compiled_loops(policy, ladder, model)
    loop = loops["run_batch"]
    if is_cached(loop):
        return

    def compile_backwards(*args: Any) -> int:
        for kernel, types in reversed(_kernel_calls(loop, tuple(numba.typeof(value) for value in args))):
            with contextlib.suppress(Exception):  # the parent compiles it itself
                kernel.compile(types)
        raise _CompiledSignal  # the batch did not run: nothing after the loop may read its results

    loops["run_batch"] = compile_backwards  # the loop's arguments, as the engine passes them
    try:
        _run_tiny(policy, ladder, model)
    except _CompiledSignal:
        pass
    finally:
        loops["run_batch"] = loop


class _CompiledSignal(Exception):  # noqa: N818 - a signal, not an error
    """:func:`engine_job` got the loop's arguments and compiled what the loop calls."""


def _kernel_calls(dispatcher: Any, types: tuple[Any, ...]) -> list[tuple[Any, tuple[Any, ...]]]:
    """The calls to kernels (:class:`abrsim._jit.Kernel`) that typing ``dispatcher``'s function
    for argument ``types`` meets, in the order it meets them: (the kernel's compiled callers' copy,
    argument types), each once. Nothing is compiled: a kernel's return type comes from typing it
    the same way."""
    from numba.core import compiler, typing
    from numba.core.typing.templates import make_concrete_template

    from abrsim._jit import Kernel

    type_only_pipeline = _type_only_pipeline()
    calls: list[tuple[Any, tuple[Any, ...]]] = []
    returns: dict[tuple[Any, tuple[Any, ...]], Any] = {}

    def type_only(target: Any, arg_types: tuple[Any, ...]) -> Any:
        flags = compiler.Flags()
        target.targetdescr.options.parse_as_flags(flags, target.targetoptions)
        return compiler.compile_extra(target.targetdescr.typing_context, target.targetdescr.target_context,
                                      target.py_func, args=arg_types, return_type=None, flags=flags,
                                      locals=target.locals, pipeline_class=type_only_pipeline)

    def call_template(self: Any, args: Any, kws: Any) -> Any:
        copy = self.compiled
        pysig, args = copy.fold_argument_types(args, kws)
        key = (copy, tuple(args))
        if key not in returns:
            calls.append(key)
            returns[key] = type_only(copy, key[1])
        name = copy.py_func.__name__
        template = make_concrete_template(f"CallTemplate({name})", key=name,
                                          signatures=[typing.signature(returns[key], *key[1])])
        return template, pysig, key[1], {}

    saved = Kernel.get_call_template
    Kernel.get_call_template = call_template  # type: ignore[method-assign]
    try:
        type_only(dispatcher, types)
    finally:
        Kernel.get_call_template = saved  # type: ignore[method-assign]
    return calls


def _type_only_pipeline() -> Any:
    """A numba compiler that stops after typing (made on first use: numba's pipeline classes)."""
    from numba.core.compiler import CompilerBase, DefaultPassBuilder, _EarlyPipelineCompletion
    from numba.core.compiler_machinery import FunctionPass, PassManager, register_pass
    from numba.core.typed_passes import NopythonTypeInference

    @register_pass(mutates_CFG=False, analysis_only=True)
    class StopAfterTyping(FunctionPass):  # type: ignore[misc]
        _name = "abrsim_stop_after_typing"

        def __init__(self) -> None:
            FunctionPass.__init__(self)

        def run_pass(self, state: Any) -> bool:
            raise _EarlyPipelineCompletion(state.return_type)

    class TypeOnly(CompilerBase):  # type: ignore[misc]
        def define_pipelines(self) -> list[Any]:
            manager = PassManager("abrsim_type_only")
            for pass_class, description in DefaultPassBuilder.define_untyped_pipeline(self.state).passes:
                manager.add_pass(pass_class, description)
            manager.add_pass(NopythonTypeInference, "nopython frontend")
            manager.add_pass(StopAfterTyping, "stop after typing")
            manager.finalize()
            return [manager]

    return TypeOnly


def metrics_job(ladder: Any) -> None:
    """Compile the QoE metrics kernel for results of ``ladder`` (two sessions of one download each)."""
    import numpy as np

    from abrsim._jit import is_cached
    from abrsim.engine import _session as kernel
    from abrsim.engine.fast import BatchRun
    from abrsim.qoe import _metrics_batch

    if is_cached(_metrics_batch):
        return

    session = np.zeros((2, kernel.SESSION_COLUMNS))
    session[:, kernel.SES_FIRST_RECORD] = (0, 1)
    session[:, kernel.SES_RECORDS] = 1
    BatchRun(("a", "b"), ladder, None, None, 0, np.ones((2, kernel.LOG_COLUMNS)),  # type: ignore[arg-type]
             np.zeros(2, dtype=np.int64), session).metrics()


def loop_job(policy: Any, ladder: Any, model: Any) -> None:
    """Compile the fast engine's loop of ``policy`` for ``ladder`` and ``model`` by running it over
    a short constant trace."""
    from abrsim._jit import is_cached
    from abrsim.engine.fast import compiled_loop

    if not is_cached(compiled_loop(policy, ladder, model)):
        _run_tiny(policy, ladder, model)


def decider_job(policy: Any, ladder: Any, model: Any) -> None:
    """Compile the calls the discrete-event player makes to compiled ``policy`` for ``ladder`` and
    ``model`` (:class:`abrsim.abr.KernelDecider`), without making them."""
    import numpy as np

    decider = policy.resolved(model).decider(ladder, model, np.random.default_rng(0))
    decider.compile(abandon=model.abandonment and decider.can_abandon)


def _run_tiny(policy: Any, ladder: Any, model: Any) -> None:
    """``policy``'s loop over a short constant trace."""
    import numpy as np

    from abrsim.engine.fast import run_batch
    from abrsim.trace import Trace

    run_batch([Trace(np.array([0.0, 1.0]), np.array([5e6, 5e6]), 2.0, name="ahead")], ladder, policy, model)


