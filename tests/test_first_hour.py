"""Issue 14, "a user's first hour": the compile notice, run's progress, sweep's default --jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def fresh_python(code: str, cache_dir: Path, cwd: Path | None = None) -> str:
    """Run ``code`` in a new interpreter whose numba cache is ``cache_dir``; return its stdout."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    env.pop("NUMBA_DISABLE_JIT", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_fresh_install_is_not_taken_for_cached(tmp_path):
    # Importing the engine flushes (and so writes an empty index for) the session kernels; that
    # must not count as cached.
    out = fresh_python("""
        from abrsim._jit import is_cached
        from abrsim.engine import _session
        print(is_cached(_session.advance), is_cached(_session.start_session))
    """, tmp_path / "numba", cwd=tmp_path)
    assert out == "False False"


def test_is_cached_sees_compiled_code(tmp_path):
    module = tmp_path / "tiny_kernel.py"
    module.write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def add_one(x):
            return x + 1
    """))
    check = """
        import tiny_kernel
        from abrsim._jit import flush_if_dependencies_changed, is_cached
        flush_if_dependencies_changed([tiny_kernel.add_one], [tiny_kernel])  # what an import does
        before = is_cached(tiny_kernel.add_one)
        tiny_kernel.add_one(1.0)
        print(before, is_cached(tiny_kernel.add_one))
    """
    cache = tmp_path / "numba"
    assert fresh_python(check, cache, cwd=tmp_path) == "False True"
    assert fresh_python(check, cache, cwd=tmp_path) == "True True"  # the next process loads it


def test_is_cached_cannot_tell_without_the_jit():
    from abrsim._jit import is_cached

    assert is_cached(lambda x: x) is True


def test_run_progress_counts_segments_through_the_oracle(tiny_trace):
    # One trace, bola and the oracle: a bar over algorithms showed 0 % for the whole oracle search.
    from abrsim.ladder import Ladder, Rung
    from abrsim.model import PlayerModel
    from abrsim.runner import run

    ladder = Ladder.cbr([Rung(b) for b in (400e3, 1.2e6, 3e6)], 4.0, 12, name="short")
    calls: list[tuple[int, int]] = []
    rows = run([tiny_trace], ladder, ["bola", "oracle"], model=PlayerModel(network="throughput"),
               progress=lambda done, total: calls.append((done, total)))
    assert [row["policy"] for row in rows] == ["bola", "oracle"]
    assert {total for _, total in calls} == {24}  # 12 segments x (bola + oracle)
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert done[0] == 0 and done[-1] == 24
    assert set(range(12, 25)) <= set(done)  # the oracle moves the bar segment by segment


def test_work_bar_draws_on_a_terminal_only(monkeypatch, capsys):
    from abrsim._cli_util import WorkBar

    with WorkBar("simulating", "segments") as bar:
        bar(5, 10)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with WorkBar("simulating", "segments") as bar:
        bar(5, 10)
        bar(10, 10)
    err = capsys.readouterr().err
    assert "50%" in err and "5/10 segments" in err and "100%" in err
    assert err.endswith("\n")


def test_a_cache_size_sweep_prints_one_line_per_size(tmp_path):
    from click.testing import CliRunner

    from abrsim.cli import cli

    scenario = tmp_path / "sizes.toml"
    scenario.write_text(textwrap.dedent("""\
        name = "sizes"
        seed = 5
        ladder = "hls"
        [traces.access]
        bandwidth_bps = 25e6
        [[players]]
        name = "bola"
        abr = "bola"
        count = 60
        access_trace = "access"
        arrivals = { process = "poisson", rate_per_s = 2.0 }
        watch_s = 20.0
        [cdn]
        titles = 5
        [[cdn.tiers]]
        name = "edge"
        capacity_bytes = 1e9
        [[cdn.tiers]]
        name = "origin"
        [cdn.sweep]
        tier = "edge"
        capacity_bytes = [0, 1e9]
    """))
    result = CliRunner().invoke(cli, ["simulate", str(scenario)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout  # title, header, rule, one line per size
    assert lines[1].split()[:4] == ["scenario", "seed", "edge_hit_ratio", "edge_byte_hit_ratio"]
    assert lines[3].startswith("sizes@edge=0 ") and lines[4].startswith("sizes@edge=1e+09 ")
    assert result.stderr.count("abrsim: ran sizes@edge=") == 2
    rows = CliRunner().invoke(cli, ["simulate", str(scenario), "--format", "csv"]).stdout.splitlines()
    assert len(rows) == 1 + 2 * 60  # every player of every size, in CSV
    single = tmp_path / "single.toml"
    single.write_text(scenario.read_text().partition("[cdn.sweep]")[0])
    result = CliRunner().invoke(cli, ["simulate", str(single)])
    assert result.exit_code == 0, result.output
    assert "(60 players: their rows are in --format csv or json" in result.stdout
    assert "per-algorithm summary" in result.stdout
    assert len(result.stdout.splitlines()) < 60


@pytest.mark.parametrize(("cpus", "jobs"), [(1, 1), (2, 2), (4, 4), (16, 16)])
def test_sweep_jobs_default_to_the_cpus(monkeypatch, cpus, jobs):
    """The workers do the sweep's work (the parent only hands out tasks while they run): one per CPU."""
    from abrsim import cli_sweep

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert cli_sweep._default_jobs() == jobs
