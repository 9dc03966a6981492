"""Golden comparisons with the original Sabre and Pensieve on real traces (../shared/reference).

These tests fail, not skip, whenever ../shared/reference is present; they skip only on a
machine without it.
"""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import shared_path

from abrsim.parity import check_reference, summarize


@pytest.fixture(scope="module")
def sabre_rows():
    return check_reference(shared_path("reference", "sabre"))


@pytest.fixture(scope="module")
def pensieve_rows():
    return check_reference(shared_path("reference", "pensieve"))


def test_pensieve_every_trace_matches(pensieve_rows):
    # bb and RobustMPC on FCC, HSDPA and Belgium 4G: identical rung per chunk, per-chunk delay and
    # rebuffer within 1e-6 relative, QoE_lin within 1e-6 relative.
    assert len(pensieve_rows) == 460
    failed = [f"{r.algorithm} {r.trace}: {r.failure}" for r in pensieve_rows if not r.passed]
    assert failed == []


def test_sabre_every_session_present(sabre_rows):
    assert Counter((r.algorithm, r.config) for r in sabre_rows) == {
        (a, c): 86 for a in ("bola", "bolae", "throughput", "dynamic", "dynamicdash")
        for c in ("noa", "default")}


def test_sabre_without_abandonment_matches_every_row(sabre_rows):
    # Every noa row is within tolerance, except that Sabre sometimes counts one extra,
    # zero-length rebuffer event (its README's quirk 2): the final playout plays level =
    # 3000 n - fcc ms segment by segment and can be left one rounding unit above zero. Every
    # stall during a download matches, and so does the total rebuffer time.
    noa = [r for r in sabre_rows if r.config == "noa"]
    failed = [f"{r.algorithm} {r.trace}: {r.failure}" for r in noa if not (r.passed or r.residue_only)]
    assert failed == []
    assert sum(r.residue_only for r in noa) <= 20  # 16 of 430 as measured


def test_sabre_with_abandonment_matches_95_percent(sabre_rows):
    summary = summarize(sabre_rows)
    assert summary["sabre_default_pass_rate"] >= 0.95  # 409 of 430 as measured
    assert summary["sabre_default_pass_rate_except_residue_events"] >= 0.99
