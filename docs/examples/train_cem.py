"""Train a small MLP ABR policy (mlp_policy.py) on abrsim.gym by the cross-entropy method, numpy only.

Training traces: 3G and 4G traces drawn from abrsim's fitted generator profiles with
``--trace-seed``; every session starts at a random point of its trace. The ``hls`` ladder and
abrsim's player model; reward QoE_lin per segment. Each iteration draws ``--population``
networks around the current mean, plays each on the same ``--episodes`` sessions (all
``population x episodes`` sessions in one AbrVectorEnv), and refits the mean and spread to the
best ``--elite`` of them by mean QoE (``--fitness ranked``: by mean rank over the sessions, so
that low-QoE 3G sessions count as much as 4G ones). Every ``--validate-every`` iterations
the mean network plays 1,024 validation sessions (fixed seeds, new traces); the best is kept
and written to ``OUT/mlp.npz`` for ``mlp_policy.py``.

    python docs/examples/train_cem.py --minutes 3 --out results/gym_cem

The held-out comparison with bb, bola and robustmpc is docs/examples/gym_compare.toml.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: BLAS threads only add overhead

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlp_policy import logits, parameter_count

from abrsim.gym import AbrVectorEnv
from abrsim.tracegen import synthesize


def training_traces(count: int, seed: int, duration_s: float) -> list:
    rng = np.random.default_rng(seed)
    return [synthesize(profile, rng, duration_s, name=f"{profile}_{i}")
            for profile in ("3g", "4g") for i in range(count)]


def observation_scale(history: int, rungs: int, segment_duration_s: float) -> np.ndarray:
    """Divisors bringing each observation value near [0, 1] (layout: docs/gym.md)."""
    return np.concatenate([
        np.full(history, 10.0),  # throughput, Mbit/s
        np.full(history, segment_duration_s),  # download time, s
        np.full(rungs, 10.0 * segment_duration_s),  # next sizes, Mbit
        [25.0, rungs, 100.0],  # buffer s, last rung, segments left
    ])


def play(env: AbrVectorEnv, theta: np.ndarray, scale: np.ndarray, seeds: list[int]) -> np.ndarray:
    """Total reward of each session; network ``p`` plays sessions ``p * K`` to ``p * K + K - 1``."""
    population = theta.shape[0]
    obs, _ = env.reset(seed=seeds)
    rungs = int(env.single_action_space.n)
    totals = np.zeros(env.num_envs)
    running = np.ones(env.num_envs, dtype=bool)
    while running.any():
        batch = obs.reshape(population, -1, obs.shape[-1])
        actions = np.argmax(logits(theta, scale, batch, rungs), axis=-1).reshape(-1)
        obs, rewards, terminated, _, _ = env.step(actions)
        totals += np.where(running, rewards, 0.0)
        running &= ~terminated
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training time")
    parser.add_argument("--iterations", type=int, default=0,
                        help="stop after this many iterations instead (a run that repeats exactly)")
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=16, help="sessions per network per iteration")
    parser.add_argument("--elite", type=int, default=8)
    parser.add_argument("--traces", type=int, default=100, help="training traces per profile (3g, 4g)")
    parser.add_argument("--trace-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validate-every", type=int, default=5)
    parser.add_argument("--fitness", choices=("mean", "ranked"), default="mean",
                        help="rank networks by their mean rank over the sessions, or by their mean QoE")
    parser.add_argument("--out", type=Path, default=Path("results/gym_cem"))
    args = parser.parse_args()

    traces = training_traces(args.traces, args.trace_seed, 600.0)
    validation = training_traces(32, args.trace_seed + 1000, 600.0)
    envs = args.population * args.episodes
    env = AbrVectorEnv(envs, traces=traces, ladder="hls", random_start=True, copy=False)
    check = AbrVectorEnv(envs, traces=validation, ladder="hls", random_start=True, copy=False)
    history, rungs = env.scenario.history, env.scenario.ladder.rung_count
    inputs = env.single_observation_space.shape[0]
    scale = observation_scale(history, rungs, env.scenario.ladder.segment_duration_s)
    rng = np.random.default_rng(args.seed)
    mean = np.zeros(parameter_count(inputs, rungs))
    spread = np.full(mean.size, 0.5)
    best_score, best_theta = -np.inf, mean.copy()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    iteration, steps = 0, 0
    while (iteration < args.iterations if args.iterations > 0
           else time.perf_counter() - started < 60.0 * args.minutes):
        theta = mean + spread * rng.standard_normal((args.population, mean.size))
        seeds = [int(s) for s in rng.integers(2**31, size=args.episodes)] * args.population
        totals = play(env, theta, scale, seeds).reshape(args.population, args.episodes)
        scores = totals.mean(axis=1)
        if args.fitness == "ranked":  # each session counts alike (a 3G QoE is a tenth of a 4G one)
            ranks = totals.argsort(axis=0).argsort(axis=0)
            fitness = ranks.mean(axis=1)
        else:
            fitness = scores
        steps += envs * (env.scenario.segments - 1)
        elite = theta[np.argsort(fitness)[-args.elite:]]
        extra = max(0.0, 0.05 * (1.0 - iteration / 200.0))  # decaying exploration noise
        mean, spread = elite.mean(axis=0), elite.std(axis=0) + extra
        iteration += 1
        if iteration % args.validate_every == 0:
            score = play(check, np.repeat(mean[None], args.population, axis=0), scale,
                         list(range(envs))).mean()
            if score > best_score:
                best_score, best_theta = score, mean.copy()
            elapsed_s = time.perf_counter() - started
            elite_qoe = np.sort(scores)[-args.elite:].mean()
            print(f"iteration {iteration:4d}  {elapsed_s:6.0f} s  elite mean {elite_qoe:7.2f}"  # noqa: T201
                  f"  validation QoE_lin {score:7.2f} (best {best_score:7.2f})", flush=True)
    np.savez(args.out / "mlp.npz", theta=best_theta, scale=scale, rungs=rungs)
    elapsed_s = time.perf_counter() - started
    summary = {"iterations": iteration, "train_s": round(elapsed_s, 1), "env_steps": steps,
               "env_steps_per_s": round(steps / elapsed_s), "best_validation_qoe_lin": round(best_score, 3),
               "weights": str(args.out / "mlp.npz")}
    print(json.dumps(summary))  # noqa: T201


if __name__ == "__main__":
    main()
