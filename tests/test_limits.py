"""Bounded work: absurd inputs are refused before allocating, sessions end at a time limit, and
Ctrl-C stops a long run quietly (issue 14)."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from abrsim import limits
from abrsim.abr import load_policy
from abrsim.cli import cli
from abrsim.engine import des, fast
from abrsim.errors import InputError
from abrsim.ladder import Ladder, Rung
from abrsim.model import PlayerModel
from abrsim.qoe import METRICS
from abrsim.trace import Trace

DOCS = Path(__file__).resolve().parents[1] / "docs"


def run_cli(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("abrsim: error:"), result.output
    for word in words:
        assert word in lines[0]


# -- the limits themselves -----------------------------------------------------------------------


def test_check_names_the_estimate_the_limit_and_the_override(monkeypatch):
    monkeypatch.delenv("ABRSIM_MAX_SEGMENTS", raising=False)
    with pytest.raises(InputError, match=r"f\.mpd:3: segments in the timeline: 2,000,000 segments, over "
                                         r"the limit of 100,000 .*ABRSIM_MAX_SEGMENTS"):
        limits.check("segments", 2e6, "segments in the timeline", source="f.mpd", line=3)
    limits.check("segments", 1e5, "at the limit")
    monkeypatch.setenv("ABRSIM_MAX_SEGMENTS", "3000000")
    limits.check("segments", 2e6, "raised")
    with pytest.raises(InputError, match="over the limit"):
        limits.check("segments", float("nan"), "not a number")
    with pytest.raises(InputError, match="inf"):
        limits.check("segments", float("inf"), "infinite")
    monkeypatch.setenv("ABRSIM_MAX_SEGMENTS", "lots")
    with pytest.raises(InputError, match="ABRSIM_MAX_SEGMENTS='lots'"):
        limits.limit("segments")


def test_every_limit_is_documented():
    text = (DOCS / "limits.md").read_text()
    for spec in limits.LIMITS.values():
        assert spec.variable in text
        assert f"{spec.default:,}" in text


MPD = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="{duration}"
     minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
<Period><AdaptationSet mimeType="video/mp4">
<SegmentTemplate timescale="1" media="a$Number$.m4s" {template}>{timeline}</SegmentTemplate>
<Representation id="1" bandwidth="300000" width="640" height="360"/></AdaptationSet></Period></MPD>
"""


@pytest.mark.parametrize(("duration", "template", "timeline"), [
    ("PT60S", "", '<SegmentTimeline><S t="0" d="2" r="1000000000"/></SegmentTimeline>'),
    ("PT999999999H", 'duration="2"', ""),
    ("PT999999999H", "", '<SegmentTimeline><S t="0" d="2" r="-1"/></SegmentTimeline>'),
], ids=["repeat", "duration", "repeat-to-end"])
def test_a_huge_mpd_is_refused_before_expanding_it(tmp_path, duration, template, timeline):
    path = tmp_path / "big.mpd"
    path.write_text(MPD.format(duration=duration, template=template, timeline=timeline))
    started = time.perf_counter()
    result = run_cli("ladders", "import", str(path), "-o", str(tmp_path / "out.toml"))
    assert time.perf_counter() - started < 10
    one_line_error(result, "big.mpd:", "ABRSIM_MAX_SEGMENTS")
    assert not (tmp_path / "out.toml").exists()


