"""Download times through an emulated link with the kernel's TCP, against abrsim's download models.

    python benchmarks/real_network.py [--quick] [--traces DIR] [--measurements FILE] [--out FILE]
                                      [--repeats N] [--queue-packets N] [--congestion-control NAME]

(a) **Measure** (root and ``tools/emulation/emulation.sh up`` needed): downloads through
``mm-delay D mm-link`` (:func:`abrsim.emulation.run_downloads`), one persistent HTTP/1.1
connection per link, from this host's payload server:

* constant links of 1, 5, 20 and 100 Mbit/s, each at RTTs of 10, 50 and 200 ms, a drop-tail
  queue of ``--queue-packets`` (100); on each, three rounds of segments of 20 kB, 200 kB, 2 MB
  and 8 MB (sizes that would take over about 10 s at the link's rate are left out), every
  segment of a round after the same idle gap -- 0, 1 and 5 s -- then one 20 kB segment after
  10 s. The very first segment of a link meets a fresh connection (cold start);
  every later one a warm connection after the given idle gap.
* stretches of real traces (60 s from a seeded offset; ``--traces DIR``, any folder of traces
  abrsim reads; by default two files from each folder of ``../shared/traces``) at an RTT of
  40 ms: eight segments of about two seconds of the stretch's mean rate, alternately back to back
  and after a 1 s gap, like a player filling and then keeping its buffer.

``--quick`` keeps 5 and 50 Mbit/s at 20 and 100 ms, three sizes, gaps 0 and 5 s, one trace
(about two minutes). Every measured download is one row of the table saved to ``--out`` (CSV,
``benchmarks/results/real_network_measurements.csv`` by default), with the kernel's TCP
settings (``tcp_congestion_control``, ``tcp_slow_start_after_idle``), the sender's congestion
window when the request arrived, and the machine's load. ``--measurements FILE`` reloads such a
table instead of measuring.

(b) **Predict** each download time with every model in :data:`PREDICTORS` (``name ->
f(rows, link) -> seconds``): ``throughput`` is abrsim's model today (one request latency of one
RTT, then size / bandwidth walking the trace: :func:`abrsim.emulation.predict.predict_throughput`
over :func:`abrsim.engine.step.transfer`); ``tcp`` is the engine's tcp network model
(:func:`abrsim.emulation.predict.predict_tcp`, over the session step's own tcp rules).

(c) **Report**: per grid cell the median and p90 relative error (|predicted - measured| /
measured) of each model, then per size and per gap, and last one JSON line with
``<model>_median_rel_error``, ``<model>_p90_rel_error`` and ``downloads``.

What the emulated path adds (measured on this machine kind, see docs/real_network.md):
``mm-delay D`` delays each direction by D ms, so the base RTT is 2D; ``mm-link`` delivers on
whole-millisecond opportunities and forwards through two tun devices in user space, which adds
about 1-3 ms per round trip (the TCP handshake takes 2D + ~2 ms); each packet of the downlink
carries 52 bytes of IP/TCP header (with timestamps) for 1448 bytes of payload, so a link trace's
rate is 3.5 % above the goodput; the HTTP response header is 82-84 bytes and a request 71-73.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from abrsim.emulation import (
    EmulationError,
    Request,
    constant_trace,
    emulation_unavailable,
    run_downloads,
    tcp_settings,
    trace_stretch,
)
from abrsim.emulation.predict import LinkDescription, predict_tcp, predict_throughput
from abrsim.trace import load_trace

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = ROOT.parent / "shared" / "traces"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "real_network_measurements.csv"

FULL = {
    "rates_bps": [1e6, 5e6, 20e6, 100e6],
    "rtts_s": [0.01, 0.05, 0.2],
    "sizes_bytes": [20_000, 200_000, 2_000_000, 8_000_000],
    "gaps_s": [0.0, 1.0, 5.0],
    "long_gap_s": 10.0,
    "long_gap_sizes_bytes": [20_000],
    "traces_per_folder": 2,
    "trace_segments": 8,
}
QUICK = {
    "rates_bps": [5e6, 50e6],
    "rtts_s": [0.02, 0.1],
    "sizes_bytes": [20_000, 200_000, 2_000_000],
    "gaps_s": [0.0, 5.0],
    "long_gap_s": None,
    "long_gap_sizes_bytes": [],
    "traces_per_folder": 0,  # one trace in all
    "trace_segments": 8,
}
MAX_DOWNLOAD_S = 10.0
TRACE_STRETCH_S = 60.0
TRACE_RTT_S = 0.04
SEED = 15

COLUMNS = [
    "run", "repeat", "kind", "link", "trace_file", "stretch_start_s", "stretch_duration_s", "rate_bps",
    "rtt_s", "queue_packets", "order", "size_bytes", "gap_s", "prior_size_bytes", "request_s",
    "first_byte_s", "done_s", "download_s", "header_bytes", "cwnd_segments", "ssthresh_segments",
    "srtt_s", "since_data_sent_s", "retransmits", "handshake_s", "clock_check_s", "drops",
    "congestion_control", "slow_start_after_idle", "load1",
]

Rows = list[dict[str, object]]
#: A predictor: the rows of one run (one link, one connection, in order) and the link -> seconds.
Predictor = Callable[[Rows, LinkDescription], np.ndarray]


# ---------------------------------------------------------------------------------------------
# (a) measure
# ---------------------------------------------------------------------------------------------


def constant_plan(rate_bps: float, grid: dict) -> list[Request]:
    """The requests made on one constant link."""
    sizes = [size for size in grid["sizes_bytes"] if size * 8 / rate_bps <= MAX_DOWNLOAD_S]
    plan = [Request(size, gap) for gap in grid["gaps_s"] for size in sizes]
    if grid["long_gap_s"]:
        plan += [Request(size, grid["long_gap_s"]) for size in grid["long_gap_sizes_bytes"]
                 if size * 8 / rate_bps <= MAX_DOWNLOAD_S]
    return plan


def pick_traces(folder: Path, per_folder: int, rng: np.random.Generator) -> list[Path]:
    """Trace files to take stretches of: ``per_folder`` from each sub-folder (or the folder), seeded."""
    folders = sorted(p for p in folder.iterdir() if p.is_dir()) or [folder]
    picked = []
    for sub in folders:
        files = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix in {".csv", ".json", ".txt", ""}
                       and not p.name.startswith((".", "README")) and p.name != "index.csv")
        if files:
            count = max(per_folder, 1)
            chosen = rng.choice(len(files), size=min(count, len(files)), replace=False)
            picked += [files[int(k)] for k in chosen]
    if per_folder == 0:
        picked = picked[:1]
    return picked


def trace_plan(mean_bps: float, segments: int) -> list[Request]:
    size = int(np.clip(mean_bps * 2.0 / 8, 20_000, 8_000_000))
    return [Request(size, 0.0 if k % 2 == 0 else 1.0) for k in range(segments)]


def measure_link(run_id: int, repeat: int, kind: str, link_name: str, trace, plan, rtt_s: float,
                 queue_packets: int, congestion_control: str | None, extra: dict) -> Rows:
    settings = tcp_settings()
    load1 = os.getloadavg()[0]
    try:
        run = run_downloads(trace, plan, one_way_delay_s=rtt_s / 2, queue_packets=queue_packets,
                            congestion_control=congestion_control)
    except EmulationError as exc:
        print(f"  run {run_id} ({link_name}, rtt {rtt_s * 1000:g} ms) failed: {exc}", file=sys.stderr)
        return []
    rows = []
    prior = 0
    for record in run.records:
        rows.append({
            "run": run_id, "repeat": repeat, "kind": kind, "link": link_name,
            "rate_bps": trace.mean_bandwidth_bps, "rtt_s": rtt_s, "queue_packets": queue_packets,
            "order": record.index, "size_bytes": record.size_bytes, "gap_s": record.gap_s,
            "prior_size_bytes": prior, "request_s": record.request_s, "first_byte_s": record.first_byte_s,
            "done_s": record.done_s, "download_s": record.download_s, "header_bytes": record.header_bytes,
            "cwnd_segments": record.cwnd_segments, "ssthresh_segments": record.ssthresh_segments,
            "srtt_s": record.srtt_s, "since_data_sent_s": record.since_data_sent_s,
            "retransmits": record.retransmits, "handshake_s": run.handshake_s,
            "clock_check_s": run.clock_check_s, "drops": run.downlink.drops,
            "congestion_control": run.congestion_control,
            "slow_start_after_idle": settings["net.ipv4.tcp_slow_start_after_idle"], "load1": load1,
            "trace_file": "", "stretch_start_s": "", "stretch_duration_s": "", **extra,
        })
        prior = record.size_bytes
    return rows


def measure(grid: dict, traces_dir: Path, repeats: int, queue_packets: int,
            congestion_control: str | None) -> Rows:
    rows: Rows = []
    run_id = 0
    rng = np.random.default_rng(SEED)
    trace_jobs = []
    if traces_dir.exists():
        for path in pick_traces(traces_dir, grid["traces_per_folder"], rng):
            trace = load_trace(path)
            start_s = float(np.floor(rng.uniform(0, max(trace.duration_s - TRACE_STRETCH_S, 0.0))))
            stretch = trace_stretch(trace, start_s, TRACE_STRETCH_S)
            trace_jobs.append((path, start_s, stretch))
    else:
        print(f"no traces at {traces_dir}; constant links only", file=sys.stderr)
    started = time.monotonic()
    for repeat in range(repeats):
        for rate_bps in grid["rates_bps"]:
            for rtt_s in grid["rtts_s"]:
                plan = constant_plan(rate_bps, grid)
                print(f"[{time.monotonic() - started:6.0f} s] {rate_bps / 1e6:g} Mbit/s, "
                      f"RTT {rtt_s * 1000:g} ms: {len(plan)} downloads", file=sys.stderr)
                rows += measure_link(run_id, repeat, "constant", f"{rate_bps / 1e6:g}Mbps",
                                     constant_trace(rate_bps), plan, rtt_s, queue_packets,
                                     congestion_control, {})
                run_id += 1
        for path, start_s, stretch in trace_jobs:
            plan = trace_plan(stretch.mean_bandwidth_bps, grid["trace_segments"])
            print(f"[{time.monotonic() - started:6.0f} s] {path.name} from {start_s:g} s "
                  f"(mean {stretch.mean_bandwidth_bps / 1e6:.2f} Mbit/s)", file=sys.stderr)
            rows += measure_link(run_id, repeat, "trace", path.parent.name + "/" + path.stem, stretch, plan,
                                 TRACE_RTT_S, queue_packets, congestion_control,
                                 {"trace_file": str(path), "stretch_start_s": start_s,
                                  "stretch_duration_s": TRACE_STRETCH_S})
            run_id += 1
    return rows


def save(rows: Rows, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{value:.6f}" if isinstance(value, float) else value)
                             for key, value in row.items()})


def load(path: Path) -> Rows:
    numeric = {"run", "repeat", "queue_packets", "order", "size_bytes", "prior_size_bytes", "header_bytes",
               "cwnd_segments", "ssthresh_segments", "retransmits", "drops"}
    rows: Rows = []
    with open(path, newline="") as file:
        for raw in csv.DictReader(file):
            row: dict[str, object] = {}
            for key, value in raw.items():
                if key in numeric:
                    row[key] = int(value)
                elif key in {"kind", "link", "trace_file", "congestion_control", "slow_start_after_idle"}:
                    row[key] = value
                else:
                    row[key] = float(value) if value != "" else ""
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# (b) predict
# ---------------------------------------------------------------------------------------------


def link_of(rows: Rows) -> LinkDescription:
    """The link one run used, rebuilt from its rows."""
    first = rows[0]
    if first["kind"] == "trace":
        trace = trace_stretch(load_trace(str(first["trace_file"])), float(first["stretch_start_s"]),
                              float(first["stretch_duration_s"]))
    else:
        trace = constant_trace(float(first["rate_bps"]))
    # The round trip the models get is the path's, as measured by the connection's handshake
    # (mm-delay's 2 x D plus what the tun devices and the shell add, 2-6 ms here): what a player
    # would measure, and the same input for every model.
    handshake_s = float(first.get("handshake_s") or 0.0)
    rtt_s = handshake_s if handshake_s > 0.0 else float(first["rtt_s"])
    return LinkDescription(trace, rtt_s, int(first["queue_packets"]),
                           str(first["congestion_control"]), first["slow_start_after_idle"] == "1")


def throughput_predictor(rows: Rows, link: LinkDescription) -> np.ndarray:
    """abrsim's ``throughput`` model (what the engine does today)."""
    return predict_throughput([row["request_s"] for row in rows], [row["size_bytes"] for row in rows], link)


