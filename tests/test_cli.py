from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import shared_path

from abrsim import __version__
from abrsim.cli import cli
from abrsim.results import RESULT_FIELDS


@pytest.fixture
def invoke():
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "link.csv"
    path.write_text("# duration_s=60\ntime_s,bandwidth_mbps\n0,3.0\n20,0.8\n40,5\n")
    return path


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_the_table_says_which_sessions_timed_out(invoke, trace_file, tmp_path):
    stalled = tmp_path / "stalled.csv"  # too slow to start before the time limit
    stalled.write_text("time_s,bandwidth_mbps\n0,1e-300\n1,1e-300\n")
    result = invoke("run", "--trace", str(stalled), "--trace", str(trace_file), "--abr", "bb")
    assert result.exit_code == 0, result.output
    header, _, slow, fine = result.stdout.splitlines()[:4]
    assert header.split()[-1] == "note"
    assert slow.startswith("stalled") and slow.endswith("timed out (0 s played)")
    assert fine.startswith("link") and "timed out" not in fine
    result = invoke("run", "--trace", str(trace_file), "--abr", "bb")
    assert "note" not in result.stdout.splitlines()[0]


def test_default_scenario(invoke):
    result = invoke("run")
    assert result.exit_code == 0, result.output
    assert "per-algorithm summary" in result.output
    assert "bola" in result.output
    assert "throughput" in result.output


