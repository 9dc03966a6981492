"""Figures and a static HTML report from result tables and session logs.

Two entry points:

- :func:`session_timeline_figure` (``abrsim run --plot FILE``): one session per algorithm on the
  same trace, stacked panels sharing the time axis: the trace's bandwidth against each
  algorithm's chosen bitrate, then one buffer panel per algorithm with its stalls shaded and
  its startup marked.
- :func:`write_report` (``abrsim report RESULTS -o DIR``): a static ``index.html`` (no server, no
  JavaScript) with PNG and SVG figures and tables: CDFs across sessions per algorithm, the
  bitrate-versus-rebuffering trade-off with each algorithm's mean and the Pareto frontier,
  failure statements, comparison deltas, and, when the columns exist, sections for shared
  links (DES) and CDN tiers.

This module draws only; it never runs a simulation. Every figure function returns a
:class:`matplotlib.figure.Figure` bound to the Agg canvas, so nothing here touches pyplot's
global state or the backend of an interactive session.

Colours: :func:`algorithm_styles` gives every algorithm label a fixed colour (and marker) from a
colour-blind-safe palette, chosen by a CRC-32 hash of the label, so an algorithm keeps its
colour across figures, reports and machines. Two labels of one report that hash to the same
colour are separated by taking the next free palette slot, in sorted-label order.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import html
import json
import math
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from abrsim import __version__
from abrsim._cli_util import write_atomic
from abrsim.errors import InputError, UnknownNameError, nesting_limit
from abrsim.failures import DEFAULT_STATEMENTS, FailureStatement, evaluate, statements_from_config
from abrsim.qoe import METRICS
from abrsim.results import IDENTITY_FIELDS, RESULT_FIELDS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from abrsim.ladder import Ladder
    from abrsim.log import SessionLog
    from abrsim.trace import Trace

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "CDN_METRICS",
    "CORE_METRICS",
    "DERIVED_METRICS",
    "LINK_METRICS",
    "PALETTE",
    "STALL_COLOUR",
    "TIER_COLUMN",
    "AlgorithmStyle",
    "CompareDelta",
    "CompareSummary",
    "FailureCount",
    "MetricAxis",
    "ResultSet",
    "algorithm_labels",
    "algorithm_styles",
    "buffer_curve",
    "cdf_figure",
    "compare_failures_figure",
    "compare_figure",
    "evaluate_failures",
    "failure_figure",
    "load_results",
    "metric_axis",
    "parse_compare",
    "save_figure",
    "session_timeline_figure",
    "stall_intervals",
    "tier_hit_ratio_figure",
    "tier_qoe_figure",
    "tradeoff_figure",
    "write_report",
]

Columns = dict[str, np.ndarray]

# ---------------------------------------------------------------------------------------------
# Colours and styles
# ---------------------------------------------------------------------------------------------

#: Algorithm colours: Okabe & Ito's colour-blind-safe set (without yellow, vermillion and black),
#: then Paul Tol's muted indigo, olive, wine, teal and a brown. Vermillion is kept for stalls.
PALETTE = ("#0072B2", "#009E73", "#E69F00", "#CC79A7", "#56B4E9",
           "#332288", "#999933", "#882255", "#44AA99", "#994F00")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_LINESTYLES = ("-", "--", ":", "-.")
STALL_COLOUR = "#D55E00"
STARTUP_COLOUR = "#7F7F7F"
BANDWIDTH_COLOUR = "#B8B8B8"

#: Matplotlib settings every figure is drawn with.
_RC: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "lines.linewidth": 1.6,
    "svg.hashsalt": "abrsim",
}
_PNG_DPI = 150


@dataclass(frozen=True)
class AlgorithmStyle:
    """How one algorithm is drawn in every figure.

    Args:
        colour: hex colour.
        marker: matplotlib marker for its means and points.
        linestyle: line style (solid unless more labels than palette colours share a figure).
    """

    colour: str
    marker: str
    linestyle: str = "-"


def algorithm_styles(labels: Iterable[str]) -> dict[str, AlgorithmStyle]:
    """A fixed colour and marker per algorithm label.

    A label's home slot is ``crc32(label) % len(PALETTE)``, so it does not depend on which other
    algorithms a report holds. Labels are placed in sorted order; a label whose slot is taken
    moves to the next free one. Past ``len(PALETTE)`` labels, colours repeat with another line
    style.

    >>> styles = algorithm_styles(["throughput", "bola"])
    >>> styles["bola"].colour != styles["throughput"].colour
    True
    >>> algorithm_styles(["bola"])["bola"] == styles["bola"]
    True
    """
    slots = len(PALETTE)
    taken: set[int] = set()
    styles: dict[str, AlgorithmStyle] = {}
    for label in sorted(set(labels)):
        home = zlib.crc32(label.encode("utf-8")) % slots
        # Slots beyond the palette are the same colours with the next line style.
        free = next(_probe(home, slots, taken))
        taken.add(free)
        colour_index = free % slots
        styles[label] = AlgorithmStyle(PALETTE[colour_index], _MARKERS[colour_index],
                                       _LINESTYLES[(free // slots) % len(_LINESTYLES)])
    return styles


def _probe(home: int, slots: int, taken: set[int]) -> Iterator[int]:
    """Free slots starting at ``home``: first the palette, then the palette with another line style."""
    cycle = 0
    while True:
        for step in range(slots):
            slot = cycle * slots + (home + step) % slots
            if slot not in taken:
                yield slot
        cycle += 1


# ---------------------------------------------------------------------------------------------
# Metrics: axes, units, derived metrics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricAxis:
    """How a metric is shown: its label, the display unit and the factor from SI to it.

    Args:
        label: human name, e.g. ``"Startup delay"``.
        unit: display unit, e.g. ``"s"`` or ``"Mbit/s"``.
        scale: display value = stored value * scale.
        better: ``"lower"``, ``"higher"`` or ``""`` (neither).
    """

    label: str
    unit: str
    scale: float = 1.0
    better: str = ""

    @property
    def axis_label(self) -> str:
        """``"Startup delay (s)"``."""
        return f"{self.label} ({self.unit})"

    @property
    def hint(self) -> str:
        """``"lower is better"``, or empty."""
        return f"{self.better} is better" if self.better else ""


_METRIC_AXES: Mapping[str, MetricAxis] = {
    "startup_s": MetricAxis("Startup delay", "s", 1.0, "lower"),
    "rebuffer_s": MetricAxis("Rebuffering time", "s", 1.0, "lower"),
    "rebuffer_count": MetricAxis("Stalls", "count", 1.0, "lower"),
    "rebuffer_ratio": MetricAxis("Rebuffer ratio", "% of watch time", 100.0, "lower"),
    "played_s": MetricAxis("Media played", "s", 1.0),
    "mean_bitrate_bps": MetricAxis("Mean bitrate", "Mbit/s", 1e-6, "higher"),
    "mean_quality": MetricAxis("Mean quality", "ladder quality score, e.g. VMAF", 1.0, "higher"),
    "mean_quality_change": MetricAxis("Quality change", "mean |change| between segments", 1.0, "lower"),
    "below_quality_floor_s": MetricAxis("Below quality floor", "s of media", 1.0, "lower"),
    "switch_count": MetricAxis("Bitrate switches", "count", 1.0, "lower"),
    "switch_magnitude_bps": MetricAxis("Mean switch size", "Mbit/s", 1e-6, "lower"),
    "switches_per_min": MetricAxis("Switch rate", "switches per minute of media", 1.0, "lower"),
    "qoe_lin": MetricAxis("QoE_lin", "sum over segments", 1.0, "higher"),
    "qoe_log": MetricAxis("QoE_log", "sum over segments", 1.0, "higher"),
    "qoe_hd": MetricAxis("QoE_hd", "sum over segments", 1.0, "higher"),
    "abandoned": MetricAxis("Abandoned", "1 = viewer left", 1.0, "lower"),
    "abandoned_downloads": MetricAxis("Abandoned downloads", "count", 1.0, "lower"),
    "wasted_bits": MetricAxis("Wasted download", "Mbit", 1e-6, "lower"),
    "downloaded_bits": MetricAxis("Downloaded", "Mbit", 1e-6),
    "link_utilisation": MetricAxis("Link utilisation", "% of capacity", 100.0, "higher"),
    "jain_fairness": MetricAxis("Jain's fairness index", "1 = equal shares", 1.0, "higher"),
    "edge_hit_ratio": MetricAxis("Edge hit ratio", "% of requests", 100.0, "higher"),
    "origin_bits": MetricAxis("Origin traffic", "Mbit", 1e-6, "lower"),
}


def metric_axis(name: str) -> MetricAxis:
    """The display of metric ``name``; unknown names get a unit from their suffix.

    >>> metric_axis("rebuffer_ratio").axis_label
    'Rebuffer ratio (% of watch time)'
    >>> metric_axis("vmaf_p5_bps").unit
    'Mbit/s'
    """
    if name in _METRIC_AXES:
        return _METRIC_AXES[name]
    label = name.replace("_", " ").capitalize()
    for suffix, unit, scale in (("_bps", "Mbit/s", 1e-6), ("_bits", "Mbit", 1e-6), ("_s", "s", 1.0),
                                ("_ratio", "%", 100.0)):
        if name.endswith(suffix):
            return MetricAxis(label[: -len(suffix)].strip() or label, unit, scale)
    return MetricAxis(label, "as recorded")


def _switches_per_min(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    played_min = columns["played_s"] / 60.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(played_min > 0, columns["switch_count"] / played_min, np.nan)


#: Metrics computed from the stored ones: name -> (columns needed, function of the columns).
DERIVED_METRICS: Mapping[str, tuple[tuple[str, ...], Callable[[Mapping[str, np.ndarray]], np.ndarray]]] = {
    "switches_per_min": (("switch_count", "played_s"), _switches_per_min),
}

#: The CDFs every report shows first (the ABR literature's headline metrics).
CORE_METRICS = ("mean_bitrate_bps", "rebuffer_ratio", "startup_s", "switches_per_min", "qoe_lin")
#: Columns of DES runs (shared links) and CDN runs, shown in their own sections.
LINK_METRICS = ("link_utilisation", "jain_fairness")
CDN_METRICS = ("edge_hit_ratio", "origin_bits")
TIER_COLUMN = "tier_of_first_segment"
#: Serving tiers in their natural order; other names follow, sorted.
TIER_ORDER = ("edge", "isp", "exchange", "ixp", "regional", "shield", "origin")


def _with_derived(columns: Columns) -> Columns:
    out = dict(columns)
    for name, (needs, func) in DERIVED_METRICS.items():
        if name not in out and all(_is_numeric(out.get(n)) for n in needs):
            out[name] = func(out)
    return out


# ---------------------------------------------------------------------------------------------
# Reading results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ResultSet:
    """A results table and what is known about how it was made.

    Args:
        columns: one array per column, one entry per session (numbers as float64, text as
            object arrays); derived metrics (:data:`DERIVED_METRICS`) included.
        source: the file or folder read.
        table_file: the results file read (inside ``source`` when it is a sweep folder).
        table_sha256: SHA-256 of ``table_file``, so a report can be traced to its input.
        meta: the sweep's ``meta.json`` (spec hash, abrsim version, session count), if any.
        spec_text: the sweep's ``spec.toml``, if any.
        compare: ``abrsim compare --format json`` output, if any.
        tier_series: per-tier hit ratio over time (columns ``time_s``, ``tier``, ``hit_ratio``).
        outages: outage windows (columns ``start_s``, ``end_s``, ``tier``).
        selection: the selector the rows were filtered with (:meth:`select`), if any.
    """

    columns: Mapping[str, np.ndarray]
    source: str = ""
    table_file: str = ""
    table_sha256: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    spec_text: str | None = None
    compare: Mapping[str, Any] | None = None
    tier_series: Mapping[str, np.ndarray] | None = None
    outages: Mapping[str, np.ndarray] | None = None
    selection: str = ""

    @property
    def sessions(self) -> int:
        """Number of result rows."""
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> ResultSet:
        """A result set from row dicts (as :func:`abrsim.results.rows_from_batch` makes).

        Raises:
            InputError: if there are no rows or no ``policy`` column.
        """
        return cls(_with_derived(_columns_from_rows(rows, kwargs.get("source") or "rows")), **kwargs)

    def select(self, text: str) -> ResultSet:
        """The rows that match a selector such as ``ladder=hls,model=abrsim,params.gamma_p=5``.

        The selector language is ``abrsim compare``'s (:func:`abrsim.compare.parse_selector`):
        comma-separated ``KEY=VALUE`` or ``KEY!=VALUE`` terms, all of which must hold.

        Raises:
            InputError: naming ``--select``, if the text is malformed, names an unknown column,
                or selects no row.
        """
        from abrsim.compare import parse_selector

        selector = parse_selector(text, "--select")
        names = list(self.columns)
        for column in sorted(selector.columns):
            if column not in names:
                raise InputError(str(UnknownNameError("results column", column, names)), field="--select")
        lists = {name: values.tolist() for name, values in self.columns.items()}
        keep = np.array([selector.matches({name: lists[name][index] for name in names})
                         for index in range(self.sessions)], dtype=bool)
        if not keep.any():
            raise InputError(f"{text!r} selects no rows", field="--select")
        selection = f"{self.selection},{text}" if self.selection else text
        columns = {k: v[keep] for k, v in self.columns.items()}
        return dataclasses.replace(self, columns=columns, selection=selection,
                                   tier_series=_same_scenarios(self.tier_series, columns),
                                   outages=_same_scenarios(self.outages, columns))


def _same_scenarios(side: Mapping[str, np.ndarray] | None,
                    columns: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray] | None:
    """A side table's lines of the scenarios ``columns`` still holds (all lines without a ``scenario``
    column on either side); None if none is left."""
    if side is None or "scenario" not in side or "scenario" not in columns:
        return side
    wanted = {str(v) for v in columns["scenario"]}
    keep = np.array([str(v) in wanted for v in side["scenario"]], dtype=bool)
    return {k: np.asarray(v)[keep] for k, v in side.items()} if keep.any() else None


_TEXT_FIELDS = frozenset(IDENTITY_FIELDS) - {"seed"} | {TIER_COLUMN}
_MISSING = ("", "nan", "NaN", "null", "None", "NA")


def _is_numeric(values: np.ndarray | None) -> bool:
    return values is not None and values.dtype.kind in "fiub"


def _column(name: str, values: Sequence[Any]) -> np.ndarray:
    """Numbers become float64 (missing cells NaN); text stays text."""
    if name not in _TEXT_FIELDS:
        out = np.empty(len(values), dtype=np.float64)
        try:
            for index, value in enumerate(values):
                out[index] = math.nan if value is None or value in _MISSING else float(value)
        except (TypeError, ValueError):
            pass
        else:
            return out
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def _columns_from_rows(rows: Sequence[Mapping[str, Any]], source: str) -> Columns:
    names = list(dict.fromkeys(name for row in rows for name in row))
    return _columns_from_lists({name: [row.get(name) for row in rows] for name in names}, source)


def _columns_from_lists(data: Mapping[str, Sequence[Any]], source: str) -> Columns:
    if not data or not len(next(iter(data.values()))):
        raise InputError("no result rows, expected at least one session", source=source)
    if "policy" not in data:
        raise InputError(f"no 'policy' column; found {', '.join(list(data)[:8])}", source=source,
                         field="policy")
    return {name: _column(name, values) for name, values in data.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_csv_rows(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read CSV: {exc}", source=path) from None


def _read_json(path: Path) -> Any:
    try:
        with nesting_limit(path, "a JSON document as abrsim writes"):
            return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", source=path, line=exc.lineno) from None


def _read_parquet_rows(path: Path) -> Columns:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow (pip install 'abrsim[parquet]'); "
                         "or pass the CSV results", source=path) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise InputError(f"cannot read Parquet: {exc}", source=path) from None
    return _columns_from_lists(table.to_pydict(), str(path))


def params_text(params: dict[str, Any]) -> str:
    """A row's parameters as the results tables hold them: compact JSON with sorted keys."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _json_rows(doc: Any, path: Path) -> list[dict[str, Any]]:
    if isinstance(doc, dict):
        for key in ("rows", "results", "sessions"):
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
    if not isinstance(doc, list) or not all(isinstance(row, dict) for row in doc):
        raise InputError("expected a list of result objects (as `abrsim run --format json` writes)",
                         source=path)
    # JSON output nests each row's params as an object; the table's column is its compact JSON text.
    return [{**row, "params": params_text(row["params"])} if isinstance(row.get("params"), dict) else row
            for row in doc]


