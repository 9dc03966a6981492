"""Command-line commands for sweeps and comparisons (`abrsim sweep`, `abrsim compare`)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from abrsim._cli_util import abrsim_command, compile_notice, prepare_output, write_output


class _SessionBar:
    """A one-line progress display on stderr: sessions done, rate and ETA (terminals only).

    The kernels load (or compile, on a first run: several seconds) before the first task is
    done: until then the line says so, and the rate and ETA count only the sessions run after
    it, so that the compile time is not extrapolated to the whole sweep.
    """

    def __init__(self, label: str, compiling: bool = False) -> None:
        self.label = label
        self.compiling = compiling
        self.enabled = sys.stderr.isatty()
        self.start_s = time.monotonic()
        self.first: int | None = None
        self.shown_s = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now_s = time.monotonic()
        if self.first is not None and self.first < 0 and now_s - self.shown_s < 0.1 and done < total:
            return
        self.shown_s = now_s
        click.echo("\r" + self.line(done, total, now_s), nl=False, err=True)

    def line(self, done: int, total: int, now_s: float) -> str:
        """The progress line after ``done`` of ``total`` sessions at time ``now_s`` (monotonic)."""
        share = done / total if total else 1.0
        bar = f"{self.label} [{'#' * int(share * 30):<30}] {done:,}/{total:,} sessions"
        if self.first is None:  # the start: nothing has run yet in this call
            self.first = done
            what = "compiling the kernels (first run)" if self.compiling else "loading the kernels"
            return f"{bar}  {what}...   "
        if self.first >= 0:  # the first chunk is done: measure from here on
            self.first, self.start_s = -1 - done, now_s
            return f"{bar}  ETA ...   "
        elapsed_s = now_s - self.start_s
        rate = (done + 1 + self.first) / elapsed_s if elapsed_s > 0 else 0.0
        eta = f"{(total - done) / rate:,.0f} s" if rate > 0 else "..."
        return f"{bar}  {rate:,.0f}/s  ETA {eta}   "

    def close(self) -> None:
        if self.enabled and self.first is not None:
            click.echo("", err=True)
        self.first = None


def _default_jobs() -> int:
    """The CPUs available: the workers draw traces, run sessions and write chunk files, and the
    parent only hands out tasks while they run (it merges the files at the end)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus)


@click.command()
@click.argument("spec_path", metavar="SPEC.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sweep folder. Default: results/<spec name>.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (dask: LocalCluster workers). Default: the CPUs available.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: a process pool; dask: Dask distributed (pip install 'abrsim[dask]').")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address, e.g. tcp://host:8786. Default: start a LocalCluster.")
@click.option("--resume", is_flag=True, help="Continue the sweep in --out, keeping its finished chunks.")
@click.option("--traces-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder relative trace paths start from (overrides the spec's traces_root).")
@click.option("--csv/--no-csv", "write_csv", default=None,
              help="Write results.csv besides results.parquet. Default: for sweeps of at most 200,000 "
                   "sessions, and always without pyarrow.")
@abrsim_command
def sweep(spec_path: Path, out: Path | None, jobs: int | None, executor: str, scheduler: str | None,
          resume: bool, traces_root: Path | None, write_csv: bool | None) -> None:
    """Run every session of an experiment spec; write results to a sweep folder.

    The folder gets results.parquet (with pyarrow) and results.csv (see --csv),
    spec.toml and meta.json; chunks/ while it runs. A killed sweep continues with
    --resume. See docs/sweeps.md.
    """
    from abrsim._jit import is_cached
    from abrsim.qoe import _metrics_batch
    from abrsim.results import format_table as align_table
    from abrsim.sweep import load_spec, run_sweep

    if scheduler and executor != "dask":
        raise click.UsageError("--scheduler needs --executor dask")
    spec = load_spec(spec_path, traces_root=traces_root)
    out = out if out is not None else Path("results") / spec.name
    prepare_output(out / "results.parquet")  # before the sweep, not after it
    compile_notice(_metrics_batch)  # every sweep computes metrics: not cached, nothing was ever run
    bar = _SessionBar(f"sweep {spec.name}", compiling=not is_cached(_metrics_batch))
    try:
        report = run_sweep(spec, out, jobs=jobs or _default_jobs(), executor=executor,
                           scheduler=scheduler, resume=resume, write_csv=write_csv, progress=bar,
                           notice=lambda message: click.echo(f"abrsim: {message}", err=True))
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"abrsim: interrupted; finished chunks are kept in {out} (--resume continues)", err=True)
        sys.exit(130)
    finally:
        bar.close()
    rate = report.sessions_run / report.elapsed_s if report.elapsed_s > 0 else 0.0
    kept = report.chunks - report.chunks_run
    click.echo(f"abrsim: {report.sessions:,} sessions in {report.chunks:,} chunks"
               + (f" ({kept:,} kept from before)" if kept else "")
               + f"; ran {report.sessions_run:,} in {report.elapsed_s:.1f} s ({rate:,.0f} sessions/s)",
               err=True)
    click.echo(f"abrsim: wrote {', '.join(str(f) for f in report.files)}", err=True)
    statements = [s.name for s in spec.failures]
    cells = [[row["algorithm"], row["ladder"], row["model"], f"{row['sessions']:,}",
              *(f"{row[s] / row['sessions']:.1%}" for s in statements)] for row in report.summary]
    click.echo("share of sessions failing each statement (see docs/sweeps.md):")
    click.echo(align_table(["algorithm", "ladder", "model", "sessions", *statements], cells, 3))


