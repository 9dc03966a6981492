"""Real versus synthetic traces, per fitted profile: the five statistics, and QoE under the default ABRs.

    python benchmarks/trace_profiles.py [--seeds 5] [--seconds 1000000] [--no-qoe]

For each profile (3g, 4g, 5g, broadband) it draws, for each seed, about
``--seconds`` of synthetic traces at the real set's median trace length and
compares their statistics on 1 s means (mean, p10, p90, lag-1 autocorrelation
within traces, share below 50 kbit/s) with the real set's (stored with the
profile; recomputed from ../shared/traces when that folder exists). It prints
one table per profile with the real value, the synthetic value of the first
seed, and the mean and worst relative error over the seeds. Then, if
../shared/traces exists, it replays the real set and as many synthetic traces of
the same lengths through the ``hls`` ladder with BOLA and the throughput rule
and compares mean rebuffering, bitrate and switches. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from abrsim.ladder import load_ladder
from abrsim.runner import run
from abrsim.trace import load_traces
from abrsim.tracegen import available_profiles, get_profile, network_statistics, synthesize, synthesize_many

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
FOLDERS = {
    "3g": "hsdpa_norway_3g",
    "4g": "lte_belgium_4g",
    "5g": "lumos5g_mmwave_5g",
    "broadband": "fcc_broadband",
}
UNITS = {"mean_bps": 1e6, "p10_bps": 1e6, "p90_bps": 1e6}  # shown in Mbit/s


def relative_error(got: float, want: float) -> float:
    return (got - want) / want if want else abs(got)


def compare_statistics(seeds: int, seconds: float) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in available_profiles():
        profile = get_profile(name)
        real = dict(profile.real_statistics)
        if SHARED.is_dir():
            real = network_statistics(load_traces(SHARED / FOLDERS[name])).as_dict()
        count = math.ceil(seconds / profile.typical_duration_s)
        start = time.perf_counter()
        runs = [
            network_statistics(synthesize_many(profile, count, seed=seed)).as_dict() for seed in range(seeds)
        ]
        elapsed = time.perf_counter() - start
        print(f"\n{name}: {count} traces x {profile.typical_duration_s:g} s per seed, {seeds} seeds "
              f"({seeds * count * profile.typical_duration_s / elapsed / 1e6:.1f} M synthetic s per s)")
        print(f"  {'statistic':22s} {'real':>10s} {'synthetic':>10s} {'mean err':>9s} {'worst err':>9s}")
        results[name] = {}
        for key, want in real.items():
            errors = [relative_error(r[key], want) for r in runs]
            worst = max(errors, key=abs)
            scale = UNITS.get(key, 1.0)
            print(f"  {key:22s} {want / scale:10.4g} {runs[0][key] / scale:10.4g} "
                  f"{100 * np.mean(errors):+8.1f}% {100 * worst:+8.1f}%")
            results[name][key] = {
                "real": want,
                "synthetic": runs[0][key],
                "mean_error": float(np.mean(errors)),
                "worst_error": float(worst),
            }
    return results


def compare_qoe() -> dict[str, dict[str, float]]:
    ladder = load_ladder("hls")
    results: dict[str, dict[str, float]] = {}
    print("\nQoE on the hls ladder, mean over sessions "
          "(real set / as many synthetic traces of the same lengths)")
    print(f"  {'profile':10s} {'policy':10s} {'rebuffer_s':>17s} {'bitrate_kbps':>17s} {'switches':>15s}")
    for name in available_profiles():
        real_traces = load_traces(SHARED / FOLDERS[name])
        children = np.random.SeedSequence(7).spawn(len(real_traces))
        synthetic = [synthesize(name, np.random.default_rng(child), trace.duration_s, name=f"{name}_{i}")
                     for i, (trace, child) in enumerate(zip(real_traces, children, strict=True))]
        for policy in ("bola", "throughput"):
            rows = {label: run(traces, ladder, (policy,)) for label, traces in
                    (("real", real_traces), ("synthetic", synthetic))}
            means = {label: {key: float(np.mean([r[key] for r in rows[label]]))
                             for key in ("rebuffer_s", "mean_bitrate_bps", "switch_count")} for label in rows}
            real, synth = means["real"], means["synthetic"]
            print(f"  {name:10s} {policy:10s} {real['rebuffer_s']:7.2f} / {synth['rebuffer_s']:<7.2f} "
                  f"{real['mean_bitrate_bps'] / 1e3:7.0f} / {synth['mean_bitrate_bps'] / 1e3:<7.0f} "
                  f"{real['switch_count']:6.1f} / {synth['switch_count']:<6.1f}")
            results[f"{name}/{policy}"] = {f"{label}_{key}": value for label in means
                                           for key, value in means[label].items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1_000_000.0,
                        help="synthetic seconds per profile and seed")
    parser.add_argument("--no-qoe", action="store_true", help="skip the QoE comparison")
    args = parser.parse_args()
    source = "../shared/traces" if SHARED.is_dir() else "the profiles (../shared absent)"
    print(f"real statistics from {source}")
    statistics = compare_statistics(args.seeds, args.seconds)
    qoe = {} if args.no_qoe or not SHARED.is_dir() else compare_qoe()
    worst = max(abs(v["worst_error"]) for profile in statistics.values() for v in profile.values())
    print(json.dumps({"benchmark": "trace_profiles", "seeds": args.seeds, "seconds_per_seed": args.seconds,
                      "worst_relative_error": worst, "statistics": statistics, "qoe": qoe}))


if __name__ == "__main__":
    main()
