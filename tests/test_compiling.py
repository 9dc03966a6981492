"""Issue 13's cold start: kernels without entry points for compiled callers, and compiling ahead.

- :class:`abrsim._jit.Kernel`: Python calls and compiled calls reach the same function; compiled
  callers get the copy without entry points; the copy's disk cache is flushed with the kernel's.
- :mod:`abrsim._ahead`: the jobs compile exactly what the run then needs (same types, so nothing
  is compiled twice), a run gives the same rows with or without it, and the helper ends whatever
  happens to it, never in the middle of a save to the cache; the same for ``abrsim simulate``'s
  jobs, taken from both ends.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numba import config, njit

from abrsim import _ahead
from abrsim._jit import Kernel, kernel

needs_jit = pytest.mark.skipif(config.DISABLE_JIT, reason="numba's JIT is off")


@pytest.fixture
def hls_ladder():
    from abrsim.ladder import load_ladder

    return load_ladder("hls")


def _add(x, y):
    return x + y


@needs_jit
def test_python_and_compiled_callers_reach_the_same_kernel_compiled_twice_differently():
    add = kernel(_add)
    assert isinstance(add, Kernel)

    @njit
    def caller(x):
        return add(x, 2.0)

    assert add(1.0, 2.0) == caller(1.0) == 3.0
    assert add.signatures and add.compiled.signatures  # one overload each: Python's and the callers'
    assert add.compiled.targetoptions["no_cpython_wrapper"] is True
    assert "no_cpython_wrapper" not in add.targetoptions
    assert add.compiled.py_func.__qualname__.endswith("__compiled")  # another name: another cache entry


@needs_jit
def test_the_copy_is_flushed_with_the_kernel_when_a_dependency_changes(tmp_path):
    module = tmp_path / "dep_module.py"
    module.write_text("VALUE = 1\n")
    script = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, sys.argv[1])
        import dep_module
        from numba import njit
        from abrsim._jit import flush_if_dependencies_changed, kernel
        import kernel_module
        flush_if_dependencies_changed([kernel_module.value], [dep_module])
        @njit
        def caller():
            return kernel_module.value()
        print(json.dumps([caller(), kernel_module.value.compiled.stats.cache_hits.total()]))
    """)
    (tmp_path / "kernel_module.py").write_text(textwrap.dedent("""
        from abrsim._jit import kernel
        import dep_module

        @kernel
        def value():
            return dep_module.VALUE
    """))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run() -> list[int]:
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True,
                              text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run() == [1, 0]
    assert run() == [1, 1]  # the next process loads the copy
    module.write_text("VALUE = 2\n")  # the kernel's source is unchanged; its dependency changed
    assert run() == [2, 0]


def test_ladders_and_traces_pickle_through_their_constructors(hls_ladder, tiny_trace):
    # (As Dask and the sweep's workers receive them.)
    ladder = pickle.loads(pickle.dumps(hls_ladder))
    trace = pickle.loads(pickle.dumps(tiny_trace))
    # Read-only like the originals: numba types a read-only array apart from a writable one.
    assert not ladder.size_bits.flags.writeable and not ladder.bitrates_bps.flags.writeable
    assert not trace.start_s.flags.writeable and not trace.bandwidth_bps.flags.writeable
    assert np.array_equal(ladder.size_bits, hls_ladder.size_bits) and ladder.name == hls_ladder.name
    assert np.array_equal(trace.bandwidth_bps, tiny_trace.bandwidth_bps) and trace.name == tiny_trace.name


