"""dash.js in headless Chromium through the emulated link, against abrsim's ``dashjs`` preset.

    python benchmarks/real_player.py [--traces DIR] [--repeats N] [--limit N] [--out DIR]
                                     [--fast-switching] [--abandonment] [--seed N]

Needs root and ``tools/emulation/emulation.sh up`` (Mahimahi, ffmpeg, npm, chromium). For every
trace, ``--repeats`` real runs (dash.js 5.1.1 from ``npm pack``, Debian's chromium, the cached
ffmpeg asset: 5 CBR representations of 300-2850 kbit/s at 640x360, 60 s in 4 s segments) and one
abrsim run of the ``dashjs`` rule set under the ``dashjs`` player model, on the same trace, ladder
(imported from the asset's files) and link (RTT 40 ms, 100-packet drop-tail queue), through
:func:`abrsim.emulation.realplayer.validate_real_player` -- what ``abrsim validate real-player``
runs.

The traces (unless ``--traces DIR``): 12, written to ``OUT/traces`` as abrsim CSV files --
three 60 s stretches from each of ``../shared/traces/hsdpa_norway_3g``, ``lte_belgium_4g`` and
``fcc_broadband``, drawn with a seeded generator among the stretches whose mean lies in
0.4-6 Mbit/s (where the ladder's choices are not trivial; the 4G set rarely goes that low, so
its stretches are its slowest found), and three step patterns (3 -> 0.8 -> 3, 1.5 -> 4, and
5 -> 0.6 Mbit/s).

By default fast switching and abandonment are off (the repeatable configuration);
``--fast-switching`` and ``--abandonment`` turn them on in dash.js (abandonment in abrsim too;
abrsim does not model segment replacement).

Prints one line per run and per trace, the per-trace table, and last one JSON line with
``rung_agreement``, ``startup_abs_error_s``, ``stall_abs_error_s``, ``bitrate_rel_error`` (means
over traces; the ``_max`` keys are the worst trace), ``stall_ok_share`` (traces whose stall time
is within 0.5 s or within the real runs' range), ``real_rung_agreement`` (between real runs),
``traces``, ``repeats``, the configuration and the load average. ``--reuse`` compares again
from the real runs a previous measurement kept (``OUT/<config>/runs``), without measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from abrsim.emulation.linktrace import trace_stretch
from abrsim.emulation.player import DASHJS_VERSION, player_unavailable
from abrsim.emulation.realplayer import COMPARISON_FIELDS, cut_traces, validate_real_player
from abrsim.model import DASHJS
from abrsim.trace import Trace, load_traces, write_abrsim_csv

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
SETS = ("hsdpa_norway_3g", "lte_belgium_4g", "fcc_broadband")
STEPS = (("step_3_0.8_3", [0.0, 20.0, 40.0], [3e6, 0.8e6, 3e6]),
         ("step_1.5_4", [0.0, 30.0], [1.5e6, 4e6]),
         ("step_5_0.6", [0.0, 25.0], [5e6, 0.6e6]))
STRETCH_S = 60.0
MEAN_RANGE_BPS = (0.4e6, 6e6)


def stretches(folder: Path, count: int, rng: np.random.Generator, tries: int = 400) -> list[Trace]:
    """``count`` 60 s stretches of the folder's traces whose mean is in MEAN_RANGE_BPS (else the
    slowest found), from distinct files."""
    traces = [t for t in load_traces(folder) if t.duration_s >= STRETCH_S]
    chosen: list[Trace] = []
    fallback: list[tuple[float, Trace]] = []
    used: set[str] = set()
    for _ in range(tries):
        if len(chosen) == count:
            break
        trace = traces[int(rng.integers(len(traces)))]
        if trace.name in used:
            continue
        start = float(np.round(rng.uniform(0, trace.duration_s - STRETCH_S)))
        piece = trace_stretch(trace, start, STRETCH_S)
        piece = Trace(piece.start_s, piece.bandwidth_bps, piece.duration_s,
                      name=f"{folder.name}-{trace.name}-{start:g}s", measures=trace.measures)
        mean = piece.mean_bandwidth_bps
        if MEAN_RANGE_BPS[0] <= mean <= MEAN_RANGE_BPS[1]:
            chosen.append(piece)
            used.add(trace.name)
        else:
            fallback.append((mean, piece))
    fallback.sort(key=lambda pair: pair[0])
    for _, piece in fallback:
        if len(chosen) == count:
            break
        if piece.name.rsplit("-", 1)[0] not in {c.name.rsplit("-", 1)[0] for c in chosen}:
            chosen.append(piece)
    return chosen


def write_default_traces(out: Path, seed: int) -> Path:
    folder = out / "traces"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pieces = [p for name in SETS for p in stretches(SHARED / name, 3, rng)]
    pieces += [Trace(np.array(starts), np.array(rates), STRETCH_S, name=name)
               for name, starts, rates in STEPS]
    for index, piece in enumerate(pieces):
        write_abrsim_csv(piece, folder / f"{index:02d}_{piece.name.replace('/', '_')}.csv")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=Path, default=None, help="a folder of traces (default: see above)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N traces")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/real_player"))
    parser.add_argument("--fast-switching", action="store_true")
    parser.add_argument("--abandonment", action="store_true")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--reuse", action="store_true",
                        help="compare again from the real runs kept in OUT/<config>/runs (no measuring)")
    args = parser.parse_args()
    reason = player_unavailable()
    if reason:
        print(f"real_player: cannot run here: {reason}", file=sys.stderr)
        return 2
    label = f"{'fs' if args.fast_switching else 'nofs'}-{'ab' if args.abandonment else 'noab'}"
    out = args.out / label
    default_folder = args.out / "traces"
    folder = args.traces or (default_folder if args.reuse and default_folder.exists()
                             else write_default_traces(args.out, args.seed))
    traces = cut_traces(folder, STRETCH_S)[:args.limit]
    model = DASHJS.replace(abandonment=args.abandonment)
    started = time.monotonic()
    loads = [os.getloadavg()[0]]
    comparisons, summary = validate_real_player(
        traces, out, repeats=args.repeats, model=model, fast_switching=args.fast_switching, reuse=args.reuse,
        progress=lambda line: (print(line, file=sys.stderr, flush=True), loads.append(os.getloadavg()[0])))
    print(f"\nper trace ({label}; real/abrsim):")
    shown = [f for f in COMPARISON_FIELDS if f not in ("repeats", "stall_real_min_s", "stall_real_max_s")]
    print("  ".join(shown))
    for comparison in comparisons:
        print("  ".join(f"{comparison.figures[f]:.3g}" if isinstance(comparison.figures[f], float)
                        else str(comparison.figures[f]) for f in shown))
    summary.update({"fast_switching": args.fast_switching, "abandonment": args.abandonment,
                    "dashjs_version": DASHJS_VERSION, "model": model.name,
                    "load1_min": min(loads), "load1_max": max(loads),
                    "elapsed_s": round(time.monotonic() - started, 1), "report": str(out / "index.html")})
    print(json.dumps({key: (None if isinstance(value, float) and not np.isfinite(value) else value)
                      for key, value in summary.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
