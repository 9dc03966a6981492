from __future__ import annotations

import math

import naive
import numpy as np
import pytest

from abrsim.engine.fast import run_batch
from abrsim.ladder import Ladder, Rung
from abrsim.model import PlayerModel
from abrsim.qoe import METRICS, metrics_table
from abrsim.results import RESULT_FIELDS, format_rows, rows_from_batch, summarize_rows
from abrsim.trace import Trace


@pytest.mark.parametrize("name", ["bola", "throughput"])
def test_metrics_match_their_definitions(name, tiny_trace, vbr_ladder):
    model = PlayerModel(network="throughput")  # the naive twin's download model
    batch = run_batch([tiny_trace], vbr_ladder, name, model)
    got = dict(zip(METRICS, batch.metrics()[0]))
    policy = batch.policy
    records, startup_s, _, events = naive.session(tiny_trace, vbr_ladder, name, policy.params, model)
    for key, value in naive.qoe(records, startup_s, events, vbr_ladder).items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    assert math.isnan(got["mean_quality"])
    assert math.isnan(got["mean_quality_change"])
    assert math.isnan(got["below_quality_floor_s"])
    assert got["abandoned"] == 0
    assert got["wasted_bits"] == 0


def test_hand_computed_session():
    # Rungs 0, 1, 1, 0 of a 1/3 Mbit/s ladder, 2 s segments, one 1.5 s stall on segment 2.
    rungs = np.array([0, 1, 1, 0])
    stall_s = np.array([0.0, 0.0, 1.5, 0.0])
    sizes = np.array([2e6, 6e6, 6e6, 2e6])
    quality = np.array([[40.0, 80.0]] * 4)
    row = metrics_table(rungs, stall_s, sizes, sizes, np.zeros(4), np.array([0]), np.array([4]),
                        np.array([0.7]), np.array([1]), np.array([1e6, 3e6]), quality, 2.0)[0]
    got = dict(zip(METRICS, row))
    assert got["startup_s"] == 0.7
    assert got["rebuffer_s"] == 1.5
    assert got["rebuffer_count"] == 1
    assert got["played_s"] == 8.0
    assert got["rebuffer_ratio"] == pytest.approx(1.5 / 9.5)
    assert got["mean_bitrate_bps"] == 2e6
    assert got["mean_quality"] == 60.0
    assert got["mean_quality_change"] == pytest.approx((40 + 0 + 40) / 3)
    assert got["below_quality_floor_s"] == 4.0  # the two segments at quality 40
    assert got["switch_count"] == 2
    assert got["switch_magnitude_bps"] == 2e6
    assert got["qoe_lin"] == pytest.approx((1 + 3 + 3 + 1) - 4.3 * 1.5 - (2 + 2))
    assert got["downloaded_bits"] == 16e6
    u1 = np.log(3.0)
    assert got["qoe_log"] == pytest.approx((0 + u1 + u1 + 0) - 2.66 * 1.5 - (u1 + u1))
    hd_1m = 2 + (3 - 2) * (1e6 - 750e3) / (1200e3 - 750e3)
    hd_3m = 15 + (20 - 15) * (3e6 - 2850e3) / (4300e3 - 2850e3)
    assert got["qoe_hd"] == pytest.approx(2 * hd_1m + 2 * hd_3m - 8 * 1.5 - 2 * (hd_3m - hd_1m))


def test_abandoned_downloads_are_wasted_not_played():
    rungs = np.array([0, 1, 0])
    stall_s = np.array([0.0, 0.5, 0.25])
    sizes = np.array([2e6, 6e6, 2e6])
    downloaded = np.array([2e6, 1.5e6, 2e6])
    abandoned = np.array([0.0, 1.0, 0.0])
    row = metrics_table(rungs, stall_s, sizes, downloaded, abandoned, np.array([0]), np.array([3]),
                        np.array([0.4]), np.array([1]), np.array([1e6, 3e6]), None, 2.0)[0]
    got = dict(zip(METRICS, row))
    assert got["played_s"] == 4.0
    assert got["switch_count"] == 0
    assert got["mean_bitrate_bps"] == 1e6
    assert got["rebuffer_s"] == 0.75
    assert got["wasted_bits"] == 1.5e6
    assert got["abandoned_downloads"] == 1
    assert got["downloaded_bits"] == 5.5e6