def _read_table_file(path: Path) -> Columns:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _columns_from_rows(_read_csv_rows(path), str(path))
    if suffix == ".json":
        return _columns_from_rows(_json_rows(_read_json(path), path), str(path))
    if suffix in (".parquet", ".pq"):
        return _read_parquet_rows(path)
    raise InputError(f"got a {suffix or 'suffix-less'} file, expected .csv, .json or .parquet results "
                     "or a sweep folder", source=path)


def side_file(results: str | Path, name: str) -> Path:
    """The side table ``name`` (``tier_series.csv``, ``outages.csv``, ...) of a results file:
    beside it, named after it (``d/a.csv`` -> ``d/a.tier_series.csv``), so that two runs writing
    results into one folder keep their own side tables."""
    results = Path(results)
    return results.with_name(f"{results.stem}.{name}")


def _side_path(table_path: Path, name: str, plain: bool) -> Path:
    named = side_file(table_path, name)
    return table_path.with_name(name) if plain and not named.exists() else named


def _read_side_table(path: Path, required: Sequence[str]) -> Columns | None:
    if not path.exists():
        return None
    rows = _read_csv_rows(path)
    if not rows:
        return None
    missing = [name for name in required if name not in rows[0]]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected {', '.join(required)}",
                         source=path, line=1)
    return {name: _column(name, [row.get(name) for row in rows]) for name in rows[0]}


def load_results(path: str | Path, compare: str | Path | None = None) -> ResultSet:
    """Read a results table, or a sweep output folder, for :func:`write_report`.

    Args:
        path: a ``.csv`` or ``.json`` file as ``abrsim run --format csv|json --out`` writes, a
            ``.parquet`` file, or a sweep folder holding ``results.parquet`` or ``results.csv``
            and optionally ``spec.toml``, ``meta.json``, ``compare.json``, ``tier_series.csv``
            (``time_s,tier,hit_ratio[,scenario]``) and ``outages.csv`` (``start_s,end_s[,tier]``).
            Beside a results file ``NAME.csv`` (in a folder or given itself), side tables named
            after it (``NAME.tier_series.csv``, :func:`side_file`) take precedence.
        compare: an ``abrsim compare --format json`` file (overrides the folder's ``compare.json``).

    Raises:
        InputError: if a file is missing, unreadable, or not a results table.
    """
    path = Path(path)
    meta: dict[str, Any] = {}
    spec_text = None
    compare_doc = None
    tier_series = outages = None
    folder = path if path.is_dir() else None
    if folder is not None:
        candidates = [folder / "results.parquet", folder / "results.csv", folder / "results.json"]
        table_path = next((p for p in candidates if p.exists()), None)
        if table_path is None:
            raise InputError("no results.parquet, results.csv or results.json in the folder",
                             source=folder)
        if table_path.suffix == ".parquet" and (folder / "results.csv").exists():
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                table_path = folder / "results.csv"
        if (folder / "meta.json").exists():
            loaded = _read_json(folder / "meta.json")
            meta = loaded if isinstance(loaded, dict) else {"meta": loaded}
        if (folder / "spec.toml").exists():
            try:
                spec_text = (folder / "spec.toml").read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read: {exc}", source=folder / "spec.toml") from None
        if compare is None and (folder / "compare.json").exists():
            compare = folder / "compare.json"
    elif not path.exists():
        raise InputError("no such file or folder", source=path)
    else:
        table_path = path
    # Side tables are named after their results file (`abrsim simulate --out d/a.csv` writes
    # d/a.tier_series.csv); a sweep folder's are plain tier_series.csv and outages.csv.
    plain = folder is not None
    tier_series = _read_side_table(_side_path(table_path, "tier_series.csv", plain),
                                   ("time_s", "tier", "hit_ratio"))
    outages = _read_side_table(_side_path(table_path, "outages.csv", plain), ("start_s", "end_s"))
    columns = _with_derived(_read_table_file(table_path))
    if compare is not None:
        compare_path = Path(compare)
        if not compare_path.exists():
            raise InputError("no such file", source=compare_path)
        compare_doc = _read_json(compare_path)
        if not isinstance(compare_doc, dict):
            raise InputError("expected a JSON object as `abrsim compare --format json` writes",
                             source=compare_path)
        try:
            parse_compare(compare_doc)
        except InputError as exc:
            raise InputError(exc.detail, source=compare_path, field=exc.field) from None
    return ResultSet(columns, str(path), str(table_path), _sha256(table_path), meta, spec_text, compare_doc,
                     tier_series, outages)


# ---------------------------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------------------------


