"""abrsim.gym: the Gymnasium environments over the session step."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="abrsim.gym needs gymnasium (pip install 'abrsim[gym]')")

from conftest import shared_path  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402
from naive_gym import NaiveAbrEnv  # noqa: E402

from abrsim._data import data_dir  # noqa: E402
from abrsim.abr import PythonPolicy  # noqa: E402
from abrsim.engine.fast import run_batch  # noqa: E402
from abrsim.gym import PENSIEVE_REWARD, AbrEnv, AbrVectorEnv, Reward  # noqa: E402
from abrsim.gym.env import pensieve_cbr_ladder  # noqa: E402
from abrsim.ladder import load_ladder  # noqa: E402
from abrsim.model import PENSIEVE, PlayerModel  # noqa: E402
from abrsim.peer_formats import read_pensieve_video  # noqa: E402
from abrsim.qoe import METRICS, qoe_utility  # noqa: E402
from abrsim.trace import load_trace, load_traces  # noqa: E402


def rollout(env, seed, steps=None, action_seed=0):
    """Observations, rewards and the reset reward of one episode with random actions."""
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    observations, rewards = [obs], []
    while True:
        obs, reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated or (steps is not None and len(rewards) == steps):
            return observations, rewards, info


def replay_policy(rungs):
    """A Python policy that requests ``rungs[i]`` for segment ``i``."""

    class Replay:
        name = "replay"

        def choose(self, obs):
            return int(rungs[obs.segment_index])

    return PythonPolicy(Replay)


@pytest.mark.parametrize("env_id", ["abrsim/Abr-v0", "abrsim/Pensieve-v0"])
def test_env_checker_passes(env_id):
    env = gymnasium.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_make_vec_uses_the_compiled_vector_env():
    envs = gymnasium.make_vec("abrsim/Abr-v0", num_envs=3, vectorization_mode="vector_entry_point")
    assert isinstance(envs.unwrapped, AbrVectorEnv)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, *envs.single_observation_space.shape)
    assert envs.observation_space.contains(obs)


@pytest.mark.parametrize("preset", ["abrsim", "pensieve"])
def test_same_seed_same_episode(preset):
    first = rollout(AbrEnv(preset=preset), seed=7)
    second = rollout(AbrEnv(preset=preset), seed=7)
    assert first[1] == second[1]
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert first[2] == second[2]


def test_seeds_draw_different_traces():
    env = AbrEnv(random_start=True)
    starts = {(env.reset(seed=seed)[1]["trace"], env.reset(seed=seed)[1]["start_s"]) for seed in range(8)}
    assert len(starts) > 4


@pytest.mark.parametrize("model", ["abrsim", "sabre", "pensieve"])
@pytest.mark.parametrize("qoe", ["qoe_lin", "qoe_log", "qoe_hd"])
def test_rewards_sum_to_the_qoe_of_the_engines_session(model, qoe):
    traces = load_traces([data_dir("traces")])
    ladder = load_ladder("mobile")
    for index, trace in enumerate(traces):
        env = AbrEnv(traces=[trace], ladder=ladder, model=model, reward=qoe)
        _, rewards, info = rollout(env, seed=index, action_seed=index)
        log = env.session_log()
        batch = run_batch([trace], ladder, replay_policy(log.rung), env.scenario.model)
        engine_log = batch.session_log(0)
        for field in ("rung", "request_s", "done_s", "stall_s", "buffer_after_s"):
            assert np.array_equal(getattr(log, field), getattr(engine_log, field)), field
        want = batch.metrics()[0, METRICS.index(qoe)]
        assert info["reward"] + sum(rewards) == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_user_weights():
    ladder = load_ladder("mobile")
    reward = Reward(utility=(0.0, 1.0, 2.0, 4.0, 8.0), rebuffer_penalty=10.0, switch_penalty=0.5,
                    startup_penalty=2.0)
    env = AbrEnv(ladder=ladder, reward=reward)
    _, rewards, info = rollout(env, seed=3)
    log = env.session_log()
    utility = np.array(reward.utility)[log.rung]
    want = (utility.sum() - 10.0 * log.stall_s.sum() - 0.5 * np.abs(np.diff(utility)).sum()
            - 2.0 * log.startup_s)
    assert info["reward"] + sum(rewards) == pytest.approx(want, rel=1e-12)


def test_qoe_utility_is_the_metrics_definition():
    bitrates = load_ladder("hls").bitrates_bps
    assert qoe_utility("qoe_lin", bitrates)[1] == 4.3
    assert np.allclose(qoe_utility("qoe_log", bitrates)[0], np.log(bitrates / bitrates[0]))
    with pytest.raises(ValueError, match="qoe_lin, qoe_log or qoe_hd"):
        qoe_utility("qoe_max", bitrates)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match="preset"):
        AbrEnv(preset="dash")
    with pytest.raises(ValueError, match="observation"):
        AbrEnv(observation="pixels")
    for history in (-1, 2.5, 10**6):
        with pytest.raises(ValueError, match="history"):
            AbrEnv(history=history)
    with pytest.raises(ValueError, match="at most 8 rungs"):
        AbrEnv(ladder="hls", observation="pensieve")
    with pytest.raises(ValueError, match="one per rung"):
        AbrEnv(ladder="mobile", reward=Reward(utility=(1.0, 2.0)))
    with pytest.raises(ValueError, match="rebuffer_penalty"):
        Reward(rebuffer_penalty=-1.0)
    env = AbrEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not a rung"):
        env.step(99)


def test_history_length_and_layout():
    ladder = load_ladder("mobile")
    env = AbrEnv(ladder=ladder, history=3)
    assert env.observation_space.shape == (2 * 3 + ladder.rung_count + 3,)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(2)
    log = env.session_log()
    transfer_s = log.done_s - log.first_byte_s
    assert obs[2] == pytest.approx(log.size_bits[-1] / transfer_s[-1] / 1e6, rel=1e-6)
    assert obs[5] == pytest.approx(log.done_s[-1] - log.request_s[-1], rel=1e-6)
    assert obs[0] == 0.0  # two downloads so far: the oldest slot is empty
    assert np.allclose(obs[6:6 + ladder.rung_count], ladder.size_bits[2] / 1e6)
    assert obs[-2] == 2  # the last rung
    assert obs[-1] == ladder.segment_count - 2


@pytest.mark.parametrize(("preset", "options"), [  # (the twin downloads with the throughput network)
    ("abrsim", {"ladder": "mobile", "model": PlayerModel(network="throughput")}),
    ("abrsim", {"ladder": "mobile", "model": "sabre", "random_start": True, "history": 5}),
    ("pensieve", {}),
    ("pensieve", {"random_start": False}),
])
def test_the_naive_twin_gives_the_same_episodes(preset, options):
    env = AbrEnv(preset=preset, **options)
    scenario = env.scenario
    utility, penalty = scenario.reward.arrays(scenario.ladder)
    twin = NaiveAbrEnv(load_traces([data_dir("traces")]), scenario.ladder, scenario.model, utility, penalty,
                       scenario.reward.switch_penalty, scenario.reward.startup_penalty, scenario.history,
                       pensieve=preset == "pensieve", random_start=scenario.random_start)
    for seed in range(4):
        got = rollout(env, seed, action_seed=seed)
        want = rollout(twin, seed, action_seed=seed)
        assert got[2]["reward"] == pytest.approx(want[2]["reward"], rel=1e-9, abs=1e-9)
        assert np.allclose(got[1], want[1], rtol=1e-9, atol=1e-9)
        assert len(got[0]) == len(want[0])
        for a, b in zip(got[0], want[0]):
            assert np.allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("options", [
    {"ladder": "mobile", "random_start": True},
    {"preset": "pensieve"},
    {"ladder": "mobile", "profile": "4g", "trace_duration_s": 120.0},
])
def test_vector_env_equals_single_envs_step_for_step(options):
    n, seed = 5, 11
    vector = AbrVectorEnv(n, **options)
    steps = 2 * vector.scenario.segments + 10
    singles = [AbrEnv(**options) for _ in range(n)]
    obs, _ = vector.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    assert np.array_equal(obs, np.stack(single_obs))
    rng = np.random.default_rng(0)
    done = [False] * n
    ended = 0
    for _ in range(steps):
        actions = rng.integers(vector.single_action_space.n, size=n)
        obs, rewards, terminated, truncated, _ = vector.step(actions)
        for i, env in enumerate(singles):
            if done[i]:  # next-step autoreset
                want_obs, want_reward, want_done = env.reset()[0], 0.0, False
            else:
                want_obs, want_reward, want_done, *_ = env.step(int(actions[i]))
            assert np.array_equal(obs[i], want_obs)
            assert rewards[i] == want_reward
            assert terminated[i] == want_done
            done[i] = want_done
            ended += want_done
        assert not truncated.any()
    assert ended >= n  # every environment went through at least one autoreset


def test_vector_env_rejects_bad_actions():
    vector = AbrVectorEnv(2, ladder="mobile")
    vector.reset(seed=0)
    with pytest.raises(ValueError, match="integer actions"):
        vector.step([0])
    with pytest.raises(ValueError, match="not a rung"):
        vector.step(np.array([0, 7]))


# ----------------------------------------------------------------------------------------------
# The pensieve preset against Pensieve's own logs (../shared/reference/pensieve)
# ----------------------------------------------------------------------------------------------


def _reference_chunks(folder):
    sessions = defaultdict(list)
    for algorithm in ("bb", "mpc"):
        with gzip.open(folder / f"chunks_{algorithm}.csv.gz", "rt", newline="") as file:
            for row in csv.DictReader(file):
                sessions[(row["dataset"], row["trace"], algorithm)].append(row)
    return sessions


def _pensieve_state(chunks, ladder, k, previous):
    """Pensieve's state after chunk ``k`` (sim/multi_agent.py), from its logged values."""
    state = np.roll(previous, -1, axis=1)
    chunk = chunks[k]
    delay_ms = float(chunk["delay_ms"])
    state[0, -1] = float(chunk["bitrate_kbps"]) / 4300.0
    state[1, -1] = float(chunk["buffer_s"]) / 10.0
    state[2, -1] = float(chunk["chunk_bytes"]) / delay_ms / 1000.0
    state[3, -1] = delay_ms / 1000.0 / 10.0
    state[4, :6] = ladder.size_bits[k + 1] / 8.0 / 1e6
    state[5, -1] = min(48 - (k + 1), 48) / 48.0
    return state


