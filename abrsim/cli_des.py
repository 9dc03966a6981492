"""``abrsim simulate``: run a discrete-event scenario (thin wrapper over :mod:`abrsim.engine.des`)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from abrsim._cli_util import abrsim_command, compile_notice, prepare_output, write_output

__all__ = ["format_des_rows", "format_metrics", "format_sweep_table", "register", "write_cdn_tables",
           "write_logs"]


def register(group: click.Group) -> None:
    """Add ``simulate`` to the ``abrsim`` command group."""
    group.add_command(simulate)


@click.command()
@click.argument("scenario_path", metavar="SCENARIO.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the scenario's).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results table to this file instead of stdout; with a CDN also "
                   "NAME.tier_series.csv and NAME.outages.csv beside it (NAME: the file's stem).")
@click.option("--logs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write per-player segment logs (segments.csv) and the scenario metrics "
                   "(summary.json) into this folder; with a CDN also cdn_requests.csv, "
                   "tier_series.csv and outages.csv.")
@click.option("--compare-fault", is_flag=True, default=False,
              help="CDN scenarios: run with and without the [[cdn.outages]] on the same seed and "
                   "print the differences (stream starts per second, startup, rebuffering).")
@abrsim_command
def simulate(scenario_path: Path, seed: int | None, fmt: str, out: Path | None, logs: Path | None,
             compare_fault: bool) -> None:
    """Run a discrete-event scenario: many players on shared links.

    Writes one results row per player (the schema of `abrsim run` plus the startup
    breakdown, plus the CDN columns when the scenario has a [cdn]); the table format adds
    per-algorithm and scenario summaries. A [cdn.sweep] runs the scenario once per cache size.
    """
    from abrsim.engine.des import simulate as run_scenario
    from abrsim.engine.step import finish_download
    from abrsim.results import summarize_rows
    from abrsim.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    prepare_output(out)  # before the run, not after it
    if logs is not None:
        prepare_output(logs / "summary.json")
    compile_notice(finish_download)
    if compare_fault:
        _compare_fault(scenario, seed, fmt, out)
        return
    if scenario.cdn is not None and scenario.cdn.sweep_tier:
        runs = _sweep(scenario, seed)
    else:
        with _Progress(f"simulate {scenario.name}") as shown:
            runs = [(scenario.name, run_scenario(scenario, seed=seed, progress=shown))]
    rows = [row for label, run in runs for row in _labelled(run.rows(), label)]
    all_metrics = [(label, run, run.metrics(_labelled(run.rows(), label))) for label, run in runs]
    metrics = all_metrics[-1][2]
    if fmt != "table":
        text = format_des_rows(rows, fmt)
    elif len(runs) > 1:  # a cache-size sweep: one line per size, the players' rows in CSV or JSON
        text = format_sweep_table(all_metrics, scenario.cdn.sweep_tier, len(rows))
    else:
        shown = rows if len(rows) <= TABLE_ROW_LIMIT else []
        text = format_des_rows(shown, fmt, summarize_rows(rows))
        if not shown:
            text = (f"({len(rows):,} players: their rows are in --format csv or json; per-algorithm "
                    "summary below)\n" + text.partition("\n\n")[2].lstrip("\n"))
        text += "\n" + format_metrics(metrics, f"scenario {runs[0][0]!r}, seed {runs[0][1].seed}")
    write_output(text, out)
    run = runs[-1][1]
    # Side tables beside --out are named after it, so that runs sharing a folder keep their own.
    sides = [] if out is None else [(out.parent, f"{out.stem}.", False)]
    sides += [] if logs is None else [(logs, "", True)]
    for folder, prefix, requests in sides:
        if run.cdn is not None:
            names = write_cdn_tables(runs, folder, requests=requests, prefix=prefix)
            click.echo(f"abrsim: wrote {names[0]} and {names[1]}", err=True)
        else:  # none from an earlier run of this name may pass for this run's
            for name in ("tier_series.csv", "outages.csv", "cdn_requests.csv"):
                (folder / f"{prefix}{name}").unlink(missing_ok=True)
    if logs is not None:
        write_logs(run, metrics, logs)
        click.echo(f"abrsim: wrote {logs / 'segments.csv'} and {logs / 'summary.json'}", err=True)
    if fmt != "table":
        keys = ("players", "abandoned_share", "failed_share", "stall_share", "fairness_jain_bitrate",
                "link_utilisation")
        shown = ", ".join(f"{k} {_number(metrics[k])}" for k in keys)
        click.echo(f"abrsim: {run.scenario}: {shown}", err=True)


def _sweep(scenario: Any, seed: int | None) -> list[tuple[str, Any]]:
    """One run per capacity of the [cdn.sweep], labelled ``<name>@<tier>=<bytes>``."""
    import dataclasses

    from abrsim.engine.des import simulate as run_scenario

    config = scenario.cdn
    runs = []
    for capacity in config.sweep_capacities_bytes:
        variant = dataclasses.replace(scenario, cdn=config.with_capacity(config.sweep_tier, capacity))
        label = f"{scenario.name}@{config.sweep_tier}={capacity:g}"
        with _Progress(f"simulate {label}") as shown:
            run = run_scenario(variant, seed=seed, progress=shown)
        click.echo(f"abrsim: ran {label} ({len(runs) + 1} of {len(config.sweep_capacities_bytes)})", err=True)
        runs.append((label, run))
    return runs


#: The terminal table lists players one by one up to this many; beyond, only the summaries.
TABLE_ROW_LIMIT = 50
#: The columns of a cache-size sweep's table: the scenario metrics that move with the size.
SWEEP_METRICS = ("players", "mean_startup_s", "p95_startup_s", "stall_share", "origin_offload")


def format_sweep_table(all_metrics: Sequence[tuple[str, Any, dict[str, Any]]], tier: str, rows: int) -> str:
    """A cache-size sweep as one line per size: the tier's hit ratios and the metrics that move with it."""
    from abrsim.results import format_table

    columns = ["scenario", "seed", f"{tier}_hit_ratio", f"{tier}_byte_hit_ratio", *SWEEP_METRICS]
    cells = [[label, str(run.seed), _number(metrics[f"tier_{tier}_hit_ratio"]),
              _number(metrics[f"tier_{tier}_byte_hit_ratio"]), *(_number(metrics[k]) for k in SWEEP_METRICS)]
             for label, run, metrics in all_metrics]
    return (f"cache size sweep of the {tier} tier ({rows:,} player rows in --format csv or json)\n"
            + format_table(columns, cells, 1) + "\n")


