"""The offline optimum (abrsim/oracle.py): replay against the engine, search against brute force."""

from __future__ import annotations

import itertools
import resource
import sys
import time

import numpy as np
import pytest
from conftest import shared_path
from numba import config as numba_config

from abrsim.abr import make
from abrsim.engine.fast import run_batch
from abrsim.errors import InputError
from abrsim.ladder import Ladder, Rung, load_ladder
from abrsim.model import PENSIEVE, SABRE, PlayerModel
from abrsim.oracle import optimal_session, replay_rungs
from abrsim.qoe import METRICS
from abrsim.trace import Trace, load_trace

QOE_LIN = METRICS.index("qoe_lin")
#: Segments of the real-trace sessions: the title's 48, or a few when the kernels run as plain
#: Python (the CI's NUMBA_DISABLE_JIT=1 pass, which is there for coverage, not for speed).
SEGMENTS = 6 if numba_config.DISABLE_JIT else 48
MODELS = {
    "abrsim": PlayerModel(network="throughput"),
    "sabre": SABRE.replace(abandonment=False),
    "pensieve": PENSIEVE,
    # A small buffer, so that full-buffer waits happen in short sessions.
    "small_buffer": PlayerModel(network="throughput", max_buffer_s=6.0, first_rung=-1, request_latency_s=0.1,
                                latency_on_trace_clock=False),
    "thresholds": PlayerModel(network="throughput", startup_threshold_s=3.0, resume_threshold_s=2.5,
                              first_rung=-1),
}


@pytest.fixture(scope="module")
def envivio() -> Ladder:
    return load_ladder(str(shared_path("videos", "envivio", "chunk_sizes.csv")), segment_duration_s=4.0)


def hsdpa(name: str) -> Trace:
    return load_trace(shared_path("traces", "hsdpa_norway_3g", f"{name}.csv"))


def random_case(rng: np.random.Generator) -> tuple[Trace, Ladder]:
    """A short trace (with outages sometimes) and a 3-5 segment, 2-4 rung VBR ladder."""
    segments = int(rng.integers(3, 6))
    bitrates = np.unique(rng.uniform(2e5, 3e6, int(rng.integers(2, 5))))
    segment_duration_s = float(rng.choice([1.0, 2.0, 4.0]))
    sizes = bitrates * segment_duration_s * rng.uniform(0.7, 1.3, (segments, bitrates.size))
    ladder = Ladder(tuple(Rung(b) for b in bitrates), segment_duration_s, sizes, name="random")
    starts = np.unique(np.concatenate([[0.0], rng.uniform(0.1, 20.0, int(rng.integers(1, 8)))]))
    bandwidth = rng.uniform(1e5, 4e6, starts.size) * (rng.random(starts.size) > 0.15)
    bandwidth[0] = max(bandwidth[0], 1e5)
    trace = Trace(starts, bandwidth, float(starts[-1] + rng.uniform(0.5, 5.0)), name="random")
    return trace, ladder


def brute_force(trace: Trace, ladder: Ladder, model: PlayerModel) -> float:
    segments = model.segments_played(ladder)
    firsts = range(ladder.rung_count) if model.first_rung < 0 else [model.first_rung]
    return max(replay_rungs(trace, ladder, model, sequence).qoe_lin
               for sequence in itertools.product(range(ladder.rung_count), repeat=segments)
               if sequence[0] in firsts)


# ------------------------------------------------------------------------------------------------
# The replay is the fast engine's session, exactly
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["abrsim", "sabre", "pensieve", "small_buffer", "thresholds"])
@pytest.mark.parametrize("policy", ["bb", "robustmpc", "throughput", "bba0"])
def test_replay_matches_engine(model_name, policy, envivio):
    """The rungs a pause-free, non-abandoning policy chose, replayed, give the engine's session."""
    model = MODELS[model_name].replace(segment_limit=SEGMENTS)
    algorithm = make(policy, abandon=False) if policy == "throughput" else make(policy)
    for name in ("norway_bus_1", "norway_tram_3"):
        trace = hsdpa(name)
        batch = run_batch([trace], envivio, algorithm, model)
        log = batch.session_log(0)
        replay = replay_rungs(trace, envivio, model, log.rung)
        for field in ("request_s", "first_byte_s", "done_s", "buffer_before_s", "buffer_after_s",
                      "stall_s", "wait_s"):
            assert np.array_equal(getattr(replay.log, field), getattr(log, field)), field
        assert replay.log.startup_s == log.startup_s
        assert replay.log.rebuffer_count == log.rebuffer_count
        assert replay.log.end_s == log.end_s
        assert np.array_equal(np.array([replay.metrics[m] for m in METRICS]), batch.metrics()[0],
                              equal_nan=True)


@pytest.mark.parametrize("model_name", ["abrsim", "sabre", "pensieve"])
def test_replay_matches_engine_with_trace_latency(model_name, vbr_ladder):
    """Per-sample latency, continued across samples (Sabre) or not, on or off the trace clock."""
    rng = np.random.default_rng(3)
    starts = np.concatenate([[0.0], np.cumsum(rng.uniform(0.2, 3.0, 60))])
    trace = Trace(starts, rng.uniform(2e5, 6e6, starts.size), float(starts[-1] + 1.0),
                  latency_s=rng.uniform(0.0, 0.6, starts.size), name="latency")
    model = MODELS[model_name].replace(segment_limit=min(SEGMENTS, 40))
    for policy in (make("bb"), make("throughput", abandon=False)):
        batch = run_batch([trace], vbr_ladder, policy, model)
        log = batch.session_log(0)
        replay = replay_rungs(trace, vbr_ladder, model, log.rung)
        assert np.array_equal(replay.log.done_s, log.done_s)
        assert np.array_equal(replay.log.stall_s, log.stall_s)
        assert replay.qoe_lin == batch.metrics()[0, QOE_LIN]