def test_quality_table_is_averaged():
    ladder = Ladder(tuple(Rung(b) for b in (1e6, 2e6)), 2.0, np.full((3, 2), 4e6),
                    quality=np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]))
    batch = run_batch([Trace([0.0], [1e9], 1.0)], ladder, "throughput")
    rungs = batch.session_log(0).rung
    expected = np.mean([ladder.quality[i, r] for i, r in enumerate(rungs)])
    assert dict(zip(METRICS, batch.metrics()[0]))["mean_quality"] == expected


def test_rows_schema_and_formats(tiny_trace, vbr_ladder):
    rows = rows_from_batch(run_batch([tiny_trace, tiny_trace], vbr_ladder, "bola", seed=3), "demo")
    assert list(rows[0]) == list(RESULT_FIELDS)
    assert rows[0]["scenario"] == "demo"
    assert rows[0]["seed"] == 3
    assert isinstance(rows[0]["rebuffer_count"], int)
    summary = summarize_rows(rows)
    assert summary[0]["sessions"] == 2
    assert summary[0]["qoe_lin_mean"] == pytest.approx(rows[0]["qoe_lin"])
    import csv
    import io
    import json

    decoded = json.loads(format_rows(rows, "json"))
    assert decoded[0]["mean_quality"] is None
    assert decoded[0]["qoe_lin"] == rows[0]["qoe_lin"]
    table = list(csv.DictReader(io.StringIO(format_rows(rows, "csv"))))
    assert float(table[1]["qoe_lin"]) == rows[1]["qoe_lin"]  # full precision
    text = format_rows(rows, "table", summary)
    assert "per-algorithm summary" in text


def test_bola_quality_utility(vbr_ladder, tiny_trace):
    from abrsim.abr import make, quality_utilities
    from abrsim.errors import InputError

    with pytest.raises(InputError, match="quality"):
        run_batch([tiny_trace], vbr_ladder, make("bola", utility="quality"))
    # With quality proportional to log-bitrate, the quality utility is the log-bitrate utility.
    rates = vbr_ladder.bitrates_bps
    quality = np.tile(10 + 20 * np.log(rates / rates[0]), (vbr_ladder.segment_count, 1))
    rated = Ladder(vbr_ladder.rungs, vbr_ladder.segment_duration_s, vbr_ladder.size_bits, quality=quality)
    np.testing.assert_allclose(quality_utilities(rated), np.log(rates / rates[0]), atol=1e-12)
    by_quality = run_batch([tiny_trace], rated, make("bola", utility="quality")).session_log(0)
    by_bitrate = run_batch([tiny_trace], rated, make("bola")).session_log(0)
    np.testing.assert_array_equal(by_quality.rung, by_bitrate.rung)
    # A quality curve that saturates early makes BOLA settle lower.
    flat = np.tile(np.minimum(95.0, 60 + 200 * (rates - rates[0]) / rates[-1]), (vbr_ladder.segment_count, 1))
    saturated = Ladder(vbr_ladder.rungs, vbr_ladder.segment_duration_s, vbr_ladder.size_bits, quality=flat)
    steady = Trace([0.0], [20e6], 1.0)
    top_by_quality = run_batch([steady], saturated, make("bola", utility="quality")).session_log(0).rung
    top_by_bitrate = run_batch([steady], saturated, make("bola")).session_log(0).rung
    assert top_by_quality.mean() <= top_by_bitrate.mean()


def test_a_session_that_played_nothing_has_nan_means():
    row = metrics_table(np.array([2]), np.array([0.0]), np.array([6e6]), np.array([1e6]), np.array([1.0]),
                        np.array([0]), np.array([1]), np.array([3.5]), np.array([0]),
                        np.array([1e6, 2e6, 3e6]), None, 2.0)[0]
    got = dict(zip(METRICS, row))
    assert got["played_s"] == 0.0
    assert math.isnan(got["mean_bitrate_bps"])
    assert got["rebuffer_ratio"] == 0.0
    assert got["wasted_bits"] == 1e6