def tcp_predictor(rows: Rows, link: LinkDescription) -> np.ndarray:
    """abrsim's ``tcp`` model (:func:`abrsim.emulation.predict.predict_tcp`, the engine's rules) over
    the rows of one connection, in order."""
    return predict_tcp([row["request_s"] for row in rows], [row["size_bytes"] for row in rows], link)


def predictors() -> dict[str, Predictor | None]:
    """Every model to compare: name -> predictor (None: not available yet)."""
    return {"throughput": throughput_predictor, "tcp": tcp_predictor}


def predict(rows: Rows, models: dict[str, Predictor | None]) -> None:
    """Add ``<model>_s`` and ``<model>_rel_error`` to every row (NaN where a model is absent)."""
    runs: dict[int, Rows] = {}
    for row in rows:
        runs.setdefault(int(row["run"]), []).append(row)
    for run_rows in runs.values():
        run_rows.sort(key=lambda row: int(row["order"]))
        link = link_of(run_rows)
        for name, model in models.items():
            predicted = model(run_rows, link) if model else np.full(len(run_rows), np.nan)
            for row, value in zip(run_rows, predicted, strict=True):
                row[f"{name}_s"] = float(value)
                measured_s = float(row["download_s"])
                row[f"{name}_rel_error"] = abs(float(value) - measured_s) / measured_s