def test_pensieve_replay_reproduces_the_reference_logs():
    folder = shared_path("reference", "pensieve")
    ladder = read_pensieve_video(folder / "inputs")
    sessions = _reference_chunks(folder)
    assert len(sessions) == 460
    worst = {"delay_ms": 0.0, "rebuf_s": 0.0, "reward": 0.0, "state": 0.0}
    for (dataset, trace_name, _), chunks in sessions.items():
        trace = load_trace(folder / "inputs" / "cooked" / dataset / trace_name.removesuffix(".csv"),
                           format="pensieve")
        env = AbrEnv(preset="pensieve", traces=[trace], ladder=ladder, random_start=False)
        obs, info = env.reset(seed=0)
        rewards = [info["reward"]]
        state = _pensieve_state(chunks, ladder, 0, np.zeros((6, 8)))
        worst["state"] = max(worst["state"], float(np.abs(obs - state).max()))
        for k in range(1, 48):
            obs, reward, terminated, _, _ = env.step(int(chunks[k]["quality"]))
            rewards.append(reward)
            assert terminated == (k == 47)
            state = _pensieve_state(chunks, ladder, k, state)
            if k < 47:  # (Pensieve sleeps after the last chunk too; the session here has ended)
                worst["state"] = max(worst["state"], float(np.abs(obs - state).max()))
        log = env.session_log()
        assert [int(c["quality"]) for c in chunks] == log.rung.tolist()
        rebuf_s = log.stall_s.copy()
        rebuf_s[0] = log.startup_s  # Pensieve counts the first chunk's delay as rebuffering
        got = {"delay_ms": (log.done_s - log.request_s) * 1000.0, "rebuf_s": rebuf_s, "reward": rewards}
        for key, values in got.items():
            want = np.array([float(c[key]) for c in chunks])
            worst[key] = max(worst[key], float(np.abs(np.asarray(values) - want).max()))
    assert worst["delay_ms"] <= 1e-6 and worst["rebuf_s"] <= 1e-6 and worst["reward"] <= 1e-6, worst
    assert worst["state"] <= 1e-6, worst  # float32 observation vs float64 reference