def test_a_ladder_of_a_billion_segments_is_refused(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text('name = "huge"\nsegment_duration_s = 2.0\nsegment_count = 1000000000\n'
                    "[[rungs]]\nbitrate_bps = 300000\n")
    one_line_error(run_cli("run", "--ladder", str(path)), "huge.toml", "segment_count", "ABRSIM_MAX_SEGMENTS")
    with pytest.raises(InputError, match="segment_count"):
        Ladder.cbr([Rung(3e5)], 2.0, 10**9)


def test_traces_synth_refuses_a_trace_of_terabytes(tmp_path):
    result = run_cli("traces", "synth", "--profile", "4g", "--duration-s", "1e12", "-o", str(tmp_path / "t"))
    one_line_error(result, "field '--duration-s': samples of 1e+12 s", "ABRSIM_MAX_TRACE_SAMPLES")


def test_a_mahimahi_trace_of_billions_of_packets_is_refused_before_allocating(tmp_path):
    source = tmp_path / "big.csv"
    source.write_text("time_s,bandwidth_mbps\n0,1000000\n1000,1\n")  # 83 billion packets: 621 GiB
    out = tmp_path / "c.txt"
    one_line_error(run_cli("traces", "convert", str(source), "--to", "mahimahi", "-o", str(out)),
                   "c.txt", "'big'", "83,333,416,667 packets", "ABRSIM_MAX_MAHIMAHI_PACKETS")
    assert not out.exists()
    small = tmp_path / "small.csv"
    small.write_text("time_s,bandwidth_mbps\n0,1.2\n1,1.2\n")  # 200 packets
    one_line_error(run_cli("traces", "convert", str(small), "--to", "mahimahi", "-o", str(out),
                           env={"ABRSIM_MAX_MAHIMAHI_PACKETS": "100"}), "200 packets")
    assert run_cli("traces", "convert", str(small), "--to", "mahimahi", "-o", str(out)).exit_code == 0
    assert len(out.read_text().split()) == 200


def test_a_trace_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time_s,bandwidth_mbps\n" + "".join(f"{i},1.0\n" for i in range(2000)))
    one_line_error(run_cli("run", "--trace", str(path), env={"ABRSIM_MAX_TRACE_BYTES": "1000"}),
                   "t.csv", "file size", "ABRSIM_MAX_TRACE_BYTES")
    assert run_cli("run", "--trace", str(path)).exit_code == 0


@pytest.mark.parametrize(("key", "spec"), [
    ("replications", 'replications = 1000000000\n[[traces]]\nprofile = "4g"\n'),
    ("traces[0].count", '[[traces]]\nprofile = "4g"\ncount = 1000000000\n'),
    ("sessions in the sweep", 'replications = 5000\n[[traces]]\nprofile = "4g"\ncount = 5000\n'),
])
def test_a_sweep_of_a_billion_sessions_is_refused_before_drawing_traces(tmp_path, key, spec):
    path = tmp_path / "spec.toml"
    path.write_text('name = "big"\n' + spec)
    started = time.perf_counter()
    result = run_cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert time.perf_counter() - started < 10
    one_line_error(result, key, "ABRSIM_MAX_SESSIONS")


def test_a_scenario_of_a_billion_players_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "big"\n[bottleneck]\nbandwidth_bps = 1e8\n'
                    '[[players]]\nabr = "bola"\ncount = 1000000000\n')
    one_line_error(run_cli("simulate", str(path)), "players[0].count", "ABRSIM_MAX_PLAYERS")


def test_a_batch_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    trace = Trace([0.0], [5e6], 60.0)
    ladder = Ladder.cbr([Rung(3e5)], 2.0, 10)
    monkeypatch.setenv("ABRSIM_MAX_LOG_ROWS", "100")
    fast.run_batch([trace] * 10, ladder, "bola")
    with pytest.raises(InputError, match="ABRSIM_MAX_LOG_ROWS"):
        fast.run_batch([trace] * 11, ladder, "bola")


def test_abandonment_checks_too_close_together_are_refused():
    with pytest.raises(ValueError, match="abandon_check_s"):
        PlayerModel(abandonment=True, abandon_check_s=1e-9, abandon_check_bits=0.0)
    PlayerModel(abandonment=False, abandon_check_s=1e-9, abandon_check_bits=0.0)  # not used: fine


# -- the time limit --------------------------------------------------------------------------------

LADDER = Ladder.cbr([Rung(3e5), Rung(1e6), Rung(1e12)], 4.0, 15, name="absurd")