def algorithm_labels(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """One label per row: the policy name, plus the parameters that differ between its variants.

    A policy run with one parameter set is labelled by its name (``bola``); one run with several
    gets the differing parameters appended (``bola gamma_p=4``, ``bola gamma_p=5``).
    """
    policy = np.array([str(v) for v in columns["policy"]], dtype=object)
    params = columns.get("params")
    if params is None:
        return policy
    params = np.array([str(v) for v in params], dtype=object)
    labels = policy.copy()
    for name in dict.fromkeys(policy):
        mask = policy == name
        variants = list(dict.fromkeys(params[mask]))
        if len(variants) < 2:
            continue
        parsed = {}
        for variant in variants:
            try:
                value = json.loads(variant)
            except (json.JSONDecodeError, RecursionError):
                value = None
            parsed[variant] = value if isinstance(value, dict) else {"params": variant}
        keys = sorted({k for p in parsed.values() for k in p})
        differing = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True)
                                             for p in parsed.values()}) > 1]
        for variant in variants:
            suffix = " ".join(f"{k}={_short(parsed[variant].get(k))}" for k in differing)
            labels[mask & (params == variant)] = f"{name} {suffix}"
    return labels


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _groups(labels: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(label, row mask)`` per algorithm, in sorted label order (the order of every legend)."""
    return [(str(label), labels == label) for label in sorted(set(labels.tolist()))]


# ---------------------------------------------------------------------------------------------
# Failure statements
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureCount:
    """How many sessions of one algorithm fail one statement, with a Wilson 95 % interval."""

    statement: FailureStatement
    label: str
    failed: int
    sessions: int

    @property
    def rate(self) -> float:
        """Share of sessions that fail, 0..1 (NaN without sessions)."""
        return self.failed / self.sessions if self.sessions else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson score 95 % interval of :attr:`rate`."""
        return _wilson(self.failed, self.sessions)


def _wilson(failed: int, sessions: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if sessions == 0:
        return math.nan, math.nan
    p = failed / sessions
    denominator = 1 + z * z / sessions
    centre = (p + z * z / (2 * sessions)) / denominator
    half = z * math.sqrt(p * (1 - p) / sessions + z * z / (4 * sessions * sessions)) / denominator
    low = 0.0 if failed == 0 else max(0.0, centre - half)
    high = 1.0 if failed == sessions else min(1.0, centre + half)
    return min(low, p), max(high, p)


def _statement_text(statement: FailureStatement) -> str:
    """The name, then the definition in brackets on a second line, for axis labels."""
    return f"{statement.name}\n({statement.definition})"


def _spec_failure_statements(results: ResultSet) -> tuple[FailureStatement, ...]:
    """The statements of the sweep spec's ``[failures]`` table, or the defaults."""
    if not results.spec_text:
        return DEFAULT_STATEMENTS
    try:
        with nesting_limit(Path(results.source) / "spec.toml", "a sweep spec"):
            doc = tomllib.loads(results.spec_text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=Path(results.source) / "spec.toml") from None
    config = doc.get("failures")
    if not isinstance(config, Mapping):
        return DEFAULT_STATEMENTS
    return statements_from_config(config, source=Path(results.source) / "spec.toml")


def evaluate_failures(
    columns: Mapping[str, np.ndarray],
    statements: Sequence[FailureStatement] = DEFAULT_STATEMENTS,
    labels: np.ndarray | None = None,
) -> list[FailureCount]:
    """Count the sessions failing each statement, per algorithm.

    Statements are evaluated by :func:`abrsim.failures.evaluate`, the one definition; a
    statement whose metric (or ``played_s`` for a per-minute statement) is not in the table is
    skipped. A session with a missing (NaN) value does not fail, as there.
    """
    labels = algorithm_labels(columns) if labels is None else labels
    counts = []
    for statement in statements:
        needed = [statement.metric, *(["played_s"] if statement.per_minute else [])]
        if not all(_is_numeric(columns.get(name)) for name in needed):
            continue
        rows = [dict(zip(needed, values, strict=True))
                for values in zip(*(np.asarray(columns[n], dtype=np.float64).tolist() for n in needed),
                                  strict=True)]
        failed = evaluate(rows, [statement])[statement.name]
        for label, mask in _groups(labels):
            counts.append(FailureCount(statement, label, int(np.sum(failed & mask)), int(mask.sum())))
    return counts


# ---------------------------------------------------------------------------------------------
# Comparison results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareDelta:
    """One paired difference ``candidate - baseline`` with its confidence interval.

    Args:
        name: the metric, or the failure statement.
        baseline: the baseline's mean (for a statement: its failure rate, 0..1).
        candidate: the candidate's mean (or rate).
        delta: mean paired delta (or rate difference), in the metric's SI unit.
        ci_low: lower bound of the confidence interval of ``delta``.
        ci_high: upper bound.
        p_value: Wilcoxon signed-rank (metrics) or McNemar (statements) p-value.
        pairs: paired sessions.
        definition: what a statement tests, e.g. ``"startup_s > 2"`` (empty for metrics).
    """

    name: str
    baseline: float
    candidate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float = math.nan
    pairs: int = 0
    definition: str = ""

    @property
    def unchanged(self) -> bool:
        """True when every pair has the same value on both sides (delta and interval all 0)."""
        return self.delta == 0 and self.ci_low == 0 and self.ci_high == 0


@dataclass(frozen=True)
class CompareSummary:
    """What ``abrsim compare --format json`` reports, as the report needs it."""

    baseline: str
    candidate: str
    confidence: float
    pairs: int
    metrics: tuple[CompareDelta, ...]
    failures: tuple[CompareDelta, ...] = ()
    rules: tuple[Mapping[str, Any], ...] = ()
    regressed: bool | None = None


def _number(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if math.isfinite(number) else 0


def parse_compare(doc: Mapping[str, Any]) -> CompareSummary:
    """Read the JSON that ``abrsim compare --format json`` writes (:meth:`abrsim.compare.Comparison.to_dict`).

    Uses ``baseline``, ``candidate``, ``confidence``, ``pairs``, ``metrics`` (``metric``,
    ``baseline_mean``, ``candidate_mean``, ``mean_delta``, ``ci_low``, ``ci_high``, ``p_value``,
    ``pairs``), ``failures`` (``name``, ``definition``, ``baseline_rate``, ``candidate_rate``,
    ``rate_delta``, ``ci_low``, ``ci_high``, ``p_value``, ``pairs``), ``rules`` and ``regressed``;
    other keys are ignored. JSON ``null`` (NaN) is read as NaN.

    Raises:
        InputError: if the document holds no ``metrics`` list.
    """
    entries = doc.get("metrics")
    if not isinstance(entries, list) or not entries:
        raise InputError("no 'metrics' list in the comparison; expected `abrsim compare --format json` "
                         "output", field="metrics")
    metrics = []
    for entry in entries:
        if not isinstance(entry, Mapping) or "metric" not in entry:
            raise InputError(f"got {entry!r}, expected an object with a 'metric' key", field="metrics")
        metrics.append(CompareDelta(
            name=str(entry["metric"]),
            baseline=_number(entry.get("baseline_mean")),
            candidate=_number(entry.get("candidate_mean")),
            delta=_number(entry.get("mean_delta")),
            ci_low=_number(entry.get("ci_low")),
            ci_high=_number(entry.get("ci_high")),
            p_value=_number(entry.get("p_value")),
            pairs=_count(entry.get("pairs")),
        ))
    failures = []
    for entry in doc.get("failures") or ():
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise InputError(f"got {entry!r}, expected an object with a 'name' key", field="failures")
        failures.append(CompareDelta(
            name=str(entry["name"]),
            baseline=_number(entry.get("baseline_rate")),
            candidate=_number(entry.get("candidate_rate")),
            delta=_number(entry.get("rate_delta")),
            ci_low=_number(entry.get("ci_low")),
            ci_high=_number(entry.get("ci_high")),
            p_value=_number(entry.get("p_value")),
            pairs=_count(entry.get("pairs")),
            definition=str(entry.get("definition", "")),
        ))
    rules = tuple(r for r in doc.get("rules") or () if isinstance(r, Mapping))
    regressed = doc.get("regressed")
    confidence = _number(doc.get("confidence"))
    return CompareSummary(
        baseline=str(doc.get("baseline") or "baseline"),
        candidate=str(doc.get("candidate") or "candidate"),
        confidence=confidence if 0 < confidence < 1 else 0.95,
        pairs=_count(doc.get("pairs")),
        metrics=tuple(metrics),
        failures=tuple(failures),
        rules=rules,
        regressed=regressed if isinstance(regressed, bool) else None,
    )


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


def _figure(width_in: float, height_in: float) -> Figure:
    """A new figure on the Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG, SVG or PDF, chosen by the suffix; return the path.

    Output is reproducible: no dates in SVG/PDF metadata, fixed SVG ids.

    Raises:
        InputError: on another suffix.
    """
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("png", "svg", "pdf"):
        raise InputError(f"got {path.suffix or 'no suffix'!r}, expected .png, .svg or .pdf",
                         source=path)
    metadata: dict[str, Any] = {"png": {"Software": None}, "svg": {"Date": None},
                                "pdf": {"CreationDate": None}}[kind]
    with _style():
        figure.savefig(path, format=kind, dpi=_PNG_DPI, metadata=metadata)
    return path


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def _ecdf(ax: Axes, values: np.ndarray, x_max: float, **kwargs: Any) -> None:
    """Draw the empirical CDF of ``values`` as steps, from 0 at the smallest value to 1 at ``x_max``."""
    values = np.sort(values)
    n = values.size
    x = np.concatenate([[values[0]], values, [max(x_max, values[-1])]])
    y = np.concatenate([[0.0], np.arange(1, n + 1) / n, [1.0]])
    ax.plot(x, y, drawstyle="steps-post", **kwargs)


def _legend_above(figure: Figure, handles: Sequence[Any], labels: Sequence[str], title: str | None = None,
                  ) -> None:
    """A legend above the axes, in as many columns as fit the figure's width, under ``title``.

    (A title goes into the legend: constrained layout would put a suptitle on top of it.)
    """
    if not handles:
        return
    width_in = float(figure.get_size_inches()[0]) - 0.3
    ncols = 1
    for candidate in range(min(len(labels), 6), 0, -1):
        # widest entry of each column: about 0.075 in per character at 9 pt, plus handle and gap
        columns = [labels[start::candidate] for start in range(candidate)]
        if sum(0.075 * max(len(text) for text in column) + 0.75 for column in columns) <= width_in:
            ncols = candidate
            break
    # fill rows first, so that the legend reads left to right in the figures' order
    order = [index for start in range(ncols) for index in range(start, len(labels), ncols)]
    figure.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside upper center",
                  ncols=ncols, handlelength=2.4, title=title, title_fontproperties={"size": 11},
                  alignment="left")


def _label_with_n(label: str, n: int) -> str:
    return f"{label} (n={n:,})"


def cdf_figure(
    columns: Mapping[str, np.ndarray],
    metrics: Sequence[str] = CORE_METRICS,
    styles: Mapping[str, AlgorithmStyle] | None = None,
    labels: np.ndarray | None = None,
    ncols: int = 3,
) -> Figure:
    """Empirical CDFs across sessions, one panel per metric, one line per algorithm.

    Metrics that are absent or all-NaN are left out; ``y`` is the fraction of sessions with a
    value at most ``x``. The legend sits above the panels.

    Raises:
        ValueError: if none of ``metrics`` has data.
    """
    columns = _with_derived(dict(columns))
    labels = algorithm_labels(columns) if labels is None else labels
    groups = _groups(labels)
    styles = algorithm_styles(labels.tolist()) if styles is None else styles
    shown = [m for m in metrics if _is_numeric(columns.get(m)) and _finite(columns[m]).size]
    if not shown:
        raise ValueError(f"no data for any of {', '.join(metrics)}")
    ncols = max(1, min(ncols, len(shown)))
    nrows = math.ceil(len(shown) / ncols)
    with _style():
        figure = _figure(3.7 * ncols + 0.3, 2.9 * nrows + 0.5)
        axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, metric in zip(axes, shown, strict=False):
            axis = metric_axis(metric)
            values = np.asarray(columns[metric], dtype=np.float64) * axis.scale
            finite = _finite(values)
            x_max = float(finite.max())
            drawn: dict[bytes, list[str]] = {}
            for label, mask in groups:
                data = np.sort(_finite(values[mask]))
                if not data.size:
                    continue
                style = styles[label]
                twins = drawn.setdefault(data.tobytes(), [])
                # A distribution identical to one drawn already is dashed, so that both show.
                _ecdf(ax, data, x_max, color=style.colour,
                      linestyle=(0, (3, 3)) if twins else style.linestyle)
                twins.append(label)
            twins = [names for names in drawn.values() if len(names) > 1]
            if len(twins) == 1 and len(twins[0]) == len(groups) > 1:
                note = "identical for\nall algorithms"
            else:
                note = "\n".join("identical:\n" + "\n".join(names) for names in twins)
            if twins:
                ax.text(0.98, 0.04, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
                        color="#444444")
            note = _tail_scale(ax, finite) if finite.min() >= 0 else ""
            ax.set_xlabel(axis.axis_label + ("\n(" + note.lstrip("; ") + ")" if note else ""))
            ax.set_ylabel("Fraction of sessions")
            ax.set_ylim(-0.02, 1.02)
            if not note:
                ax.margins(x=0.03)
            ax.set_title(f"{axis.label}" + (f" ({axis.hint})" if axis.hint else ""), loc="left")
        for ax in axes[len(shown):]:
            ax.set_visible(False)
        _legend_above(figure, *_algorithm_handles(groups, styles))
    return figure


def _algorithm_handles(groups: Sequence[tuple[str, np.ndarray]], styles: Mapping[str, AlgorithmStyle],
                       ) -> tuple[list[Any], list[str]]:
    """Legend entries, one line per algorithm with its session count."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=styles[label].colour, linestyle=styles[label].linestyle)
               for label, _ in groups]
    return handles, [_label_with_n(label, int(mask.sum())) for label, mask in groups]


def _pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both lower ``x`` and higher ``y``, by ``x``."""
    order = np.lexsort((-y, x))
    front = []
    best_y = -np.inf
    for index in order:
        if y[index] > best_y:
            front.append(index)
            best_y = y[index]
    return np.array(front, dtype=np.int64)


def tradeoff_figure(
    columns: Mapping[str, np.ndarray],
    styles: Mapping[str, AlgorithmStyle] | None = None,
    labels: np.ndarray | None = None,
    x_metric: str = "rebuffer_ratio",
    y_metric: str = "mean_bitrate_bps",
) -> Figure:
    """Bitrate versus rebuffering: one dot per session, each algorithm's mean, the Pareto frontier.

    The frontier joins the algorithm means that no other mean beats on both axes (higher
    bitrate and lower rebuffering). The x axis is linear up to 1 % and logarithmic beyond, so
    the many sessions without stalls and the long tail both stay readable.

    Raises:
        ValueError: if a metric is missing.
    """
    from matplotlib.lines import Line2D

    columns = _with_derived(dict(columns))
    for metric in (x_metric, y_metric):
        if not _is_numeric(columns.get(metric)):
            raise ValueError(f"no numeric column {metric!r}")
    labels = algorithm_labels(columns) if labels is None else labels
    groups = _groups(labels)
    styles = algorithm_styles(labels.tolist()) if styles is None else styles
    x_axis, y_axis = metric_axis(x_metric), metric_axis(y_metric)
    x_all = np.asarray(columns[x_metric], dtype=np.float64) * x_axis.scale
    y_all = np.asarray(columns[y_metric], dtype=np.float64) * y_axis.scale
    many = x_all.size > 2000
    with _style():
        figure = _figure(7.6, 5.0)
        ax = figure.subplots()
        means_x, means_y, handles, names = [], [], [], []
        for label, mask in groups:
            style = styles[label]
            x, y = x_all[mask], y_all[mask]
            ok = np.isfinite(x) & np.isfinite(y)
            ax.scatter(x[ok], y[ok], s=9 if many else 14, color=style.colour, alpha=0.35,
                       linewidths=0, marker=style.marker, rasterized=many, zorder=2)
            mx, my = (float(np.mean(x[ok])), float(np.mean(y[ok]))) if ok.any() else (np.nan, np.nan)
            means_x.append(mx)
            means_y.append(my)
            ax.scatter([mx], [my], s=110, color=style.colour, marker=style.marker, edgecolors="black",
                       linewidths=1.2, zorder=5)
            handles.append(Line2D([], [], color=style.colour, marker=style.marker, linestyle="none",
                                  markeredgecolor="black", markersize=9))
            names.append(f"{_label_with_n(label, int(ok.sum()))}, mean")
        mx, my = np.array(means_x), np.array(means_y)
        valid = np.flatnonzero(np.isfinite(mx) & np.isfinite(my))
        if valid.size:
            front = valid[_pareto_front(mx[valid], my[valid])]
            ax.plot(mx[front], my[front], color="black", linestyle="--", linewidth=1.2, zorder=4,
                    drawstyle="steps-post" if front.size > 1 else "default")
            handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1.2))
            names.append("Pareto frontier of the means")
        handles.append(Line2D([], [], color="grey", marker="o", linestyle="none", alpha=0.5, markersize=4))
        names.append("one session")
        scale_note = _tail_scale(ax, x_all)
        if not scale_note:
            ax.set_xlim(left=-0.02 * max(float(np.nanmax(x_all)), 1e-9))
        ax.set_xlabel(f"{x_axis.axis_label}, {x_axis.hint}{scale_note}")
        ax.set_ylabel(f"{y_axis.axis_label}, {y_axis.hint}")
        ax.set_title("Bitrate versus rebuffering (better: up and to the left)", loc="left")
        _legend_above(figure, handles, names)
    return figure