@needs_jit
def test_the_jobs_compile_the_types_the_run_uses(tmp_path):
    # A job that compiled other types would leave the run compiling its own: in a fresh process,
    # after the jobs, the run compiles no further overload of what they compiled.
    script = textwrap.dedent("""
        import json
        from abrsim import _ahead
        from abrsim._data import data_dir
        from abrsim._jit import Kernel
        from abrsim.abr import make
        from abrsim.abr import _kernels
        from abrsim.engine import step
        from abrsim.engine.fast import compiled_loop
        from abrsim.ladder import load_ladder
        from abrsim.model import SABRE, PlayerModel
        from abrsim.qoe import _metrics_batch
        from abrsim.runner import run
        from abrsim.trace import load_traces

        def copies():
            return {f"{module.__name__}.{name}": len(value._compiled.signatures)
                    for module in (step, _kernels) for name, value in vars(module).items()
                    if isinstance(value, Kernel) and value._compiled is not None}

        ladder = load_ladder("hls")
        counts = []
        cases = ((PlayerModel(), ("bola", "throughput")), (SABRE, ("bola", "dynamic")),
                 (PlayerModel(), ("robustmpc", "bb")))  # (MPC: plain numba functions calling kernels)
        for model, names in cases:
            _ahead.engine_job(make(names[0]), ladder, model)
            _ahead.metrics_job(ladder)
            _ahead.loop_job(make(names[1]), ladder, model)
            loop = compiled_loop(make(names[1]), ladder, model)
            compiled = copies()
            run(load_traces([data_dir("traces")])[:2], ladder, names, model=model)
            again = {name: count for name, count in copies().items() if count != compiled.get(name)}
            counts.append([len(_metrics_batch.signatures), len(loop.signatures), again])
        print(json.dumps(counts))
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "ABRSIM_COMPILE_AHEAD": "0"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=600, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[1, 1, {}]] * 3


def _fail() -> None:
    raise RuntimeError("a job that fails")


def _sleep() -> None:
    time.sleep(60)


def _deaf() -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)


forking = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="compiling ahead forks (Linux)")


def single_threaded() -> None:
    if threading.active_count() > 1:
        pytest.skip("another test left threads running: forking now would be unsafe")


@forking
def test_a_helper_reports_every_job_even_one_that_fails():
    single_threaded()
    with _ahead.CompileAhead([("one", _fail), ("two", _fail)]) as ahead:
        deadline = time.monotonic() + 60
        while ahead._finished != {"one", "two"} and time.monotonic() < deadline:
            ahead._read(block=True, timeout_s=1.0)
        assert ahead._started == ahead._finished == {"one", "two"}
        ahead.wait("two")  # done: at once
        ahead.wait("not a job")
        pid = ahead._pid
    with pytest.raises(ChildProcessError):  # ended and reaped
        os.waitpid(pid, os.WNOHANG)


@forking
def test_a_job_not_started_is_not_waited_for_and_a_hung_one_is_given_up(monkeypatch):
    single_threaded()
    monkeypatch.setattr(_ahead, "JOB_TIMEOUT_S", 0.5)
    ahead = _ahead.CompileAhead([("slow", _sleep), ("later", _sleep)])
    started = time.monotonic()
    while "slow" not in ahead._started and time.monotonic() - started < 30:
        ahead._read(block=True, timeout_s=1.0)
    ahead.wait("later")  # not started: the caller does the work itself
    assert time.monotonic() - started < 30
    waited = time.monotonic()
    ahead.wait("slow")  # started and hung: given up after the timeout, and the helper ended
    assert time.monotonic() - waited < 10
    assert ahead._pid == 0
    ahead.close()


def test_compiling_ahead_is_off_when_asked(monkeypatch):
    monkeypatch.setenv("ABRSIM_COMPILE_AHEAD", "0")
    assert not _ahead.enabled()
    assert _ahead.compile_ahead([("one", _fail)])._pid == 0


@needs_jit
def test_a_cold_run_gives_the_same_rows_with_or_without_compiling_ahead(tmp_path):
    # Two fresh numba caches: a default `abrsim run` (bola and throughput) with helpers and without.
    outputs = []
    for ahead in ("1", "0"):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / f"cache{ahead}"),
               "ABRSIM_COMPILE_AHEAD": ahead}
        done = subprocess.run([sys.executable, "-m", "abrsim", "run", "--format", "csv"], env=env,
                              capture_output=True, text=True, timeout=600, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) > 2


def _note(path, key, parent, sleep_s=0.0, until=""):
    def job() -> None:
        with open(path, "a") as notes:
            notes.write(f"{'here' if os.getpid() == parent else 'helper'} {key}\n")
        time.sleep(sleep_s)
        deadline = time.monotonic() + 60
        while until and until not in path.read_text().splitlines() and time.monotonic() < deadline:
            time.sleep(0.01)
    return job


@forking
def test_jobs_from_both_ends_run_here_in_order_while_the_helper_starts_from_the_last(monkeypatch, tmp_path):
    single_threaded()
    monkeypatch.setattr(_ahead, "enabled", lambda: True)
    notes = tmp_path / "notes"
    parent = os.getpid()
    jobs = [("a", _note(notes, "a", parent, until="helper d")),  # (here, until the helper has begun)
            ("b", _ahead.quietly(_fail)), ("c", _note(notes, "c", parent)),
            ("d", _note(notes, "d", parent, sleep_s=0.3))]
    _ahead.from_both_ends(jobs)  # ("b" fails quietly: the next still runs)
    with pytest.raises(RuntimeError, match="a job that fails"):  # (not quietly: the caller sees it)
        _ahead.from_both_ends([("one", _fail)])
    lines = notes.read_text().splitlines()
    assert [line for line in lines if line.startswith("here")] == ["here a", "here c", "here d"]
    helper = [line for line in lines if line.startswith("helper")]
    assert helper[:1] == ["helper d"] and "helper a" not in helper  # the first is this process's alone
    # "d" was waited for (the helper had started it), then run here too (a load from the cache).
    assert lines.index("helper d") < lines.index("here d")


DES_SCENARIO = Path(__file__).resolve().parents[1] / "experiments" / "des_shared_bottleneck.toml"


@needs_jit
def test_the_simulation_jobs_compile_what_the_simulation_calls(tmp_path):
    # In a fresh process and cache, after the jobs of `abrsim simulate`'s example scenario (five
    # algorithms, a shared bottleneck, two kinds of access link), its run compiles nothing more.
    script = textwrap.dedent(f"""
        import json
        from numba.core.registry import CPUDispatcher
        from abrsim import _ahead, cdn, qoe
        from abrsim.abr import _kernels
        from abrsim.engine import des, link, step
        from abrsim.scenario import load_scenario

        _ahead.enabled = lambda: True  # the jobs, here, one after the other

        def counts():
            return {{f"{{module.__name__}}.{{name}}": len(value.signatures)
                     for module in (step, _kernels, qoe, cdn, link) for name, value in vars(module).items()
                     if isinstance(value, CPUDispatcher)}}

        scenario = load_scenario({str(DES_SCENARIO)!r})
        jobs = des._compile_jobs(scenario)
        for key, job in jobs:
            job()
        before = counts()
        des._simulate(scenario).rows()
        again = {{name: count for name, count in counts().items() if count != before.get(name)}}
        print(json.dumps([[key for key, _ in jobs], again, des._compile_jobs(scenario)]))
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "ABRSIM_COMPILE_AHEAD": "0"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=600, check=True)
    keys, again, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert keys == ["first viewer", "policy throughput", "policy dynamic", "policy robustmpc", "policy bba0",
                    "metrics"]
    assert again == {}
    assert after == []  # all cached now: no jobs (a warm run does not compile ahead)


