"""Speed and memory of the offline optimum on real 3G traces.

Runs :func:`abrsim.oracle.optimal_session` on the first N HSDPA traces (default 10, from
../shared/traces/hsdpa_norway_3g) with the envivio ladder (../shared/videos/envivio, 48 of its
49 segments under the ``pensieve`` preset) and prints, per trace, the seconds, QoE_lin as the
search computed it and as replayed exactly, the search's width and its label arrays' peak. The
last line is one JSON object with ``oracle_s_per_trace`` (mean over the traces, compilation
excluded) and ``oracle_peak_mb`` (peak resident memory of the whole process, interpreter and
numba included; ``baseline_rss_mb`` is the same before the first search).

    python benchmarks/oracle.py [--traces DIR] [--count N] [--time-step-s S] [--buffer-step-s S]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=SHARED / "traces" / "hsdpa_norway_3g")
    parser.add_argument("--video", type=Path, default=SHARED / "videos" / "envivio" / "chunk_sizes.csv")
    parser.add_argument("--count", type=int, default=10, help="number of traces (sorted by name)")
    parser.add_argument("--time-step-s", type=float, default=0.0)
    parser.add_argument("--buffer-step-s", type=float, default=0.0)
    args = parser.parse_args()

    from abrsim.ladder import load_ladder
    from abrsim.model import PENSIEVE
    from abrsim.oracle import optimal_session
    from abrsim.trace import load_trace

    ladder = load_ladder(str(args.video), segment_duration_s=4.0)
    paths = sorted(p for p in args.traces.glob("*.csv") if p.name != "index.csv")[: args.count]
    traces = [load_trace(p) for p in paths]
    print(f"{len(traces)} traces from {args.traces}; ladder {ladder}; model {PENSIEVE.name}")

    start = time.perf_counter()
    optimal_session(traces[0], ladder, PENSIEVE.replace(segment_limit=3))
    print(f"first call (compile or cache load) {time.perf_counter() - start:.2f} s")
    baseline_mb = _rss_mb()

    total_s = 0.0
    widest = 0
    arrays_mb = 0.0
    for trace in traces:
        start = time.perf_counter()
        result = optimal_session(trace, ladder, PENSIEVE, time_step_s=args.time_step_s,
                                 buffer_step_s=args.buffer_step_s)
        elapsed_s = time.perf_counter() - start
        total_s += elapsed_s
        widest = max(widest, int(result.labels.max()))
        arrays_mb = max(arrays_mb, result.peak_array_bytes / 1e6)
        print(f"{trace.name:>24}: {elapsed_s:6.2f} s  QoE_lin {result.qoe_lin:9.3f} "
              f"(replayed {result.replayed_qoe_lin:9.3f})  widest {result.labels.max():6d} labels  "
              f"arrays {result.peak_array_bytes / 1e6:6.1f} MB  peak RSS {_rss_mb():6.0f} MB")
    summary = {
        "oracle_s_per_trace": total_s / len(traces),
        "oracle_peak_mb": _rss_mb(),
        "baseline_rss_mb": baseline_mb,
        "oracle_arrays_peak_mb": arrays_mb,
        "widest_labels": widest,
        "traces": len(traces),
        "time_step_s": args.time_step_s,
        "buffer_step_s": args.buffer_step_s,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
