"""Shortcuts of the compiled engine that must not change a single bit: MPC's pruned search,
abandonment checkpoints skipped where the policy's rule cannot fire, and the estimator skipped for
policies that read no estimate."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from numba import njit

from abrsim import abr
from abrsim.abr import ALGORITHMS, register
from abrsim.abr import _kernels as kernels
from abrsim.engine.fast import pack_traces, run_batch
from abrsim.ladder import Ladder, Rung
from abrsim.model import SABRE, PlayerModel
from abrsim.trace import Trace


def exhaustive_mpc(params, state, obs, bitrates_bps, size_bits):
    """Every sequence scored from scratch with the kernel's operations, in its order; ties to the last."""
    count = min(int(state[0]), kernels.MPC_HISTORY)
    last = max(int(obs[kernels.OBS_LAST_RUNG]), 0)
    if count == 0:
        return last
    inverse_sum = 0.0
    for i in range(count):
        inverse_sum += 1.0 / state[2 + i]
    harmonic = 1.0 / (inverse_sum / count)
    max_error = max(state[7:7 + count]) if params[1] != 0.0 else 0.0
    future = harmonic / (1.0 + max_error)
    index = int(obs[kernels.OBS_SEGMENT])
    horizon = min(int(params[0]), kernels.MPC_MAX_HORIZON, int(obs[kernels.OBS_SEGMENTS]) - index)
    if horizon <= 0:
        return last
    offset = 1 if params[3] != 0.0 else 0
    kbps = [b / 1000.0 for b in bitrates_bps]

    def time_s_of(segment, rung):
        return (size_bits[segment, rung] / 8.0 / 1000000.0) / future if segment < size_bits.shape[0] else 0.0

    best, best_reward = 0, -100000000.0
    for combo in itertools.product(range(len(kbps)), repeat=horizon):
        buffer_s, rebuffer_s, bitrate_sum, smooth_sum = obs[kernels.OBS_BUFFER_S], 0.0, 0.0, 0.0
        previous = last
        for step, rung in enumerate(combo[:-1]):
            segment = index + offset + step
            time_s = time_s_of(segment, rung)
            if buffer_s < time_s:
                rebuffer_s += time_s - buffer_s
                buffer_s = 0.0
            else:
                buffer_s -= time_s
            buffer_s = buffer_s + obs[kernels.OBS_SEGMENT_DURATION_S]
            bitrate_sum = bitrate_sum + kbps[rung]
            smooth_sum = smooth_sum + abs(kbps[rung] - kbps[previous])
            previous = rung
        rung = combo[-1]
        segment = index + offset + horizon - 1
        time_s = time_s_of(segment, rung)
        total_s = rebuffer_s + (time_s - buffer_s) if buffer_s < time_s else rebuffer_s
        reward = (bitrate_sum + kbps[rung]) / 1000.0 - params[2] * total_s - (
            smooth_sum + abs(kbps[rung] - kbps[previous])) / 1000.0
        if reward >= best_reward:
            best, best_reward = combo[0], reward
    return best


def test_pruned_mpc_search_decides_as_the_exhaustive_one():
    rng = np.random.default_rng(18)
    for case in range(300):
        rungs = int(rng.integers(1, 6))
        bitrates_bps = np.sort(rng.choice(np.arange(200, 8000), rungs, replace=False)).astype(float) * 1000.0
        segments = int(rng.integers(1, 12))
        size_bits = bitrates_bps * 4.0 * rng.uniform(0.5, 1.5, size=(segments, rungs))
        if case % 5 == 0:
            size_bits = np.tile(bitrates_bps * 4.0, (segments, 1))  # constant sizes: exact ties
        params = np.array([float(rng.integers(1, 6)), float(case % 2), [0.0, 4.3, 160.0][case % 3],
                           float(case % 4 == 0)])
        state = np.zeros(12)
        state[0] = float(rng.integers(0, 8))
        state[2:7] = rng.uniform(0.05, 2.0, 5)  # MB/s
        state[7:12] = rng.uniform(0.0, 0.5, 5)
        obs = np.zeros(kernels.OBS_SIZE)
        obs[kernels.OBS_SEGMENT] = int(rng.integers(0, segments))
        obs[kernels.OBS_SEGMENTS] = segments
        obs[kernels.OBS_BUFFER_S] = [0.0, 4.0, float(rng.uniform(0, 40))][case % 3]
        obs[kernels.OBS_LAST_RUNG] = int(rng.integers(-1, rungs))
        obs[kernels.OBS_SEGMENT_DURATION_S] = 4.0
        expected = exhaustive_mpc(params, state.copy(), obs, bitrates_bps, size_bits)
        assert kernels._mpc_choose(params, state.copy(), obs, bitrates_bps, size_bits) == expected, case


