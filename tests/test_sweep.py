from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import shared_path

from abrsim import __version__
from abrsim.abr import available
from abrsim.cli import cli
from abrsim.compare import load_results
from abrsim.engine.fast import run_batch
from abrsim.errors import AbrsimError, InputError
from abrsim.ladder import load_ladder
from abrsim.results import RESULT_FIELDS, rows_from_batch
from abrsim.sweep import load_spec, parse_spec, plan_sweep, run_sweep
from abrsim.trace import load_traces

REPO = Path(__file__).resolve().parents[1]
MARKOV = ("params = { state_bandwidths_bps = [0.4e6, 1.5e6, 4e6], mean_dwell_s = 8.0, duration_s = 90.0, "
          "noise_cv = 0.2 }")


@pytest.fixture
def data(tmp_path) -> Path:
    """A folder with a tiny ladder (3 rungs, 15 segments) and three short traces."""
    folder = tmp_path / "data"
    (folder / "links").mkdir(parents=True)
    (folder / "tiny.toml").write_text(textwrap.dedent("""\
        name = "tiny"
        segment_duration_s = 4.0
        segment_count = 15
        [[rungs]]
        bitrate_bps = 300_000
        [[rungs]]
        bitrate_bps = 1_000_000
        [[rungs]]
        bitrate_bps = 3_000_000
        """))
    for name, rows in {"slow": "0,0.5\n30,1.2\n", "fast": "0,5\n20,0.8\n40,6\n", "flat": "0,2\n"}.items():
        (folder / "links" / f"{name}.csv").write_text(f"# duration_s=60\ntime_s,bandwidth_mbps\n{rows}")
    (folder / "links" / "README.md").write_text("not a trace\n")
    return folder


