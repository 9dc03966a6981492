"""Speed of user policies: Python classes and compiled (numba) policies, and the cold start.

Runs over every trace in a folder (default: ../shared/traces/hsdpa_norway_3g, 142 traces) with a
10-rung ladder of 3 s segments and 199 segments (../shared/videos/bbb_sabre), under abrsim's
own player model, and prints:

- ``python_policy_segments_per_s``: the documented Python example
  (docs/examples/buffer_based.py, Pensieve's BB) through the fast engine, which returns to
  Python once per decision; next to it the built-in ``bb`` kernel it equals, and the ratio;
- ``numba_user_policy_segments_per_s``: BOLA's own kernels registered as a user would
  (``abrsim.abr.register`` under another name), next to the built-in ``bola`` (the issue's
  bar: within 10 %); and the numba example (``bb_numba``) next to ``bb``;
- ``cold_run_s``: ``abrsim run --abr bola`` on the built-in traces in a fresh process with an
  empty numba cache (``NUMBA_CACHE_DIR`` in a temporary folder), and the same for the default
  scenario (``abrsim run``: bola and throughput), and a warm run for comparison; the
  ``_one_process`` figures are the same cold runs without compiling ahead
  (``ABRSIM_COMPILE_AHEAD=0``: what a one-CPU machine sees).

Rates are the best of ``--repeat`` timed runs (the machine is shared; the best is the least
disturbed). The last line is one JSON object.

    python benchmarks/policies.py [--traces DIR] [--video CSV] [--repeat N] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def best_rate(run, segments: int, repeat: int) -> float:
    """Segments per second of the fastest of ``repeat`` calls of ``run``."""
    best_s = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best_s = min(best_s, time.perf_counter() - start)
    return segments / best_s


def cold_run_s(args: list[str], ahead: bool = True) -> float:
    """Wall time of ``abrsim ARGS`` in a fresh process with an empty numba cache (``ahead``: with
    helper processes compiling ahead, as by default)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "ABRSIM_COMPILE_AHEAD": "1" if ahead else "0"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "abrsim", *args], env=env, check=True, capture_output=True)
        return time.perf_counter() - start


def warm_run_s(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "abrsim", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=SHARED / "traces" / "hsdpa_norway_3g")
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "bbb_sabre" / "chunk_sizes.csv")
    parser.add_argument("--repeat", type=int, default=10, help="timed repetitions per policy")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start runs (about a minute)")
    args = parser.parse_args()

    from abrsim.abr import ALGORITHMS, load_policy, register
    from abrsim.engine.fast import pack_traces, run_batch
    from abrsim.ladder import load_ladder
    from abrsim.trace import load_traces

    traces = pack_traces(load_traces([args.traces]))
    ladder = load_ladder(str(args.video), segment_duration_s=3.0)
    segments = len(traces) * ladder.segment_count
    print(f"traces: {len(traces)} from {args.traces}; ladder: {ladder}; {segments} segments per run")

    python_bb = load_policy(f"{ROOT / 'docs' / 'examples' / 'buffer_based.py'}:BufferBased")
    numba_bb = load_policy(f"{ROOT / 'docs' / 'examples' / 'buffer_based_numba.py'}:bb_numba")
    bola = ALGORITHMS["bola"]
    register("bola_user", choose=bola.choose, reset=bola.reset, event=bola.event, abandon=bola.abandon,
             can_abandon=bola.can_abandon, state_size=bola.state_size, params=bola.params, replace=True)
    runs = {"python_bb": python_bb, "bb": "bb", "numba_bb": numba_bb, "bola": "bola",
            "bola_user": "bola_user"}
    for policy in runs.values():
        run_batch(traces, ladder, policy)  # compile or load the cache
    rates = {name: best_rate(lambda p=policy: run_batch(traces, ladder, p), segments, args.repeat)
             for name, policy in runs.items()}
    for name, rate in rates.items():
        print(f"{name:>10}: {rate:,.0f} segments/s")
    result: dict[str, float] = {
        "python_policy_segments_per_s": rates["python_bb"],
        "python_policy_vs_builtin_bb": rates["python_bb"] / rates["bb"],
        "numba_user_policy_segments_per_s": rates["bola_user"],
        "numba_user_policy_vs_builtin_bola": rates["bola_user"] / rates["bola"],
        "builtin_bola_segments_per_s": rates["bola"],
        "numba_example_bb_segments_per_s": rates["numba_bb"],
        "numba_example_vs_builtin_bb": rates["numba_bb"] / rates["bb"],
    }
    print(f"Python policy: {result['python_policy_vs_builtin_bb']:.3f} of the built-in bb; user-registered "
          f"BOLA: {result['numba_user_policy_vs_builtin_bola']:.3f} of the built-in bola")
    if not args.no_cold:
        for ahead, suffix in ((True, ""), (False, "_one_process")):  # alternated: the machine is shared
            result[f"cold_run{suffix}_s"] = cold_run_s(["run", "--abr", "bola"], ahead)
            result[f"cold_default_run{suffix}_s"] = cold_run_s(["run"], ahead)
        result["warm_run_s"] = warm_run_s(["run", "--abr", "bola"])
        print(f"abrsim run --abr bola: {result['cold_run_s']:.1f} s with an empty numba cache "
              f"({result['cold_run_one_process_s']:.1f} s without compiling ahead), "
              f"{result['warm_run_s']:.1f} s warm; abrsim run (bola, throughput): "
              f"{result['cold_default_run_s']:.1f} s cold ({result['cold_default_run_one_process_s']:.1f} s)")
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))


if __name__ == "__main__":
    main()
