"""Golden comparison with the original Sabre on 86 HSDPA 3G traces (../shared/reference/sabre).

abrsim's default player model and its ``bola`` kernel (BOLA-U, V scaling, gamma_p 5, 25 s buffer)
reproduce Sabre's ``-a bola -noa`` runs session by session, to Sabre's printed precision. The
configurations with abandonment and Sabre's other algorithms need the ``sabre`` preset (issue 3).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import shared_path

from abrsim.engine.fast import run_batch
from abrsim.ladder import load_ladder
from abrsim.model import PlayerModel
from abrsim.trace import load_trace

PRINTED = 1e-6  # Sabre prints %f


@pytest.fixture(scope="module")
def sabre_bola():
    folder = shared_path("reference", "sabre")
    with open(folder / "summary_3g.csv", newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["algorithm"] == "bola" and r["config"] == "noa"]
    ladder = load_ladder(str(folder / "inputs" / "bbb.json"))
    traces = [load_trace(folder / "inputs" / "3g" / r["trace"]) for r in rows]
    # Sabre: latency from the trace, first segment at quality 0, 25 s buffer, EWMA 3 s / 8 s.
    batch = run_batch(traces, ladder, "bola", PlayerModel(max_buffer_s=25.0, first_rung=0))
    return rows, ladder, batch


def test_all_86_sessions_present(sabre_bola):
    rows, _, batch = sabre_bola
    assert len(rows) == 86
    assert len(batch) == 86


def test_bola_matches_sabre_session_by_session(sabre_bola):
    rows, ladder, batch = sabre_bola
    kbps = ladder.bitrates_bps / 1000
    residue_events = 0
    for index, row in enumerate(rows):
        log = batch.session_log(index)
        played = kbps[log.rung]
        utility = np.log(played / kbps[0])
        where = row["trace"]
        assert played.sum() == pytest.approx(float(row["total_played_bitrate"]), abs=PRINTED), where
        assert utility.sum() == pytest.approx(float(row["total_played_utility"]), abs=PRINTED), where
        assert np.abs(np.diff(played)).sum() == pytest.approx(float(row["total_bitrate_change"]),
                                                              abs=PRINTED), where
        assert log.stall_s.sum() == pytest.approx(float(row["total_rebuffer"]), abs=PRINTED), where
        # Sabre sometimes counts one extra, zero-length stall from float residue (its README,
        # quirk 2); the matching total_rebuffer above shows that the extra event is empty.
        extra = int(float(row["total_rebuffer_events"])) - log.rebuffer_count
        assert extra in (0, 1), where
        residue_events += extra
        assert log.end_s == pytest.approx(float(row["total_play_time"]), abs=PRINTED), where
        assert log.startup_s == pytest.approx(float(row["startup_s"]), abs=PRINTED), where
    assert residue_events <= 6  # 6 of the 86 sessions, as measured
