"""Fuzz every input reader with seeded generated cases (issue 14).

    python benchmarks/fuzz.py                      # 10,000 cases per reader, seed 0, 2 workers
    python benchmarks/fuzz.py --cases 500 --reader manifest --seed 3
    python benchmarks/fuzz.py --reader sweep --seed 0 --case 343   # replay one case, in this process

Each case is a valid input from the repository (traces, ladders, experiments) with zero or more
mutations, fed to the reader in a worker process under an address-space limit, a time budget per
case and a watchdog (see ``tests/fuzzing.py``); every 50th case also goes through the CLI. A case
passes when the reader returns or raises abrsim's own error (exit 2), within the budget, without
changing its input files (and, for manifests, without opening a file outside the folder). Prints
one line per reader and a final JSON line; failing cases are copied, with ``FAILURE.txt``, to
``--failures`` so ``run_case`` can replay them. Exit status 1 if any case failed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzzing import READERS, fuzz, run_case


@click.command()
@click.option("--cases", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Cases per reader.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--reader", "readers", type=click.Choice(sorted(READERS)), multiple=True,
              help="Reader to fuzz (repeatable). Default: all.")
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes.")
@click.option("--budget-s", type=float, default=10.0, show_default=True, help="Time budget per case.")
@click.option("--memory-mib", type=int, default=2048, show_default=True,
              help="Address space a worker may add over its size after imports.")
@click.option("--cli-every", type=click.IntRange(min=0), default=50, show_default=True,
              help="Also run every Nth case through the CLI (0: never).")
@click.option("--failures", type=click.Path(path_type=Path), default=Path("/tmp/abrsim-fuzz-failures"),
              show_default=True, help="Folder for reproducers of failing cases.")
@click.option("--case", "replay", type=click.IntRange(min=0), default=None,
              help="Replay this one case of each --reader in this process (into --failures) and show it.")
def main(cases: int, seed: int, readers: tuple[str, ...], jobs: int, budget_s: float, memory_mib: int,
         cli_every: int, failures: Path, replay: int | None) -> None:
    """Run the fuzzers and print what they found."""
    if replay is not None:
        for name in readers or tuple(READERS):
            outcome = run_case(READERS[name], seed, replay, failures / f"{name}-{seed}-{replay}",
                               budget_s=budget_s, cli=True)
            print(f"{name} seed {seed} case {replay}: {outcome.status} in {outcome.seconds:.2f} s "
                  f"(files in {failures / f'{name}-{seed}-{replay}' / 'case'})\n{outcome.detail}")
        return
    summaries = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="abrsim-fuzz-") as work:
        for name in readers or tuple(READERS):
            report = fuzz(name, cases, seed, jobs=jobs, workdir=Path(work), budget_s=budget_s,
                          memory_bytes=memory_mib * 2**20, cli_every=cli_every, failures_dir=failures)
            summary = report.summary()
            summaries.append(summary)
            print(f"{name:9s} cases {summary['cases']:6d}  accepted {summary['accepted']:6d}  "
                  f"refused {summary['refused']:6d}  failures {summary['failures']:4d}  "
                  f"cli {summary['cli_cases']:4d}  {summary['seconds']:7.1f} s  "
                  f"{summary['cases_per_s']:6.1f} cases/s  max RSS {summary['max_rss_mib']:.0f} MiB",
                  flush=True)
            for outcome in sorted(report.failures, key=lambda o: o.index)[:20]:
                first = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else ""
                print(f"  FAIL {outcome.status} seed {seed} case {outcome.index}: {first[:200]}  "
                      f"-> {failures / f'{name}-{seed}-{outcome.index}'}", flush=True)
    total = {"seed": seed, "seconds": round(time.perf_counter() - began, 1), "readers": summaries,
             "failures": sum(s["failures"] for s in summaries), "failures_dir": str(failures)}
    print(json.dumps(total))
    sys.exit(1 if total["failures"] else 0)


if __name__ == "__main__":
    main()
