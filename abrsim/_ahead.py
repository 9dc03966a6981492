"""Compile ahead: on a cold numba cache, other processes compile what a run will need next.

A first run spends most of its time compiling, one function after another, on one core. While
this process compiles its first session loop, :class:`CompileAhead` has other processes compile
the QoE kernel and the other algorithms' loops into numba's disk cache; when this process gets
to them, it waits for the job if it is still running and loads the result instead of compiling
it again. The jobs run the real code on a tiny session (the same types, so the same compiled
code). Nothing depends on them: a job that fails or a process that dies only means this process
compiles that piece itself, as it would have anyway.

It is off with one CPU, with numba's JIT off, when everything is already cached, and when the
environment sets ``ABRSIM_COMPILE_AHEAD=0``.

The helper processes are this process's children in their own session (Ctrl-C does not reach
them); :meth:`CompileAhead.close` ends those still running.
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
        self._finished: set[str] = set()
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
        """Return once job ``key`` has ended (done or failed), its process has died, or after
        :data:`JOB_TIMEOUT_S`; at once for a key no helper has."""
        process = self._owner.get(key)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while process is not None and key not in self._finished:
            assert process.stdout is not None
            left_s = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, left_s))
            line = process.stdout.readline() if ready else b""
            if not line:  # the helper died, closed its output, or took too long
                self._stop(process)
                return
            self._finished.add(line.decode(errors="replace").split(" ", 1)[-1].strip())

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


def metrics_job(ladder: Any) -> None:
    """Compile the QoE metrics kernel for results of ``ladder`` (two sessions of one download)."""
    import numpy as np

    from abrsim.engine import _session as kernel
    from abrsim.engine.fast import BatchRun

    session = np.zeros((2, kernel.SESSION_COLUMNS))
    session[:, kernel.SES_FIRST_RECORD] = (0, 1)
    session[:, kernel.SES_RECORDS] = 1
    BatchRun(("a", "b"), ladder, None, None, 0, np.ones((2, kernel.LOG_COLUMNS)),  # type: ignore[arg-type]
             np.zeros(2, dtype=np.int64), session).metrics()


def loop_job(name: str, params: dict[str, Any], ladder: Any, model: Any) -> None:
    """Compile the fast engine's loop of algorithm ``name`` for ``ladder`` and ``model`` by running
    it over a short constant trace."""
    import numpy as np

    from abrsim.abr import make
    from abrsim.engine.fast import run_batch
    from abrsim.trace import Trace

    trace = Trace(np.array([0.0, 1.0]), np.array([5e6, 5e6]), 2.0, name="ahead")
    run_batch([trace], ladder, make(name, **params), model)


def _main() -> None:
    jobs: list[Job] = pickle.loads(sys.stdin.buffer.read())
    for key, function, args in jobs:
        with contextlib.suppress(Exception):  # the parent compiles it itself
            globals()[function](*args)
        sys.stdout.write(f"done {key}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        _main()