def _tail_scale(ax: Axes, values: np.ndarray) -> str:
    """Make the x axis linear, or, for a heavy tail, linear to 1 and logarithmic beyond.

    Returns a note for the axis label ("" when linear).
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    finite = _finite(values)
    if not finite.size:
        return ""
    top = float(finite.max())
    p90 = float(np.percentile(finite, 90))
    if top <= 2.0 or top <= 8.0 * max(p90, 0.25):
        return ""
    ax.set_xscale("symlog", linthresh=1.0, linscale=1.0)
    ticks = [t for t in (0, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= top * 1.05]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(left=-0.05, right=top * 1.15)
    return "; linear to 1, logarithmic beyond"


def failure_figure(
    counts: Sequence[FailureCount],
    styles: Mapping[str, AlgorithmStyle] | None = None,
) -> Figure:
    """Share of sessions failing each statement, one bar per algorithm with its 95 % interval.

    Raises:
        ValueError: if ``counts`` is empty.
    """
    if not counts:
        raise ValueError("no failure counts to draw")
    statements = list(dict.fromkeys(c.statement for c in counts))
    labels = sorted({c.label for c in counts})
    styles = algorithm_styles(labels) if styles is None else styles
    by_key = {(c.statement, c.label): c for c in counts}
    height = 0.8 / len(labels)
    with _style():
        figure = _figure(7.6, 0.5 + 0.32 * len(statements) * max(len(labels), 2) + 0.6)
        ax = figure.subplots()
        for position, label in enumerate(labels):
            style = styles[label]
            ys, rates, lows, highs = [], [], [], []
            for row, statement in enumerate(statements):
                count = by_key.get((statement, label))
                if count is None or not count.sessions:
                    continue
                low, high = count.interval
                ys.append(row - 0.4 + height * (position + 0.5))
                rates.append(100 * count.rate)
                lows.append(max(0.0, 100 * (count.rate - low)))
                highs.append(max(0.0, 100 * (high - count.rate)))
            ax.barh(ys, rates, height=height * 0.9, color=style.colour, label=label,
                    xerr=[lows, highs], error_kw={"elinewidth": 1.0, "capsize": 2, "ecolor": "#333333"})
            for y, rate, high in zip(ys, rates, highs, strict=True):
                ax.annotate(f"{rate:.1f} %", (rate + high, y), xytext=(5, 0), textcoords="offset points",
                            va="center", fontsize=8, color="#333333")
        ax.set_yticks(range(len(statements)), [_statement_text(s) for s in statements])
        ax.invert_yaxis()
        ax.set_xlabel("Sessions failing the statement (%); whiskers: 95 % Wilson interval")
        ax.set_xlim(left=0)
        ax.margins(x=0.12)
        ax.grid(axis="y", visible=False)
        handles, names = ax.get_legend_handles_labels()
        _legend_above(figure, handles, names)
    return figure


def compare_figure(summary: CompareSummary) -> Figure:
    """Paired metric deltas (candidate minus baseline) with their confidence intervals.

    One small panel per metric, each on its own axis and unit; the zero line marks no change.
    Metrics equal in every pair are left out (the report's table lists them).

    Raises:
        ValueError: if no metric differs.
    """
    changed = [d for d in summary.metrics if not d.unchanged and np.isfinite(d.delta)]
    if not changed:
        raise ValueError("no metric differs between the baseline and the candidate")
    ncols = 2 if len(changed) > 4 else 1
    nrows = math.ceil(len(changed) / ncols)
    with _style():
        figure = _figure(10.0 if ncols == 2 else 6.4, 0.95 * nrows + 0.6)
        axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, delta in zip(axes, changed, strict=False):
            axis = metric_axis(delta.name)
            value, low, high = (delta.delta * axis.scale, delta.ci_low * axis.scale,
                                delta.ci_high * axis.scale)
            _interval(ax, 0, value, low, high, _verdict_colour(_delta_better(delta, axis.better)))
            span = max([abs(v) for v in (value, low, high) if np.isfinite(v)] + [1e-12])
            ax.set_xlim(-1.2 * span, 1.2 * span)
            ax.set_ylim(-1, 1)
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            ax.set_xlabel(f"Δ {axis.axis_label}", fontsize=8.5, labelpad=1)
            ax.tick_params(labelsize=8)
            ax.set_title(f"{axis.label}: {value:+.3g} [{low:.3g}, {high:.3g}]", loc="left", fontsize=9)
        for ax in axes[len(changed):]:
            ax.set_visible(False)
        figure.suptitle(_compare_title(summary), x=0.01, ha="left", fontsize=9.5)
    return figure


def compare_failures_figure(summary: CompareSummary) -> Figure:
    """Change of each failure statement's rate (candidate minus baseline), in percentage points.

    Raises:
        ValueError: if the comparison has no failure statements.
    """
    failures = [d for d in summary.failures if np.isfinite(d.delta)]
    if not failures:
        raise ValueError("the comparison has no failure statements")
    with _style():
        figure = _figure(7.6, 0.42 * len(failures) + 1.3)
        ax = figure.subplots()
        for row, delta in enumerate(failures):
            _interval(ax, row, 100 * delta.delta, 100 * delta.ci_low, 100 * delta.ci_high,
                      _verdict_colour(_delta_better(delta, "lower")))
        ax.set_yticks(range(len(failures)),
                      [f"{d.name}\n({d.definition})" if d.definition else d.name for d in failures],
                      fontsize=8.5)
        ax.set_ylim(len(failures) - 0.5, -0.5)
        span = max([abs(100 * v) for d in failures for v in (d.delta, d.ci_low, d.ci_high)
                    if np.isfinite(v)] + [0.5])
        ax.set_xlim(-1.2 * span, 1.2 * span)
        ax.set_xlabel("Δ sessions failing (percentage points); lower is better")
        figure.suptitle(_compare_title(summary), x=0.01, ha="left", fontsize=9.5)
    return figure


def _compare_title(summary: CompareSummary) -> str:
    return (f"{summary.candidate} minus {summary.baseline}: mean paired delta, "
            f"{100 * summary.confidence:g} % interval\n"
            "green: better, vermillion: worse, grey: no clear change")


def _interval(ax: Axes, y: float, value: float, low: float, high: float, colour: str) -> None:
    """A point estimate with its interval, at height ``y``, and the zero line."""
    if np.isfinite(low) and np.isfinite(high):
        ax.plot([low, high], [y, y], color=colour, linewidth=3.5, solid_capstyle="butt")
    ax.plot([value], [y], marker="o", color=colour, markersize=7, markeredgecolor="white")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.grid(axis="y", visible=False)


def _verdict_colour(verdict: str) -> str:
    return {"better": "#009E73", "worse": STALL_COLOUR}.get(verdict, "#666666")


def _delta_better(delta: CompareDelta, better: str) -> str:
    """``better``, ``worse`` or ``""`` (interval spans zero, or the metric has no direction)."""
    if not better or not (np.isfinite(delta.ci_low) and np.isfinite(delta.ci_high)):
        return ""
    if delta.ci_low > 0 or delta.ci_high < 0:
        up = delta.ci_low > 0
        return "better" if up == (better == "higher") else "worse"
    return ""


def _tier_order(values: Iterable[str]) -> list[str]:
    known = {name: index for index, name in enumerate(TIER_ORDER)}
    return sorted(set(values), key=lambda v: (known.get(v.lower(), len(known)), v))


#: Tiers are not algorithms: they are drawn in greys and line styles, never in algorithm colours.
_TIER_STYLES = (("#000000", "-"), ("#555555", "--"), ("#8C8C8C", ":"), ("#333333", "-."))


def tier_hit_ratio_figure(
    series: Mapping[str, np.ndarray],
    outages: Mapping[str, np.ndarray] | None = None,
) -> Figure:
    """Cache hit ratio per CDN tier over time, with outage windows shaded.

    Args:
        series: columns ``time_s`` (seconds), ``tier`` (name) and ``hit_ratio`` (0..1), one row
            per tier and time bin, and optionally ``scenario``: the run (e.g. one cache size of a
            sweep) each row belongs to; every run then has its own line per tier.
        outages: columns ``start_s``, ``end_s`` and optionally ``tier`` (which tier was down).

    Raises:
        ValueError: if a column is missing.
    """
    for name in ("time_s", "tier", "hit_ratio"):
        if name not in series:
            raise ValueError(f"tier series has no {name!r} column")
    tiers = np.array([str(v) for v in series["tier"]], dtype=object)
    time_s = np.asarray(series["time_s"], dtype=np.float64)
    hit = np.asarray(series["hit_ratio"], dtype=np.float64) * 100.0
    with _style():
        figure = _figure(9.0, 3.8)
        ax = figure.subplots()
        if outages is not None and len(outages.get("start_s", ())):
            down = outages.get("tier")
            for index, (start, end) in enumerate(zip(np.asarray(outages["start_s"], np.float64),
                                                     np.asarray(outages["end_s"], np.float64),
                                                     strict=True)):
                ax.axvspan(start, end, color=STALL_COLOUR, alpha=0.15, linewidth=0,
                           label="outage" if index == 0 else None)
                if down is not None and str(down[index]):
                    ax.annotate(f"{down[index]} down", ((start + end) / 2, 1.0),
                                xycoords=("data", "axes fraction"), ha="center", va="bottom",
                                fontsize=8, color=STALL_COLOUR, annotation_clip=False)
        # A cache-size sweep writes one series per variant (a `scenario` column): each variant has
        # its own lines, in shades of the tier's line style, never mixed into one.
        variants = (list(dict.fromkeys(str(v) for v in series["scenario"])) if "scenario" in series
                    else [""])
        scenario = (np.array([str(v) for v in series["scenario"]], dtype=object) if "scenario" in series
                    else np.full(tiers.size, "", dtype=object))
        for index, tier in enumerate(_tier_order(tiers.tolist())):
            colour, linestyle = _TIER_STYLES[index % len(_TIER_STYLES)]
            for shade, variant in enumerate(variants):
                mask = (tiers == tier) & (scenario == variant)
                if not mask.any():
                    continue
                order = np.argsort(time_s[mask], kind="stable")
                t, h = time_s[mask][order], hit[mask][order]
                if t.size > 1:  # each value holds for its bin, until the next bin starts
                    t, h = np.append(t, t[-1] + float(np.median(np.diff(t)))), np.append(h, h[-1])
                if len(variants) > 1:
                    from matplotlib import colormaps

                    colour = colormaps["viridis"](shade / max(len(variants) - 1, 1) * 0.9)
                label = f"{tier} tier" + (f", {variant}" if variant else "")
                ax.plot(t, h, color=colour, linestyle=linestyle, drawstyle="steps-post", label=label)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("Time (s)")
        ax.set_ylabel("Cache hit ratio (% of requests)")
        handles, names = ax.get_legend_handles_labels()
        _legend_above(figure, handles, names)
    return figure


def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95 % interval."""
    values = _finite(values)
    if not values.size:
        return math.nan, math.nan
    half = 1.96 * float(np.std(values, ddof=1)) / math.sqrt(values.size) if values.size > 1 else 0.0
    return float(np.mean(values)), half


def tier_qoe_figure(
    columns: Mapping[str, np.ndarray],
    metrics: Sequence[str] = ("qoe_lin", "startup_s"),
    styles: Mapping[str, AlgorithmStyle] | None = None,
    labels: np.ndarray | None = None,
) -> Figure:
    """Mean QoE (and startup) per tier that served the first segment, one bar per algorithm.

    Bars show the mean with its 95 % interval; the number of sessions is written under each group.

    Raises:
        ValueError: if there is no ``tier_of_first_segment`` column or no metric to show.
    """
    columns = _with_derived(dict(columns))
    if TIER_COLUMN not in columns:
        raise ValueError(f"no {TIER_COLUMN!r} column")
    shown = [m for m in metrics if _is_numeric(columns.get(m))]
    if not shown:
        raise ValueError(f"no data for any of {', '.join(metrics)}")
    labels = algorithm_labels(columns) if labels is None else labels
    groups = _groups(labels)
    styles = algorithm_styles(labels.tolist()) if styles is None else styles
    tiers_of_rows = np.array([_tier_name(v) for v in columns[TIER_COLUMN]], dtype=object)
    tiers = _tier_order(tiers_of_rows.tolist())
    width = 0.8 / len(groups)
    with _style():
        figure = _figure(3.9 * len(shown) + 0.4, 3.9)
        axes = figure.subplots(1, len(shown), squeeze=False).ravel()
        for ax, metric in zip(axes, shown, strict=True):
            axis = metric_axis(metric)
            values = np.asarray(columns[metric], dtype=np.float64) * axis.scale
            for position, (label, mask) in enumerate(groups):
                xs, means, halves = [], [], []
                for index, tier in enumerate(tiers):
                    mean, half = _mean_ci(values[mask & (tiers_of_rows == tier)])
                    x = index - 0.4 + width * (position + 0.5)
                    if np.isfinite(mean):
                        xs.append(x)
                        means.append(mean)
                        halves.append(half)
                    else:  # say that the bar is missing for want of sessions
                        ax.annotate("n=0", (x, 0.0), xytext=(0, 3), textcoords="offset points",
                                    ha="center", va="bottom", fontsize=7, color=styles[label].colour,
                                    rotation=90)
                ax.bar(xs, means, width=width * 0.9, color=styles[label].colour, label=label,
                       yerr=halves, error_kw={"elinewidth": 1.0, "capsize": 2, "ecolor": "#333333"})
            counts = [int(np.sum(tiers_of_rows == tier)) for tier in tiers]
            ax.set_xticks(range(len(tiers)), [f"{t}\nn={n:,}" for t, n in zip(tiers, counts, strict=True)])
            ax.set_xlabel("Tier that served the first segment")
            ax.set_ylabel(f"{axis.axis_label}, mean")
            ax.set_title(axis.label + (f" ({axis.hint})" if axis.hint else ""), loc="left")
            ax.grid(axis="x", visible=False)
            ax.axhline(0.0, color="black", linewidth=0.6)
        handles, names = axes[0].get_legend_handles_labels()
        _legend_above(figure, handles, names)
    return figure


def _tier_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------------------------------------
# Session timeline
# ---------------------------------------------------------------------------------------------


def stall_intervals(log: SessionLog) -> np.ndarray:
    """Stalls of a session as ``[[start_s, end_s], ...]`` (merged where one spans downloads).

    A segment's ``stall_s`` is the stalled time that ends when its download completes.
    """
    mask = log.stall_s > 0
    ends = np.asarray(log.done_s[mask], dtype=np.float64)
    starts = ends - np.asarray(log.stall_s[mask], dtype=np.float64)
    merged: list[list[float]] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if merged and start <= merged[-1][1] + 1e-9:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.float64).reshape(-1, 2)


