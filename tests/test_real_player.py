"""The real player (issue 16): dash.js settings from the model, the page's event log, the asset's
ladder MPD, the comparison's figures; and one trace played for real (marker ``emulation``: root,
``tools/emulation/emulation.sh up``, chromium, ffmpeg and npm; skipped with the reason otherwise).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from abrsim.abr import make
from abrsim.emulation.asset import AssetSpec, _write_ladder_mpd
from abrsim.emulation.player import _link_trace, _parse, dashjs_settings, fetch_dashjs, player_unavailable
from abrsim.emulation.realplayer import cut_traces, simulate, summarize, validate_real_player
from abrsim.manifest import read_manifest
from abrsim.model import DASHJS, get_preset
from abrsim.trace import Trace, write_abrsim_csv


def defaults():
    return make("dashjs").resolved(DASHJS).params


def test_dashjs_preset_is_a_tcp_model_with_dashjs_scheduling():
    model = get_preset("dashjs")
    assert model is DASHJS
    assert (model.network, model.max_buffer_s, model.wait_step_s, model.first_rung) == ("tcp", 18.0, 0.5, -1)
    assert model.cap_counts_next_segment and model.abandonment and not model.tcp_idle_restart


def test_dashjs_settings_come_from_the_model_and_the_rule_set():
    model = DASHJS.replace(max_buffer_s=24.0, abandonment=False, wait_step_s=0.25)
    params = {**defaults(), "bola_rule": False, "ibr_safety_factor": 0.5}
    settings = dashjs_settings(model, params, fast_switching=True)["streaming"]
    buffer = settings["buffer"]
    assert buffer["fastSwitchEnabled"] is True
    assert buffer["bufferTimeDefault"] == buffer["bufferTimeAtTopQuality"] == 24.0
    assert settings["scheduling"]["defaultTimeout"] == 250
    rules = settings["abr"]["rules"]
    assert rules["bolaRule"]["active"] is False and rules["throughputRule"]["active"] is True
    assert rules["abandonRequestsRule"]["active"] is False  # the model's abandonment is off
    assert rules["insufficientBufferRule"]["parameters"]["throughputSafetyFactor"] == 0.5
    assert settings["abr"]["initialBitrate"]["video"] == 1000.0
    assert settings["abr"]["throughput"]["bandwidthSafetyFactor"] == 0.9
    on = dashjs_settings(DASHJS, defaults())["streaming"]
    assert on["abr"]["rules"]["abandonRequestsRule"]["active"] is True
    assert on["buffer"]["fastSwitchEnabled"] is False


def test_page_events_become_a_run_on_the_players_clock():
    zero_ms, offset_s = 1_000_000.0, 6.0
    start = zero_ms + offset_s * 1000

    def at(s):
        return start + s * 1000

    events = [
        {"kind": "config_received", "t_ms": at(-2), "dashjs_version": "5.1.1"},
        {"kind": "player_start", "t_ms": at(0)},
        {"kind": "fragment_completed", "t_ms": at(1.01), "url": "http://x/chunk-1-00001.m4s",
         "start_ms": at(0.25), "first_byte_ms": at(0.3), "end_ms": at(1.0), "bytes_loaded": 1000},
        {"kind": "video_playing", "t_ms": at(1.05)},
        {"kind": "fragment_abandoned", "t_ms": at(2.5), "url": "http://x/chunk-3-00002.m4s",
         "start_ms": at(1.1), "first_byte_ms": at(1.2), "end_ms": None, "bytes_loaded": 500},
        {"kind": "video_waiting", "t_ms": at(5.0)},
        {"kind": "fragment_completed", "t_ms": at(5.6), "url": "http://x/chunk-0-00002.m4s",
         "start_ms": at(2.5), "first_byte_ms": at(2.6), "end_ms": at(5.5), "bytes_loaded": 300},
        {"kind": "video_playing", "t_ms": at(5.7)},
        {"kind": "buffer_level", "t_ms": at(3.0), "level_s": 2.0},
        {"kind": "video_ended", "t_ms": at(13.0)},
    ]
    run = _parse(events, zero_ms, offset_s)
    assert run.dashjs_version == "5.1.1" and run.late_s == 0.0
    assert run.startup_s == pytest.approx(1.05)
    assert run.first_media_request_s == pytest.approx(0.25)
    assert [(d["segment"], d["rung"], d["abandoned"]) for d in run.downloads] == [
        (0, 1, False), (1, 3, True), (1, 0, False)]
    assert run.downloads[1]["done_s"] == pytest.approx(2.5)  # no end date: the event's time
    assert run.stalls == [pytest.approx((5.0, 5.7))]
    assert run.stall_s == pytest.approx(0.7)
    assert run.played_rungs(3, 4.0).tolist() == [1, 0, -1]
    assert run.buffer.tolist() == [[pytest.approx(3.0), 2.0]]


def test_link_trace_is_a_preroll_then_two_passes():
    trace = Trace([0.0, 10.0], [1e6, 2e6], 20.0, measures="capacity")
    link = _link_trace(trace, 6.0, 24e6)
    assert link.start_s.tolist() == [0.0, 6.0, 16.0, 26.0, 36.0]
    assert link.bandwidth_bps.tolist() == [24e6, 1e6, 2e6, 1e6, 2e6]
    assert link.duration_s == 46.0 and link.measures == "capacity"


def test_ladder_mpd_carries_the_real_segment_sizes(tmp_path):
    spec = AssetSpec(bitrates_kbps=(300, 900), duration_s=8, segment_duration_s=4)
    sizes = [[150_000, 149_000], [450_000, 452_000]]
    _write_ladder_mpd(spec, tmp_path, sizes)
    ladder = read_manifest(tmp_path / "ladder.mpd", "dash").ladder
    assert ladder.bitrates_bps.tolist() == [300e3, 900e3]
    assert ladder.segment_duration_s == 4.0
    assert (ladder.size_bits.T / 8).tolist() == sizes


def test_asset_spec_refuses_partial_segments():
    with pytest.raises(ValueError, match="duration_s"):
        AssetSpec(duration_s=10, segment_duration_s=4)
    with pytest.raises(ValueError, match="bitrates_kbps"):
        AssetSpec(bitrates_kbps=(900, 300))


def test_cut_traces_and_simulate(tmp_path):
    write_abrsim_csv(Trace([0.0, 30.0], [3e6, 1e6], 90.0, name="a"), tmp_path / "a.csv")
    (trace,) = cut_traces(tmp_path, 60.0)
    assert trace.duration_s == 60.0 and trace.name == "a"
    from abrsim.ladder import load_ladder

    ladder = load_ladder("hls")
    log, metrics = simulate(trace, ladder, DASHJS.replace(segment_limit=10), defaults(), preroll_s=0.3)
    assert log.download_count >= 10
    # dash.js's 1000 kbit/s initial bitrate: the highest rung at most that
    assert log.rung[0] == np.flatnonzero(ladder.bitrates_bps <= 1e6)[-1]
    from abrsim.qoe import METRICS

    assert metrics[METRICS.index("startup_s")] > 0 and metrics[METRICS.index("rebuffer_s")] >= 0


def test_summary_means_and_worst():
    figures = [{"rung_agreement": 1.0, "real_rung_agreement": 1.0, "startup_abs_error_s": 0.1,
                "startup_ok": True,
                "stall_abs_error_s": 0.0, "stall_ok": True, "bitrate_rel_error": 0.02, "repeats": 2},
               {"rung_agreement": 0.8, "real_rung_agreement": float("nan"), "startup_abs_error_s": 0.3,
                "startup_ok": True,
                "stall_abs_error_s": 1.0, "stall_ok": False, "bitrate_rel_error": 0.04, "repeats": 2}]
    summary = summarize(figures)
    assert summary["rung_agreement"] == pytest.approx(0.9)
    assert summary["startup_abs_error_max_s"] == pytest.approx(0.3)
    assert summary["stall_ok_share"] == 0.5
    assert summary["real_rung_agreement"] == 1.0
    assert (summary["traces"], summary["repeats"]) == (2, 2)


_REASON = player_unavailable()


@pytest.mark.emulation
@pytest.mark.skipif(_REASON is not None, reason=f"real player unavailable: {_REASON}")
def test_one_trace_real_and_simulated(tmp_path):
    """One real run of a 24 s asset on a 2 Mbit/s link (about a minute with the encode)."""
    try:
        fetch_dashjs()
    except RuntimeError as exc:  # npm is there but the registry is not reachable
        pytest.skip(f"dash.js cannot be fetched: {exc}")
    trace = Trace([0.0], [2e6], 24.0, name="constant_2mbps")
    spec = AssetSpec(duration_s=24)
    comparisons, summary = validate_real_player(
        [trace], tmp_path, repeats=1, model=DASHJS.replace(abandonment=False), asset_spec=spec)
    (comparison,) = comparisons
    (run,) = comparison.runs
    assert run.dashjs_version.startswith("5.1.1")
    assert run.played_rungs(spec.segment_count, 4.0).min() >= 0  # every segment arrived
    assert summary["rung_agreement"] >= 0.8
    assert summary["startup_abs_error_s"] < 0.5
    assert summary["stall_abs_error_s"] < 0.5
    with open(tmp_path / "results.csv") as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["source"] for row in rows) == ["abrsim", "real"]
    assert (tmp_path / "index.html").read_text().count("<img") == 1


def test_command_line_help_names_the_options():
    from click.testing import CliRunner

    from abrsim.cli import cli

    result = CliRunner().invoke(cli, ["validate", "real-player", "--help"])
    assert result.exit_code == 0
    for option in ("--traces", "--repeats", "--out", "--fast-switching", "--param"):
        assert option in result.output


def test_a_replacement_plays_only_if_it_arrived_before_its_segment():
    def done(segment, rung, end_s):
        return {"kind": "fragment_completed", "t_ms": end_s * 1000,
                "url": f"chunk-{rung}-{segment + 1:05d}.m4s",
                "start_ms": (end_s - 1) * 1000, "first_byte_ms": (end_s - 0.9) * 1000, "end_ms": end_s * 1000,
                "bytes_loaded": 1}

    events = [{"kind": "player_start", "t_ms": 0.0}, done(0, 1, 1.0), done(1, 1, 2.0), done(2, 0, 3.0),
              done(0, 3, 4.0),   # segment 0 (0-4 s of media) again when playback is at 3 s: too late
              done(2, 4, 5.0)]   # segment 2 (8-12 s) again at 5 s: in time, it plays
    events += [{"kind": "buffer_level", "t_ms": t * 1000.0, "level_s": 1.0, "time_s": max(t - 1.0, 0.0)}
               for t in range(0, 12)]
    run = _parse(events, 0.0, 0.0)
    assert run.played(4.0) == [True, True, False, False, True]
    assert run.played_rungs(3, 4.0).tolist() == [1, 1, 4]