@pytest.mark.parametrize(("trace", "model", "policy"), [
    (Trace([0.0], [1e-3], 60.0), PlayerModel(), "bola"),
    (Trace([0.0], [1e-3], 60.0), PlayerModel(abandonment=True), "throughput"),
    (Trace([0.0], [1e-3], 60.0), PlayerModel(abandonment=True, abandon_check_bits=0.0,
                                              abandon_check_s=0.001), "bola"),
    (Trace([0.0], [5e6], 60.0), PlayerModel(request_latency_s=1e6), "bola"),
    (Trace([0.0], [5e6], 60.0), PlayerModel(goodput_factor=1e-12), "bola"),
    (Trace([0.0, 1.0], [5e6, 0.0], 60.0), PlayerModel(first_rung=2), "bola"),  # 1 Tbit/s rung
], ids=["slow", "slow-abandon", "slow-abandon-1ms", "latency", "goodput", "huge-rung"])
def test_a_session_that_cannot_finish_ends_timed_out_in_every_engine(trace, model, policy):
    limit_s = model.time_limit_s(LADDER)
    started = time.perf_counter()
    batch = fast.run_batch([trace, trace], LADDER, policy, model)
    python_policy = load_policy(str(DOCS / "examples" / "buffer_based.py:BufferBased"))
    python = fast.run_batch([trace], LADDER, python_policy, model)
    alone = des.run_session(trace, LADDER, policy, model)
    assert time.perf_counter() - started < 60
    metrics = batch.metrics()
    column = METRICS.index("timed_out")
    assert (metrics[:, column] == 1.0).all()
    assert python.metrics()[0, column] == 1.0
    log = batch.session_log(0)
    assert log.done_s[-1] > limit_s
    # Conservation of time holds for the part played; the buffer plays out after the cut.
    startup_s, played_s, rebuffer_s = metrics[0, 0], metrics[0, 4], metrics[0, 1]
    assert startup_s + played_s + rebuffer_s == pytest.approx(log.end_s, rel=1e-9)
    # The discrete-event player, alone on its link, ends the same way at the same time.
    np.testing.assert_allclose(alone.done_s, log.done_s, rtol=1e-12)
    np.testing.assert_array_equal(alone.abandoned, log.abandoned)


def test_a_pause_ends_at_the_time_limit_in_every_engine(tmp_path):
    (tmp_path / "sleeper.py").write_text(textwrap.dedent("""
        class Sleeper:
            def choose(self, obs):
                return (0, 1e9) if obs.segment_index == 3 else 0
    """))
    policy = load_policy(f"{tmp_path / 'sleeper.py'}:Sleeper")
    trace, model = Trace([0.0], [5e6], 60.0), PlayerModel()
    limit_s = model.time_limit_s(LADDER)
    batch = fast.run_batch([trace], LADDER, policy, model)
    log = batch.session_log(0)
    metrics = dict(zip(METRICS, batch.metrics()[0], strict=True))
    assert metrics["timed_out"] == 1.0
    assert log.end_s <= limit_s + 4.0  # the buffer (at most a few segments) plays out after the cut
    assert metrics["rebuffer_s"] < limit_s
    accounted_s = metrics["startup_s"] + metrics["played_s"] + metrics["rebuffer_s"]
    assert accounted_s == pytest.approx(log.end_s, rel=1e-9)
    alone = des.run_session(trace, LADDER, policy, model)
    np.testing.assert_allclose(alone.done_s, log.done_s, rtol=1e-12)


def test_time_limit_is_a_model_field_with_results_column():
    model = PlayerModel(session_time_limit_factor=1.0)
    trace = Trace([0.0], [4e5], 60.0)  # a little slower than 1 Mbit/s media needs
    ladder = Ladder.cbr([Rung(1e6)], 4.0, 15)
    result = fast.run_batch([trace], ladder, "bola", model)
    assert result.session_log(0).done_s[-1] > 60.0
    with pytest.raises(InputError, match="session_time_limit_factor"):
        PlayerModel().replace(session_time_limit_factor=0.5)
    result = fast.run_batch([trace], ladder, "bola", PlayerModel())
    assert result.metrics()[0, METRICS.index("timed_out")] == 0.0  # the default leaves it room


# -- Ctrl-C ------------------------------------------------------------------------------------------