def test_json_output_has_the_schema(invoke, trace_file):
    result = invoke("run", "--trace", str(trace_file), "--abr", "bola", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 1
    assert list(rows[0]) == list(RESULT_FIELDS)
    assert rows[0]["trace"] == "link"
    assert rows[0]["ladder"] == "hls"


def test_csv_to_file_with_params(invoke, trace_file, tmp_path):
    out = tmp_path / "results.csv"
    result = invoke("run", "--trace", str(trace_file), "--trace", str(trace_file), "--abr", "bola",
                    "--abr", "throughput", "--param", "gamma_p=3", "--param", "max_buffer_s=20",
                    "--ladder", "mobile", "--seed", "9", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 4
    assert {r["policy"] for r in rows} == {"bola", "throughput"}
    assert all(r["seed"] == "9" for r in rows)
    assert json.loads(rows[0]["params"])["gamma_p"] == 3.0


def test_same_seed_same_bytes(invoke, trace_file):
    first = invoke("run", "--trace", str(trace_file), "--format", "csv")
    second = invoke("run", "--trace", str(trace_file), "--format", "csv")
    assert first.output == second.output


def test_oracle_bounds_the_online_algorithms(invoke, trace_file, tmp_path):
    # A short title keeps the search quick also when the suite runs with NUMBA_DISABLE_JIT=1.
    ladder = tmp_path / "short.toml"
    ladder.write_text("segment_duration_s = 4.0\nsegment_count = 12\n"
                      + "".join(f"[[rungs]]\nbitrate_bps = {b}\n" for b in (400_000, 1_200_000, 3_000_000)))
    result = invoke("run", "--trace", str(trace_file), "--ladder", str(ladder), "--abr", "oracle",
                    "--abr", "bola", "--abr", "robustmpc", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    qoe = {row["policy"]: row["qoe_lin"] for row in rows}
    assert qoe["oracle"] >= max(qoe["bola"], qoe["robustmpc"]) - 1e-9
    # The oracle plans with the throughput network: the whole run uses it, and says so.
    assert "network=throughput" in result.stderr
    explicit = invoke("run", "--trace", str(trace_file), "--ladder", str(ladder), "--abr", "oracle",
                      "--param", "network=tcp")
    assert explicit.exit_code == 2 and "throughput network" in explicit.output


def test_oracle_steps_are_parameters(invoke, trace_file, tmp_path):
    ladder = tmp_path / "short.toml"
    ladder.write_text("segment_duration_s = 4.0\nsegment_count = 12\n"
                      + "".join(f"[[rungs]]\nbitrate_bps = {b}\n" for b in (400_000, 1_200_000, 3_000_000)))
    args = ("run", "--trace", str(trace_file), "--ladder", str(ladder), "--format", "json")
    exact = json.loads(invoke(*args, "--abr", "oracle").stdout)[0]
    coarse = invoke(*args, "--abr", "oracle", "--param", "oracle.time_step_s=0.5",
                    "--param", "oracle.buffer_step_s=0.25")
    assert coarse.exit_code == 0, coarse.output
    row = json.loads(coarse.stdout)[0]
    assert row["params"] == {"buffer_step_s": 0.25, "time_step_s": 0.5}
    assert exact["params"] == {}
    assert row["qoe_lin"] <= exact["qoe_lin"] + 1e-9  # a quantised search finds no better sequence
    for bad, message in ((("--abr", "oracle", "--param", "oracle.steps=1"), "unknown oracle parameter"),
                         (("--param", "oracle.time_step_s=1"), "need the oracle"),
                         (("--abr", "oracle", "--param", "oracle.time_step_s=fast"), "expected a number")):
        result = CliRunner().invoke(cli, [*args, *bad])
        assert result.exit_code == 2 and message in result.output, result.output


def test_models_lists_presets(invoke):
    result = invoke("models")
    assert result.exit_code == 0
    for name in ("abrsim", "sabre", "pensieve"):
        assert f"{name}:" in result.output
    assert "compat_sabre_retry_abr = true  (abrsim: false)" in result.output


def test_pensieve_inputs_as_pensieve_ships_them(invoke):
    cooked = shared_path("reference", "pensieve", "inputs", "cooked", "hsdpa_norway_3g", "norway_bus_1")
    video = shared_path("reference", "pensieve", "inputs")
    result = invoke("run", "--model", "pensieve", "--trace", str(cooked), "--ladder", str(video),
                    "--abr", "bb", "--format", "json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    # Pensieve's own QoE_lin for this session is 80.95 over chunks 1..47; abrsim adds chunk 0's 0.75.
    assert row["qoe_lin"] == pytest.approx(80.95 + 0.75, abs=1e-6)
    assert row["played_s"] == 48 * 4.0


def test_algorithms_lists_parameters(invoke):
    result = invoke("algorithms")
    assert result.exit_code == 0
    assert "gamma_p = 5.0" in result.output
    assert "safety_factor = 0.9" in result.output


def test_traces_generate(invoke, tmp_path):
    result = invoke("traces", "generate", "--out", str(tmp_path / "corpus"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "corpus" / "README.md").exists()
    run = invoke("run", "--trace", str(tmp_path / "corpus"), "--abr", "bola", "--format", "json")
    assert run.exit_code == 0, run.output
    assert len(json.loads(run.output)) >= 5


def test_real_trace_folder_and_size_table(invoke):
    folder = shared_path("traces", "lte_belgium_4g")
    video = shared_path("videos", "bbb_sabre", "chunk_sizes.csv")
    result = invoke("run", "--trace", str(folder), "--ladder", str(video), "--segment-duration-s", "3",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 2 * 29


BAD_INPUTS = [
    # (file content or None, extra args, text expected in the error)
    ("", [], "empty"),
    ("time,bw\n0,1\n", [], "time_s,bandwidth_mbps"),
    ("time_s,bandwidth_mbps\n0,1\n2,abc\n", [], ":3"),
    ("time_s,bandwidth_mbps\n0,1\n2,nan\n", [], ":3"),
    ("time_s,bandwidth_mbps\n0,1\n2,-1\n", [], ":3"),
    ("time_s,bandwidth_mbps\n0,1\n2,1\n2,3\n", [], ":4"),
    (None, ["--ladder", "nosuchladder"], "unknown ladder"),
    (None, ["--abr", "nosuchabr"], "unknown algorithm"),
    (None, ["--param", "gamma_p"], "KEY=VALUE"),
    (None, ["--param", "gamma_p=abc"], "bola.gamma_p"),
    (None, ["--param", "nosuch=1"], "unknown parameter"),
    (None, ["--param", "max_buffer_s=1"], "max_buffer_s"),
]


@pytest.mark.parametrize(("content", "args", "expected"), BAD_INPUTS)
def test_bad_input_is_one_line_exit_2(tmp_path, trace_file, content, args, expected):
    path = trace_file
    if content is not None:
        path = tmp_path / "bad.csv"
        path.write_text(content)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["run", "--trace", str(path), *args])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1
    assert expected in message
    if content is not None:
        assert path.name in message
    assert path.read_bytes() == before  # nothing the user gave is modified


def test_missing_trace_file(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--trace", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output


def test_debug_shows_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "run", "--abr", "nosuchabr"])
    assert result.exit_code != 0
    assert result.exception is not None


def test_a_cold_cache_is_announced_on_a_terminal(monkeypatch, capsys):
    import sys

    from abrsim import _cli_util, _jit
    from abrsim.engine import _session

    monkeypatch.setattr(_jit, "is_cached", lambda dispatcher: False)
    _cli_util.compile_notice(_session.advance)
    assert capsys.readouterr().err == ""  # not a terminal: scripts and pipes stay quiet
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _cli_util.compile_notice(_session.advance)
    assert "first run: compiling" in capsys.readouterr().err


def test_a_run_announces_an_algorithms_first_compile_too(monkeypatch, tiny_trace):
    # The QoE kernel cached (other algorithms ran before) but not this algorithm's loop: still a
    # compile of seconds, so `abrsim run` still says so.
    from abrsim import _jit
    from abrsim.abr import load_policy, make
    from abrsim.engine import _session
    from abrsim.engine.fast import compiled_loop
    from abrsim.ladder import load_ladder
    from abrsim.model import PlayerModel
    from abrsim.runner import run

    ladder = load_ladder("hls")
    new = compiled_loop(make("bba0"), ladder, PlayerModel())
    monkeypatch.setattr(_jit, "is_cached", lambda dispatcher: dispatcher is not new)
    monkeypatch.setenv("ABRSIM_COMPILE_AHEAD", "0")  # (no helper for what is cached after all)
    calls = []
    run([tiny_trace], ladder, ("bb",), on_compile=lambda: calls.append("bb"))
    run([tiny_trace], ladder, ("bb", "bba0"), on_compile=lambda: calls.append("bb, bba0"))
    assert calls == ["bb, bba0"]
    driver = _session.advance  # a Python policy's first run compiles the loop that drives it
    examples = Path(__file__).resolve().parents[1] / "docs" / "examples" / "buffer_based.py"
    monkeypatch.setattr(_jit, "is_cached", lambda dispatcher: dispatcher is not driver)
    run([tiny_trace], ladder, ("bb",), on_compile=lambda: calls.append("bb"))
    run([tiny_trace], ladder, ("bb",), policies=[load_policy(f"{examples}:BufferBased")],
        on_compile=lambda: calls.append("bb, python"))
    assert calls == ["bb, bba0", "bb, python"]


def test_output_folders_are_made_and_checked_before_the_run(tmp_path):
    out = tmp_path / "new" / "folder" / "rows.csv"
    result = CliRunner().invoke(cli, ["run", "--abr", "bb", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("scenario,")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    scenario = str(Path(__file__).resolve().parents[1] / "experiments" / "des_shared_bottleneck.toml")
    for command in (["run", "--abr", "bb"], ["simulate", scenario]):
        result = CliRunner().invoke(cli, [*command, "--out", str(blocker / "rows.csv")])
        assert result.exit_code == 2
        assert "cannot write the output here" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_negative_seeds_are_refused_up_front():
    scenario = str(Path(__file__).resolve().parents[1] / "experiments" / "des_shared_bottleneck.toml")
    for command in (["run", "--seed", "-1"], ["simulate", scenario, "--seed", "-1"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2
        assert "-1 is not in the range x>=0" in result.output
