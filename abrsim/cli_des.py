"""``abrsim simulate``: run a discrete-event scenario (thin wrapper over :mod:`abrsim.engine.des`)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from abrsim._cli_util import abrsim_command, write_output

__all__ = ["format_des_rows", "format_metrics", "register", "write_logs"]


def register(group: click.Group) -> None:
    """Add ``simulate`` to the ``abrsim`` command group."""
    group.add_command(simulate)


@click.command()
@click.argument("scenario_path", metavar="SCENARIO.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=None, help="Seed (default: the scenario's).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results table to this file instead of stdout.")
@click.option("--logs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write per-player segment logs (segments.csv) and the scenario metrics "
                   "(summary.json) into this folder.")
@abrsim_command
def simulate(scenario_path: Path, seed: int | None, fmt: str, out: Path | None, logs: Path | None) -> None:
    """Run a discrete-event scenario: many players on shared links.

    Writes one results row per player (the schema of `abrsim run` plus the startup
    breakdown); the table format adds per-algorithm and scenario summaries.
    """
    from abrsim.engine.des import simulate as run_scenario
    from abrsim.results import summarize_rows
    from abrsim.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    run = run_scenario(scenario, seed=seed)
    rows = run.rows()
    metrics = run.metrics(rows)
    text = format_des_rows(rows, fmt, summarize_rows(rows) if fmt == "table" else ())
    if fmt == "table":
        text += "\n" + format_metrics(metrics, f"scenario {run.scenario!r}, seed {run.seed}")
    write_output(text, out)
    if logs is not None:
        write_logs(run, metrics, logs)
        click.echo(f"abrsim: wrote {logs / 'segments.csv'} and {logs / 'summary.json'}", err=True)
    if fmt != "table":
        keys = ("players", "abandoned_share", "stall_share", "fairness_jain_bitrate", "link_utilisation")
        shown = ", ".join(f"{k} {_number(metrics[k])}" for k in keys)
        click.echo(f"abrsim: {run.scenario}: {shown}", err=True)


def format_des_rows(rows: Sequence[dict[str, Any]], fmt: str, summary: Sequence[dict[str, Any]] = ()) -> str:
    """Rows as :func:`abrsim.results.format_rows` renders them, with the discrete-event columns in CSV."""
    from abrsim.engine.des import DES_FIELDS
    from abrsim.results import format_rows

    if fmt != "csv":
        return format_rows(rows, fmt, summary)
    # format_rows writes exactly RESULT_FIELDS; same conventions, more columns.
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=DES_FIELDS, lineterminator="\n")
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
