"""Issue 14: inputs at the extremes give one line and exit 2, never a traceback.

And messages name what the user gave.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from abrsim.cli import cli
from abrsim.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "experiments" / "des_shared_bottleneck.toml"
DEEP = 5000  # far past Python's recursion limit


def invoke(*args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit 2 with exactly one line on stderr, which holds every fragment."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def ok_trace(tmp_path: Path) -> Path:
    path = tmp_path / "ok.csv"
    path.write_text("# duration_s=60\ntime_s,bandwidth_mbps\n0,3\n30,1\n")
    return path


# ------------------------------------------------------------------ huge but finite numbers


@pytest.mark.parametrize(("name", "text", "where"), [
    ("huge.csv", "# duration_s=60\ntime_s,bandwidth_mbps\n0,3\n10,1e15\n",
     "huge.csv:4, field 'bandwidth_mbps'"),
    ("huge.csv", "# duration_s=60\ntime_s,bandwidth_mbps\n0,1e300\n", "huge.csv:3"),
    ("huge", "0 1\n1 1e15\n2 1\n", "huge:2, field 'bandwidth_mbps'"),  # Pensieve cooked
    ("huge.json", '[{"duration_ms": 1000, "bandwidth_kbps": 1e18, "latency_ms": 10}]', "huge.json"),
])
def test_a_trace_faster_than_a_terabit_is_refused(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    result = invoke("run", "--trace", path, "--abr", "bola")
    assert_one_line_error(result, where, "at most 1e6 Mbit/s")


def test_a_terabit_trace_still_runs(tmp_path):
    path = tmp_path / "fast.csv"
    path.write_text("# duration_s=60\ntime_s,bandwidth_mbps\n0,1e6\n")
    result = invoke("run", "--trace", path, "--abr", "bola", "--abr", "robustmpc", "--format", "json")
    assert result.exit_code == 0, result.output
    assert all(row["rebuffer_s"] == 0 for row in json.loads(result.stdout))


def test_a_trace_longer_than_the_clock_can_hold_is_refused(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("# duration_s=1e308\ntime_s,bandwidth_mbps\n0,1\n")
    for command in (["traces", "stats", path], ["run", "--trace", path, "--abr", "bola"]):
        assert_one_line_error(invoke(*command), "long.csv", "at most 1e+09 s")


@pytest.mark.parametrize(("name", "text", "where"), [
    ("h.csv", "time_s,bandwidth_mbps\n0,1\n1e300,2\n", "h.csv:3, field 'time_s': found 1E+300"),
    ("h.csv", "time_s,bandwidth_mbps\n0,1\n6e8,2\n", "h.csv:3, field 'time_s': found 6E+8"),  # ends at 1.2e9
    ("h.csv", "# duration_s=2e9\ntime_s,bandwidth_mbps\n0,1\n", "h.csv:1, field 'duration_s': found '2e9'"),
    ("h", "0 1\n1e300 2\n", "h:2, field 'time_s': found 1E+300"),  # Pensieve cooked
    ("h.json", '[{"duration_ms": 9e11, "bandwidth_kbps": 1, "latency_ms": 1}, '
               '{"duration_ms": 9e11, "bandwidth_kbps": 1, "latency_ms": 1}]', "field 'entry 1 duration_ms'"),
])
def test_a_time_past_the_longest_trace_names_its_line(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    line = assert_one_line_error(invoke("traces", "stats", path), where, "1e+09 s (the longest trace)")
    assert '"duration_s" must be' not in line


UNDERSCORE_MPD = ('<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
                  'mediaPresentationDuration="PT10S"><Period>\n<AdaptationSet contentType="video">'
                  '<SegmentTemplate duration="2"/>\n<Representation id="a" {}/>\n'
                  "</AdaptationSet></Period></MPD>\n")


@pytest.mark.parametrize(("name", "text", "where"), [
    # Python's int(), float(), Decimal() and Fraction() take 1_000: a number in a file does not
    ("u.csv", "time_s,bandwidth_mbps\n0,1_000\n1,2\n", "u.csv:2, field 'bandwidth_mbps': found '1_000'"),
    ("u.csv", "# duration_s=1_0\ntime_s,bandwidth_mbps\n0,1\n", "u.csv:1, field 'duration_s'"),
    ("u", "0 1\n1_0 2\n", "u:2, field 'time_s': found '1_0'"),  # Pensieve
    ("u", "10\n2_0\n", "u:2, field 'timestamp_ms': found '2_0'"),  # Mahimahi
    ("u.mpd", UNDERSCORE_MPD.format('bandwidth="1_000"'), "u.mpd:4"),
    ("u.mpd", UNDERSCORE_MPD.format('bandwidth="9" frameRate="3_0"'), "u.mpd:4"),
])
def test_a_number_with_underscores_is_not_a_number(tmp_path, name, text, where):
    from abrsim.manifest import read_manifest
    from abrsim.trace import load_trace

    path = tmp_path / name
    path.write_text(text)
    expected = r"expected (a finite number|an integer|e\.g\. '25'|a number)"
    with pytest.raises(InputError, match=expected) as caught:
        read_manifest(path) if name.endswith(".mpd") else load_trace(path)
    assert str(caught.value).startswith(str(tmp_path / where))


@pytest.mark.parametrize(("text", "where"), [
    ("chunk_index,kbps_300,kbps_1_000\n0,10,20\n", "s.csv:1, field 'kbps_1_000'"),
    ("chunk_index,kbps_300,kbps_1000\n0,10,20\n1,10,2_0\n", "s.csv:3, field 'kbps_1000'"),
])
def test_a_size_table_number_with_underscores_is_not_a_number(tmp_path, text, where):
    from abrsim.ladder import read_size_csv
    from abrsim.peer_formats import read_pensieve_video

    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(InputError, match="expected a finite number > 0, found '(1_000|2_0)'") as caught:
        read_size_csv(path, 4.0)
    assert str(caught.value).startswith(str(tmp_path / where))
    for rung in range(6):
        (tmp_path / f"video_size_{rung}").write_text("1000\n" if rung else "1000\n2_000\n")
    with pytest.raises(InputError, match=r"video_size_0:2: found '2_000'; expected a chunk size"):
        read_pensieve_video(tmp_path)


@pytest.mark.parametrize(("edit", "where"), [
    ({"bottleneck": "[bottleneck]\nbandwidth_bps = 1e25\n"}, "bottleneck.bandwidth_bps"),
    ({"traces": "[traces.fat]\nbandwidth_bps = 1e25\n"}, "traces.fat.bandwidth_bps"),
    ({"traces": '[traces.fat]\nbuiltin = "4g_low"\nscale = 1e20\n'}, "traces.fat.scale"),
])
def test_a_scenario_link_faster_than_a_terabit_is_refused(tmp_path, edit, where):
    parts = {"bottleneck": "[bottleneck]\nbandwidth_bps = 5e6\n", "traces": ""}
    parts.update(edit)
    path = tmp_path / "huge.toml"
    path.write_text('name = "huge"\nseed = 1\nladder = "hls"\n' + parts["traces"] + parts["bottleneck"]
                    + '[[players]]\nname = "bola"\nabr = "bola"\ncount = 1\n')
    assert_one_line_error(invoke("simulate", path), "huge.toml", where)


def test_a_segment_smaller_than_a_bit_is_refused(tmp_path, ok_trace):
    rung = "segment_count = 3\n[[rungs]]\nbitrate_bps = "
    for name, body, key in (
            ("short.toml", f"segment_duration_s = 1e-300\n{rung}1000\n", "segment_duration_s"),
            ("thin.toml", f"segment_duration_s = 4\n{rung}1e-300\n", "rungs[0].bitrate_bps")):
        path = tmp_path / name
        path.write_text(body)
        assert_one_line_error(invoke("run", "--trace", ok_trace, "--ladder", path, "--abr", "bola"), name,
                              f"field {key!r}", "expected at least one bit")


def test_a_download_the_clock_cannot_resolve_is_an_input_error(monkeypatch, tiny_trace, tiny_ladder):
    # The limits above keep inputs away from this; the backstop names the ladder and trace instead of
    # letting the compiled loop's ZeroDivisionError out.
    from abrsim.abr import PythonPolicy
    from abrsim.engine import fast

    class Lowest:
        def reset(self, ladder, rng):
            pass

        def choose(self, obs):
            return 0

    def divide_by_zero(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(fast, "_run_python_batch", divide_by_zero)
    with pytest.raises(InputError, match=r"ladder 'tiny' over trace 'tiny' took less time than the session"):
        fast.run_batch([tiny_trace], tiny_ladder, PythonPolicy(Lowest))


# ------------------------------------------------------------------ deeply nested input


def deep_json() -> str:
    return "[" * DEEP + "]" * DEEP


def deep_toml() -> str:
    return "a = " + "[" * DEEP + "]" * DEEP + "\n"


@pytest.mark.parametrize(("name", "text", "command"), [
    ("trace.json", deep_json(), ["run", "--trace", "{path}", "--abr", "bola"]),
    ("movie.json", deep_json(), ["run", "--trace", "{ok}", "--ladder", "{path}"]),
    ("ladder.toml", deep_toml(), ["run", "--trace", "{ok}", "--ladder", "{path}"]),
    ("spec.toml", deep_toml(), ["sweep", "{path}", "--out", "{tmp}/sweep"]),
    ("scenario.toml", deep_toml(), ["simulate", "{path}"]),
    ("title.mpd", "<MPD>" + "<a>" * DEEP + "</a>" * DEEP + "</MPD>", ["ladders", "import", "{path}", "-o",
                                                                      "{tmp}/x.toml"]),
    ("results.json", deep_json(), ["report", "{path}", "-o", "{tmp}/report"]),
])
def test_deeply_nested_input_is_one_line(tmp_path, ok_trace, name, text, command):
    path = tmp_path / name
    path.write_text(text)
    args = [a.format(path=path, ok=ok_trace, tmp=tmp_path) for a in command]
    assert_one_line_error(invoke(*args), name, "nested")


def test_deeply_nested_compare_json_is_one_line(tmp_path, ok_trace):
    results = tmp_path / "rows.json"
    result = invoke("run", "--trace", ok_trace, "--abr", "bola", "--format", "json", "--out", results)
    assert result.exit_code == 0
    deep = tmp_path / "compare.json"
    deep.write_text(deep_json())
    assert_one_line_error(invoke("report", results, "-o", tmp_path / "r", "--compare", deep), "compare.json",
                          "nested")


# ------------------------------------------------------------------ output paths, checked before the work


@pytest.fixture
def results_csv(tmp_path, ok_trace) -> Path:
    path = tmp_path / "rows.csv"
    result = invoke("run", "--trace", ok_trace, "--abr", "bola", "--abr", "throughput", "--format", "csv",
                    "--out", path)
    assert result.exit_code == 0, result.output
    return path


def output_commands(tmp_path: Path, ok_trace: Path, results_csv: Path, out: Path) -> dict[str, list]:
    """Every command that writes a file or folder, writing to ``out`` (under ``out`` for folder outputs)."""
    mpd = tmp_path / "title.m3u8"
    mpd.write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow.m3u8\n"
                   "#EXT-X-STREAM-INF:BANDWIDTH=2000000\nhigh.m3u8\n")
    return {
        "compare": ["compare", results_csv, "--baseline", "policy=throughput", "--candidate", "policy=bola",
                    "--resamples", "100", "--out", out / "c.txt"],
        "convert": ["traces", "convert", ok_trace, "-o", out / "t", "--to", "pensieve"],
        "stats": ["traces", "stats", ok_trace, "--out", out / "s.txt"],
        "synth": ["traces", "synth", "--profile", "3g", "--count", "1", "--duration-s", "30",
                  "-o", out / "s"],
        "import": ["ladders", "import", mpd, "-o", out / "l.toml", "--segment-duration-s", "4",
                   "--duration-s", "40"],
        "pertitle": ["ladders", "pertitle", "--rungs", "3", "--duration-s", "40", "-o", out / "p.toml"],
        "report": ["report", results_csv, "-o", out / "r"],
        "generate": ["traces", "generate", "--out", out / "g"],
    }


@pytest.mark.parametrize("command", ["compare", "convert", "stats", "synth", "import", "pertitle", "report"])
def test_every_command_makes_its_output_folder(tmp_path, ok_trace, results_csv, command):
    out = tmp_path / "new" / "nested"
    result = invoke(*output_commands(tmp_path, ok_trace, results_csv, out)[command])
    assert result.exit_code == 0, result.output
    assert any(out.iterdir())


@pytest.mark.parametrize("command", ["compare", "convert", "stats", "synth", "import", "pertitle", "report",
                                     "generate"])
def test_every_command_checks_its_output_before_the_work(tmp_path, ok_trace, results_csv, monkeypatch,
                                                         command):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # Make the work itself fail loudly: the output check must come first.
    import abrsim.compare
    import abrsim.manifest
    import abrsim.report
    import abrsim.trace
    import abrsim.tracegen

    def work(*args, **kwargs):
        raise AssertionError("the work started before the output path was checked")

    for module, name in ((abrsim.compare, "load_results"), (abrsim.trace, "load_trace"),
                         (abrsim.trace, "load_traces"), (abrsim.tracegen, "synthesize_many"),
                         (abrsim.manifest, "read_manifest"), (abrsim.report, "load_results"),
                         (abrsim.tracegen, "write_default_corpus")):
        monkeypatch.setattr(module, name, work)
    result = invoke(*output_commands(tmp_path, ok_trace, results_csv, blocker)[command])
    assert_one_line_error(result, "a-file", "cannot write the output here")


def test_sweep_checks_its_folder_before_running(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = invoke("sweep", REPO / "experiments" / "smoke.toml", "--out", blocker / "sweep")
    assert_one_line_error(result, "a-file", "cannot write the output here")


def test_an_output_through_a_symbolic_link_writes_its_target_and_keeps_the_link(tmp_path, ok_trace):
    target = tmp_path / "target.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result = invoke("run", "--trace", ok_trace, "--abr", "bb", "--format", "csv", "--out", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text().startswith("scenario,trace,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "ok.csv", "target.csv"]


def test_an_output_to_a_pipe_is_written_into_it(tmp_path, ok_trace):
    import os
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_text()), daemon=True)
    reader.start()
    result = invoke("run", "--trace", ok_trace, "--abr", "bb", "--format", "csv", "--out", pipe)
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert received[0].startswith("scenario,trace,")
    assert pipe.is_fifo()


def test_an_output_that_fails_while_written_is_one_line_and_leaves_nothing(tmp_path, ok_trace, monkeypatch):
    write_text = Path.write_text

    def full_disk(self, data, *args, **kwargs):
        write_text(self, data[:10])  # part of it, then the disk is full
        raise OSError(28, "No space left on device")

    out = tmp_path / "out.csv"
    out.write_text("old")
    monkeypatch.setattr(Path, "write_text", full_disk)
    result = invoke("run", "--trace", ok_trace, "--abr", "bb", "--out", out)
    assert_one_line_error(result, "out.csv", "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.csv", "out.csv"]


@pytest.mark.skipif(not Path("/dev/full").is_char_device(), reason="no /dev/full here")
@pytest.mark.skipif(os.geteuid() == 0, reason="as root, a regression would replace /dev/full with a file")
def test_an_output_device_that_fails_is_one_line_and_stays_a_device(ok_trace):
    result = invoke("run", "--trace", ok_trace, "--abr", "bb", "--out", "/dev/full")
    assert_one_line_error(result, "/dev/full", "No space left on device")
    assert Path("/dev/full").is_char_device()


def test_an_output_to_dev_stdout_reaches_a_pipe_or_is_added_to_a_redirected_file(tmp_path, ok_trace):
    import subprocess
    import sys

    command = [sys.executable, "-m", "abrsim", "run", "--trace", str(ok_trace), "--abr", "bb", "--format",
               "csv", "--out", "/dev/stdout"]
    piped = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("scenario,trace,")
    log = tmp_path / "log.txt"
    log.write_text("written before\n")
    with log.open("a") as stdout:  # `abrsim ... --out /dev/stdout >> log.txt`
        done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert log.read_text().startswith("written before\nscenario,trace,")


def test_a_loop_of_symbolic_links_as_output_is_refused(tmp_path, ok_trace):
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    result = invoke("run", "--trace", ok_trace, "--abr", "bb", "--out", tmp_path / "a.csv")
    assert_one_line_error(result, "a.csv", "found a loop of symbolic links; expected a file")
    assert (tmp_path / "a.csv").is_symlink()


def test_an_empty_output_path_is_refused(ok_trace):
    assert_one_line_error(invoke("run", "--trace", ok_trace, "--abr", "bb", "--out", ""),
                          "empty path; expected a file name")


def test_an_output_error_during_the_work_is_one_line(tmp_path, results_csv, monkeypatch):
    import abrsim.report

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "r" / "figures" / "x.png"))

    monkeypatch.setattr(abrsim.report, "write_report", full_disk)
    result = invoke("report", results_csv, "-o", tmp_path / "r")
    assert_one_line_error(result, "x.png", "No space left on device")


# ------------------------------------------------------------------ warnings before an error


def test_warnings_before_an_error_are_not_shown(capsys):
    from abrsim._cli_util import abrsim_command

    @click.command()
    @click.option("--fail", is_flag=True)
    @abrsim_command
    def noisy(fail: bool) -> None:
        warnings.warn("overflow encountered in multiply", RuntimeWarning, stacklevel=1)
        if fail:
            raise InputError("found 1e400; expected a number", source="x.csv", line=3)
        click.echo("done")

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as exit_info:
            noisy.main(["--fail"], standalone_mode=False)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == "abrsim: error: x.csv:3: found 1e400; expected a number\n"
        assert shown == []
        noisy.main([], standalone_mode=False)  # a successful run still shows them
        assert capsys.readouterr().out == "done\n"
        assert [str(w.message) for w in shown] == ["overflow encountered in multiply"]


# ------------------------------------------------------------------ messages that name what the user gave


def test_synth_seed_names_the_seed(tmp_path):
    result = invoke("traces", "synth", "--profile", "3g", "--seed", "-1", "-o", tmp_path / "s")
    assert result.exit_code == 2
    assert "'--seed'" in result.stderr
    assert "--duration-s" not in result.stderr
    assert not (tmp_path / "s").exists()
    for seed_command in (["traces", "generate", "--out", tmp_path / "g"], ["compare", tmp_path, "--baseline",
                         "policy=a", "--candidate", "policy=b"]):
        result = invoke(*seed_command, "--seed", "-1")
        assert result.exit_code == 2
        assert "'--seed'" in result.stderr


def test_synth_duration_names_the_duration(tmp_path):
    assert_one_line_error(invoke("traces", "synth", "--profile", "3g", "--duration-s", "-5", "-o", tmp_path),
                          "--duration-s", "-5")


def test_synth_refuses_a_trace_shorter_than_a_second_writing_nothing(tmp_path):
    # the statistics compare 1 s means: a shorter trace has none (it used to fail after writing)
    assert_one_line_error(invoke("traces", "synth", "--profile", "3g", "--duration-s", "0.3", "-o",
                                 tmp_path / "s"), "--duration-s", "0.3", ">= 1")
    assert not (tmp_path / "s").exists()
    assert invoke("traces", "synth", "--profile", "3g", "--count", "2", "--duration-s", "1", "-o",
                  tmp_path / "s").exit_code == 0


def test_synth_refuses_too_much_work_before_starting(tmp_path, monkeypatch):
    line = assert_one_line_error(invoke("traces", "synth", "--profile", "3g", "--count", "100000000",
                                        "-o", tmp_path / "s"), "--count", "ABRSIM_MAX_SYNTH_SAMPLES")
    assert "100,000,000 traces" in line
    assert not (tmp_path / "s").exists()
    monkeypatch.setenv("ABRSIM_MAX_SYNTH_SAMPLES", "50")
    assert_one_line_error(invoke("traces", "synth", "--profile", "3g", "--count", "6", "--duration-s", "10",
                                 "-o", tmp_path / "s"), "60 samples", "ABRSIM_MAX_SYNTH_SAMPLES")
    assert invoke("traces", "synth", "--profile", "3g", "--count", "5", "--duration-s", "10",
                  "-o", tmp_path / "s").exit_code == 0


def test_a_synth_write_error_names_the_trace_file_not_its_temporary_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ABRSIM_MAX_MAHIMAHI_PACKETS", "100")
    line = assert_one_line_error(invoke("traces", "synth", "--profile", "3g", "--count", "2", "--duration-s",
                                        "10", "--format", "mahimahi", "-o", tmp_path / "mm"),
                                 "ABRSIM_MAX_MAHIMAHI_PACKETS")
    assert line.startswith(f"abrsim: error: {tmp_path / 'mm' / '3g_001'}:"), line
    assert not list((tmp_path / "mm").iterdir())


def test_synth_writes_each_trace_as_it_goes_with_progress(tmp_path, monkeypatch):
    import abrsim.cli_data
    import abrsim.trace

    out = tmp_path / "s"
    seen = []

    class Bar:
        def __init__(self, label, unit):
            assert unit == "traces"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def __call__(self, done, total):
            seen.append((done, total, sorted(path.name for path in out.iterdir())))

    monkeypatch.setattr(abrsim.cli_data, "WorkBar", Bar)
    assert invoke("traces", "synth", "--profile", "3g", "--count", "3", "--duration-s", "5", "-o",
                  out).exit_code == 0
    assert seen == [(1, 3, ["3g_001.csv"]), (2, 3, ["3g_001.csv", "3g_002.csv"]),
                    (3, 3, ["3g_001.csv", "3g_002.csv", "3g_003.csv"])]

    # Ctrl-C in the middle of a file: exit 130, the files before it whole, no part of it left
    write = abrsim.trace.write_abrsim_csv

    def interrupted(trace, path):
        if trace.name == "3g_002":
            Path(path).write_text("time_s,bandw")
            raise KeyboardInterrupt
        return write(trace, path)

    monkeypatch.setattr(abrsim.trace, "write_abrsim_csv", interrupted)
    again = tmp_path / "again"
    result = invoke("traces", "synth", "--profile", "3g", "--count", "3", "--duration-s", "5", "-o", again)
    assert result.exit_code == 130
    assert result.stderr.strip() == "abrsim: interrupted"
    assert [path.name for path in again.iterdir()] == ["3g_001.csv"]
    assert (again / "3g_001.csv").read_text() == (out / "3g_001.csv").read_text()


def test_segment_duration_with_a_builtin_ladder_names_the_ladder(ok_trace):
    from abrsim._data import data_dir

    line = assert_one_line_error(invoke("run", "--trace", ok_trace, "--segment-duration-s", "3"),
                                 "the built-in ladder 'hls'", "--segment-duration-s")
    assert str(data_dir("ladders")) not in line
    assert "site-packages" not in line


def test_a_size_csv_without_segment_duration_names_the_option(tmp_path, ok_trace):
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("1000,2000\n1000,2000\n")
    assert_one_line_error(invoke("run", "--trace", ok_trace, "--ladder", sizes), "sizes.csv",
                          "give --segment-duration-s")


def test_a_param_for_an_algorithm_not_run_says_so(ok_trace):
    assert_one_line_error(invoke("run", "--trace", ok_trace, "--param", "robustmpc.horizon=8"),
                          "'robustmpc' is not among the algorithms this run uses (bola, throughput)",
                          "--abr robustmpc")
    # a name that is no algorithm at all is still "unknown"
    assert_one_line_error(invoke("run", "--trace", ok_trace, "--param", "nosuch.horizon=8"),
                          "unknown algorithm in --param 'nosuch'")


def test_a_folder_of_trace_folders_names_the_subfolders(tmp_path):
    cooked = tmp_path / "cooked"
    for family in ("fcc", "hsdpa"):
        (cooked / family).mkdir(parents=True)
        (cooked / family / "trace_1").write_text("0 1.0\n1 2.0\n2 3.0\n")
    line = assert_one_line_error(invoke("run", "--model", "pensieve", "--trace", cooked),
                                 "only 2 subfolder(s) (fcc, hsdpa)")
    assert str(cooked / "fcc") in line


# ------------------------------------------------------------------ abrsim models, JSON output


def test_models_lists_values_not_python():
    result = invoke("models")
    assert result.exit_code == 0
    assert "(abrsim's own model)" not in result.output
    assert "request_latency_s = 0.04\n" in result.output  # abrsim's own values, in full
    assert "request_latency_s = 0.08  (abrsim: 0.04)" in result.output
    assert "robustmpc.compat_pensieve_lookahead = true" in result.output
    assert "((" not in result.output
    assert "ewma_half_lives_s = 3,8" in result.output  # as --param takes it


def test_json_output_nests_params_and_reads_back(tmp_path, ok_trace):
    out = tmp_path / "rows.json"
    result = invoke("run", "--trace", ok_trace, "--abr", "bola", "--abr", "throughput", "--param",
                    "bola.gamma_p=4", "--format", "json", "--out", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert rows[0]["params"]["gamma_p"] == 4.0
    from abrsim.report import load_results

    data = load_results(out)
    assert data.select("params.gamma_p=4").sessions == 1


def test_every_metric_is_in_the_documented_schema():
    from abrsim.qoe import METRICS

    readme = (REPO / "README.md").read_text()
    schema = readme[readme.index("## Results schema"):]
    for name in METRICS:
        assert f"| `{name}` |" in schema, name


# ------------------------------------------------------------------ docs and report text, kept true


def test_the_report_says_no_gate_when_there_are_no_rules(tmp_path, results_csv):
    cases = (("none", [], "No regression gate was set"),
             ("one", ["--fail-on", "rebuffer_ratio:+500%"], "The regression gate (1 rule)"))
    for name, rules, expected in cases:
        comparison = tmp_path / f"{name}.json"
        result = invoke("compare", results_csv, "--baseline", "policy=throughput", "--candidate",
                        "policy=bola", "--resamples", "100", "--format", "json", "--out", comparison, *rules)
        assert result.exit_code in (0, 1), result.output
        result = invoke("report", results_csv, "-o", tmp_path / name, "--compare", comparison)
        assert result.exit_code == 0, result.output
        page = (tmp_path / name / "index.html").read_text()
        assert expected in page
        if not rules:
            assert "gate passed" not in page


def test_the_shared_bottleneck_scenario_counts_its_algorithms():
    from abrsim.scenario import load_scenario

    scenario = load_scenario(SCENARIO)
    algorithms = {group.policy.name for group in scenario.groups}
    players = sum(group.count for group in scenario.groups)
    assert scenario.description.startswith(f"{players} players, {len(algorithms)} algorithms,")
    des_doc = (REPO / "docs" / "des.md").read_text()
    assert f"# {players} players, {len(algorithms)} algorithms," in des_doc
    assert f"`des_shared_bottleneck.toml`: {players} players of {len(algorithms)} algorithms" in (
        REPO / "experiments" / "README.md").read_text()


def test_the_all_algorithms_experiment_counts_its_sessions():
    from conftest import shared_path

    from abrsim.abr import available
    from abrsim.sweep import load_spec, plan_sweep

    shared_path("traces", "fcc_broadband")
    plan = plan_sweep(load_spec(REPO / "experiments" / "all_algorithms_shared_traces.toml"))
    readme = (REPO / "experiments" / "README.md").read_text()
    assert f"({plan.sessions:,} with today's {len(available())} algorithms)" in readme


def test_the_refit_steps_install_what_they_import():
    import ast
    import re
    import sys

    import tomllib

    section = (REPO / "docs" / "data.md").read_text().partition("## Refitting")[2]
    assert "pip install -e '.[test]'" in section  # editable: the first step rewrites the package's source
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installed = {re.split(r"[<>=;\[ ]", spec)[0].lower()
                 for spec in project["dependencies"] + project["optional-dependencies"]["test"]}
    scripts = re.findall(r"python ((?:tools|benchmarks|tests)/\S+\.py)", section)
    assert scripts
    for script in scripts:
        tree = ast.parse((REPO / script).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                names = []
            for name in names:
                top = name.partition(".")[0]
                if top in sys.stdlib_module_names or top in ("abrsim", "__future__", "conftest"):
                    continue
                assert top in installed, f"{script} imports {top}, which the refit install does not give"