def write_spec(folder: Path, body: str, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def spec_path(data) -> Path:
    """A small grid: 2 seeds x 1 ladder x 2 models x 3 algorithm configurations x (3 + 4) traces."""
    return write_spec(data, f"""\
        name = "unit"
        seed = 7
        replications = 2
        chunk_sessions = 2
        ladders = ["tiny.toml"]
        models = ["abrsim", {{ name = "small_buffer", fields = {{ max_buffer_s = 12.0 }} }}]
        algorithms = ["throughput", {{ name = "bola", grid = {{ gamma_p = [3.0, 6.0] }} }}]

        [[traces]]
        path = "links"

        [[traces]]
        name = "gen"
        profile = "markov"
        count = 4
        {MARKOV}
        """)


def rows_of(out: Path) -> list[dict]:
    return load_results(out / "results.csv")


# ---------------------------------------------------------------- the spec


def test_spec_grid_and_plan(spec_path):
    spec = load_spec(spec_path)
    assert spec.name == "unit"
    assert len(spec.seeds) == 2 and spec.seeds == tuple(
        int(c.generate_state(1, np.uint32)[0]) for c in np.random.SeedSequence(7).spawn(2))
    assert [m.name for m in spec.models] == ["abrsim", "small_buffer"]
    assert spec.models[1].max_buffer_s == 12.0
    assert [(a.name, dict(a.params)) for a in spec.algorithms] == [
        ("throughput", {}), ("bola", {"gamma_p": 3.0}), ("bola", {"gamma_p": 6.0})]
    assert [a.label for a in spec.algorithms] == ["throughput", "bola(gamma_p=3)", "bola(gamma_p=6)"]
    plan = plan_sweep(spec)
    assert plan.sessions == 2 * 1 * 2 * 3 * (3 + 4)
    assert all(chunk.sessions <= 2 for chunk in plan.chunks)
    assert [c.index for c in plan.chunks] == list(range(len(plan.chunks)))
    # file traces are packed once for both seeds; generated ones per seed
    names = {name for group in plan.groups for name in group.names}
    assert {"links/fast", "links/flat", "links/slow", "gen/0", "gen/3"} <= names
    assert len(plan.groups) == 2 + 2 * 2
    assert plan_sweep(load_spec(spec_path)).sha256 == plan.sha256


def test_generated_traces_depend_on_the_seed_only(data):
    def bandwidths(seeds: str, count: int) -> list[list[np.ndarray]]:
        spec = parse_spec(f'name = "g"\n{seeds}\n[[traces]]\nprofile = "markov"\ncount = {count}\n{MARKOV}\n',
                          source=data / "x.toml")
        plan = plan_sweep(spec)
        return [group.pack().bandwidth_bps for group in plan.groups]  # drawn where used

    one, again = bandwidths("seeds = [1, 2]", 3), bandwidths("seeds = [1, 2]", 3)
    assert all(np.array_equal(a, b) for a, b in zip(one, again))
    assert not np.array_equal(one[0], one[1])  # another seed, other traces
    more = bandwidths("seeds = [1]", 5)[0]
    assert np.array_equal(more[: one[0].size], one[0])  # draws do not depend on the count


@pytest.mark.parametrize("profile", ["constant", "step", "default_corpus", "3g"])
def test_generators(data, profile):
    params = {
        "constant": "params = { bandwidth_bps = 2e6, duration_s = 60.0 }",
        "step": "params = { levels_bps = [3e6, 0.5e6], step_duration_s = 30.0 }",
        "default_corpus": "",
        "3g": "params = { duration_s = 120.0 }",
    }[profile]
    text = f'name = "g"\nalgorithms = ["throughput"]\n[[traces]]\nprofile = "{profile}"\n{params}\n'
    spec = parse_spec(text, source=data / "x.toml")
    plan = plan_sweep(spec)
    assert plan.sessions == (6 if profile == "default_corpus" else 1)
    assert plan.groups[0].names[0].startswith(f"{profile}/")


def test_glob_sets_and_limits(data):
    spec = parse_spec('name = "g"\n[[traces]]\nglob = "links/*.csv"\nlimit = 2\n', source=data / "x.toml")
    assert spec.traces[0].name == "links"
    assert plan_sweep(spec).groups[0].names == ("links/fast", "links/flat")


def test_traces_root_overrides(data, tmp_path):
    spec_file = write_spec(tmp_path, 'name = "r"\ntraces_root = "data"\n[[traces]]\npath = "links"\n')
    assert load_spec(spec_file).traces[0].path == tmp_path / "data" / "links"
    assert load_spec(spec_file, traces_root=data).traces[0].path == data / "links"
    with pytest.raises(InputError, match=r"traces\[0\].path"):
        load_spec(spec_file, traces_root=tmp_path / "elsewhere")


def test_the_project_experiments_parse():
    spec = load_spec(REPO / "experiments" / "smoke.toml")
    assert spec.name == "smoke"
    assert plan_sweep(spec).sessions > 0
    shared_path("traces")
    spec = load_spec(REPO / "experiments" / "all_algorithms_shared_traces.toml")
    assert {a.name for a in spec.algorithms} == set(available())
    assert [s.name for s in spec.traces] == ["fcc_broadband", "hsdpa_norway_3g", "lte_belgium_4g",
                                             "lumos5g_mmwave_5g"]


TRACES = '[[traces]]\npath = "links"\n'


@pytest.mark.parametrize(("body", "field", "message"), [
    ('name = "x"\nalgoritms = "all"\n' + TRACES, "algoritms", "unknown key"),
    (TRACES, "name", "missing key"),
    ('name = "a b"\n' + TRACES, "name", "expected letters, digits"),
    ('name = "x"\n', "traces", "missing key"),
    ('name = "x"\n[[traces]]\npath = "links"\nglob = "*.csv"\n', "traces[0]", "exactly one of"),
    ('name = "x"\n[[traces]]\npath = "nowhere"\n', "traces[0].path", "does not exist"),
    ('name = "x"\n[[traces]]\nprofile = "lte"\n', "traces[0].profile", "unknown trace profile 'lte'"),
    ('name = "x"\n[[traces]]\nprofile = "markov"\ncount = 0\n', "traces[0].count",
     "expected an integer >= 1"),
    ('name = "x"\n[[traces]]\npath = "links"\ncount = 2\n', "traces[0].count", "applies to profile sets"),
    ('name = "x"\n[[traces]]\npath = "links"\nformat = "csv"\n', "traces[0].format", "expected one of"),
    ('name = "x"\n[[traces]]\npath = "links"\n[[traces]]\npath = "links"\n', "traces[1].name", "duplicate"),
    ('name = "x"\n[[traces]]\npath = "links"\nladders = ["hls"]\n', "traces[0].ladders",
     "top-level keys must come before"),
    ('name = "x"\nalgorithms = ["bolla"]\n' + TRACES, "algorithms[0].name", "unknown algorithm 'bolla'"),
    ('name = "x"\nalgorithms = [{ name = "bola", grid = { gama_p = [1.0] } }]\n' + TRACES,
     "algorithms[0].grid.gama_p", "gamma_p"),
    ('name = "x"\nalgorithms = [{ name = "bola", params = { gamma_p = "big" } }]\n' + TRACES,
     "algorithms[0].params.gamma_p", "expected a float"),
    ('name = "x"\nalgorithms = [{ name = "bola", grid = { gamma_p = [] } }]\n' + TRACES,
     "algorithms[0].grid.gamma_p", "non-empty array"),
    ('name = "x"\nalgorithms = ["bola", { name = "bola", params = { gamma_p = 5.0 } }]\n' + TRACES,
     "algorithms[1]", "repeats the configuration of algorithms[0]"),
    ('name = "x"\nalgorithms = "some"\n' + TRACES, "algorithms", 'expected "all"'),
    ('name = "x"\nalgorithms = [{ name = "bola", params = { buffer_target_s = 2.0 } }]\n' + TRACES,
     "algorithms[0]", "ladder 'hls'"),
    ('name = "x"\nmodels = ["nosuchplayer"]\n' + TRACES, "models[0].preset",
     "unknown player model 'nosuchplayer'"),
    ('name = "x"\nmodels = [{ fields = { max_bufer_s = 9.0 } }]\n' + TRACES,
     "models[0].fields.max_bufer_s", "unknown player model field"),
    ('name = "x"\nmodels = [{ grid = { max_buffer_s = [-1.0] } }]\n' + TRACES,
     "models[0].grid.max_buffer_s", "max_buffer_s"),
    ('name = "x"\nmodels = ["abrsim", { preset = "abrsim" }]\n' + TRACES, "models[1]",
     "duplicate model name"),
    ('name = "x"\nmodels = [{ fields = { max_buffer_s = 2.0 } }]\n' + TRACES, "models[0]",
     "model 'abrsim(max_buffer_s=2)': max_buffer_s got 2, expected at least one segment"),
    ('name = "x"\nladders = ["hsl"]\n' + TRACES, "ladders[0]", "unknown ladder 'hsl'"),
    ('name = "x"\nladders = [{ segment_duration_s = 4 }]\n' + TRACES, "ladders[0].path", "missing key"),
    ('name = "x"\nseeds = [1, 1]\n' + TRACES, "seeds", "distinct"),
    ('name = "x"\nseeds = [1]\nseed = 3\n' + TRACES, "seed", "either seeds"),
    ('name = "x"\nreplications = 0\n' + TRACES, "replications", "expected an integer >= 1"),
    ('name = "x"\nseed = "one"\n' + TRACES, "seed", "expected an integer"),
    ('name = "x"\nchunk_sessions = 0\n' + TRACES, "chunk_sessions", "expected an integer >= 1"),
    ('name = "x"\n[failures]\nslow_start = "yes"\n' + TRACES, "failures.slow_start", "expected false"),
    ('name = "x"\n[[traces]]\nprofile = "constant"\n'
     'params = { bandwidth_bps = 1e6, duration_s = 9, zzz = 1 }\n',
     "traces[0].params", "unknown parameter 'zzz' of constant; expected one of: bandwidth_bps, duration_s"),
    ('name = "x"\n[[traces]]\nprofile = "4g"\nparams = { duration = 60 }\n', "traces[0].params",
     "unknown parameter 'duration' of 4g; expected one of: duration_s, regime"),
    ('name = "x"\n[[traces]]\nprofile = "markov"\nparams = { duration_s = 60 }\n', "traces[0].params",
     "markov needs state_bandwidths_bps, mean_dwell_s; expected them in params"),
])
def test_spec_errors_name_file_and_key(data, body, field, message):
    path = write_spec(data, body, "bad.toml")
    with pytest.raises(InputError) as info:
        load_spec(path)
    text = str(info.value)
    assert text.startswith(f"{path}, field '{field}'"), text
    assert message in text, text
    assert "\n" not in text


def test_spec_syntax_error_names_the_line(data):
    path = write_spec(data, 'name = "x"\n\nseed = = 3\n', "bad.toml")
    with pytest.raises(InputError, match=r"bad\.toml:3: invalid TOML"):
        load_spec(path)
    with pytest.raises(InputError, match="file not found"):
        load_spec(data / "missing.toml")


def test_cli_spec_error_is_one_line_exit_2(data):
    path = write_spec(data, 'name = "x"\nalgorithms = ["bolla"]\n' + TRACES, "bad.toml")
    result = CliRunner().invoke(cli, ["sweep", str(path), "--out", str(data / "out")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"abrsim: error: {path}, field 'algorithms[0].name': unknown algorithm")


# ---------------------------------------------------------------- running and the output folder


def test_results_are_the_engine_rows_in_session_order(spec_path, tmp_path):
    out = tmp_path / "out"
    calls = []
    report = run_sweep(spec_path, out, progress=lambda done, total: calls.append((done, total)))
    spec = load_spec(spec_path)
    assert report.sessions == report.sessions_run == 84
    assert calls[0] == (0, 84) and calls[-1] == (84, 84)
    # the chunk files are gone once their rows are in the results files
    assert sorted(p.name for p in out.iterdir()) == [".lock", "meta.json", "results.csv", "results.parquet",
                                                     "spec.toml"]
    assert (out / "spec.toml").read_text() == spec_path.read_text()
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header == ",".join(RESULT_FIELDS)

    rows = rows_of(out)
    assert len(rows) == 84
    keys = [(r["trace"], r["ladder"], r["model"], r["policy"], r["params"], r["seed"]) for r in rows]
    assert len(set(keys)) == 84
    assert {r["scenario"] for r in rows} == {"unit"}
    # session order: seed, ladder, model, algorithm configuration, trace set, trace
    assert [r["seed"] for r in rows] == [s for s in spec.seeds for _ in range(42)]
    assert [r["model"] for r in rows[:42]] == ["abrsim"] * 21 + ["small_buffer"] * 21
    assert [r["trace"] for r in rows[:7]] == ["links/fast", "links/flat", "links/slow", "gen/0", "gen/1",
                                              "gen/2", "gen/3"]
    # the same numbers as the engine gives directly, to the last bit
    traces = load_traces(spec_path.parent / "links")
    direct = rows_from_batch(run_batch(traces, load_ladder(spec_path.parent / "tiny.toml"), "throughput",
                                       spec.models[0], spec.seeds[0]), "unit")
    for got, want in zip(rows[:3], direct):
        assert got["trace"] == "links/" + want["trace"]
        for name in (f for f in RESULT_FIELDS if f != "trace"):
            assert got[name] == want[name] or (got[name] != got[name] and want[name] != want[name]), name

    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "complete"
    assert meta["sessions"] == 84 and meta["chunks"] == report.chunks
    assert meta["spec_sha256"] == spec.sha256
    assert meta["abrsim_version"] == __version__
    assert meta["started"] <= meta["finished"]
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "results.parquet")
    assert table.column_names == list(RESULT_FIELDS)
    from_parquet = load_results(out / "results.parquet")
    assert len(from_parquet) == len(rows)
    for a, b in zip(from_parquet, rows):
        assert [str(a[k]) for k in RESULT_FIELDS] == [str(b[k]) for k in RESULT_FIELDS]


def test_identical_results_whatever_the_executor_or_jobs(spec_path, tmp_path):
    distributed = pytest.importorskip("distributed")
    outs = {}
    outs["local1"] = run_sweep(spec_path, tmp_path / "local1", jobs=1).out_dir
    outs["local2"] = run_sweep(spec_path, tmp_path / "local2", jobs=2).out_dir
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        outs["dask_threads"] = run_sweep(spec_path, tmp_path / "dask_threads", executor="dask",
                                         scheduler=cluster.scheduler_address).out_dir
    outs["dask_local"] = run_sweep(spec_path, tmp_path / "dask_local", executor="dask", jobs=1).out_dir
    reference = (outs["local1"] / "results.csv").read_bytes()
    parquet = (outs["local1"] / "results.parquet").read_bytes()
    for name, out in outs.items():
        assert (out / "results.csv").read_bytes() == reference, name
        assert (out / "results.parquet").read_bytes() == parquet, name
    assert json.loads((outs["dask_local"] / "meta.json").read_text())["executor"] == "dask"


def _engine_rows(spec) -> list[dict]:
    """Every session of ``spec`` run straight through the engine, in the documented session order:
    the reference a sweep must reproduce whatever runs it."""
    import dataclasses
    import hashlib

    from abrsim import tracegen

    def drawn(trace_set, seed):
        key = int.from_bytes(hashlib.sha256(trace_set.name.encode()).digest()[:4], "big")
        width = len(str(trace_set.count - 1))
        traces = []
        for draw in range(trace_set.count):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key, draw)))
            if trace_set.profile == "markov":
                traces.append(tracegen.markov(rng, **trace_set.params, name=f"{draw:0{width}d}"))
            else:  # default_corpus: six traces a draw
                traces += [dataclasses.replace(t, name=f"{draw:0{width}d}_{t.name}")
                           for t in tracegen.default_corpus(int(rng.integers(2**31)))]
        return traces

    rows = []
    for seed in spec.seeds:
        for ladder in spec.ladders:
            for model in spec.models:
                for config in spec.algorithms:
                    for trace_set in spec.traces:
                        traces = (drawn(trace_set, seed) if trace_set.generated
                                  else load_traces(trace_set.path))
                        batch = run_batch(traces, ladder, config.make(), model, seed)
                        for row in rows_from_batch(batch, spec.name):
                            rows.append({**row, "trace": f"{trace_set.name}/{row['trace']}"})
    return rows


