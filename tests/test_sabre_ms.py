"""Sabre's millisecond replay (abrsim.engine._sabre_ms).

Its network steps agree with the session loop's (in seconds), a replayed session ends when the
session loop says and stalls as long, the option changes nothing but the residue event, and the
residue is float arithmetic, not a stall.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from abrsim.engine import _sabre_ms as ms
from abrsim.engine import step as loop
from abrsim.engine.fast import run_batch
from abrsim.errors import InputError
from abrsim.ladder import Ladder, Rung
from abrsim.model import SABRE
from abrsim.trace import Trace


@st.composite
def sabre_traces(draw):
    """A trace as Sabre's JSON gives one: whole ms, whole kbit/s (some 0), whole-ms latency."""
    samples = draw(st.integers(1, 6))
    duration_ms = np.array(draw(st.lists(st.integers(50, 4000), min_size=samples, max_size=samples)), float)
    kbps = np.array(draw(st.lists(st.integers(0, 6000), min_size=samples, max_size=samples)), float)
    if not kbps.any():
        kbps[0] = 500.0
    # Latency >= 1 ms: at the very end of a sample Sabre still uses that sample's latency, so a
    # zero latency there means no latency, where the session loop uses the next sample's.
    latency_ms = np.array(draw(st.lists(st.integers(1, 300), min_size=samples, max_size=samples)), float)
    start_ms = np.concatenate(([0.0], np.cumsum(duration_ms[:-1])))
    return Trace(start_ms / 1000.0, kbps * 1000.0, duration_ms.sum() / 1000.0, latency_s=latency_ms / 1000.0)


def cursor_at(trace, time_ms):
    """The ms cursor ``(period, left_ms)`` after ``time_ms`` of trace time."""
    period, left_ms = 0, ms.period_ms(trace.start_s, trace.duration_s, 0)
    return ms.delay(trace.start_s, trace.duration_s, period, left_ms, float(time_ms))