@click.command()
@click.argument("results", nargs=-1, required=True, metavar="RESULTS [CANDIDATE_RESULTS]",
                type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_text", default="", metavar="SELECTOR",
              help="Baseline rows, e.g. policy=bola or policy=bola,params.gamma_p=4.")
@click.option("--candidate", "candidate_text", default="", metavar="SELECTOR",
              help="Candidate rows (from CANDIDATE_RESULTS when given).")
@click.option("--metric", "metrics", multiple=True, help="Metric to compare (repeatable). Default: all.")
@click.option("--fail-on", "rules", multiple=True, metavar="RULE",
              help="Exit 1 if this regresses, e.g. rebuffer_ratio:+5%, qoe_lin:-2%, slow_start:+0.01 "
                   "(repeatable).")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Take the failure statements from this spec. Default: the sweep folder's spec.toml.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the bootstrap.")
@click.option("--resamples", type=click.IntRange(min=100), default=2000, show_default=True,
              help="Bootstrap resamples.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the output to this file instead of stdout.")
@abrsim_command
def compare(results: tuple[Path, ...], baseline_text: str, candidate_text: str, metrics: tuple[str, ...],
            rules: tuple[str, ...], spec_path: Path | None, seed: int, resamples: int, fmt: str,
            out: Path | None) -> None:
    """Compare a candidate with a baseline, session by session; gate on regressions.

    RESULTS is a sweep folder or a results .csv/.parquet file. With one RESULTS both
    selectors pick rows from it; with two, the baseline comes from the first and
    the candidate from the second. Sessions pair on trace, ladder, model and seed
    (minus any column the two selectors constrain differently). A --fail-on rule
    fires when the change is beyond its threshold and its 95% CI excludes 0; then
    the command exits 1. See docs/sweeps.md.
    """
    from abrsim import compare as comparing

    if len(results) > 2:
        raise click.UsageError("give one RESULTS, or a baseline and a candidate RESULTS")
    if len(results) == 1 and not (baseline_text and candidate_text):
        raise click.UsageError("with one RESULTS, give --baseline and --candidate")
    prepare_output(out)  # before the bootstrap, not after it
    baseline = comparing.parse_selector(baseline_text, "--baseline")
    candidate = comparing.parse_selector(candidate_text, "--candidate")
    gate = [comparing.parse_rule(rule) for rule in rules]
    rows = comparing.load_results(results[0])
    other = comparing.load_results(results[1]) if len(results) == 2 else None
    base_rows, cand_rows = comparing.split_rows(rows, baseline, candidate, other)

    def label(selector_text: str, source: Path) -> str:
        where = f" in {source}" if len(results) == 2 else ""
        return f"{selector_text or 'all rows'}{where}"

    comparison = comparing.compare(
        base_rows, cand_rows, pair_fields=comparing.pairing_fields(baseline, candidate),
        metrics=metrics or None, statements=comparing.load_statements(spec_path or results[0]), rules=gate,
        seed=seed, resamples=resamples,
        labels=(label(baseline_text, results[0]), label(candidate_text, results[-1])),
    )
    write_output(comparing.format_comparison(comparison, fmt), out)
    if comparison.regressed:
        sys.exit(1)


def register(group: click.Group) -> None:
    """Add this module's commands to the ``abrsim`` group."""
    group.add_command(sweep)
    group.add_command(compare)