def test_pensieve_preset_defaults():
    env = AbrEnv(preset="pensieve")
    assert env.observation_space.shape == (6, 8)
    assert env.scenario.model == PENSIEVE
    assert env.scenario.reward == PENSIEVE_REWARD
    assert env.scenario.ladder.bitrates_bps.tolist() == pensieve_cbr_ladder().bitrates_bps.tolist()
    assert isinstance(env.scenario.model, PlayerModel)


# ----------------------------------------------------------------------------------------------
# A trained policy wherever a Python policy goes
# ----------------------------------------------------------------------------------------------


def random_mlp(inputs, rungs, seed):
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(inputs, 16)), rng.normal(size=(16, rungs))
    scale = rng.uniform(0.1, 1.0, size=inputs)

    def act(obs):
        return int(np.argmax(np.tanh(obs.reshape(-1) * scale @ w1) @ w2))

    return act


@pytest.mark.parametrize("preset", ["abrsim", "pensieve"])
def test_env_policy_decides_in_the_engine_as_in_the_env(preset):
    from abrsim.gym import EnvPolicy

    traces = load_traces([data_dir("traces")])
    for index, trace in enumerate(traces):
        env = AbrEnv(preset=preset, traces=[trace], random_start=False)
        size = int(np.prod(env.observation_space.shape))
        act = random_mlp(size, env.action_space.n, index)
        obs, _ = env.reset(seed=0)
        observations = [obs]
        while True:
            obs, _, terminated, _, _ = env.step(act(obs))
            observations.append(obs)
            if terminated:
                break
        seen = []

        def recording(values, act=act, seen=seen):
            seen.append(values)
            return act(values)

        policy = PythonPolicy(EnvPolicy.wrap(recording, observation=env.scenario.observation))
        batch = run_batch([trace], env.scenario.ladder, policy, env.scenario.model)
        assert np.array_equal(batch.session_log(0).rung, env.session_log().rung)
        assert len(seen) == len(observations) - 1
        assert all(np.allclose(a, b, rtol=1e-6, atol=1e-6) for a, b in zip(seen, observations))