def test_identical_rows_whatever_the_jobs_executor_or_resume(data, tmp_path):
    """The rows of a sweep are the engine's own rows, in session order, to the last bit: run in one
    process, by two pool workers, on a Dask LocalCluster, or interrupted and resumed."""
    distributed = pytest.importorskip("distributed")
    del distributed
    spec_path = write_spec(data, f"""\
        name = "same"
        seed = 3
        replications = 2
        chunk_sessions = 4
        ladders = ["tiny.toml", "hls"]
        models = ["abrsim", {{ name = "small_buffer", fields = {{ max_buffer_s = 12.0 }} }}]
        algorithms = ["throughput", {{ name = "bola", grid = {{ gamma_p = [3.0, 6.0] }} }}]

        [[traces]]
        path = "links"

        [[traces]]
        name = "gen"
        profile = "markov"
        count = 5
        {MARKOV}

        [[traces]]
        name = "corpus"
        profile = "default_corpus"
        count = 2
        """)
    spec = load_spec(spec_path)
    want = _engine_rows(spec)
    assert len(want) == 2 * 2 * 2 * 3 * (3 + 5 + 12)
    outs = {
        "local1": run_sweep(spec_path, tmp_path / "local1", jobs=1).out_dir,
        "local2": run_sweep(spec_path, tmp_path / "local2", jobs=2).out_dir,
        "dask": run_sweep(spec_path, tmp_path / "dask", executor="dask", jobs=2).out_dir,
    }
    _interrupted(spec_path, tmp_path / "resumed", 100, jobs=2)
    outs["resumed"] = run_sweep(spec_path, tmp_path / "resumed", resume=True, jobs=2).out_dir
    _interrupted(spec_path, tmp_path / "resumed_dask", 200, jobs=1)
    outs["resumed_dask"] = run_sweep(spec_path, tmp_path / "resumed_dask", resume=True, executor="dask",
                                     jobs=1).out_dir
    for name, out in outs.items():
        for result in ("results.csv", "results.parquet"):
            assert (out / result).read_bytes() == (outs["local1"] / result).read_bytes(), (name, result)
    for source in ("results.csv", "results.parquet"):
        got = load_results(outs["local1"] / source)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert [a[k] for k in RESULT_FIELDS[:7]] == [b[k] for k in RESULT_FIELDS[:7]], source
            assert np.array_equal(np.array([a[k] for k in RESULT_FIELDS[8:]], dtype=float),
                                  np.array([b[k] for k in RESULT_FIELDS[8:]], dtype=float),
                                  equal_nan=True), (source, a["trace"])


