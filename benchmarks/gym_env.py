"""Speed of the Gymnasium environments (abrsim.gym) next to a plain-Python twin.

Steps with random actions, episodes restarting as they end, on the built-in traces and the
``hls`` ladder (100 segments) under abrsim's own player model with the throughput network (the
naive twin has no tcp network, so all three do the same work; ``--network tcp`` times the two
compiled environments with abrsim's default network, the twin still on throughput), and prints:

- ``env_steps_per_s``: one ``AbrEnv``, a Python ``step`` call per step (``reset`` included when
  an episode ends), observation copied out as Gymnasium expects;
- ``vector_env_steps_per_s``: ``AbrVectorEnv`` with ``--num-envs`` sessions (default 1,024) per
  compiled call, next-step autoreset included;
- ``naive_env_steps_per_s``: tests/naive_gym.py's ``NaiveAbrEnv``, the same semantics in plain
  Python (a trace cursor, floats and lists: the kind of loop ABR papers train in); and the ratios.

Each rate is the best of ``--repeat`` timed runs (the machine is shared; the best is the least
disturbed). Everything runs in this one process, on one core. The last line is one JSON object.

    python benchmarks/gym_env.py [--steps N] [--num-envs N] [--repeat N] [--preset abrsim|pensieve]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from naive_gym import NaiveAbrEnv  # noqa: E402

from abrsim.gym import AbrEnv, AbrVectorEnv  # noqa: E402
from abrsim.model import get_preset  # noqa: E402
from abrsim.trace import load_traces  # noqa: E402


def single_rate(env, steps: int, repeat: int) -> float:
    """Steps per second of ``env`` (an AbrEnv or its twin) with random actions."""
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps).tolist()
    best_s = float("inf")
    for run in range(repeat):
        env.reset(seed=run)
        step, reset = env.step, env.reset
        start = time.perf_counter()
        for action in actions:
            if step(action)[2]:
                reset()
        best_s = min(best_s, time.perf_counter() - start)
    return steps / best_s


def vector_rate(env: AbrVectorEnv, calls: int, repeat: int) -> float:
    """Environment steps per second of ``env`` (calls x num_envs), random actions."""
    actions = np.random.default_rng(0).integers(env.single_action_space.n, size=(calls, env.num_envs))
    best_s = float("inf")
    for run in range(repeat):
        env.reset(seed=run)
        start = time.perf_counter()
        for batch in actions:
            env.step(batch)
        best_s = min(best_s, time.perf_counter() - start)
    return calls * env.num_envs / best_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000, help="single-environment steps per run")
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--calls", type=int, default=400, help="vector steps per run")
    parser.add_argument("--naive-steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--preset", default="abrsim", choices=("abrsim", "pensieve"))
    parser.add_argument("--network", default="throughput", choices=("throughput", "tcp"),
                        help="the abrsim preset's network for the compiled environments")
    args = parser.parse_args()

    model = get_preset("abrsim").replace(network=args.network) if args.preset == "abrsim" else None
    env = AbrEnv(preset=args.preset, model=model)
    scenario = env.scenario
    vector = AbrVectorEnv(args.num_envs, preset=args.preset, model=model)
    utility, penalty = scenario.reward.arrays(scenario.ladder)
    twin_model = scenario.model.replace(network="throughput")
    twin = NaiveAbrEnv(load_traces([str(ROOT / "traces")]), scenario.ladder, twin_model, utility, penalty,
                       scenario.reward.switch_penalty, scenario.reward.startup_penalty, scenario.history,
                       pensieve=args.preset == "pensieve", random_start=scenario.random_start)
    single_rate(env, 1000, 1)  # compile or load the cache
    vector_rate(vector, 2, 1)
    result = {
        "env_steps_per_s": single_rate(env, args.steps, args.repeat),
        "vector_env_steps_per_s": vector_rate(vector, args.calls, args.repeat),
        "naive_env_steps_per_s": single_rate(twin, args.naive_steps, args.repeat),
    }
    result["env_vs_naive"] = result["env_steps_per_s"] / result["naive_env_steps_per_s"]
    result["vector_vs_naive"] = result["vector_env_steps_per_s"] / result["naive_env_steps_per_s"]
    print(f"preset {args.preset}, ladder {scenario.ladder.name!r} ({scenario.segments} segments), "
          f"{len(scenario.pool or ())} traces")
    print(f"AbrEnv:                {result['env_steps_per_s']:>12,.0f} steps/s "
          f"({result['env_vs_naive']:.0f}x the naive twin)")
    print(f"AbrVectorEnv ({args.num_envs:>5}): {result['vector_env_steps_per_s']:>12,.0f} steps/s "
          f"({result['vector_vs_naive']:.0f}x)")
    print(f"naive Python twin:     {result['naive_env_steps_per_s']:>12,.0f} steps/s")
    print(json.dumps({k: round(v, 1) for k, v in result.items()}))


if __name__ == "__main__":
    main()
