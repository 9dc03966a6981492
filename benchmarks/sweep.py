"""A million-session sweep: BOLA-class algorithms over generated 4G traces, local processes and Dask.

    python benchmarks/sweep.py [--sessions 1000000] [--jobs N] [--chunk-sessions 1000] [--no-dask]
                               [--dask-sessions N] [--repeat 1] [--out DIR]

The spec crosses 10 BOLA-class settings (``bola`` and ``bolae``, each with ``gamma_p`` in 2, 3,
5, 8, 12) with ``--sessions / 10`` traces drawn from the fitted ``4g`` profile (494 s each) on
the ``hls`` ladder. Each run is ``abrsim sweep SPEC --out DIR --jobs N`` in a child process,
timed from start to exit (planning, drawing the traces, running, writing results.parquet;
results.csv is left out past 200,000 sessions, as ``abrsim sweep`` does by default), then
checked: results.parquet holds one row per session. It reports, per executor:

* wall time and sessions per second;
* the CPU the sweep used (user + system, parent and workers), hence the busy cores
  (CPU / wall) and the rate per busy core, which stays meaningful on a machine shared with
  other work; and the load average before and after;
* peak memory: the largest resident set of one process, and the peak of the whole process
  tree's resident sets summed (sampled every 0.2 s; shared pages counted once per process,
  so this overstates).

A small warm-up sweep first loads (or compiles) the kernels. The Dask run uses a LocalCluster of
``--jobs`` single-threaded workers (``--executor dask``) on ``--dask-sessions`` sessions (default:
the same as ``--sessions``), and reports the rate per worker too. The last line is one JSON
object: ``sessions``, ``wall_s``, ``sessions_per_s`` (local), ``dask_sessions_per_s``, and the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SETTINGS = 10  # bola and bolae x five gamma_p


def spec_text(sessions: int, chunk_sessions: int) -> str:
    if sessions % SETTINGS:
        raise SystemExit(f"--sessions must be a multiple of {SETTINGS}, got {sessions}")
    return textwrap.dedent(f"""\
        name = "bench_sweep"
        seed = 1
        chunk_sessions = {chunk_sessions}
        ladders = ["hls"]
        algorithms = [
            {{ name = "bola", grid = {{ gamma_p = [2.0, 3.0, 5.0, 8.0, 12.0] }} }},
            {{ name = "bolae", grid = {{ gamma_p = [2.0, 3.0, 5.0, 8.0, 12.0] }} }},
        ]

        [[traces]]
        name = "4g"
        profile = "4g"
        count = {sessions // SETTINGS}
        """)


def tree_rss_bytes(root: int) -> tuple[int, int]:
    """Resident set sizes of ``root`` and its descendants: (sum, processes)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * page
    total, count, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        count += 1
        todo.extend(children.get(pid, []))
    return total, count


def run_sweep(spec: Path, out: Path, jobs: int, executor: str) -> dict[str, float]:
    """One ``abrsim sweep`` in a child process: wall, CPU, memory and the load around it."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "abrsim", "sweep", str(spec), "--out", str(out), "--jobs", str(jobs),
               "--executor", executor]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = 0
    while process.poll() is None:
        peak_tree = max(peak_tree, tree_rss_bytes(process.pid)[0])
        time.sleep(0.2)
    wall_s = time.perf_counter() - started
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the sweep failed ({process.returncode}):\n{stdout}\n{stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "busy_cores": cpu_s / wall_s,
        "peak_process_rss_mb": after.ru_maxrss / 1024,  # the largest child ever (Linux: KiB)
        "peak_tree_rss_mb": peak_tree / 2**20,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "reported": next((line for line in stderr.splitlines() if " sessions in " in line), ""),
    }


def parquet_rows(out: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(out / "results.parquet").metadata.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="sessions (a multiple of 10)")
    parser.add_argument("--dask-sessions", type=int, default=None, help="sessions of the Dask run")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                        help="workers (default: the CPUs available)")
    parser.add_argument("--chunk-sessions", type=int, default=1000, help="the spec's chunk_sessions")
    parser.add_argument("--repeat", type=int, default=1, help="local runs (the best is reported)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask run")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="abrsim-bench-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        warm = work / "warm.toml"
        warm.write_text(spec_text(200, args.chunk_sessions))
        run_sweep(warm, work / "warm", args.jobs, "local")
        spec = work / "spec.toml"
        spec.write_text(spec_text(args.sessions, args.chunk_sessions))
        runs = []
        for index in range(args.repeat):
            result = run_sweep(spec, work / "local", args.jobs, "local")
            rows = parquet_rows(work / "local")
            if rows != args.sessions:
                raise SystemExit(f"results.parquet holds {rows} rows, expected {args.sessions}")
            results_mb = sum(f.stat().st_size for f in (work / "local").iterdir()) / 2**20
            print(f"local run {index + 1}: {args.sessions:,} sessions in {result['wall_s']:.1f} s "
                  f"({args.sessions / result['wall_s']:,.0f}/s); CPU {result['cpu_s']:.1f} s on "
                  f"{result['busy_cores']:.2f} busy cores ({args.sessions / result['cpu_s']:,.0f} sessions/s "
                  f"per busy core); peak memory {result['peak_process_rss_mb']:.0f} MB in one process, "
                  f"{result['peak_tree_rss_mb']:.0f} MB over the tree; results {results_mb:.1f} MB; "
                  f"load {result['load_before']:.1f} -> {result['load_after']:.1f}")
            runs.append(result)
        best = min(runs, key=lambda r: r["wall_s"])
        summary = {
            "sessions": args.sessions,
            "jobs": args.jobs,
            "chunk_sessions": args.chunk_sessions,
            "wall_s": round(best["wall_s"], 2),
            "sessions_per_s": round(args.sessions / best["wall_s"]),
            "cpu_s": round(best["cpu_s"], 1),
            "busy_cores": round(best["busy_cores"], 2),
            "sessions_per_busy_core_s": round(args.sessions / best["cpu_s"]),
            "peak_process_rss_mb": round(best["peak_process_rss_mb"]),
            "peak_tree_rss_mb": round(best["peak_tree_rss_mb"]),
            "results_mb": round(results_mb, 1),
            "load_before": round(best["load_before"], 2),
            "load_after": round(best["load_after"], 2),
            "cpus": os.cpu_count(),
        }
        shutil.rmtree(work / "local", ignore_errors=True)
        if not args.no_dask:
            dask_sessions = args.dask_sessions or args.sessions
            spec.write_text(spec_text(dask_sessions, args.chunk_sessions))
            result = run_sweep(spec, work / "dask", args.jobs, "dask")
            rows = parquet_rows(work / "dask")
            if rows != dask_sessions:
                raise SystemExit(f"results.parquet holds {rows} rows, expected {dask_sessions}")
            rate = dask_sessions / result["wall_s"]
            print(f"dask LocalCluster ({args.jobs} workers): {dask_sessions:,} sessions in "
                  f"{result['wall_s']:.1f} s ({rate:,.0f}/s, {rate / args.jobs:,.0f}/s per worker); CPU "
                  f"{result['cpu_s']:.1f} s on {result['busy_cores']:.2f} busy cores; load "
                  f"{result['load_before']:.1f} -> {result['load_after']:.1f}")
            summary.update({
                "dask_sessions": dask_sessions,
                "dask_wall_s": round(result["wall_s"], 2),
                "dask_sessions_per_s": round(rate),
                "dask_sessions_per_worker_s": round(rate / args.jobs),
                "dask_cpu_s": round(result["cpu_s"], 1),
                "dask_busy_cores": round(result["busy_cores"], 2),
                "dask_peak_tree_rss_mb": round(result["peak_tree_rss_mb"]),
            })
            shutil.rmtree(work / "dask", ignore_errors=True)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
