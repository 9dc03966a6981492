"""Results tables: one row per session, the schema every engine and tool shares.

A row is a plain dict whose keys are :data:`RESULT_FIELDS`: identity first
(scenario, trace, ladder, model, policy, params, seed, abrsim_version), then
the metrics of :data:`abrsim.qoe.METRICS`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from abrsim import __version__
from abrsim.engine.fast import BatchRun
from abrsim.qoe import METRICS

__all__ = ["IDENTITY_FIELDS", "RESULT_FIELDS", "format_rows", "rows_from_batch", "summarize_rows"]

IDENTITY_FIELDS = ("scenario", "trace", "ladder", "model", "policy", "params", "seed", "abrsim_version")
RESULT_FIELDS = IDENTITY_FIELDS + METRICS
_INTEGER_METRICS = frozenset({"rebuffer_count", "switch_count", "abandoned"})

Row = dict[str, Any]


def rows_from_batch(batch: BatchRun, scenario: str = "run") -> list[Row]:
    """One results row per session of ``batch``."""
    identity = {
        "scenario": scenario,
        "ladder": batch.ladder.name,
        "model": batch.model.name,
        "policy": batch.policy.name,
        "params": batch.policy.params_json,
        "seed": batch.seed,
        "abrsim_version": __version__,
    }
    rows = []
    for trace, values in zip(batch.traces, batch.metrics().tolist(), strict=True):
        row: Row = {"trace": trace, **identity}
        for name, value in zip(METRICS, values, strict=True):
            row[name] = int(value) if name in _INTEGER_METRICS else value
        rows.append({key: row[key] for key in RESULT_FIELDS})
    return rows


def summarize_rows(rows: Sequence[Row], by: str = "policy") -> list[Row]:
    """Mean and median of every metric per value of ``by`` (NaNs ignored), in first-seen order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(str(row[by]), []).append(row)
    summary = []
    for key, members in groups.items():
        out: Row = {by: key, "sessions": len(members)}
        for name in METRICS:
            values = [float(r[name]) for r in members if not math.isnan(float(r[name]))]
            out[f"{name}_mean"] = statistics.fmean(values) if values else math.nan
            out[f"{name}_median"] = statistics.median(values) if values else math.nan
        summary.append(out)
    return summary


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _table(rows: Sequence[Row], columns: Sequence[str]) -> str:
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


#: Columns shown in the terminal table (all fields go to CSV and JSON).
TABLE_COLUMNS = ("trace", "policy", "startup_s", "rebuffer_s", "rebuffer_count", "mean_bitrate_bps",
                 "switch_count", "qoe_lin")


def format_rows(rows: Sequence[Row], fmt: str, summary: Iterable[Row] = ()) -> str:
    """Render rows as ``table`` (with a per-policy summary), ``json`` or ``csv``.

    JSON is a list of result objects with the field names of :data:`RESULT_FIELDS`; NaN
    becomes ``null``. CSV has one header line and one line per session.
    """
    if fmt == "json":
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                 for r in rows]
        return json.dumps(clean, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        return buffer.getvalue()
    text = _table(rows, TABLE_COLUMNS)
    summary = list(summary)
    if summary:
        columns = ["policy", "sessions"]
        for name in ("startup_s", "rebuffer_s", "mean_bitrate_bps", "switch_count", "qoe_lin"):
            columns += [f"{name}_mean", f"{name}_median"]
        text += "\n\nper-algorithm summary (mean / median over sessions)\n" + _table(summary, columns)
    return text + "\n"
