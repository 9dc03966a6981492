"""Speed of every registered algorithm on the peers' reference inputs, after compilation.

    python benchmarks/algorithms.py [--repeat N] [--no-interpreted]

Sabre's family (bola, bolae, throughput, dynamic, dynamicdash) runs on Sabre's 86 HSDPA 3G
logs with its movie under the ``sabre`` preset, with abandonment off and on; the others run on
the 142 HSDPA cooked traces with the envivio video under the ``pensieve`` preset. Each rate is the
best of N runs of ``run_batch`` plus the results rows (compilation excluded). The same kernels are
then run with ``NUMBA_DISABLE_JIT=1`` on a few traces in a subprocess, to give the speed-up that
compilation buys. The last line is one JSON object with ``<algorithm>_segments_per_s`` (and
``<algorithm>_abandon_segments_per_s`` for Sabre's family) and ``robustmpc_ms_per_session``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
SABRE_FAMILY = ("bola", "bolae", "throughput", "dynamic", "dynamicdash")


def load_inputs(limit: int | None):
    from abrsim.engine.fast import pack_traces
    from abrsim.ladder import load_ladder
    from abrsim.peer_formats import read_pensieve_video
    from abrsim.trace import load_trace

    sabre_traces = [load_trace(p) for p in sorted((SHARED / "sabre" / "inputs" / "3g").glob("*.json"))]
    cooked = sorted((SHARED / "pensieve" / "inputs" / "cooked" / "hsdpa_norway_3g").iterdir())
    pensieve_traces = [load_trace(p, format="pensieve") for p in cooked]
    return (pack_traces(sabre_traces[:limit]), load_ladder(str(SHARED / "sabre" / "inputs" / "bbb.json")),
            pack_traces(pensieve_traces[:limit]), read_pensieve_video(SHARED / "pensieve" / "inputs"))


def measure(limit: int | None, repeat: int) -> dict[str, float]:
    from abrsim.abr import available
    from abrsim.engine.fast import run_batch
    from abrsim.model import PENSIEVE, SABRE
    from abrsim.results import rows_from_batch

    sabre, movie, pensieve, video = load_inputs(limit)
    cases = []
    for name in available():
        if name in SABRE_FAMILY:
            cases.append((name, sabre, movie, SABRE.replace(abandonment=False)))
            cases.append((f"{name}_abandon", sabre, movie, SABRE))
        else:
            cases.append((name, pensieve, video, PENSIEVE))
    rates: dict[str, float] = {}
    for label, traces, ladder, model in cases:
        algorithm = label.removesuffix("_abandon")
        rows_from_batch(run_batch(traces, ladder, algorithm, model))  # compile or load the cache
        best_s = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            batch = run_batch(traces, ladder, algorithm, model)
            rows_from_batch(batch)
            best_s = min(best_s, time.perf_counter() - start)
        segments = int(batch.session[:, 5].sum())  # SES_SEGMENTS: played segments
        rates[f"{label}_segments_per_s"] = segments / best_s
        rates[f"{label}_sessions_per_s"] = len(batch) / best_s
        if algorithm == "robustmpc":
            rates["robustmpc_ms_per_session"] = best_s / len(batch) * 1000.0
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N traces of each set")
    parser.add_argument("--no-interpreted", action="store_true", help="skip the NUMBA_DISABLE_JIT run")
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rates = measure(args.limit, args.repeat)
    if args.json_only:
        print(json.dumps(rates))
        return
    interpreted: dict[str, float] = {}
    if not args.no_interpreted:
        env = dict(os.environ, NUMBA_DISABLE_JIT="1")
        out = subprocess.run([sys.executable, __file__, "--json-only", "--limit", "3", "--repeat", "1"],
                             env=env, capture_output=True, text=True, check=True)
        interpreted = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'algorithm':>24} {'segments/s':>12} {'sessions/s':>11} {'vs interpreted':>15}")
    for key, value in rates.items():
        if not key.endswith("_segments_per_s"):
            continue
        label = key.removesuffix("_segments_per_s")
        ratio = value / interpreted[key] if interpreted.get(key) else float("nan")
        print(f"{label:>24} {value:>12,.0f} {rates[label + '_sessions_per_s']:>11,.0f} {ratio:>14,.0f}x")
    print(f"robustmpc: {rates['robustmpc_ms_per_session']:.3f} ms per 48-chunk session "
          "(Pensieve's Python: 1,745 ms; a straight numba port: 9.3 ms)")
    print(json.dumps({k: round(v, 3) for k, v in rates.items() if not k.endswith("_sessions_per_s")}))


if __name__ == "__main__":
    main()