def test_the_ten_million_session_recipe(tmp_path):
    """experiments/ten_million.toml plans its 10,000,000 sessions cheaply (no trace drawn but one),
    and the documented Dask command runs it, scaled down, on a cluster it is pointed at."""
    distributed = pytest.importorskip("distributed")
    spec = load_spec(REPO / "experiments" / "ten_million.toml")
    plan = plan_sweep(spec)
    assert plan.sessions == 10_000_000
    assert len(plan.chunks) == 10_000 and len(plan.groups) == 1_000
    assert all(group.packed is None for group in plan.groups)  # drawn by the workers
    documented = _documented_commands((REPO / "docs" / "sweeps.md").read_text(),
                                      "abrsim sweep experiments/ten_million.toml")
    assert documented and "--executor" in documented[0] and "--scheduler" in documented[0]
    small = tmp_path / "ten_thousandth.toml"
    small.write_text(spec.text.replace("count = 1_000_000", "count = 30").replace(
        "chunk_sessions = 1000", "chunk_sessions = 8"))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        command = [str(small) if word.endswith(".toml") else word for word in documented[0]]
        command = [cluster.scheduler_address if word.startswith("tcp://") else word for word in command]
        command[command.index("--out") + 1] = str(tmp_path / "dask")
        result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "dask" / "chunks").exists()
    local = run_sweep(small, tmp_path / "local", jobs=2)
    for name in ("results.parquet", "results.csv"):
        assert (tmp_path / "dask" / name).read_bytes() == (local.out_dir / name).read_bytes()
    assert len(load_results(tmp_path / "dask")) == 300