@settings(max_examples=300, deadline=None)
@given(trace=sabre_traces(), at_ms=st.integers(0, 20000), size_bits=st.floats(1.0, 5e6))
def test_download_takes_as_long_as_the_session_loops_transfer(trace, at_ms, size_bits):
    period, left_ms = cursor_at(trace, at_ms)
    spent_ms, _, _ = ms.download(trace.start_s, trace.bandwidth_bps, 1.0, trace.duration_s, period, left_ms,
                                 size_bits)
    done_s, sent_bits, _, _ = loop.transfer(trace.start_s, trace.bandwidth_bps, trace.duration_s, 1.0,
                                            at_ms / 1000.0, size_bits, 0.0, 0.0, 0, 0.0, np.inf)
    assert sent_bits == pytest.approx(size_bits, rel=1e-9)
    assert spent_ms / 1000.0 == pytest.approx(done_s - at_ms / 1000.0, rel=1e-9, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(trace=sabre_traces(), at_ms=st.integers(0, 20000), size_bits=st.floats(1.0, 5e6),
       min_bits=st.sampled_from([0.0, 12000.0]), min_ms=st.sampled_from([-50.0, 0.0, 50.0, 400.0]))
def test_an_abandonment_step_is_the_session_loops_step(trace, at_ms, size_bits, min_bits, min_ms):
    if min_bits <= 0.0 and min_ms <= 0.0:
        min_bits = 1.0
    period, left_ms = cursor_at(trace, at_ms)
    spent_ms, bits, _, _ = ms.minimal_download(trace.start_s, trace.bandwidth_bps, 1.0, trace.duration_s,
                                               period, left_ms, size_bits, min_bits, min_ms)
    done_s, sent_bits, _, _ = loop.transfer(trace.start_s, trace.bandwidth_bps, trace.duration_s, 1.0,
                                            at_ms / 1000.0, size_bits, min_bits, min_ms / 1000.0, 0, 0.0,
                                            np.inf)
    assert bits == pytest.approx(sent_bits, rel=1e-9, abs=1e-6)
    assert spent_ms / 1000.0 == pytest.approx(done_s - at_ms / 1000.0, rel=1e-9, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(trace=sabre_traces(), at_ms=st.integers(0, 20000))
def test_latency_continues_at_the_next_samples_latency_like_the_session_loop(trace, at_ms):
    period, left_ms = cursor_at(trace, at_ms)
    spent_ms, _, _ = ms.latency_delay(trace.start_s, trace.latency_s, True, 0.0, trace.duration_s, period,
                                      left_ms)
    first_byte_s, _, _ = loop.scaled_latency(trace.start_s, trace.latency_s, trace.duration_s,
                                             at_ms / 1000.0, 0, 0.0)
    assert spent_ms / 1000.0 == pytest.approx(first_byte_s - at_ms / 1000.0, rel=1e-9, abs=1e-9)


def test_the_final_playout_can_leave_a_float_residue():
    # 2 segments with 1188.7684866509594 ms of the first played: exactly 4811.23... ms remain,
    # but Sabre's level 3000 * 2 - fcc and its segment-by-segment playout leave 4.5e-13 ms over,
    # a new "stall" of zero length.
    fcc_ms = 1188.7684866509594
    segments, fcc_ms, stall_ms, new = ms.deplete(2, fcc_ms, 3000.0 * 2 - fcc_ms, 3000.0)
    assert (segments, new) == (0, True)
    assert 0.0 < stall_ms < 1e-12
    # With a half-played segment the arithmetic is exact: no residue.
    assert ms.deplete(2, 1500.0, 4500.0, 3000.0) == (0, 0.0, 0.0, False)
    # Playing less than the first segment's rest keeps it in the buffer; an empty buffer only stalls on.
    assert ms.deplete(2, 1000.0, 500.0, 3000.0) == (2, 1500.0, 0.0, False)
    assert ms.deplete(0, 0.0, 700.0, 3000.0) == (0, 0.0, 700.0, False)


def short_ladder(seed: int) -> Ladder:
    rng = np.random.default_rng(seed)
    bitrates = np.array([230e3, 477e3, 991e3, 2056e3, 5027e3])
    sizes = np.round(bitrates * 3.0 * rng.uniform(0.6, 1.4, size=(25, 5)))
    return Ladder(tuple(Rung(b) for b in bitrates), 3.0, sizes, name="short")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=sabre_traces(), seed=st.integers(0, 1000),
       algorithm=st.sampled_from(["bola", "bolae", "throughput", "dynamic", "dynamicdash"]),
       abandonment=st.booleans(), max_buffer_s=st.sampled_from([6.0, 12.0, 25.0]))
def test_the_replay_follows_the_session_and_only_adds_the_residue(trace, seed, algorithm, abandonment,
                                                                  max_buffer_s):
    ladder = short_ladder(seed)
    model = SABRE.replace(abandonment=abandonment, max_buffer_s=max_buffer_s)
    with_option = run_batch([trace], ladder, algorithm, model)
    without = run_batch([trace], ladder, algorithm, model.replace(compat_sabre_residue_stalls=False))
    assume(without.session[0, loop.SES_TIMED_OUT] == 0.0)  # (Sabre has no time limit)
    # The option changes nothing but the event count.
    np.testing.assert_array_equal(with_option.log, without.log)
    np.testing.assert_array_equal(with_option.rungs, without.rungs)
    log, rungs = without.log, without.rungs
    residue, end_ms, stall_ms = ms.replay(
        trace.start_s, trace.bandwidth_bps, trace.latency_s, True, trace.duration_s, ladder.size_bits,
        3.0, max_buffer_s, 0.0, 1.0, abandonment, 12000.0, 0.05, 0.0, log[:, loop.COL_SEGMENT], rungs,
        log[:, loop.COL_DOWNLOADED_BITS], log[:, loop.COL_BUFFER_AFTER_S], log[:, loop.COL_WAIT_S],
        log[:, loop.COL_ABANDONED], 0, len(rungs))
    session = without.session_log(0)
    # Sabre's arithmetic, replayed on the log, tells the same story as the session loop ...
    assert end_ms / 1000.0 == pytest.approx(session.end_s, rel=1e-9, abs=1e-6)
    assert stall_ms / 1000.0 == pytest.approx(session.stall_s.sum(), rel=1e-9, abs=1e-6)
    # ... and the option adds exactly its residue event.
    assert with_option.session_log(0).rebuffer_count == session.rebuffer_count + residue


def test_the_option_needs_sabres_download_model():
    with pytest.raises(InputError, match="compat_sabre_residue_stalls.*wait_step_s"):
        SABRE.replace(wait_step_s=0.5)
    SABRE.replace(wait_step_s=0.5, compat_sabre_residue_stalls=False)  # fine without it