def test_a_function_runs_with_abrsim_run(tmp_path):
    from click.testing import CliRunner

    from abrsim.cli import cli

    policy_file = tmp_path / "trained.py"
    policy_file.write_text(
        "import numpy as np\n\n"
        "def act(obs):\n"
        "    # the abrsim observation: the last throughput (Mbit/s) and the next sizes (Mbit)\n"
        "    throughput, sizes = obs[7], obs[16:25]\n"
        "    return max(0, int(np.sum(sizes / 6.0 < 0.8 * throughput)) - 1)\n")
    result = CliRunner().invoke(cli, ["run", "--policy", f"{policy_file}:act", "--abr", "bola", "--format",
                                      "csv"])
    assert result.exit_code == 0, result.output
    assert "act," in result.output and "bola," in result.output


def test_the_training_example_runs(tmp_path, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    from abrsim.abr import load_policy

    examples = Path(__file__).resolve().parents[1] / "docs" / "examples"
    done = subprocess.run(
        [sys.executable, str(examples / "train_cem.py"), "--minutes", "0.005", "--population", "4",
         "--episodes", "2", "--elite", "2", "--traces", "2", "--validate-every", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, check=True)
    assert '"iterations"' in done.stdout.splitlines()[-1]
    monkeypatch.setenv("ABRSIM_MLP_WEIGHTS", str(tmp_path / "mlp.npz"))
    policy = load_policy(f"{examples / 'mlp_policy.py'}:MlpPolicy")
    assert policy.name == "cem_mlp"
    batch = run_batch(load_traces([data_dir("traces")]), load_ladder("hls"), policy)
    assert len(batch) == 6 and batch.rungs.max() < 9