def test_out_folder_protection(spec_path, data, tmp_path):
    out = tmp_path / "out"
    run_sweep(spec_path, out)
    with pytest.raises(InputError, match="holds a sweep already; pass --resume"):
        run_sweep(spec_path, out)
    changed = write_spec(data, spec_path.read_text().replace("seed = 7", "seed = 8"), "changed.toml")
    with pytest.raises(InputError, match="different spec"):
        run_sweep(changed, out, resume=True)
    (data / "links" / "flat.csv").write_text("# duration_s=60\ntime_s,bandwidth_mbps\n0,2.5\n")
    with pytest.raises(InputError, match="different inputs"):
        run_sweep(spec_path, out, resume=True)


class _StopError(Exception):
    pass


def _interrupted(spec_path, out, after: int, **options) -> None:
    """Run a sweep and stop it (as Ctrl-C would) once ``after`` sessions are done."""
    def progress(done, total):
        if done >= after:
            raise _StopError
    with pytest.raises(_StopError):
        run_sweep(spec_path, out, progress=progress, **options)


def test_resume_keeps_finished_chunks_and_redoes_the_rest(spec_path, tmp_path):
    reference = tmp_path / "reference"
    first = run_sweep(spec_path, reference)
    out = tmp_path / "out"
    _interrupted(spec_path, out, 30)
    chunks = sorted((out / "chunks").iterdir())
    assert 0 < len(chunks) < first.chunks
    assert not (out / "results.csv").exists()
    # as after a kill: some chunks missing, a half-written chunk and a cut-short one, half a results file
    removed = chunks[1::3]
    for path in removed:
        path.unlink()
    (out / "chunks" / (removed[0].name + ".tmp")).write_bytes(b"abrsim-chunk-1 ")
    chunks[0].write_bytes(chunks[0].read_bytes()[:-8])
    (out / "results.csv.tmp").write_text("scenario,tr")
    resumed = run_sweep(spec_path, out, resume=True, jobs=2)
    assert resumed.chunks_run == first.chunks - len(chunks) + len(removed) + 1
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert (out / "results.parquet").read_bytes() == (reference / "results.parquet").read_bytes()
    assert not list(out.glob("**/*.tmp")) and not (out / "chunks").exists()
    assert resumed.summary == first.summary
    # resuming a finished sweep runs nothing and keeps the same files
    again = run_sweep(spec_path, out, resume=True)
    assert again.chunks_run == 0 and again.summary == first.summary
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