# ---------------------------------------------------------------------------------------------
# (c) report
# ---------------------------------------------------------------------------------------------


def size_label(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:g}MB" if size_bytes >= 1_000_000 else f"{size_bytes / 1e3:g}kB"


def cell_of(row: dict) -> tuple:
    if row["kind"] == "trace":
        return ("trace", row["link"], "", "", "")
    first = "cold" if int(row["order"]) == 0 else f"{float(row['gap_s']):g}s"
    return ("constant", f"{float(row['rate_bps']) / 1e6:g}Mbps", f"{float(row['rtt_s']) * 1000:g}ms",
            size_label(int(row["size_bytes"])), first)


def stats(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    if array.size == 0 or np.all(np.isnan(array)):
        return float("nan"), float("nan")
    return float(np.nanmedian(array)), float(np.nanpercentile(array, 90))


def print_table(title: str, rows: Rows, key, models: list[str], header: list[str]) -> None:
    groups: dict[tuple, Rows] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    print(f"\n{title}")
    columns = [*header, "n", "measured_s"] + [f"{m}_{q}" for m in models for q in ("med", "p90")]
    print("  ".join(f"{c:>14}" for c in columns))
    for cell in sorted(groups, key=lambda c: tuple(str(x).zfill(12) for x in c)):
        group = groups[cell]
        cells = [str(c) for c in cell] + [str(len(group)),
                                           f"{np.median([float(r['download_s']) for r in group]):.3f}"]
        for model in models:
            med, p90 = stats([float(r[f"{model}_rel_error"]) for r in group])
            cells += [f"{med:.3f}", f"{p90:.3f}"]
        print("  ".join(f"{c:>14}" for c in cells))


def summary(rows: Rows, models: list[str]) -> dict[str, object]:
    result: dict[str, object] = {}
    for model in models:
        med, p90 = stats([float(r[f"{model}_rel_error"]) for r in rows])
        result[f"{model}_median_rel_error"] = None if np.isnan(med) else round(med, 4)
        result[f"{model}_p90_rel_error"] = None if np.isnan(p90) else round(p90, 4)
    result["downloads"] = len(rows)
    if rows:
        result["congestion_control"] = rows[0]["congestion_control"]
        result["slow_start_after_idle"] = rows[0]["slow_start_after_idle"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~2-minute subset of the grid")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="a folder of traces abrsim reads")
    parser.add_argument("--measurements", type=Path,
                        help="reload this measurement table instead of measuring")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to save what is measured (CSV)")
    parser.add_argument("--repeats", type=int, default=1, help="measure the grid this many times")
    parser.add_argument("--queue-packets", type=int, default=100, help="the downlink's drop-tail queue")
    parser.add_argument("--congestion-control", default=None,
                        help="the sender's TCP congestion control (default: the system's)")
    args = parser.parse_args(argv)
    if args.measurements:
        rows = load(args.measurements)
    else:
        reason = emulation_unavailable()
        if reason:
            print(f"cannot measure: {reason}", file=sys.stderr)
            return 2
        grid = QUICK if args.quick else FULL
        started = time.monotonic()
        rows = measure(grid, args.traces, args.repeats, args.queue_packets, args.congestion_control)
        save(rows, args.out)
        print(f"measured {len(rows)} downloads in {time.monotonic() - started:.0f} s; saved to {args.out}",
              file=sys.stderr)
    models = predictors()
    predict(rows, models)
    names = list(models)
    constant = [row for row in rows if row["kind"] == "constant"]
    print_table("per cell (relative error of download time; 'cold' = first download on a fresh connection)",
                rows, cell_of, names, ["kind", "link", "rtt", "size", "gap"])
    print_table("per size (constant links)", constant, lambda r: (size_label(int(r["size_bytes"])),),
                names, ["size"])
    print_table("per gap (constant links; cold = fresh connection)", constant, lambda r: (cell_of(r)[4],),
                names, ["gap"])
    print_table("per RTT (constant links)", constant, lambda r: (cell_of(r)[2],), names, ["rtt"])
    print(json.dumps(summary(rows, names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