def register_twin(name: str, suffix: str, **changes: Any) -> str:
    """Register the policy ``name`` again as ``NAME_SUFFIX`` with some of its functions changed
    (the conftest fixture unregisters it after the test)."""
    spec = ALGORITHMS[name]
    functions = {key: getattr(spec, key) for key in (
        "choose", "reset", "event", "abandon", "can_abandon", "abandon_after", "reads_estimates")}
    register(f"{name}_{suffix}", **{**functions, **changes}, state_size=spec.state_size, params=spec.params,
             check_ladder=spec.check_ladder, summary=spec.summary, citation=spec.citation, replace=True)
    return f"{name}_{suffix}"


def _traces(rng: np.random.Generator) -> list[Trace]:
    traces = []
    for index in range(6):
        samples = 40
        duration_s = rng.uniform(0.2, 3.0, samples) if index % 2 else np.full(samples, 1.0)
        start_s = np.concatenate([[0.0], np.cumsum(duration_s)[:-1]])
        bandwidth_bps = rng.uniform(2e5, 6e6, samples)
        bandwidth_bps[rng.uniform(size=samples) < 0.1] = 0.0  # outages
        latency_s = rng.uniform(0.01, 0.3, samples) if index % 3 == 0 else None
        traces.append(Trace(start_s, bandwidth_bps, float(np.sum(duration_s)), latency_s, name=f"t{index}"))
    return traces


@pytest.mark.parametrize("name", ["bola", "bolae", "throughput", "dynamic", "dynamicdash"])
@pytest.mark.parametrize("model", [
    SABRE, SABRE.replace(network="tcp", compat_sabre_residue_stalls=False),
    PlayerModel(abandonment=True), PlayerModel(abandonment=True, network="tcp"),
    PlayerModel(abandonment=True, abandon_check_bits=200000.0, abandon_check_s=0.01, goodput_factor=0.9,
                session_time_limit_factor=1.3),
], ids=["sabre", "sabre-tcp", "abandon", "abandon-tcp", "bits-steps-time-limit"])
def test_skipped_checkpoints_change_nothing(name, model):
    rng = np.random.default_rng(4)
    rates = np.array([300e3, 750e3, 1200e3, 2400e3, 4800e3])
    sizes = rates * 4.0 * rng.uniform(0.6, 1.5, (30, 5))
    ladder = Ladder(tuple(Rung(b) for b in rates), 4.0, sizes, name="vbr")
    packed = pack_traces(_traces(rng))
    skipped = run_batch(packed, ladder, name, model)
    walked = run_batch(packed, ladder, register_twin(name, "walked", abandon_after=None), model)
    assert skipped.log.tobytes() == walked.log.tobytes()
    assert skipped.rungs.tobytes() == walked.rungs.tobytes()
    assert skipped.session.tobytes() == walked.session.tobytes()
    assert skipped.log[:, 10].sum() > 0  # some downloads were abandoned


@njit
def _ewma_reference(half_lives, segment_s, samples):
    """The EWMA's formulas applied at every sample, compiled as the kernels are (numba's ``**``):
    each sample's throughput and latency estimates."""
    n = half_lives.shape[0]
    throughputs = np.zeros(n)
    latencies = np.zeros(n)
    out = np.zeros((samples.shape[0], 2))
    total_s = 0.0
    for k in range(samples.shape[0]):
        sample_bps, weight_s, latency_s = samples[k, 0], samples[k, 1], samples[k, 2]
        total_s += weight_s
        best = np.inf
        worst = 0.0
        for i in range(n):
            alpha = 0.5 ** (weight_s / half_lives[i])
            throughputs[i] = alpha * throughputs[i] + (1.0 - alpha) * sample_bps
            alpha = 0.5 ** (segment_s / half_lives[i])
            latencies[i] = alpha * latencies[i] + (1.0 - alpha) * latency_s
            best = min(best, throughputs[i] / (1.0 - 0.5 ** (total_s / half_lives[i])))
            worst = max(worst, latencies[i] / (1.0 - 0.5 ** ((k + 1.0) * segment_s / half_lives[i])))
        out[k, 0] = best
        out[k, 1] = worst
    return out