def test_ctrl_c_reaches_python_within_a_second_of_a_long_compiled_run():
    trace = Trace([0.0, 5.0], [3e6, 1e6], 10.0)
    ladder = Ladder.cbr([Rung(3e5), Rung(1e6), Rung(3e6)], 4.0, 15)
    fast.run_batch([trace], ladder, "robustmpc")  # compiled (or loaded) before the clock starts
    timer = threading.Timer(1.0, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fast.run_batch([trace] * 200_000, ladder, "robustmpc")  # tens of seconds in one call before
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 2.0


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_ctrl_c_ends_a_command_quietly_with_exit_130(tmp_path):
    out = tmp_path / "out.csv"
    # Compiled (or loaded) first, so that the interrupt lands in the run.
    subprocess.run([sys.executable, "-m", "abrsim", "run", "--abr", "robustmpc"], capture_output=True,
                   check=True)
    # The most segments allowed and eight rungs (RobustMPC's search grows with the rungs): a run of
    # about 11 s here, almost four times the wait below (five rungs once took 10 s, then 3 s, and
    # raced), in sessions of about 2 s, the longest an interrupt waits for.
    ladder = tmp_path / "long.toml"
    ladder.write_text('name = "long"\nsegment_duration_s = 2.0\nsegment_count = 100000\n'
                      + "".join(f"[[rungs]]\nbitrate_bps = {b}\n"
                                for b in (3e5, 5e5, 7.5e5, 1.2e6, 1.85e6, 2.85e6, 4.3e6, 6e6)))
    command = [sys.executable, "-m", "abrsim", "run", "--abr", "robustmpc", "--ladder", str(ladder),
               "--format", "csv", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)
        if process.poll() is not None:
            pytest.skip("the run finished before it could be interrupted")
        sent = time.perf_counter()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        took_s = time.perf_counter() - sent
    finally:
        if process.poll() is None:
            process.kill()
    if process.returncode == 0 and "abrsim: wrote" in stderr:
        pytest.skip("the run finished as it was interrupted")  # and ended as a finished run should
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "abrsim: interrupted"
    assert not list(tmp_path.glob("out.csv*"))
    assert took_s < 5.0, took_s  # one session of 100,000 RobustMPC segments, on a loaded machine


def test_ctrl_c_outside_a_command_is_one_line_and_exit_130_too(monkeypatch, capsys):
    """A Ctrl-C just before or after the command's own handling (the CI once caught one that came
    in as the process left, and died of SIGINT)."""
    import abrsim.cli

    previous = signal.getsignal(signal.SIGINT)

    def interrupted(**_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(abrsim.cli, "cli", interrupted)
    monkeypatch.setenv("NUMBA_OPT", os.environ.get("NUMBA_OPT", "3"))  # (main sets it if unset)
    try:
        with pytest.raises(SystemExit) as exit_:
            abrsim.cli.main()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # from now on, leaving is not undone
    finally:
        signal.signal(signal.SIGINT, previous)
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == "abrsim: interrupted"


def test_a_batch_run_in_slices_equals_one_run_in_one_call(monkeypatch, vbr_ladder):
    rng = np.random.default_rng(3)
    traces = [Trace(np.arange(30.0), rng.uniform(2e5, 6e6, 30), 30.0, name=f"t{i}") for i in range(40)]
    model = PlayerModel(abandonment=True)
    whole = fast.run_batch(traces, vbr_ladder, "bola", model)
    monkeypatch.setattr(fast, "FIRST_SLICE_SEGMENTS", 1)  # one session per slice, then ...
    monkeypatch.setattr(fast, "SLICE_S", 1e-9)  # ... slices that never grow
    sliced = fast.run_batch(traces, vbr_ladder, "bola", model)
    assert sliced.log.tobytes() == whole.log.tobytes()
    assert sliced.rungs.tobytes() == whole.rungs.tobytes()
    assert sliced.session.tobytes() == whole.session.tobytes()


@pytest.mark.parametrize("param", ["wait_step_s=1e300", "max_buffer_s=1e300", "request_latency_s=1e9",
                                   "abandon_check_s=1e300"])
def test_model_durations_past_days_are_refused(param):
    one_line_error(run_cli("run", "--param", param), param.partition("=")[0])


def test_a_long_wait_step_times_out_instead_of_hanging():
    trace = Trace([0.0], [5e6], 60.0)
    batch = fast.run_batch([trace], LADDER, "bola", PlayerModel(wait_step_s=1e6))
    assert batch.metrics()[0, METRICS.index("timed_out")] == 1.0


FLASH = (Path(__file__).resolve().parents[1] / "experiments" / "des_flash_crowd.toml").read_text()


@pytest.mark.parametrize(("old", "new", "key"), [
    ("rate_per_s = 50.0", "rate_per_s = 1e-300", "arrivals"),
    ("dns_s = { dist = \"uniform\", low_s = 0.01, high_s = 0.05 }", "dns_s = 1e300", "setup.dns_s"),
    ("dns_s = { dist = \"uniform\", low_s = 0.01, high_s = 0.05 }",
     "dns_s = { dist = \"lognormal\", median_s = 1e300, sigma = 1 }", "setup.dns_s"),
    ("dns_s = { dist = \"uniform\", low_s = 0.01, high_s = 0.05 }",
     "dns_s = { dist = \"lognormal\", median_s = 1, sigma = 50 }", "setup.dns_s"),
])
def test_scenario_times_past_days_are_refused(tmp_path, old, new, key):
    assert old in FLASH
    path = tmp_path / "s.toml"
    path.write_text(FLASH.replace(old, new))
    one_line_error(run_cli("simulate", str(path)), key)