def test_replay_rejects_bad_sequences(envivio, tiny_trace):
    with pytest.raises(InputError, match="one per played segment"):
        replay_rungs(tiny_trace, envivio, PENSIEVE, [1, 2, 3])
    with pytest.raises(InputError, match="expected 0 to 5"):
        replay_rungs(tiny_trace, envivio, PENSIEVE, [6] * 48)


# ------------------------------------------------------------------------------------------------
# The search against brute force
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", ["abrsim", "sabre", "pensieve", "small_buffer", "thresholds"])
def test_search_equals_brute_force(model_name):
    """With exact steps the search's sequence is optimal: dominance never drops the optimum."""
    model = MODELS[model_name]
    rng = np.random.default_rng(sum(map(ord, model_name)))
    for _ in range(25):
        trace, ladder = random_case(rng)
        if model.first_rung >= ladder.rung_count:
            model = model.replace(first_rung=-1)
        result = optimal_session(trace, ladder, model)
        best = brute_force(trace, ladder, model)
        assert result.replayed_qoe_lin == pytest.approx(best, abs=1e-9)
        assert result.qoe_lin == pytest.approx(result.replayed_qoe_lin, abs=1e-9)
        assert replay_rungs(trace, ladder, model, result.rungs).qoe_lin == result.replayed_qoe_lin


def test_coarse_steps_stay_feasible_and_close():
    """Coarse steps prune more; the answer is still a real sequence, exactly valued, and here
    within the docstring's no-outage bound of the optimum (4.3 * buffer step per merged segment)."""
    rng = np.random.default_rng(5)
    model = PlayerModel(network="throughput", first_rung=-1)
    for _ in range(20):
        trace, ladder = random_case(rng)
        trace = Trace(trace.start_s, np.maximum(trace.bandwidth_bps, 2e5), trace.duration_s)
        exact = optimal_session(trace, ladder, model)
        coarse = optimal_session(trace, ladder, model, time_step_s=0.0, buffer_step_s=0.25)
        assert coarse.buffer_step_s == 0.25
        assert coarse.labels.sum() <= exact.labels.sum()
        assert coarse.qoe_lin == pytest.approx(coarse.replayed_qoe_lin, abs=1e-9)
        assert coarse.replayed_qoe_lin <= exact.replayed_qoe_lin + 1e-9
        bound = 4.3 * 0.25 * ladder.segment_count
        assert coarse.replayed_qoe_lin >= exact.replayed_qoe_lin - bound


def test_first_rung_is_the_models(envivio):
    trace = hsdpa("norway_bus_1")
    model = PENSIEVE.replace(segment_limit=6)
    assert optimal_session(trace, envivio, model).rungs[0] == 1
    assert optimal_session(trace, envivio, model.replace(first_rung=4)).rungs[0] == 4


def test_rejects_bad_steps(envivio, tiny_trace):
    with pytest.raises(InputError, match="time_step_s"):
        optimal_session(tiny_trace, envivio, PENSIEVE, time_step_s=-1.0)
    with pytest.raises(InputError, match="buffer_step_s"):
        optimal_session(tiny_trace, envivio, PENSIEVE, buffer_step_s=float("nan"))


# ------------------------------------------------------------------------------------------------
# Real traces
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["norway_bus_1", "norway_ferry_5", "norway_tram_3"])
def test_oracle_beats_simple_policies(name, envivio):
    """On real traces the optimum is at least every constant-rung sequence and every built-in
    pause-free policy."""
    trace = hsdpa(name)
    model = PENSIEVE.replace(segment_limit=SEGMENTS)
    result = optimal_session(trace, envivio, model)
    assert result.qoe_lin == pytest.approx(result.replayed_qoe_lin, abs=1e-6)
    segments = model.segments_played(envivio)
    for rung in range(envivio.rung_count):
        constant = np.full(segments, rung)
        constant[0] = model.first_rung
        assert result.replayed_qoe_lin >= replay_rungs(trace, envivio, model, constant).qoe_lin
    for policy in (make("bb"), make("bba0"), make("robustmpc"), make("throughput", abandon=False)):
        qoe = run_batch([trace], envivio, policy, model).metrics()[0, QOE_LIN]
        assert result.replayed_qoe_lin >= qoe - 1e-9


def test_deterministic(envivio):
    trace = hsdpa("norway_car_1")
    model = PENSIEVE.replace(segment_limit=min(SEGMENTS, 20))
    first = optimal_session(trace, envivio, model)
    second = optimal_session(trace, envivio, model)
    assert np.array_equal(first.rungs, second.rungs)
    assert first.qoe_lin == second.qoe_lin
    assert np.array_equal(first.labels, second.labels)


def test_cost_on_one_real_trace(envivio, capsys):
    """Time and memory of a full 48-segment search (printed; no timing assertion)."""
    trace = hsdpa("norway_bus_1")
    optimal_session(trace, envivio, PENSIEVE.replace(segment_limit=3))  # compile or load the cache
    start = time.perf_counter()
    result = optimal_session(trace, envivio, PENSIEVE.replace(segment_limit=SEGMENTS))
    elapsed_s = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with capsys.disabled():
        sys.stdout.write(f"\noracle {trace.name}: {elapsed_s:.2f} s, QoE_lin {result.qoe_lin:.3f} "
                         f"(replayed {result.replayed_qoe_lin:.3f}), widest {result.labels.max()} labels, "
                         f"{result.candidates} candidates, arrays {result.peak_array_bytes / 1e6:.1f} MB, "
                         f"process peak RSS {rss_mb:.0f} MB\n")
    assert result.peak_array_bytes < 1e9
    assert result.rungs.shape == (SEGMENTS,)
