from __future__ import annotations

import naive
import numpy as np
import pytest

from abrsim.abr import ALGORITHMS, Observation, available, estimator_arrays, make
from abrsim.abr import _kernels as kernels
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import Ladder, Rung
from abrsim.model import PlayerModel


def check_policy(policy, ladder, rng):
    """Conformance: rungs in range, same inputs same choices, reset clears state."""
    observations = [
        Observation(i % ladder.segment_count, float(b), int(last), float(tp), float(lat))
        for i, (b, last, tp, lat) in enumerate(zip(
            rng.uniform(0, 30, 50), rng.integers(-1, ladder.rung_count, 50),
            rng.uniform(0, 1e7, 50), rng.uniform(0, 0.5, 50)))
    ]
    policy.reset(ladder, PlayerModel(), np.random.default_rng(0))
    first = [policy.choose(obs) for obs in observations]
    policy.reset(ladder, PlayerModel(), np.random.default_rng(0))
    second = [policy.choose(obs) for obs in observations]
    assert first == second
    for rung, pause_s in first:
        assert 0 <= rung < ladder.rung_count
        assert pause_s >= 0.0


@pytest.mark.parametrize("name", available())
def test_every_registered_policy_conforms(name, vbr_ladder, rng):
    check_policy(make(name), vbr_ladder, rng)


@pytest.mark.parametrize(("name", "params"), [
    ("bola", {}), ("bola", {"guard": "o"}), ("bola", {"guard": "none", "scale_v": False}),
    ("throughput", {"safety_factor": 0.5}), ("throughput", {"ibr": False}),
    ("bb", {}), ("bba0", {"reservoir_s": 3.0, "cushion_s": 12.0}),
])
def test_kernel_decisions_match_naive(name, params, vbr_ladder, rng):
    """Sequences of decisions, so that state carried between them (BOLA's last rung, the IBR's
    shrinking safety factor) is compared too."""
    policy = make(name, **params)
    policy.reset(vbr_ladder, PlayerModel(), rng)
    twin = naive.make(name, policy.params, vbr_ladder, vbr_ladder.segment_count)
    last = -1
    for index in range(1, 300):
        obs = Observation(index % 40, float(rng.uniform(0, 30)), last, float(rng.uniform(0, 8e6)),
                          float(rng.uniform(0, 1)))
        expected = twin.choose(obs.segment_index, obs.buffer_s, obs.last_rung, obs.throughput_bps,
                               obs.latency_s)
        rung, pause_s = policy.choose(obs)
        assert rung == expected[0]
        assert pause_s == pytest.approx(expected[1], abs=1e-12)
        last = rung


@pytest.mark.parametrize("model", [
    PlayerModel(), PlayerModel(ewma_half_lives_s=(1.5, 4.0, 10.0)),
    PlayerModel(estimator="sliding", sliding_window_sizes=(1, 3, 25 - 5)),
])
def test_estimators_match_naive(model, rng):
    est_params, est_state = estimator_arrays(model, 4.0)
    twin = (naive.Ewma(model.ewma_half_lives_s, 4.0) if model.estimator == "ewma"
            else naive.Sliding(model.sliding_window_sizes))
    assert kernels.estimator_throughput_bps(est_params, est_state) == 0.0
    for _ in range(60):
        sample, weight, latency = rng.uniform(1e5, 1e7), rng.uniform(0.01, 5), rng.uniform(0, 0.4)
        kernels.estimator_update(est_params, est_state, sample, weight, latency)
        twin.push(sample, weight, latency)
        assert kernels.estimator_throughput_bps(est_params, est_state) == pytest.approx(
            twin.throughput_bps(), rel=1e-12)
        latency_s = kernels.estimator_latency_s(est_params, est_state)
        assert latency_s == pytest.approx(twin.latency_s(), rel=1e-12)


def test_ewma_of_constant_samples_is_that_constant():
    est_params, est_state = estimator_arrays(PlayerModel(), 4.0)
    for _ in range(5):
        kernels.estimator_update(est_params, est_state, 2e6, 0.7, 0.1)
    assert kernels.estimator_throughput_bps(est_params, est_state) == pytest.approx(2e6, rel=1e-12)
    assert kernels.estimator_latency_s(est_params, est_state) == pytest.approx(0.1, rel=1e-12)


def test_bola_prefers_higher_rungs_as_buffer_grows():
    ladder = Ladder.cbr([Rung(b) for b in (0.3e6, 0.75e6, 1.2e6, 2.85e6, 4.3e6)], 4.0, 100)
    policy = make("bola", guard="none", scale_v=False)
    policy.reset(ladder, PlayerModel(), np.random.default_rng(0))
    rungs = [policy.choose(Observation(50, b, 0, 0.0, 0.0))[0] for b in np.linspace(0, 25, 60)]
    assert rungs == sorted(rungs)
    assert rungs[0] == 0
    assert rungs[-1] == ladder.rung_count - 1


def test_bola_thresholds_follow_the_paper():
    # Between rungs m and m+1, BOLA switches where the two scores are equal
    # (INFOCOM 2016, eq. 10): Q* = V (b_{m+1}(u_m + gp) - b_m(u_{m+1} + gp)) / (b_{m+1} - b_m).
    bitrates = np.array([1e6, 2e6])
    utilities = np.log(bitrates / bitrates[0])
    v_s, gamma_p = 2.0, 5.0
    q_star = v_s * (bitrates[1] * (utilities[0] + gamma_p) - bitrates[0] * (utilities[1] + gamma_p)) / (
        bitrates[1] - bitrates[0])
    assert kernels.bola_best_rung(q_star - 1e-6, utilities, bitrates, v_s, gamma_p) == 0
    assert kernels.bola_best_rung(q_star + 1e-6, utilities, bitrates, v_s, gamma_p) == 1


def test_throughput_rule_respects_safety_factor_and_latency():
    bitrates = np.array([1e6, 2e6, 4e6])
    assert kernels.rung_for_throughput(bitrates, 4e6, 0.0, 4.0) == 2
    assert kernels.rung_for_throughput(bitrates, 4e6, 0.4, 4.0) == 1  # 4e6 * 0.9 = 3.6e6
    assert kernels.rung_for_throughput(bitrates, 0.0, 0.0, 4.0) == 0


def test_unknown_algorithm_and_parameters():
    with pytest.raises(UnknownNameError, match="expected one of: bb, bba0, bola"):
        make("mpc")
    with pytest.raises(UnknownNameError, match="gamma"):
        make("bola", gama_p=3)
    with pytest.raises(InputError, match="bola.guard"):
        make("bola", guard="x")
    with pytest.raises(InputError, match="bola.gamma_p"):
        make("bola", gamma_p="abc")
    with pytest.raises(InputError, match="throughput.safety_factor"):
        make("throughput", safety_factor=-1)


def test_bola_rejects_buffer_target_below_one_segment(vbr_ladder):
    with pytest.raises(InputError, match="buffer_target_s"):
        make("bola", buffer_target_s=2.0).reset(vbr_ladder, PlayerModel(), np.random.default_rng(0))


def test_parameters_are_documented():
    for spec in ALGORITHMS.values():
        assert spec.citation and spec.summary
        for param in spec.params:
            assert param.doc