def buffer_curve(log: SessionLog, segment_duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The buffer level over a session, exactly: ``(time_s, buffer_s)`` vertices of a polyline.

    Buffer = media downloaded - media played. Playback runs from ``startup_s`` except during
    stalls, so the level falls with slope -1 while playing, stays flat while stalled or before
    startup, and jumps by one segment when a download completes (abandoned downloads add
    nothing).
    """
    done = np.asarray(log.done_s, dtype=np.float64)[~np.asarray(log.abandoned, dtype=bool)]
    stalls = stall_intervals(log)
    times = np.unique(np.concatenate([[0.0, log.startup_s, log.end_s], done, stalls.ravel()]))
    times = times[times <= log.end_s]

    def played(t: np.ndarray) -> np.ndarray:
        stalled = np.zeros_like(t)
        for start, end in stalls:
            stalled += np.clip(t - start, 0.0, end - start)
        return np.clip(t - log.startup_s - stalled, 0.0, None)

    before = segment_duration_s * np.searchsorted(done, times, side="left") - played(times)
    after = segment_duration_s * np.searchsorted(done, times, side="right") - played(times)
    time_s = np.repeat(times, 2)
    buffer_s = np.column_stack([before, after]).ravel()
    keep = np.ones(time_s.size, dtype=bool)
    keep[1:] = (np.diff(time_s) > 0) | (np.diff(buffer_s) != 0)
    return time_s[keep], np.clip(buffer_s[keep], 0.0, None)


def _bitrate_steps(log: SessionLog, bitrates_bps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chosen bitrate over time: each segment's rung from its request until the next request."""
    rates = bitrates_bps[np.asarray(log.rung, dtype=np.int64)]
    times = np.append(np.asarray(log.request_s, dtype=np.float64), float(log.done_s[-1]))
    return times, np.append(rates, rates[-1])


def _trace_steps(trace: Trace, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The trace's bandwidth from 0 to ``end_s``, unrolled over its loops, as step vertices."""
    loops = max(1, math.ceil(end_s / trace.duration_s))
    starts = (trace.start_s[None, :] + trace.duration_s * np.arange(loops)[:, None]).ravel()
    rates = np.tile(trace.bandwidth_bps, loops)
    keep = starts < end_s
    return np.append(starts[keep], end_s), np.append(rates[keep], rates[keep][-1])


def session_timeline_figure(
    logs: Sequence[SessionLog],
    trace: Trace,
    ladder: Ladder,
    *,
    labels: Sequence[str] | None = None,
    max_buffer_s: float | None = None,
    title: str | None = None,
    layout: str = "auto",
) -> Figure:
    """One session per algorithm on one trace: bandwidth, chosen bitrate, buffer, stalls, startup.

    Panels share the time axis. The bitrate panel shows the trace's available bandwidth (grey)
    and the chosen bitrate (steps from each request to the next, in the algorithm's colour),
    with the ladder's rungs dotted and abandoned downloads as crosses. The buffer panel shows
    the buffer level (:func:`buffer_curve`), stalls shaded (and marked with a triangle, so
    short ones stay visible), the startup phase hatched and the buffer cap dashed.

    Args:
        logs: session logs, all replaying ``trace`` on ``ladder``.
        trace: the trace the sessions replayed.
        ladder: the ladder they chose from.
        labels: a name per log (default: the log's policy).
        max_buffer_s: the player's buffer cap, drawn as a dashed line if given.
        title: figure title (default: names the trace and ladder).
        layout: ``"overlay"`` (one bitrate panel with every algorithm, then a buffer panel
            each), ``"stacked"`` (a bitrate and a buffer panel per algorithm), or ``"auto"``
            (overlay up to three algorithms, stacked beyond, where overlaid steps get hard to
            follow).

    Raises:
        ValueError: if ``logs`` is empty, a log does not belong to ``trace`` and ``ladder``, or
            ``layout`` is unknown.
    """
    if not logs:
        raise ValueError("no session logs to plot")
    labels = [log.policy for log in logs] if labels is None else list(labels)
    if len(labels) != len(logs):
        raise ValueError(f"got {len(labels)} labels for {len(logs)} logs")
    if layout not in ("auto", "overlay", "stacked"):
        raise ValueError(f'"layout" must be auto, overlay or stacked, got {layout!r}')
    for log in logs:
        if log.trace != trace.name:
            raise ValueError(f"log of trace {log.trace!r} plotted against trace {trace.name!r}")
        if log.download_count == 0:
            raise ValueError(f"log of {log.policy!r} has no downloads")
        if (log.rung >= ladder.rung_count).any() or (log.segment >= ladder.segment_count).any():
            raise ValueError(f"log of {log.policy!r} does not fit ladder {ladder.name!r}")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    stacked = layout == "stacked" or (layout == "auto" and len(logs) > 3)
    styles = algorithm_styles(labels)
    bitrates_bps = np.asarray(ladder.bitrates_bps, dtype=np.float64)
    end_s = max(float(log.end_s) for log in logs)
    trace_t, trace_bps = _trace_steps(trace, end_s)
    chosen_max = max(float(bitrates_bps[np.asarray(log.rung)].max()) for log in logs)
    y_top = max(1.15 * chosen_max, 1.15 * bitrates_bps[-1])
    y_top = max(y_top, min(float(trace_bps.max()) * 1.05, 2.5 * bitrates_bps[-1]))
    clipped = float(trace_bps.max()) > y_top
    buffer_top = 1.1 * max([max_buffer_s or 0.0] + [float(np.max(log.buffer_after_s)) for log in logs])
    abandoned_any = any(bool(np.any(log.abandoned)) for log in logs)

    def bandwidth_panel(ax: Axes) -> None:
        ax.fill_between(trace_t, trace_bps / 1e6, step="post", color=BANDWIDTH_COLOUR, alpha=0.55,
                        linewidth=0)
        ax.step(trace_t, trace_bps / 1e6, where="post", color="#8C8C8C", linewidth=0.8)
        for rate in bitrates_bps:
            ax.axhline(rate / 1e6, color="#999999", linestyle=":", linewidth=0.6, zorder=1)
        ax.set_ylim(0, y_top / 1e6)
        ax.set_ylabel("Bandwidth, bitrate\n(Mbit/s)")

    def bitrate_steps(ax: Axes, log: SessionLog, style: AlgorithmStyle) -> None:
        times, rates = _bitrate_steps(log, bitrates_bps)
        ax.step(times, rates / 1e6, where="post", color=style.colour, linestyle=style.linestyle,
                linewidth=1.8)
        dropped = np.asarray(log.abandoned, dtype=bool)
        if dropped.any():
            ax.plot(np.asarray(log.done_s)[dropped], bitrates_bps[np.asarray(log.rung)[dropped]] / 1e6,
                    marker="x", linestyle="none", color=style.colour, markersize=7, mew=1.6)

    def buffer_panel(ax: Axes, log: SessionLog, style: AlgorithmStyle) -> None:
        time_s, level_s = buffer_curve(log, ladder.segment_duration_s)
        if log.startup_s > 0:
            ax.axvspan(0.0, log.startup_s, facecolor="none", edgecolor=STARTUP_COLOUR, hatch="///",
                       linewidth=0, alpha=0.6)
        ax.axvline(log.startup_s, color=STARTUP_COLOUR, linewidth=1.0)
        stalls = stall_intervals(log)
        for start, end in stalls:
            ax.axvspan(start, end, color=STALL_COLOUR, alpha=0.25, linewidth=0)
        if stalls.size:
            ax.plot(stalls[:, 0], np.full(stalls.shape[0], 0.97), marker="v", linestyle="none",
                    color=STALL_COLOUR, markersize=6, transform=ax.get_xaxis_transform(), clip_on=False)
        ax.plot(time_s, level_s, color=style.colour, linestyle=style.linestyle, linewidth=1.4)
        if max_buffer_s is not None:
            ax.axhline(max_buffer_s, color="#555555", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, buffer_top)
        ax.set_ylabel("Buffer (s)")

    def summary(log: SessionLog, label: str) -> str:
        played = np.asarray(log.rung)[~np.asarray(log.abandoned, dtype=bool)]
        mean_mbps = float(np.mean(bitrates_bps[played])) / 1e6 if played.size else math.nan
        switches = int(np.count_nonzero(np.diff(played)))
        stalls = log.rebuffer_count
        return (f"{label}: startup {log.startup_s:.2f} s, {stalls} stall{'' if stalls == 1 else 's'} "
                f"({float(np.sum(log.stall_s)):.1f} s), mean bitrate {mean_mbps:.2f} Mbit/s, "
                f"{switches} switch{'' if switches == 1 else 'es'}")

    key: list[Any] = [Patch(facecolor=BANDWIDTH_COLOUR, edgecolor="#8C8C8C",
                            label="available bandwidth (trace)"
                            + (f", clipped at {y_top / 1e6:.3g} Mbit/s" if clipped else ""))]
    if not stacked:
        key += [Line2D([], [], color=styles[label].colour, linestyle=styles[label].linestyle, linewidth=1.8,
                       label=label) for label in labels]
    else:
        key.append(Line2D([], [], color="#555555", linewidth=1.8, label="chosen bitrate"))
    if abandoned_any:
        key.append(Line2D([], [], color="#555555", marker="x", linestyle="none", mew=1.6,
                          label="abandoned download"))
    key += [Line2D([], [], color="#999999", linestyle=":", linewidth=0.8, label="ladder rungs"),
            Patch(facecolor="none", edgecolor=STARTUP_COLOUR, hatch="///", label="startup"),
            Patch(facecolor=STALL_COLOUR, alpha=0.25, label="stall")]
    if max_buffer_s is not None:
        key.append(Line2D([], [], color="#555555", linestyle="--", linewidth=0.8, label="buffer cap"))
    with _style():
        if stacked:
            figure = _figure(10.0, 1.0 + 2.6 * len(logs))
            ratios = [1.1, 1.0] * len(logs)
        else:
            figure = _figure(10.0, 3.0 + 1.55 * len(logs))
            ratios = [2.0] + [1.0] * len(logs)
        axes = np.atleast_1d(figure.subplots(len(ratios), 1, sharex=True,
                                             gridspec_kw={"height_ratios": ratios}))
        if stacked:
            for index, (log, label) in enumerate(zip(logs, labels, strict=True)):
                style = styles[label]
                rate_ax, buffer_ax = axes[2 * index], axes[2 * index + 1]
                bandwidth_panel(rate_ax)
                bitrate_steps(rate_ax, log, style)
                rate_ax.set_title(summary(log, label), loc="left", color=style.colour, fontsize=9.5,
                                  fontweight="bold")
                buffer_panel(buffer_ax, log, style)
        else:
            bandwidth_panel(axes[0])
            for ax, log, label in zip(axes[1:], logs, labels, strict=True):
                bitrate_steps(axes[0], log, styles[label])
                buffer_panel(ax, log, styles[label])
                ax.set_title(summary(log, label), loc="left", color=styles[label].colour, fontsize=9.5,
                             fontweight="bold")
        axes[-1].set_xlabel("Time since the first request (s)")
        axes[-1].set_xlim(0, end_s)
        _legend_above(figure, key, [str(handle.get_label()) for handle in key],
                      title or f"Trace {trace.name!r}, ladder {ladder.name!r}: one session per algorithm")
    return figure


# ---------------------------------------------------------------------------------------------
# The HTML report
# ---------------------------------------------------------------------------------------------


@dataclass
class _Section:
    title: str
    anchor: str
    parts: list[str] = field(default_factory=list)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #ddd; }
.what { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; font-size: 0.92rem; }
.what dt { font-weight: 600; } .what dd { margin: 0; font-family: ui-monospace, monospace; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; max-width: 60rem; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 0.8rem 0; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e3e3e3; text-align: right; }
th { background: #f6f6f6; } td.l, th.l { text-align: left; }
td.l { white-space: nowrap; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; border-radius: 2px;
          vertical-align: baseline; }
nav a { margin-right: 1rem; } pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; }
.note { color: #555; font-size: 0.88rem; }
"""


#: What a table shows for a missing value (an en dash).
_DASH = "\u2013"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float, digits: int = 3) -> str:
    if not np.isfinite(value):
        return _DASH
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits}g}"
    return f"{value:,.{digits}f}" if abs(value) < 100 else f"{value:,.1f}"


def _swatch(label: str, styles: Mapping[str, AlgorithmStyle]) -> str:
    colour = styles[label].colour if label in styles else "#999"
    return f'<span class="swatch" style="background:{colour}"></span>{_esc(label)}'


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1,
                raw_header: Sequence[str] = ()) -> str:
    """Cells are already HTML; ``header`` cells are escaped, ``raw_header`` cells (appended) are not."""
    head = "".join(f'<th class="l">{_esc(h)}</th>' if i < text_columns else f"<th>{_esc(h)}</th>"
                   for i, h in enumerate(header)) + "".join(raw_header)
    body = "".join(
        "<tr>" + "".join(f'<td class="l">{c}</td>' if i < text_columns else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _distinct(columns: Mapping[str, np.ndarray], name: str) -> list[str]:
    if name not in columns:
        return []
    values = columns[name]
    if _is_numeric(values):
        return [_short(float(v)) if not float(v).is_integer() else str(int(v))
                for v in sorted(set(_finite(values).tolist()))]
    return sorted({str(v) for v in values.tolist()})


def _listing(values: Sequence[str], limit: int = 8) -> str:
    if not values:
        return _DASH
    if len(values) <= limit:
        return ", ".join(values)
    return f"{', '.join(values[:limit])}, … ({len(values)} in all)"


def _seeds_text(columns: Mapping[str, np.ndarray]) -> str:
    seeds = _distinct(columns, "seed")
    if len(seeds) > 8 and all(s.lstrip("-").isdigit() for s in seeds):
        ints = sorted(int(s) for s in seeds)
        if ints == list(range(ints[0], ints[-1] + 1)):
            return f"{ints[0]}{_DASH}{ints[-1]} ({len(ints)} seeds)"
    return _listing(seeds)


#: meta.json keys the header shows, with their labels (others appear as "meta: KEY").
_META_LABELS = {"spec_source": "spec file", "spec_sha256": "spec sha256", "plan_sha256": "plan sha256",
                "traces_root": "traces root", "executor": "executor", "jobs": "jobs",
                "started": "started", "finished": "finished", "status": "status"}
#: meta.json keys the header leaves out: shown from the rows already, or not scalar.
_META_HIDDEN = frozenset({"scenario", "abrsim_version", "sessions", "chunks", "fields"})


def _header(results: ResultSet, title: str, labels: np.ndarray, styles: Mapping[str, AlgorithmStyle]) -> str:
    columns = results.columns
    algorithms = []
    params = columns.get("params")
    for label, mask in _groups(labels):
        first = int(np.flatnonzero(mask)[0])
        detail = f" <code>{_esc(params[first])}</code>" if params is not None else ""
        algorithms.append(f"{_swatch(label, styles)} ({int(mask.sum()):,} sessions){detail}")
    source = _esc(results.source or "rows in memory")
    if results.table_file and results.table_file != results.source:
        source += f" <span class='note'>({_esc(Path(results.table_file).name)})</span>"
    if results.table_sha256:
        source += (f" <span class='note' title='{results.table_sha256}'>sha256 "
                   f"{results.table_sha256[:16]}…</span>")
    sessions = f"{results.sessions:,}"
    planned = results.meta.get("sessions")
    if isinstance(planned, int) and planned != results.sessions:
        sessions += f" <span class='note'>(meta.json plans {planned:,}: an unfinished sweep?)</span>"
    items = [("results", source)]
    if results.selection:
        items.append(("rows selected", f"<code>{_esc(results.selection)}</code>"))
    spec_name = _spec_name(results)
    if spec_name:
        items.append(("spec", _esc(spec_name)))
    for key, label in _META_LABELS.items():
        if key in results.meta and results.meta[key] is not None:
            items.append((label, _esc(results.meta[key])))
    items += [
        ("sessions", sessions),
        ("traces", _esc(_listing(_distinct(columns, "trace")))),
        ("scenario", _esc(_listing(_distinct(columns, "scenario")))),
        ("ladder", _esc(_listing(_distinct(columns, "ladder")))),
        ("player model", _esc(_listing(_distinct(columns, "model")))),
        ("seeds", _esc(_seeds_text(columns))),
        ("abrsim version (results)", _esc(_listing(_distinct(columns, "abrsim_version")))),
        ("abrsim version (report)", _esc(__version__)),
    ]
    for key, value in results.meta.items():
        if key not in _META_LABELS and key not in _META_HIDDEN and isinstance(value, (str, int, float, bool)):
            items.append((f"meta: {key}", _esc(value)))
    what = "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    algos = "".join(f"<li>{a}</li>" for a in algorithms)
    pooled = [(name, _distinct(columns, name)) for name in ("scenario", "ladder", "model")]
    pooled = [(name, values) for name, values in pooled if len(values) > 1]
    pooled_note = ""
    if pooled:
        mixed = " and ".join(f"{len(values)} {name}s ({_listing(values, 4)})" for name, values in pooled)
        example = ",".join(f"{name}={values[0]}" for name, values in pooled)
        pooled_note = (f"<p class='note'>Each algorithm's figures pool its sessions over {_esc(mixed)}. "
                       "To look at one, select it: "
                       f"<code>abrsim report … --select {_esc(example)}</code>.</p>\n")
    spec = ""
    if results.spec_text:
        spec = f"<details><summary>spec.toml</summary><pre>{_esc(results.spec_text)}</pre></details>"
    return (f"<h1>{_esc(title)}</h1>\n<p class='note'>Made by <code>abrsim report</code>; every figure "
            "below is drawn from the results named here.</p>\n"
            f"<dl class='what'>{what}</dl>\n<p><b>Algorithms</b></p><ul>{algos}</ul>\n{pooled_note}{spec}")


def _spec_name(results: ResultSet) -> str | None:
    """The spec's ``name``, or the sweep's scenario."""
    if results.spec_text:
        try:
            doc = tomllib.loads(results.spec_text)
        except (tomllib.TOMLDecodeError, RecursionError):
            doc = {}
        if isinstance(doc.get("name"), str):
            return str(doc["name"])
    scenario = results.meta.get("scenario")
    return scenario if isinstance(scenario, str) else None


def _summary_table(columns: Columns, labels: np.ndarray, styles: Mapping[str, AlgorithmStyle],
                   metrics: Sequence[str]) -> str:
    header = ["algorithm", "sessions"]
    for metric in metrics:
        axis = metric_axis(metric)
        header.append(f"{axis.label} ({axis.unit}) mean / median")
    rows = []
    for label, mask in _groups(labels):
        row = [_swatch(label, styles), f"{int(mask.sum()):,}"]
        for metric in metrics:
            axis = metric_axis(metric)
            values = _finite(np.asarray(columns[metric], dtype=np.float64)[mask]) * axis.scale
            row.append(f"{_fmt(float(np.mean(values)))} / {_fmt(float(np.median(values)))}"
                       if values.size else _DASH)
        rows.append(row)
    return _html_table(header, rows)


def _failure_table(counts: Sequence[FailureCount], styles: Mapping[str, AlgorithmStyle]) -> str:
    statements = list(dict.fromkeys(c.statement for c in counts))
    labels = sorted({c.label for c in counts})
    by_key = {(c.statement, c.label): c for c in counts}
    header = [f"<th title='{_esc(s.doc)}'>{_esc(s.name)}<br><span class='note'>{_esc(s.definition)}"
              "</span></th>" for s in statements]
    rows = []
    for label in labels:
        row = [_swatch(label, styles)]
        for statement in statements:
            count = by_key.get((statement, label))
            if count is None or not count.sessions:
                row.append(_DASH)
                continue
            low, high = count.interval
            row.append(f"{count.failed:,} / {count.sessions:,} = <b>{100 * count.rate:.1f} %</b>"
                       f"<br><span class='note'>[{100 * low:.1f}, {100 * high:.1f}]</span>")
        rows.append(row)
    return _html_table(["algorithm"], rows, raw_header=header)


def _compare_tables(summary: CompareSummary) -> str:
    level = f"{100 * summary.confidence:g} % CI"
    rows = []
    for delta in summary.metrics:
        axis = metric_axis(delta.name)
        k = axis.scale
        if not delta.pairs or not np.isfinite(delta.delta):
            verdict = "no values"
        elif delta.unchanged:
            verdict = "same in every pair"
        else:
            verdict = _delta_better(delta, axis.better) or ("no clear change" if axis.better else _DASH)
        interval = f"[{_fmt(delta.ci_low * k)}, {_fmt(delta.ci_high * k)}]"
        rows.append([_esc(f"{axis.label} ({axis.unit})"), _fmt(delta.baseline * k), _fmt(delta.candidate * k),
                     f"<b>{_fmt(delta.delta * k)}</b>", interval, _fmt(delta.p_value), f"{delta.pairs:,}",
                     _esc(verdict)])
    html_text = _html_table(["metric", "baseline mean", "candidate mean", "mean Δ", level,
                             "p (Wilcoxon)", "pairs", "verdict"], rows)
    if summary.failures:
        rows = []
        for delta in summary.failures:
            verdict = _delta_better(delta, "lower") or "no clear change"
            rows.append([f"{_esc(delta.name)}<br><span class='note'>{_esc(delta.definition)}</span>",
                         f"{100 * delta.baseline:.1f} %", f"{100 * delta.candidate:.1f} %",
                         f"<b>{100 * delta.delta:+.1f}</b>",
                         f"[{100 * delta.ci_low:+.1f}, {100 * delta.ci_high:+.1f}]", _fmt(delta.p_value),
                         f"{delta.pairs:,}", _esc(verdict)])
        html_text += _html_table(["failure statement", "baseline", "candidate", "Δ (points)", level,
                                  "p (McNemar)", "pairs", "verdict"], rows)
    if summary.rules:
        rows = [[f"<code>{_esc(r.get('rule', ''))}</code>", _esc(r.get("verdict", ""))]
                for r in summary.rules]
        html_text += _html_table(["gate rule", "verdict"], rows)
    return html_text


_SHORT_UNITS = frozenset({"s", "Mbit", "Mbit/s", "%", "count"})


def _constant_text(metric: str, value: float) -> str:
    """``"Media played: 600 s"``."""
    axis = metric_axis(metric)
    unit = f" {axis.unit}" if axis.unit in _SHORT_UNITS and axis.unit != "count" else ""
    return f"{axis.label}: {value * axis.scale:g}{unit}"


def _is_informative(values: np.ndarray) -> bool:
    finite = _finite(values)
    return finite.size > 0 and float(finite.max()) > float(finite.min())


def write_report(
    results: ResultSet | str | Path,
    out_dir: str | Path,
    *,
    title: str | None = None,
    failure_statements: Sequence[FailureStatement] | None = None,
) -> Path:
    """Write a static HTML report (``index.html`` plus ``figures/*.png`` and ``*.svg``).

    Sections appear only when their data exists: the CDN and shared-link sections need the
    columns :data:`CDN_METRICS`, :data:`LINK_METRICS` or ``tier_of_first_segment`` (or the
    sweep folder's ``tier_series.csv``); the comparison section needs ``compare`` data.

    Args:
        results: a :class:`ResultSet`, or a path for :func:`load_results`.
        out_dir: folder to write to (created if needed; existing report files are replaced).
        title: the page title (default: names the results).
        failure_statements: the statements counted per algorithm (default: the sweep spec's, as
            its ``[failures]`` table adjusts them, else :data:`abrsim.failures.DEFAULT_STATEMENTS`).

    Returns:
        The path of ``index.html``.

    Raises:
        InputError: if the results cannot be read.
    """
    if not isinstance(results, ResultSet):
        results = load_results(results)
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    columns = _with_derived(dict(results.columns))
    labels = algorithm_labels(columns)
    styles = algorithm_styles(labels.tolist())
    title = title or f"abrsim report: {Path(results.source).name or 'results'}"
    sections: list[_Section] = []
    written: set[Path] = set()

    def add_figure(section: _Section, name: str, figure: Figure, caption: str, alt: str) -> None:
        png, svg = figures_dir / f"{name}.png", figures_dir / f"{name}.svg"
        save_figure(figure, png)
        save_figure(figure, svg)
        written.update((png, svg))
        # 100 CSS px per inch of figure: text has the same size in every figure of the page.
        width_px = round(100 * float(figure.get_size_inches()[0]))
        section.parts.append(
            f'<figure id="fig-{name}"><a href="figures/{svg.name}"><img src="figures/{png.name}" '
            f'alt="{_esc(alt)}" style="width:{width_px}px"></a><figcaption>{caption} '
            f'<a href="figures/{png.name}">PNG</a> · <a href="figures/{svg.name}">SVG</a></figcaption>'
            "</figure>")

    # Headline metrics.
    core = [m for m in CORE_METRICS if _is_numeric(columns.get(m)) and _finite(columns[m]).size]
    section_metrics = {*CORE_METRICS, *LINK_METRICS, *CDN_METRICS}
    candidates = list(dict.fromkeys(
        m for m in (*METRICS, *[c for c in columns if c not in RESULT_FIELDS])
        if m not in section_metrics and m not in IDENTITY_FIELDS and _is_numeric(columns.get(m))))
    more = [m for m in candidates if _is_informative(columns[m])]
    constant = [m for m in candidates if m not in more and _finite(columns[m]).size]
    overview = _Section("Per-algorithm summary", "summary")
    if core:
        overview.parts.append(_summary_table(columns, labels, styles, core))
    if more:
        overview.parts.append("<details><summary>All other metrics</summary>"
                              + _summary_table(columns, labels, styles, more) + "</details>")
    sections.append(overview)
    section = _Section("Distributions across sessions", "cdfs")
    if core:
        add_figure(section, "cdf_core", cdf_figure(columns, core, styles, labels),
                   "Empirical CDFs across sessions, one line per algorithm; a line further toward "
                   "the better side of its axis is better. Switch rate counts rung changes per "
                   "minute of media played.",
                   "CDFs of " + ", ".join(metric_axis(m).label for m in core) + " per algorithm")
    if more:
        add_figure(section, "cdf_more", cdf_figure(columns, more, styles, labels),
                   "Every other metric that varies across sessions.",
                   "CDFs of " + ", ".join(metric_axis(m).label for m in more) + " per algorithm")
    if constant:
        text = "; ".join(_constant_text(m, float(_finite(columns[m])[0])) for m in constant)
        section.parts.append(f"<p class='note'>The same in every session: {_esc(text)}.</p>")
    sections.append(section)
    if _is_numeric(columns.get("rebuffer_ratio")) and _is_numeric(columns.get("mean_bitrate_bps")):
        section = _Section("Bitrate versus rebuffering", "tradeoff")
        add_figure(section, "tradeoff", tradeoff_figure(columns, styles, labels),
                   "Each dot is one session; large markers are each algorithm's mean. The dashed "
                   "line is the Pareto frontier of the means: no other algorithm has both a higher "
                   "mean bitrate and a lower mean rebuffer ratio than the algorithms on it.",
                   "Scatter of mean bitrate against rebuffer ratio per session, with algorithm means "
                   "and their Pareto frontier")
        sections.append(section)

    # Failure statements.
    if failure_statements is None:
        failure_statements = _spec_failure_statements(results)
    counts = evaluate_failures(columns, failure_statements, labels)
    if counts:
        section = _Section("Failure statements", "failures")
        section.parts.append(
            "<p>Sessions that fail each statement, per algorithm: failing / sessions = rate, with "
            "the Wilson 95 % interval below. A session with no value for the metric does not "
            "fail.</p>" + _failure_table(counts, styles))
        add_figure(section, "failures", failure_figure(counts, styles),
                   "Share of sessions failing each statement, with 95 % Wilson intervals.",
                   "Bar chart of the share of sessions failing each statement per algorithm")
        sections.append(section)

    # Comparison.
    if results.compare is not None:
        summary = parse_compare(results.compare)
        section = _Section("Comparison", "compare")
        count = len(summary.rules)
        rules = f"{count} rule{'' if count == 1 else 's'}"
        gate = (" No regression gate was set (no <code>--fail-on</code> rules)." if not summary.rules else
                {True: f" The regression gate ({rules}) <b>failed</b>.",
                 False: f" The regression gate ({rules}) passed.", None: ""}[summary.regressed])
        section.parts.append(
            f"<p>Candidate <b>{_esc(summary.candidate)}</b> against baseline <b>{_esc(summary.baseline)}"
            f"</b>: paired differences over {summary.pairs:,} sessions on the same traces and seeds, "
            f"with {100 * summary.confidence:g} % bootstrap confidence intervals.{gate}</p>"
            + _compare_tables(summary))
        if any(not d.unchanged and np.isfinite(d.delta) for d in summary.metrics):
            add_figure(section, "compare", compare_figure(summary),
                       "Each metric's mean paired delta (candidate minus baseline) with its confidence "
                       "interval; metrics equal in every pair are left out. Green: better, vermillion: "
                       "worse, grey: no clear change (the interval includes zero) or no better "
                       "direction.",
                       f"Paired metric deltas of {summary.candidate} minus {summary.baseline}")
        if any(np.isfinite(d.delta) for d in summary.failures):
            add_figure(section, "compare_failures", compare_failures_figure(summary),
                       "Change of each failure statement's rate, candidate minus baseline, with its "
                       "confidence interval.",
                       f"Failure-rate changes of {summary.candidate} minus {summary.baseline}")
        sections.append(section)

    # Shared links (DES).
    link = [m for m in LINK_METRICS if _is_numeric(columns.get(m)) and _finite(columns[m]).size]
    if link:
        section = _Section("Shared links", "links")
        add_figure(section, "links", cdf_figure(columns, link, styles, labels),
                   "Utilisation of each session's bottleneck link (share of its capacity used) and "
                   "Jain's fairness index of the throughputs of the sessions sharing it (1: equal "
                   "shares), as recorded on each session's row.",
                   "CDFs of link utilisation and Jain's fairness index per algorithm")
        sections.append(section)

    # CDN.
    cdn = [m for m in CDN_METRICS if _is_numeric(columns.get(m)) and _finite(columns[m]).size]
    series = results.tier_series
    if cdn or TIER_COLUMN in columns or series is not None:
        section = _Section("CDN", "cdn")
        if series is not None:
            add_figure(section, "tier_hit_ratio", tier_hit_ratio_figure(series, results.outages),
                       "Cache hit ratio of each tier over time; shaded: outage windows.",
                       "Hit ratio per CDN tier over time with outages shaded")
        if TIER_COLUMN in columns:
            add_figure(section, "tier_qoe", tier_qoe_figure(columns, styles=styles, labels=labels),
                       "Mean QoE_lin and startup delay by the tier that served each session's first "
                       "segment, with 95 % intervals; n counts sessions per tier.",
                       "Bar charts of QoE and startup delay by serving tier per algorithm")
        if cdn:
            add_figure(section, "cdf_cdn", cdf_figure(columns, cdn, styles, labels),
                       "Per-session edge hit ratio and origin traffic.",
                       "CDFs of edge hit ratio and origin traffic per algorithm")
        sections.append(section)

    # Figures of an earlier report in the same folder that this one does not have.
    for stale in sorted(figures_dir.glob("*")):
        if stale.suffix in (".png", ".svg") and stale not in written:
            stale.unlink()
    page = _page(title, _header(results, title, labels, styles), sections, styles)
    index = out_dir / "index.html"
    write_atomic(index, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return index


def _page(title: str, header: str, sections: Sequence[_Section], styles: Mapping[str, AlgorithmStyle]) -> str:
    nav = " ".join(f'<a href="#{s.anchor}">{_esc(s.title)}</a>' for s in sections if s.parts)
    body = "\n".join(f'<section id="{s.anchor}"><h2>{_esc(s.title)}</h2>\n' + "\n".join(s.parts)
                     + "</section>" for s in sections if s.parts)
    colours = ", ".join(_swatch(label, styles) for label in sorted(styles))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="abrsim {_esc(__version__)}">
<title>{_esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
{header}
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
<footer>
<h2>Notes</h2>
<p class="note">Colours: {colours}. Each algorithm keeps its colour in every figure and every
abrsim report (chosen from a colour-blind-safe palette by a hash of its name). Vermillion shading
marks stalls and outages. Click a figure for its SVG. Metric definitions: <code>abrsim/qoe.py</code>;
failure statements count sessions with a value strictly above the threshold.</p>
</footer>
</body>
</html>
"""