@needs_jit
def test_a_cold_simulation_gives_the_same_rows_with_or_without_compiling_ahead(tmp_path):
    text = DES_SCENARIO.read_text()
    groups = text.split("[[players]]")
    scenario = tmp_path / "two.toml"  # the example's first and third groups: bola and throughput
    scenario.write_text(groups[0] + "[[players]]" + groups[1] + "[[players]]" + groups[3])
    outputs = []
    for ahead in ("1", "0"):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / f"cache{ahead}"),
               "ABRSIM_COMPILE_AHEAD": ahead}
        done = subprocess.run([sys.executable, "-m", "abrsim", "simulate", str(scenario), "--format", "csv"],
                              env=env, capture_output=True, text=True, timeout=600, check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 1 + 3 + 3  # the header and six viewers


@needs_jit
def test_the_sweep_jobs_compile_every_loop_its_workers_run(tmp_path):
    # In a fresh process and cache, after the jobs of experiments/smoke.toml (two algorithms, two
    # ladders, two models), running every task compiles no further loop or QoE overload.
    spec = Path(__file__).resolve().parents[1] / "experiments" / "smoke.toml"
    script = textwrap.dedent(f"""
        import json
        from abrsim import _ahead, sweep
        from abrsim.engine import _session
        from abrsim.qoe import _metrics_batch

        _ahead.enabled = lambda: True  # the jobs, here, one after the other
        plan = sweep.plan_sweep(sweep.load_spec({str(spec)!r}))
        tasks = sweep._tasks(plan, plan.chunks)
        jobs = sweep._compile_jobs(plan, tasks)
        for key, job in jobs:
            job()

        def counts():
            loops = {{tag: len(loop["run_batch"].signatures) for tag, loop in _session._LOOPS.items()}}
            return {{**loops, "metrics": len(_metrics_batch.signatures)}}

        before = counts()
        for task in tasks:
            sweep.run_task(task, plan.groups[task.group], None, plan.sha256)
        print(json.dumps([[key for key, _ in jobs], before, counts()]))
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "ABRSIM_COMPILE_AHEAD": "0"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=600, check=True)
    keys, before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert keys == ["first session", "loop 1"]  # throughput first; then BOLA's loop (one for its grid)
    assert before == after and set(before.values()) == {1}


@forking
def test_a_helper_cannot_be_ended_in_the_middle_of_a_save_to_the_cache(monkeypatch, tmp_path):
    import signal

    from numba.core import caching

    masks = []

    def save(self, key, data):  # numba's own, as the lock wraps it
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, set()))

    monkeypatch.setattr(caching.IndexDataCacheFile, "save", save)
    undo = _ahead._lock_the_cache()
    cache_file = caching.IndexDataCacheFile(str(tmp_path), "f-1.py311", ("stamp", 1))
    cache_file.save("key", b"data")
    undo()
    assert signal.SIGTERM in masks[0]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # held only meanwhile


@forking
def test_saves_and_loads_lock_the_index_while_a_helper_lives(monkeypatch, tmp_path):
    import fcntl

    from numba.core import caching

    held = []

    def save(self, key, data):  # numba's own, as the lock wraps it
        probe = os.open(f"{self._index_path}.lock", os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(probe)

    monkeypatch.setattr(caching.IndexDataCacheFile, "save", save)
    undo = _ahead._lock_the_cache()
    cache_file = caching.IndexDataCacheFile(str(tmp_path), "f-1.py311", ("stamp", 1))
    cache_file.save("key", b"data")
    undo()
    cache_file.save("key", b"data")  # the lock undone
    assert held == [True, False]
    assert caching.IndexDataCacheFile.save is save


@forking
def test_a_helper_that_ignores_sigterm_is_killed(monkeypatch):
    single_threaded()
    monkeypatch.setattr(_ahead, "GRACE_S", 0.5)
    ahead = _ahead.CompileAhead([("deaf", _deaf)])
    started = time.monotonic()
    while "deaf" not in ahead._started and time.monotonic() - started < 30:
        ahead._read(block=True, timeout_s=1.0)
    time.sleep(0.2)  # (the job has set SIGTERM aside)
    pid = ahead._pid
    ahead.close()
    assert time.monotonic() - started < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
