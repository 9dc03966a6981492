"""Speed of the fast engine on real 3G traces, through the public Python API.

Runs BOLA and the throughput rule over every trace in a folder (default:
../shared/traces/hsdpa_norway_3g, 142 traces) with a 10-rung ladder of 3 s
segments and 199 segments (../shared/videos/bbb_sabre), and prints rates. The
last line is one JSON object.

    python benchmarks/fast_engine.py [--traces DIR] [--video CSV] [--repeat N]

``compile_s`` is only meaningful with an empty numba cache (set NUMBA_CACHE_DIR to
a fresh folder); otherwise it measures loading the cache.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=SHARED / "traces" / "hsdpa_norway_3g")
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "bbb_sabre" / "chunk_sizes.csv")
    parser.add_argument("--repeat", type=int, default=20, help="timed repetitions per algorithm")
    args = parser.parse_args()

    start = time.perf_counter()
    from abrsim.engine.fast import pack_traces, run_batch
    from abrsim.ladder import load_ladder
    from abrsim.results import rows_from_batch
    from abrsim.trace import load_traces

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    traces = load_traces([args.traces])
    ladder = load_ladder(str(args.video), segment_duration_s=3.0)
    load_s = time.perf_counter() - start
    print(f"traces: {len(traces)} from {args.traces}; ladder: {ladder}")
    print(f"import {import_s:.3f} s, load inputs {load_s:.3f} s")

    start = time.perf_counter()
    rows_from_batch(run_batch(traces[:1], ladder, "bola"))
    rows_from_batch(run_batch(traces[:1], ladder, "throughput"))
    compile_s = time.perf_counter() - start
    print(f"first call (compile or cache load) {compile_s:.3f} s")

    result: dict[str, float] = {"compile_s": compile_s, "traces": len(traces)}
    for name in ("bola", "throughput"):
        # End to end through the public API: pack the traces, run, build the results rows.
        best_s = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            rows = rows_from_batch(run_batch(traces, ladder, name))
            best_s = min(best_s, time.perf_counter() - start)
        segments = len(rows) * ladder.segment_count
        seg_rate = segments / best_s
        print(f"{name:>10}: {len(rows)} sessions, {segments} segments in {best_s * 1e3:.2f} ms "
              f"-> {seg_rate:,.0f} segments/s, {len(rows) / best_s:,.0f} sessions/s "
              f"({seg_rate / 12_000:,.0f}x Sabre's best 12,000 segments/s)")
        if name == "bola":
            result["segments_per_s"] = seg_rate
            result["sessions_per_s"] = len(rows) / best_s
        result[f"{name}_segments_per_s"] = seg_rate

    # The tcp network model (issue 15) against the throughput one, same runs, alternated.
    from abrsim.model import PlayerModel

    models = {"throughput": PlayerModel(network="throughput"), "tcp": PlayerModel(network="tcp")}
    run_batch(traces[:1], ladder, "bola", models["tcp"])
    best = dict.fromkeys(models, float("inf"))
    for _ in range(args.repeat):
        for network, model in models.items():
            start = time.perf_counter()
            rows_from_batch(run_batch(traces, ladder, "bola", model))
            best[network] = min(best[network], time.perf_counter() - start)
    segments = len(traces) * ladder.segment_count
    for network in models:
        print(f"bola, {network:>10} network: {segments / best[network]:,.0f} segments/s")
    result["tcp_bola_segments_per_s"] = segments / best["tcp"]
    result["tcp_over_throughput"] = best["throughput"] / best["tcp"]
    print(f"tcp / throughput speed: {result['tcp_over_throughput']:.2f}")

    # One session per call: the per-session overhead of the single-session API.
    from abrsim.engine.fast import run_session

    packed_one = [pack_traces([t]) for t in traces]
    start = time.perf_counter()
    for packed in packed_one:
        run_batch(packed, ladder, "bola")
    per_call_s = (time.perf_counter() - start) / len(traces)
    start = time.perf_counter()
    for trace in traces:
        run_session(trace, ladder, "bola")
    session_call_s = (time.perf_counter() - start) / len(traces)
    print(f"one session per call: run_batch {per_call_s * 1e6:.0f} us, run_session "
          f"{session_call_s * 1e6:.0f} us per session")
    result["single_session_call_us"] = session_call_s * 1e6
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))


if __name__ == "__main__":
    main()