def test_a_chunk_of_another_sweep_is_refused(spec_path, data, tmp_path):
    out = tmp_path / "out"
    _interrupted(spec_path, out, 30)
    other = write_spec(data, spec_path.read_text().replace("seed = 7", "seed = 8"), "other.toml")
    _interrupted(other, tmp_path / "other", 30)
    foreign = sorted((tmp_path / "other" / "chunks").iterdir())[0]
    os.replace(foreign, out / "chunks" / "chunk-000005.f64")
    (out / "chunks" / "chunk-000004.f64").unlink(missing_ok=True)
    with pytest.raises(InputError, match="holds a chunk of a different sweep"):
        run_sweep(spec_path, out, resume=True)


def test_resume_after_sigkill(spec_path, tmp_path):
    """A real sweep process killed mid-run, then `abrsim sweep --resume`: nothing lost, nothing twice."""
    reference = tmp_path / "reference"
    run_sweep(spec_path, reference)
    out = tmp_path / "killed"
    # The driver slows each chunk down a little (in the progress callback) so that the kill
    # surely lands mid-sweep; the sweep itself is the real code.
    driver = textwrap.dedent(f"""\
        import time
        from abrsim.sweep import run_sweep
        run_sweep({str(spec_path)!r}, {str(out)!r}, progress=lambda done, total: time.sleep(0.05))
        """)
    process = subprocess.Popen([sys.executable, "-c", driver], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "chunks").glob("chunk-*.f64"))) < 5:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep wrote no chunks"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    done = len(list((out / "chunks").glob("chunk-*.f64")))
    total = json.loads((out / "meta.json").read_text())["chunks"]
    assert 5 <= done < total
    assert not (out / "results.csv").exists()
    assert json.loads((out / "meta.json").read_text())["status"] == "running"

    result = subprocess.run([sys.executable, "-m", "abrsim", "sweep", str(spec_path), "--out", str(out),
                             "--resume", "--jobs", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"({done} kept from before)" in result.stderr.replace(",", "")
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    rows = rows_of(out)
    keys = [(r["trace"], r["model"], r["policy"], r["params"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)) == 84


def test_cli_sweep(spec_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["sweep", str(spec_path), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "results" / "unit"  # the default --out
    assert (out / "results.csv").is_file()
    assert "84 sessions in" in result.output
    assert "bola(gamma_p=3)" in result.output
    assert "slow_start" in result.output
    result = CliRunner().invoke(cli, ["sweep", str(spec_path), "--scheduler", "tcp://x:1"])
    assert result.exit_code == 2
    assert "--scheduler needs --executor dask" in result.output
    result = CliRunner().invoke(cli, ["compare", str(out), "--baseline", "policy=throughput",
                                      "--candidate", "policy=bola,params.gamma_p=3", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["pairs"] == 28  # 2 seeds x 2 models x 7 traces
    assert doc["pair_fields"] == ["trace", "ladder", "model", "seed"]


def test_all_algorithms_on_a_shared_family(data, tmp_path):
    """A slice of the all-algorithms experiment on real traces: every algorithm, every trace."""
    folder = shared_path("traces", "hsdpa_norway_3g")
    spec = write_spec(data, f"""\
        name = "shared_slice"
        ladders = ["tiny.toml"]
        [[traces]]
        path = {str(folder)!r}
        limit = 2
        """)
    report = run_sweep(spec, tmp_path / "out")
    rows = rows_of(tmp_path / "out")
    assert report.sessions == len(rows) == 2 * len(available())
    assert {r["policy"] for r in rows} == set(available())
    assert all(r["trace"].startswith("hsdpa_norway_3g/") for r in rows)


def test_optional_extras_missing(spec_path, tmp_path, monkeypatch):
    """Without pyarrow the sweep writes CSV only; without Dask `--executor dask` says what to install."""
    reference = run_sweep(spec_path, tmp_path / "with")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    report = run_sweep(spec_path, tmp_path / "without")
    assert [f.name for f in report.files] == ["results.csv"]
    assert not (tmp_path / "without" / "results.parquet").exists()
    assert (tmp_path / "without" / "results.csv").read_bytes() == (
        reference.out_dir / "results.csv").read_bytes()
    loaded = load_results(tmp_path / "with")  # reads the CSV, since pyarrow is missing
    assert [str(row) for row in loaded] == [str(row) for row in rows_of(tmp_path / "with")]
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(AbrsimError, match=r"needs Dask distributed: pip install 'abrsim\[dask\]'"):
        run_sweep(spec_path, tmp_path / "dask", executor="dask")
    assert not (tmp_path / "dask").exists()


def _documented_commands(text: str, prefix: str) -> list[list[str]]:
    """The ``abrsim ...`` command lines in ``text`` that start with ``prefix`` (continuations joined)."""
    import shlex

    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith(prefix):
            commands.append(shlex.split(line.partition("#")[0], posix=True)[1:])
    return commands


def test_the_documented_smoke_workflow_runs(tmp_path, monkeypatch):
    """README's and the docs' sweep, compare and report lines for experiments/smoke.toml work as written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    spec = (REPO / "experiments" / "smoke.toml").read_text().replace('traces_root = ".."',
                                                                       f'traces_root = "{REPO}"')
    (tmp_path / "experiments" / "smoke.toml").write_text(spec)
    result = CliRunner().invoke(cli, ["sweep", "experiments/smoke.toml", "--out", "results/smoke",
                                      "--jobs", "1"])
    assert result.exit_code == 0, result.output
    texts = [(REPO / name).read_text() for name in ("README.md", "docs/sweeps.md", "docs/report.md")]
    compares = [c for text in texts for c in _documented_commands(text, "abrsim compare results/smoke")]
    reports = [c for text in texts for c in _documented_commands(text, "abrsim report results/smoke")]
    assert len(compares) >= 3 and reports
    for command in compares + reports:
        (tmp_path / "results" / "smoke" / "report").mkdir(exist_ok=True)
        result = CliRunner().invoke(cli, command)
        # 1 is a --fail-on gate that fired, which the examples may well show; 2 would be an error.
        assert result.exit_code in (0, 1) and "error" not in result.output, (command, result.output)


# ---------------------------------------------------------------- processes: kill, Ctrl-C, locks

SLOW_POLICY = """\
import multiprocessing
import os
import time


class Slow:
    def reset(self, ladder, model, rng):
        pass

    def choose(self, obs):
        if multiprocessing.parent_process() is not None:  # pool workers only: the parent stays quick
            time.sleep(float(os.environ.get("SLOW_S", "0")))
        return 0
"""


@pytest.fixture
def slow_spec(data) -> Path:
    """A sweep of a Python policy that dawdles in pool workers when SLOW_S is set (8 sessions in 4 chunks)."""
    (data / "slow.py").write_text(SLOW_POLICY)
    return write_spec(data, """\
        name = "slow"
        seed = 1
        replications = 4
        chunk_sessions = 2
        ladders = ["tiny.toml"]
        algorithms = [{ policy = "slow.py:Slow" }]
        [[traces]]
        name = "gen"
        profile = "constant"
        count = 2
        params = { bandwidth_bps = 3e6, duration_s = 60.0 }
        """, "slow.toml")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _start_sweep(spec: Path, out: Path, cwd: Path, slow_s: float) -> subprocess.Popen:
    """`abrsim sweep --jobs 2` in its own process group, with Ctrl-C at its default (a background job
    of a shell ignores it otherwise)."""
    launcher = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                "os.execv(sys.executable, [sys.executable, '-m', 'abrsim', *sys.argv[1:]])")
    command = [sys.executable, "-c", launcher, "sweep", str(spec), "--out", str(out), "--jobs", "2"]
    return subprocess.Popen(command, cwd=cwd, env={**os.environ, "SLOW_S": str(slow_s)},
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_workers(process: subprocess.Popen, out: Path) -> list[int]:
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the sweep started no workers"
        workers = _children(process.pid)
        if len(workers) >= 2 and (out / "chunks" / "chunk-000000.f64").exists():
            time.sleep(0.5)  # the workers are now in their first (slow) chunk
            return workers
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_their_parent_and_free_the_folder(slow_spec, tmp_path):
    """kill -9 of a sweep's parent: its workers exit, and --resume is not refused (issue 14)."""
    out = tmp_path / "out"
    process = _start_sweep(slow_spec, out, tmp_path, slow_s=1.0)
    workers: list[int] = []
    try:
        workers = _wait_for_workers(process, out)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()  # (not communicate(): surviving workers would hold its pipes open)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived their parent"
    finally:
        for pid in workers + [process.pid]:  # survivors of this test only
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    report = run_sweep(slow_spec, out, resume=True, jobs=2)
    assert report.chunks_run < report.chunks
    assert len(rows_of(out)) == 8


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_a_sweep_quietly_and_it_resumes(slow_spec, tmp_path):
    """Ctrl-C: exit 130 within a second or so (not after the workers' long chunks), one line, no
    tracebacks, no half-written file; --resume then finishes it like an uninterrupted run."""
    reference = tmp_path / "reference"
    run_sweep(slow_spec, reference)
    out = tmp_path / "out"
    process = _start_sweep(slow_spec, out, tmp_path, slow_s=1.0)  # a worker's chunk takes minutes
    workers: list[int] = []
    try:
        workers = _wait_for_workers(process, out)
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole process group
        process.wait(timeout=30)
        took_s = time.monotonic() - started
        stdout, stderr = process.stdout.read(), process.stderr.read()
    finally:
        for pid in workers + [process.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == 130
    assert took_s < 5, took_s
    assert stdout == ""
    assert stderr.splitlines() == [
        f"abrsim: interrupted; finished chunks are kept in {out} (--resume continues)"]
    assert "Traceback" not in stderr
    assert not list(out.glob("**/*.tmp"))
    assert not (out / "results.csv").exists()
    assert not [pid for pid in workers if _alive(pid)]
    result = CliRunner().invoke(cli, ["sweep", str(slow_spec), "--out", str(out), "--resume", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_stale_lock_is_taken_over_a_live_one_refused(spec_path, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    gone_pid = int(gone.stdout)
    # Something that is not a sweep (say, a worker left behind by an older abrsim) holds the lock,
    # which names a sweep process that has ended.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import fcntl, json, os, socket, sys, time
        fd = os.open({str(out / ".lock")!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        record = {{"pid": int(sys.argv[1]) or os.getpid(), "host": socket.gethostname(), "since": "then"}}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(record).encode())
        print("locked", flush=True)
        time.sleep(120)
        """), str(gone_pid)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        notices: list[str] = []
        run_sweep(spec_path, out, notice=notices.append)
        assert notices == [f"{out}: taking over the lock of sweep pid {gone_pid} (since then), which is gone"]
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    finally:
        holder.kill()
        holder.wait()
    # A lock whose holder is alive is respected.
    live = subprocess.Popen([sys.executable, "-c", holder.args[2], "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline() == "locked\n"
        with pytest.raises(InputError, match=rf"another sweep \(pid {live.pid} on .*\) is writing"):
            run_sweep(spec_path, out, resume=True)
    finally:
        live.kill()
        live.wait()
    assert run_sweep(spec_path, out, resume=True).chunks_run == 0  # free again


def test_sweep_eta_leaves_out_the_first_chunk():
    """The first chunk loads (or compiles) the kernels: the ETA does not extrapolate from it."""
    from abrsim.cli_sweep import _SessionBar

    bar = _SessionBar("sweep x", compiling=True)
    assert "compiling the kernels" in bar.line(0, 1000, 0.0)
    assert bar.line(10, 1000, 7.0).endswith("ETA ...   ")  # not 690 s from 10 sessions in 7 s
    line = bar.line(110, 1000, 8.0)  # 100 sessions in the second after the first chunk
    assert "100/s" in line and "ETA 9 s" in line
    resumed = _SessionBar("sweep x")
    assert "loading the kernels" in resumed.line(500, 1000, 0.0)
    resumed.line(510, 1000, 2.0)
    assert "ETA 48 s" in resumed.line(520, 1000, 3.0)
