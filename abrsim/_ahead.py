"""Compile ahead: on a cold numba cache, other processes compile what a run will need next.

A first run spends most of its time compiling, one function after another, on one core. While
this process compiles its first session loop, :class:`CompileAhead` has other processes compile
into numba's disk cache:

- the session step's rules as that loop calls them: the same loop bound to a trivial policy
  (the policy's own functions are this process's part), so that the helper runs ahead of this
  process through the rules both need and this process loads them instead;
- the QoE metrics kernel;
- the other algorithms' loops.

When this process gets to a job a helper has started, it waits for it and loads the result; a
job not started yet it does itself (and the helper then finds it cached). The jobs run the real
code on a tiny session of the same types, so they compile the very code this process needs.
Nothing depends on them: a job that fails or a helper that dies only means this process
compiles that piece itself, as it would have anyway.

It is off with one CPU, with numba's JIT off, when everything is already cached, and when the
environment sets ``ABRSIM_COMPILE_AHEAD=0``. The helpers are this process's children in their
own session (Ctrl-C does not reach them); :meth:`CompileAhead.close` ends those still running
(never in the middle of a save to the cache).

Two processes may compile the same function at once only with the same types: numba's cache
tells a function's overloads apart in one index, and two processes saving different overloads
of one function at the same time can leave an entry pointing at the other's data. The jobs
compile exactly what this process compiles next (``tests/test_compiling.py`` checks it), and
this process closes the helpers before it compiles anything else (a Python policy's driver,
the oracle).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

__all__ = ["CompileAhead", "compile_ahead"]

#: Longest wait for one job before this process compiles the piece itself, seconds.
JOB_TIMEOUT_S = 120.0

#: A job: (key, name of a function of this module, its arguments).
Job = tuple[str, str, tuple[Any, ...]]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def enabled() -> bool:
    """Whether compiling ahead can help here (more than one CPU, the JIT on, not switched off)."""
    from numba import config

    return (os.environ.get("ABRSIM_COMPILE_AHEAD", "1") != "0" and not config.DISABLE_JIT
            and _cpus() > 1)


class CompileAhead:
    """Jobs running in helper processes (none if ``jobs`` is empty); :meth:`wait` for one by key."""

    def __init__(self, jobs: Sequence[Job], processes: int = 1) -> None:
        self._owner: dict[str, subprocess.Popen[bytes]] = {}
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self._partial: dict[int, bytes] = {}  # by helper pid: the start of a report line not ended yet
        self._processes: list[subprocess.Popen[bytes]] = []
        processes = max(1, min(processes, len(jobs)))
        for index in range(processes if jobs else 0):
            share = list(jobs[index::processes])
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "abrsim._ahead"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, start_new_session=True)
                assert process.stdin is not None
                process.stdin.write(pickle.dumps(share))
                process.stdin.close()
            except (OSError, pickle.PicklingError, AttributeError, TypeError):
                continue  # no helper: this process compiles everything, as without one
            self._processes.append(process)
            for key, _, _ in share:
                self._owner[key] = process

    def wait(self, key: str) -> None:
        """Return once job ``key`` has ended (done or failed), its helper has died, or after
        :data:`JOB_TIMEOUT_S`; at once if no helper has started it (the caller does it then)."""
        process = self._owner.get(key)
        if process is None:
            return
        self._read(process, block=False)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while key in self._started and key not in self._finished:
            if not self._read(process, block=True, timeout_s=deadline - time.monotonic()):
                self._stop(process)  # the helper died, closed its output, or took too long
                return

    def _read(self, process: subprocess.Popen[bytes], block: bool, timeout_s: float = 0.0) -> bool:
        """Take in the helper's reports (``start KEY`` / ``done KEY`` lines): all that are ready, or
        (``block``) at least one read. False if the helper's output ended or the wait timed out.
        (Unbuffered reads: a buffered reader could hold a report back until the next one.)"""
        if process.stdout is None or process.stdout.closed:
            return False
        while True:
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, timeout_s) if block else 0.0)
            if not ready:
                return not block
            data = os.read(process.stdout.fileno(), 65536)
            if not data:
                return False
            *lines, self._partial[process.pid] = (self._partial.get(process.pid, b"") + data).split(b"\n")
            for line in lines:
                what, _, key = line.decode(errors="replace").partition(" ")
                (self._started if what == "start" else self._finished).add(key)
            block = False

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._finished.update(key for key, owner in self._owner.items() if owner is process)

    def close(self) -> None:
        """End the helper processes still running (their half-compiled work is simply lost)."""
        for process in self._processes:
            self._stop(process)
        self._processes = []

    def __enter__(self) -> CompileAhead:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def compile_ahead(jobs: Sequence[Job]) -> CompileAhead:
    """Start ``jobs`` in helper processes (one per spare CPU) when :func:`enabled`."""
    if not jobs or not enabled():
        return CompileAhead(())
    return CompileAhead(jobs, processes=_cpus() - 1)


# ----------------------------------------------------------------------------------------------
# The jobs (run in the helper process)
# ----------------------------------------------------------------------------------------------


def _first_rung(params, state, obs, bitrates_bps, size_bits):  # type: ignore[no-untyped-def]
    """The trivial policy of :func:`engine_job`: always the lowest rung."""
    return 0, 0.0


def engine_job(name: str, params: dict[str, Any], ladder: Any, model: Any) -> None:
    """Compile the session step's rules as the loop of algorithm ``name`` calls them for ``ladder``
    and ``model``: that loop bound to a trivial policy (the algorithm's choose, reset and event
    left out), run over a short constant trace."""
    import dataclasses

    from abrsim._jit import kernel
    from abrsim.abr import KernelPolicy, make
    from abrsim.abr._kernels import no_event, no_reset

    policy = make(name, **params).resolved(model)
    spec = dataclasses.replace(policy.spec, name=f"{name}_rules", reset=no_reset, event=no_event,
                               choose=kernel(_first_rung), sources=(__file__,))
    _run_tiny(KernelPolicy(spec, **{key: policy.params[key] for key in policy.explicit}), ladder, model)


def metrics_job(ladder: Any) -> None:
    """Compile the QoE metrics kernel for results of ``ladder`` (two sessions of one download)."""
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


def loop_job(name: str, params: dict[str, Any], ladder: Any, model: Any) -> None:
    """Compile the fast engine's loop of algorithm ``name`` for ``ladder`` and ``model`` by running
    it over a short constant trace."""
    from abrsim.abr import make

    _run_tiny(make(name, **params), ladder, model)


def _run_tiny(policy: Any, ladder: Any, model: Any) -> None:
    """``policy``'s loop over a short constant trace, unless numba's cache has it already."""
    import numpy as np

    from abrsim._jit import is_cached
    from abrsim.engine.fast import compiled_loop, run_batch
    from abrsim.trace import Trace

    if not is_cached(compiled_loop(policy, ladder, model)):
        trace = Trace(np.array([0.0, 1.0]), np.array([5e6, 5e6]), 2.0, name="ahead")
        run_batch([trace], ladder, policy, model)


def _saves_whole() -> None:
    """Hold back SIGTERM while numba saves to its cache (an index entry, then its data file), so
    that :meth:`CompileAhead.close` never leaves an entry without its data."""
    import signal

    from numba.core import caching

    save = getattr(getattr(caching, "IndexDataCacheFile", None), "save", None)
    if save is None or not hasattr(signal, "pthread_sigmask"):
        return

    def whole_save(self: Any, key: Any, data: Any) -> Any:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            return save(self, key, data)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    caching.IndexDataCacheFile.save = whole_save  # type: ignore[method-assign]


def _main() -> None:
    _saves_whole()
    jobs: list[Job] = pickle.loads(sys.stdin.buffer.read())
    for key, function, args in jobs:
        sys.stdout.write(f"start {key}\n")
        sys.stdout.flush()
        with contextlib.suppress(Exception):  # the parent compiles it itself
            globals()[function](*args)
        sys.stdout.write(f"done {key}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        _main()