class _Progress:
    """A one-line progress display on stderr (terminals only, as for `abrsim sweep`): simulated
    time and players done; the line is cleared when the run ends."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __enter__(self) -> _Progress | None:
        return self if self.enabled else None

    def __exit__(self, *exc: object) -> None:
        if self.shown:
            click.echo("\r\033[K", nl=False, err=True)

    def __call__(self, simulated_s: float, done: int, players: int) -> None:
        click.echo("\r" + self.line(simulated_s, done, players), nl=False, err=True)
        self.shown = True

    def line(self, simulated_s: float, done: int, players: int) -> str:
        """The progress line: simulated time, and players done of all."""
        share = done / players if players else 1.0
        return (f"{self.label} [{'#' * int(share * 30):<30}] {done:,}/{players:,} players done, "
                f"{simulated_s:,.0f} s simulated   ")


def _labelled(rows: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    for row in rows:
        row["scenario"] = label
    return rows


def _compare_fault(scenario: Any, seed: int | None, fmt: str, out: Path | None) -> None:
    from abrsim.engine.des import FAULT_COMPARISON, compare_fault

    result = compare_fault(scenario, seed)
    figures = {key: result[key] for key in ("control", "fault", "delta")}
    if fmt == "table":
        width = max(len(name) for name in FAULT_COMPARISON)
        lines = [f"control vs fault: scenario {scenario.name!r}, seed {result['fault_run'].seed}",
                 f"  {'':{width}}  {'control':>10}  {'fault':>10}  {'delta':>10}"]
        lines += [f"  {name.ljust(width)}  {_number(figures['control'][name]):>10}  "
                  f"{_number(figures['fault'][name]):>10}  {_number(figures['delta'][name]):>10}"
                  for name in FAULT_COMPARISON]
        text = "\n".join(lines) + "\n"
    elif fmt == "json":
        text = json.dumps(figures, indent=2).replace("NaN", "null") + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("metric", "control", "fault", "delta"))
        for name in FAULT_COMPARISON:
            writer.writerow((name, *(repr(figures[k][name]) for k in ("control", "fault", "delta"))))
        text = buffer.getvalue()
    write_output(text, out)


def write_cdn_tables(runs: Sequence[tuple[str, Any]], folder: Path, requests: bool = True,
                     prefix: str = "") -> list[Path]:
    """Write ``tier_series.csv`` (``time_s,tier,hit_ratio``, ...), ``outages.csv`` (``start_s,end_s,tier``)
    and, if ``requests``, ``cdn_requests.csv`` (one line per segment request) into ``folder``, each
    name preceded by ``prefix`` (``"a."`` for the side tables of ``a.csv``); return their paths.

    With several runs (a cache-size sweep) each line ends with the run's ``scenario`` label.
    """
    from abrsim.engine.des import CDN_REQUEST_FIELDS

    folder.mkdir(parents=True, exist_ok=True)
    labelled = len(runs) > 1
    written: list[Path] = []

    def table(name: str, fields: Sequence[str], lines: Any) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow((*fields, "scenario") if labelled else tuple(fields))
        for label, line in lines:
            cells = [repr(line[k]) if isinstance(line[k], float) else line[k] for k in fields]
            writer.writerow((*cells, label) if labelled else cells)
        (folder / f"{prefix}{name}").write_text(buffer.getvalue())
        written.append(folder / f"{prefix}{name}")

    series_fields = ("time_s", "tier", "hit_ratio", "byte_hit_ratio", "requests", "hits")
    table("tier_series.csv", series_fields,
          ((label, line) for label, run in runs for line in run.tier_series()))
    faults = [(label, {"start_s": f.start_s, "end_s": f.end_s, "tier": f.tier, "kind": f.kind,
                       "fraction": f.fraction}) for label, run in runs[:1] for f in run.faults]
    table("outages.csv", ("start_s", "end_s", "tier", "kind", "fraction"), faults)
    if requests:
        table("cdn_requests.csv", CDN_REQUEST_FIELDS,
              ((label, line) for label, run in runs for line in run.cdn_requests()))
    return written


def format_des_rows(rows: Sequence[dict[str, Any]], fmt: str, summary: Sequence[dict[str, Any]] = ()) -> str:
    """Rows as :func:`abrsim.results.format_rows` renders them, with the discrete-event columns in CSV."""
    from abrsim.engine.des import DES_FIELDS
    from abrsim.results import format_rows

    if fmt != "csv":
        return format_rows(rows, fmt, summary)
    # format_rows writes exactly RESULT_FIELDS; same conventions, more columns.
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else DES_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_metrics(metrics: dict[str, Any], title: str) -> str:
    """The scenario metrics as aligned ``name  value`` lines under a title."""
    width = max(len(name) for name in metrics)
    lines = [title] + [f"  {name.ljust(width)}  {_number(value)}" for name, value in metrics.items()]
    return "\n".join(lines) + "\n"


def write_logs(run: Any, metrics: dict[str, Any], folder: Path) -> None:
    """Write ``segments.csv`` (one line per download, keyed by player) and ``summary.json``."""
    from abrsim.log import LOG_FIELDS

    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("player", "policy", *LOG_FIELDS))
    for session in run.sessions:
        for record in session.log.to_rows():
            cells = (repr(record[k]) if isinstance(record[k], float) else record[k] for k in LOG_FIELDS)
            writer.writerow((session.player, session.policy.name, *cells))
    (folder / "segments.csv").write_text(buffer.getvalue())
    summary = {"scenario": run.scenario, "seed": run.seed, "metrics": metrics, "bottleneck": run.bottleneck}
    text = json.dumps(summary, indent=2, default=str).replace("NaN", "null")
    (folder / "summary.json").write_text(text + "\n")