def test_ewma_estimator_is_its_formula_to_the_bit():
    """The latency weights computed once per session and the start-up correction skipped past 55
    half-lives give the very floats of the EWMA's formulas applied at every sample."""
    from abrsim.abr import estimator_arrays

    rng = np.random.default_rng(55)
    for half_lives, segment_s in (((3.0, 8.0), 3.0), ((0.5, 2.0, 20.0), 4.0), ((1e-3,), 1.0), ((8.0,), 0.25)):
        est_params, est_state = estimator_arrays(PlayerModel(ewma_half_lives_s=half_lives), segment_s)
        samples = np.column_stack([rng.uniform(1e5, 5e7, 400), rng.uniform(0.01, 6.0, 400),
                                   rng.uniform(0.0, 0.3, 400)])
        expected = _ewma_reference(np.array(half_lives), segment_s, samples)
        for k in range(samples.shape[0]):
            kernels.estimator_update(est_params, est_state, samples[k, 0], samples[k, 1], samples[k, 2])
            assert kernels.estimator_throughput_bps(est_params, est_state) == expected[k, 0], (half_lives, k)
            assert kernels.estimator_latency_s(est_params, est_state) == expected[k, 1], (half_lives, k)


@pytest.mark.parametrize(("name", "params"), [
    ("bb", {}), ("bba0", {}), ("robustmpc", {}), ("fastmpc", {}), ("dashjs", {}), ("bola", {}),
    ("bola", {"guard": "none"}), ("bola", {"guard": "none", "scale_v": False}),
], ids=["bb", "bba0", "robustmpc", "fastmpc", "dashjs", "bola", "bola-basic", "bola-basic-fixed-v"])
@pytest.mark.parametrize("model", [
    PlayerModel(), PlayerModel(network="throughput"), PlayerModel(abandonment=True), SABRE,
    PlayerModel(estimator="sliding", session_time_limit_factor=1.3),
], ids=["abrsim", "throughput", "abandon", "sabre", "sliding-time-limit"])
def test_policies_that_read_no_estimate_run_without_the_estimator_to_the_bit(name, params, model):
    rng = np.random.default_rng(13)
    rates = np.array([300e3, 750e3, 1200e3, 2400e3, 4800e3])
    sizes = rates * 4.0 * rng.uniform(0.6, 1.5, (30, 5))
    ladder = Ladder(tuple(Rung(b) for b in rates), 4.0, sizes, name="vbr")
    packed = pack_traces(_traces(rng))
    twin = register_twin(name, "estimating", reads_estimates=kernels.always_reads_estimates)
    skipped = run_batch(packed, ladder, abr.make(name, **params), model)
    estimated = run_batch(packed, ladder, abr.make(twin, **params), model)
    assert skipped.log.tobytes() == estimated.log.tobytes()
    assert skipped.rungs.tobytes() == estimated.rungs.tobytes()
    assert skipped.session.tobytes() == estimated.session.tobytes()


@njit(cache=True)
def _climb_on_estimate(params, state, obs, bitrates_bps, size_bits):
    return (1 if obs[kernels.OBS_THROUGHPUT_BPS] > 0.0 and obs[kernels.OBS_LATENCY_S] > 0.0 else 0), 0.0


def test_a_policy_declared_not_to_read_the_estimates_sees_none():
    """The declaration is what skips the estimator: a policy that reads the estimates after declaring
    it does not sees 0 (so the equivalence test above fails for a wrong declaration)."""
    rng = np.random.default_rng(2)
    rates = np.array([300e3, 750e3])
    ladder = Ladder(tuple(Rung(b) for b in rates), 4.0, rates * 4.0 * np.ones((20, 2)), name="cbr")
    packed = pack_traces(_traces(rng))
    register("estimate_reader", choose=_climb_on_estimate)  # (conftest unregisters them)
    register("estimate_reader_blind", choose=_climb_on_estimate,
             reads_estimates=kernels.never_reads_estimates)
    reading = run_batch(packed, ladder, "estimate_reader", PlayerModel())
    blind = run_batch(packed, ladder, "estimate_reader_blind", PlayerModel())
    assert reading.rungs.sum() > 0
    assert blind.rungs.sum() == 0

