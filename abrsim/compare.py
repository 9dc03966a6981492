"""Paired comparison of two configurations on the same sessions, and a regression gate.

Sessions of the baseline and the candidate are paired on the identity columns that
describe the conditions (by default ``trace``, ``ladder``, ``model`` and ``seed``), so
every difference is measured on the same network and the same title. Per metric the
comparison reports the mean and median of the paired deltas (candidate - baseline),
a percentile-bootstrap confidence interval of the mean delta and the Wilcoxon
signed-rank p-value; per failure statement (:mod:`abrsim.failures`) the counts and
rates on both sides, the bootstrap interval of the rate difference and McNemar's
exact p-value. Gate rules (``rebuffer_ratio:+5%``) turn it into a pass/fail verdict.

>>> rule = parse_rule("rebuffer_ratio:+5%")
>>> (rule.name, rule.direction, rule.amount, rule.relative)
('rebuffer_ratio', 1, 0.05, True)
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abrsim.errors import InputError, UnknownNameError, nesting_limit
from abrsim.failures import DEFAULT_STATEMENTS, FailureStatement, column_values, statements_from_config
from abrsim.qoe import METRICS
from abrsim.results import IDENTITY_FIELDS, Row
from abrsim.results import format_table as align_table

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

__all__ = [
    "DEFAULT_RESAMPLES",
    "UNPAIRED_FIELDS",
    "Comparison",
    "FailureComparison",
    "GateRule",
    "MetricComparison",
    "RuleResult",
    "Selector",
    "bootstrap_mean_ci",
    "compare",
    "format_comparison",
    "load_results",
    "load_statements",
    "pair_rows",
    "pairing_fields",
    "parse_rule",
    "parse_selector",
    "split_rows",
]

#: Bootstrap resamples unless told otherwise.
DEFAULT_RESAMPLES = 2000

#: Identity columns never used to pair sessions: what is being compared, and bookkeeping.
UNPAIRED_FIELDS = ("scenario", "policy", "params", "abrsim_version")

# A block of resampled values holds at most this many numbers (bounds the bootstrap's memory).
_BOOTSTRAP_BLOCK_VALUES = 4_000_000


# --------------------------------------------------------------------------------------------
# Reading results
# --------------------------------------------------------------------------------------------


def _results_file(source: Path) -> Path:
    if not source.is_dir():
        if not source.exists():
            raise InputError("file not found", source=source)
        return source
    candidates = [source / "results.csv"]
    try:
        import pyarrow.parquet  # noqa: F401

        candidates.insert(0, source / "results.parquet")
    except ImportError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError("holds no results.csv or results.parquet; expected a sweep folder", source=source)


def _convert(column: str, values: list[str]) -> list[Any]:
    if column == "seed":
        return [int(v) for v in values]
    if column in IDENTITY_FIELDS:
        return values
    for kind in (int, float):  # integer columns stay integers, as in the Parquet file
        try:
            return [kind(v) for v in values]
        except ValueError:
            pass
    return values


def load_results(source: str | Path) -> list[Row]:
    """Read a results table: a ``.csv`` or ``.parquet`` file, or a sweep folder.

    In a sweep folder ``results.parquet`` is read when pyarrow is installed, else
    ``results.csv``. CSV cells become numbers (integers where a whole column holds
    integers) for every column outside the identity, and for ``seed``.

    Raises:
        InputError: if the file is missing, unreadable, empty, or lacks identity columns.
    """
    path = _results_file(Path(source))
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("reading Parquet needs pyarrow: pip install 'abrsim[parquet]'",
                             source=path) from None
        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the Parquet file: {exc}", source=path) from None
    else:
        try:
            with path.open(encoding="utf-8", newline="") as file:
                reader = csv.DictReader(file)
                raw = list(reader)
                columns = list(reader.fieldnames or [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"cannot read the CSV file: {exc}", source=path) from None
        try:
            converted = {c: _convert(c, [row[c] for row in raw]) for c in columns}
        except (TypeError, ValueError):
            raise InputError("a row has a missing or malformed cell", source=path, field="seed") from None
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*converted.values(), strict=True)]
    if not rows:
        raise InputError("holds no result rows", source=path)
    missing = [f for f in IDENTITY_FIELDS if f not in rows[0] and f != "abrsim_version"]
    if missing:
        raise InputError(f"lacks the identity column {missing[0]!r}; expected abrsim results", source=path)
    return rows


def load_statements(source: str | Path | None) -> tuple[FailureStatement, ...]:
    """The failure statements of a sweep: its spec's ``[failures]`` table over the defaults.

    Args:
        source: a spec file, a sweep folder (its ``spec.toml``), a results file inside a
            sweep folder, or None.

    Returns:
        :data:`~abrsim.failures.DEFAULT_STATEMENTS`, adjusted by the spec when one is found.

    Raises:
        InputError: if the spec cannot be read or its ``[failures]`` table is invalid.
    """
    if source is None:
        return DEFAULT_STATEMENTS
    path = Path(source)
    if path.is_dir():
        path = path / "spec.toml"
    elif path.suffix.lower() != ".toml":
        path = path.parent / "spec.toml"
    if not path.is_file():
        return DEFAULT_STATEMENTS
    try:
        with nesting_limit(path, "a sweep spec"):
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the spec: {exc}", source=path) from None
    failures = doc.get("failures", {})
    if not isinstance(failures, dict):
        raise InputError(f"got {failures!r}; expected a table", source=path, field="failures")
    return statements_from_config(failures, DEFAULT_STATEMENTS, source=path)


# --------------------------------------------------------------------------------------------
# Selecting and pairing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """A filter on result rows: comma-separated ``KEY=VALUE`` (or ``KEY!=VALUE``) terms, all of
    which must hold.

    ``KEY`` is a results column or ``params.NAME`` (one parameter of the algorithm).
    ``VALUE`` matches a number numerically (``params.gamma_p=4`` matches 4.0), ``true`` or
    ``false`` a flag, and anything else as a shell pattern (``trace=hsdpa_norway_3g/*``).
    The empty selector matches every row.
    """

    text: str
    terms: tuple[tuple[str, bool, str], ...]

    @property
    def columns(self) -> frozenset[str]:
        """The results columns the selector constrains (``params`` for ``params.NAME``)."""
        return frozenset(key.split(".", 1)[0] for key, _, _ in self.terms)

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` satisfies every term."""
        for key, negate, pattern in self.terms:
            column, dot, param = key.partition(".")
            if dot:
                present, value = _param(row, param)
                hit = present and _value_matches(value, pattern)
            else:
                hit = _value_matches(row[column], pattern)
            if hit == negate:
                return False
        return True


def _param(row: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    params = row["params"]
    try:
        params = params if isinstance(params, dict) else json.loads(params)
    except (TypeError, ValueError, RecursionError):
        return False, None
    return (name in params, params.get(name)) if isinstance(params, dict) else (False, None)


def _value_matches(value: Any, pattern: str) -> bool:
    if isinstance(value, bool):
        return pattern.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return float(value) == float(pattern)
        except ValueError:
            pass
    return fnmatch.fnmatchcase(str(value), pattern)


def parse_selector(text: str, option: str = "selector") -> Selector:
    """Parse ``policy=bola,params.gamma_p=4``-style text (see :class:`Selector`).

    Raises:
        InputError: naming ``option``, if a term is not ``KEY=VALUE`` or ``KEY!=VALUE``.
    """
    terms = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        match = re.fullmatch(r"([A-Za-z_][\w.]*)\s*(!?=)\s*([^=].*|)", term)
        if match is None:
            raise InputError(f"got {term!r}; expected KEY=VALUE or KEY!=VALUE, e.g. policy=bola",
                             field=option)
        terms.append((match[1], match[2] == "!=", match[3].strip()))
    return Selector(text, tuple(terms))


def _check_columns(selector: Selector, rows: Sequence[Row], option: str) -> None:
    columns = list(rows[0]) if rows else []
    for key, _, _ in selector.terms:
        column = key.split(".", 1)[0]
        if column not in columns or (column != key and column != "params"):
            choices = [*columns, "params.NAME"]
            raise InputError(str(UnknownNameError("results column", key, choices)), field=option)


def split_rows(
    rows: Sequence[Row], baseline: Selector, candidate: Selector,
    candidate_rows: Sequence[Row] | None = None,
) -> tuple[list[Row], list[Row]]:
    """Select the baseline and the candidate rows.

    Args:
        rows: the results (the baseline's, if ``candidate_rows`` is given).
        baseline: selects the baseline in ``rows``.
        candidate: selects the candidate in ``candidate_rows``, or else in ``rows``.
        candidate_rows: a second results table holding the candidate.

    Raises:
        InputError: if a selector names an unknown column or selects nothing, or (one
            table) a row matches both selectors.
    """
    other = rows if candidate_rows is None else candidate_rows
    _check_columns(baseline, rows, "--baseline")
    _check_columns(candidate, other, "--candidate")
    chosen = [[r for r in rows if baseline.matches(r)], [r for r in other if candidate.matches(r)]]
    for option, selector, selected in (("--baseline", baseline, chosen[0]),
                                       ("--candidate", candidate, chosen[1])):
        if not selected:
            raise InputError(f"{selector.text!r} selects no rows", field=option)
    if candidate_rows is None:
        both = {id(r) for r in chosen[0]} & {id(r) for r in chosen[1]}
        if both:
            raise InputError(f"{len(both)} rows match both selectors; make them exclusive "
                             "(e.g. add params.NAME=VALUE)", field="--candidate")
    return chosen[0], chosen[1]


def pairing_fields(baseline: Selector | None = None, candidate: Selector | None = None) -> tuple[str, ...]:
    """The identity columns sessions are paired on.

    Every identity column (:data:`abrsim.results.IDENTITY_FIELDS`) except the ones that
    name what is compared or are bookkeeping (:data:`UNPAIRED_FIELDS`), and except the
    columns the two selectors constrain differently: ``(trace, ladder, model, seed)`` for
    ``--baseline policy=bola --candidate policy=throughput``, ``(trace, ladder, seed)``
    for ``--baseline model=a --candidate model=b``. A term both selectors share (such as
    ``trace=hsdpa_norway_3g/*`` on both) only filters.
    """
    def terms(selector: Selector | None, column: str) -> list[tuple[str, bool, str]]:
        return [] if selector is None else sorted(t for t in selector.terms if t[0].split(".")[0] == column)

    return tuple(f for f in IDENTITY_FIELDS
                 if f not in UNPAIRED_FIELDS and terms(baseline, f) == terms(candidate, f))


def pair_rows(
    baseline: Sequence[Row], candidate: Sequence[Row], fields: Sequence[str]
) -> tuple[list[Row], list[Row], int, int]:
    """Match each baseline row with the candidate row of the same key.

    Returns:
        The paired baseline rows, the paired candidate rows (in the baseline's order), and
        the number of unpaired baseline and candidate rows.

    Raises:
        InputError: if two rows of one side share a key (the selector is too broad), or no
            row pairs.
    """
    def index(rows: Sequence[Row], option: str) -> dict[tuple[str, ...], Row]:
        keyed: dict[tuple[str, ...], Row] = {}
        for row in rows:
            key = tuple(str(row[f]) for f in fields)
            if key in keyed:
                shown = ", ".join(f"{f}={v}" for f, v in zip(fields, key, strict=True))
                other = ", ".join(f"{c}={row[c]}" for c in IDENTITY_FIELDS
                                  if c in row and c not in fields and c != "abrsim_version")
                raise InputError(f"two selected sessions share the pairing key ({shown}), one of them "
                                 f"with {other}; narrow the selector", field=option)
            keyed[key] = row
        return keyed

    base = index(baseline, "--baseline")
    cand = index(candidate, "--candidate")
    keys = [k for k in base if k in cand]
    if not keys:
        raise InputError(f"no baseline session has a candidate on the same {', '.join(fields)}",
                         field="--candidate")
    return [base[k] for k in keys], [cand[k] for k in keys], len(base) - len(keys), len(cand) - len(keys)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def bootstrap_mean_ci(
    values: np.ndarray, seed: int = 0, resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap confidence interval of the mean, column by column.

    Rows are resampled with replacement ``resamples`` times; every column is resampled
    with the same rows (a paired, joint bootstrap), and the draws depend only on
    ``seed`` and the number of rows, so a column's interval does not depend on the
    other columns. NaNs are left out of each resampled mean.

    Args:
        values: shape ``(n,)`` or ``(n, k)``.
        seed: seeds the resampling Generator.
        resamples: number of bootstrap resamples.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        The lower and upper bounds, each of shape ``()`` or ``(k,)``; NaN for a column
        without values.

    Raises:
        ValueError: if ``resamples`` < 1, ``confidence`` is outside (0, 1) or there are no rows.
    """
    data = np.asarray(values, dtype=np.float64)
    flat = data.ndim == 1
    data = data[:, None] if flat else data
    n, k = data.shape
    if resamples < 1:
        raise ValueError(f'"resamples" must be >= 1, got {resamples!r}')
    if not 0 < confidence < 1:
        raise ValueError(f'"confidence" must be in (0, 1), got {confidence!r}')
    if n == 0:
        raise ValueError("no values to resample")
    rng = np.random.default_rng(seed)
    means = np.empty((resamples, k))
    columns = [(j, bool(np.isnan(data[:, j]).any())) for j in range(k)]
    block = max(1, min(resamples, _BOOTSTRAP_BLOCK_VALUES // n))  # depends on n only: same draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        for start in range(0, resamples, block):
            rows = rng.integers(0, n, size=(min(block, resamples - start), n))
            for j, has_nan in columns:
                sample = data[rows, j]  # (b, n)
                means[start:start + rows.shape[0], j] = (np.nanmean(sample, axis=1) if has_nan
                                                         else sample.mean(axis=1))
        tail = (1 - confidence) / 2
        low, high = np.nanquantile(means, [tail, 1 - tail], axis=0)
    return (low[0], high[0]) if flat else (low, high)


def _wilcoxon_p(deltas: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    nonzero = deltas[deltas != 0]
    if nonzero.size == 0:
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wilcoxon(nonzero).pvalue)


def _mcnemar_p(baseline: np.ndarray, candidate: np.ndarray) -> float:
    from scipy.stats import binomtest

    worse = int(np.sum(~baseline & candidate))
    better = int(np.sum(baseline & ~candidate))
    return 1.0 if worse + better == 0 else float(binomtest(worse, worse + better, 0.5).pvalue)


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricComparison:
    """One metric over the paired sessions (deltas are candidate - baseline).

    Args:
        metric: the metric.
        pairs: pairs where both values are numbers (not NaN).
        baseline_mean: mean over those pairs, baseline.
        candidate_mean: mean over those pairs, candidate.
        mean_delta: mean of the deltas.
        median_delta: median of the deltas.
        ci_low: lower bound of the bootstrap interval of ``mean_delta``.
        ci_high: upper bound of that interval.
        p_value: Wilcoxon signed-rank p-value (two-sided; zero deltas dropped; 1 if all are 0).
    """

    metric: str
    pairs: int
    baseline_mean: float
    candidate_mean: float
    mean_delta: float
    median_delta: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def relative_change(self) -> float:
        """``mean_delta`` as a share of ``|baseline_mean|`` (inf if the baseline is 0)."""
        return _relative(self.mean_delta, self.baseline_mean)


@dataclass(frozen=True)
class FailureComparison:
    """One failure statement over the paired sessions.

    Args:
        name: the statement.
        definition: what it tests, e.g. ``"startup_s > 2"``.
        pairs: paired sessions.
        baseline_count: baseline sessions failing it.
        candidate_count: candidate sessions failing it.
        ci_low: lower bound of the bootstrap interval of the rate difference.
        ci_high: upper bound of that interval.
        p_value: McNemar's exact p-value (two-sided binomial test on the discordant pairs).
    """

    name: str
    definition: str
    pairs: int
    baseline_count: int
    candidate_count: int
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def baseline_rate(self) -> float:
        """Share of baseline sessions failing."""
        return self.baseline_count / self.pairs

    @property
    def candidate_rate(self) -> float:
        """Share of candidate sessions failing."""
        return self.candidate_count / self.pairs

    @property
    def rate_delta(self) -> float:
        """``candidate_rate - baseline_rate``."""
        return (self.candidate_count - self.baseline_count) / self.pairs


def _relative(delta: float, base: float) -> float:
    if base != 0:
        return delta / abs(base)
    return 0.0 if delta == 0 else math.copysign(math.inf, delta)


@dataclass(frozen=True)
class GateRule:
    """A regression rule: ``NAME:+AMOUNT[%]`` or ``NAME:-AMOUNT[%]``.

    ``NAME`` is a metric or a failure statement. ``+`` means an increase is a regression,
    ``-`` a decrease. ``AMOUNT`` is in the metric's unit (for a statement: a rate, 0.02 =
    2 percentage points) or, with ``%``, relative to the baseline's mean (or rate).

    Args:
        text: the rule as written.
        name: the metric or statement.
        direction: +1 (increase is bad) or -1 (decrease is bad).
        amount: the tolerated change, >= 0 (a fraction when ``relative``).
        relative: whether ``amount`` is relative to the baseline.
    """

    text: str
    name: str
    direction: int
    amount: float
    relative: bool


_RULE = re.compile(r"\s*([A-Za-z_]\w*)\s*:\s*([+-])\s*((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(%?)\s*")


def parse_rule(text: str) -> GateRule:
    """Parse a ``--fail-on`` rule such as ``rebuffer_ratio:+5%`` or ``qoe_lin:-2%``.

    Raises:
        InputError: if the text is not ``NAME:+AMOUNT[%]`` or ``NAME:-AMOUNT[%]``.
    """
    match = _RULE.fullmatch(text)
    if match is None:
        raise InputError(f"got {text!r}; expected NAME:+AMOUNT or NAME:-AMOUNT, optionally with %, "
                         "e.g. rebuffer_ratio:+5% or startup_s:+0.2", field="--fail-on")
    amount = float(match[3]) / (100.0 if match[4] else 1.0)
    return GateRule(text.strip(), match[1], 1 if match[2] == "+" else -1, amount, bool(match[4]))


@dataclass(frozen=True)
class RuleResult:
    """A gate rule applied to a comparison.

    Args:
        rule: the rule.
        observed: the change (mean delta, or rate difference for a statement).
        baseline: the baseline's mean (or rate).
        threshold: the tolerated change in the rule's direction, in the metric's unit.
        ci_low: lower bound of the change's confidence interval.
        ci_high: upper bound.
        regressed: whether the change exceeds the threshold in the bad direction and its
            confidence interval excludes 0 (the change is not noise).
        verdict: one line saying why.
    """

    rule: GateRule
    observed: float
    baseline: float
    threshold: float
    ci_low: float
    ci_high: float
    regressed: bool
    verdict: str


def _apply_rule(rule: GateRule, observed: float, baseline: float, low: float, high: float,
                confidence: float) -> RuleResult:
    if math.isnan(observed):
        raise InputError(f"{rule.text}: {rule.name} has no values in the paired sessions",
                         field="--fail-on")
    threshold = rule.amount * abs(baseline) if rule.relative else rule.amount
    worse = rule.direction * observed
    significant = low > 0 if rule.direction > 0 else high < 0
    level = f"{confidence:.0%} CI"
    if worse <= threshold:
        verdict = "ok: within the threshold"
        regressed = False
    elif not significant:
        verdict = f"ok: beyond the threshold but the {level} includes 0 (not significant)"
        regressed = False
    else:
        direction = "rose" if rule.direction > 0 else "fell"
        verdict = f"REGRESSED: {rule.name} {direction} by {abs(observed):.4g}, beyond {threshold:.4g}"
        regressed = True
    return RuleResult(rule, observed, baseline, threshold, low, high, regressed, verdict)


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`.

    Args:
        baseline: what the baseline is (e.g. its selector).
        candidate: what the candidate is.
        pair_fields: the columns sessions were paired on.
        pairs: paired sessions.
        unpaired_baseline: baseline sessions without a candidate.
        unpaired_candidate: candidate sessions without a baseline.
        metrics: per metric.
        failures: per failure statement.
        rules: per gate rule.
        confidence: coverage of the intervals.
        resamples: bootstrap resamples.
        seed: the bootstrap's seed.
    """

    baseline: str
    candidate: str
    pair_fields: tuple[str, ...]
    pairs: int
    unpaired_baseline: int
    unpaired_candidate: int
    metrics: tuple[MetricComparison, ...]
    failures: tuple[FailureComparison, ...]
    rules: tuple[RuleResult, ...]
    confidence: float
    resamples: int
    seed: int

    @property
    def regressed(self) -> bool:
        """Whether any gate rule fired."""
        return any(result.regressed for result in self.rules)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities become None)."""
        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        return clean({
            "baseline": self.baseline,
            "candidate": self.candidate,
            "pair_fields": list(self.pair_fields),
            "pairs": self.pairs,
            "unpaired_baseline": self.unpaired_baseline,
            "unpaired_candidate": self.unpaired_candidate,
            "confidence": self.confidence,
            "resamples": self.resamples,
            "seed": self.seed,
            "metrics": [{**asdict(m), "relative_change": m.relative_change} for m in self.metrics],
            "failures": [{**asdict(f), "baseline_rate": f.baseline_rate, "candidate_rate": f.candidate_rate,
                          "rate_delta": f.rate_delta} for f in self.failures],
            "rules": [{"rule": r.rule.text, "name": r.rule.name, "observed": r.observed,
                       "baseline": r.baseline, "threshold": r.threshold, "ci_low": r.ci_low,
                       "ci_high": r.ci_high, "regressed": r.regressed, "verdict": r.verdict}
                      for r in self.rules],
            "regressed": self.regressed,
        })


def compare(
    baseline: Sequence[Row],
    candidate: Sequence[Row],
    pair_fields: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    statements: Iterable[FailureStatement] = DEFAULT_STATEMENTS,
    rules: Sequence[GateRule] = (),
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    labels: tuple[str, str] = ("baseline", "candidate"),
) -> Comparison:
    """Compare two sets of result rows session by session.

    Args:
        baseline: the baseline's rows.
        candidate: the candidate's rows.
        pair_fields: columns to pair on (default: :func:`pairing_fields` with no selector).
        metrics: metrics to compare (default: every metric of :data:`abrsim.qoe.METRICS`
            present in the rows); metrics named by ``rules`` are added.
        statements: failure statements to count.
        rules: gate rules to apply.
        seed: seeds the bootstrap.
        resamples: bootstrap resamples.
        confidence: coverage of the intervals.
        labels: how the output names the two sides.

    Raises:
        InputError: if the sides do not pair, a metric is missing, or a rule names
            something that is neither a compared metric nor a statement.
    """
    fields = tuple(pairing_fields() if pair_fields is None else pair_fields)
    base_rows, cand_rows, unpaired_base, unpaired_cand = pair_rows(baseline, candidate, fields)
    statements = tuple(statements)
    names = list(metrics) if metrics else [m for m in METRICS if m in base_rows[0]]
    statement_names = {s.name for s in statements}
    for rule in rules:
        if rule.name not in names and rule.name not in statement_names:
            if rule.name not in base_rows[0] or rule.name in IDENTITY_FIELDS:
                raise InputError(str(UnknownNameError(
                    "metric or failure statement", rule.name,
                    [*(m for m in METRICS if m in base_rows[0]), *statement_names])), field="--fail-on")
            names.append(rule.name)
    for name in names:
        if name not in base_rows[0] or name in IDENTITY_FIELDS:
            raise InputError(str(UnknownNameError("metric", name, [m for m in METRICS if m in base_rows[0]])),
                             field="--metric")
    base_values = np.column_stack([column_values(base_rows, m) for m in names])
    cand_values = np.column_stack([column_values(cand_rows, m) for m in names])
    base_failed = [s.holds(base_rows) for s in statements]
    cand_failed = [s.holds(cand_rows) for s in statements]
    deltas = np.column_stack([cand_values - base_values,
                              *(c.astype(float) - b for b, c in zip(base_failed, cand_failed, strict=True))])
    lows, highs = bootstrap_mean_ci(deltas, seed, resamples, confidence)

    metric_results = []
    for column, name in enumerate(names):
        ok = ~np.isnan(deltas[:, column])
        d = deltas[ok, column]
        if d.size == 0:
            metric_results.append(MetricComparison(name, 0, *([math.nan] * 7)))
            continue
        metric_results.append(MetricComparison(
            name, int(d.size), float(base_values[ok, column].mean()), float(cand_values[ok, column].mean()),
            float(d.mean()), float(np.median(d)), float(lows[column]), float(highs[column]), _wilcoxon_p(d)))
    failure_results = []
    for offset, statement in enumerate(statements):
        column = len(names) + offset
        b, c = base_failed[offset], cand_failed[offset]
        failure_results.append(FailureComparison(
            statement.name, statement.definition, len(base_rows), int(b.sum()), int(c.sum()),
            float(lows[column]), float(highs[column]), _mcnemar_p(b, c)))

    by_name: dict[str, tuple[float, float, float, float]] = {
        m.metric: (m.mean_delta, m.baseline_mean, m.ci_low, m.ci_high) for m in metric_results}
    by_name.update({f.name: (f.rate_delta, f.baseline_rate, f.ci_low, f.ci_high) for f in failure_results})
    rule_results = tuple(_apply_rule(rule, *by_name[rule.name], confidence) for rule in rules)
    return Comparison(labels[0], labels[1], fields, len(base_rows), unpaired_base, unpaired_cand,
                      tuple(metric_results), tuple(failure_results), rule_results, confidence, resamples,
                      seed)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _num(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _percent(value: float, signed: bool = True) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "+inf%" if value > 0 else "-inf%"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2g}"


def format_comparison(comparison: Comparison, fmt: str = "table") -> str:
    """Render a comparison as a readable ``table`` or as ``json``."""
    if fmt == "json":
        return json.dumps(comparison.to_dict(), indent=2) + "\n"
    c = comparison
    level = f"{c.confidence:.0%} CI"
    lines = [
        f"baseline:  {c.baseline}",
        f"candidate: {c.candidate}",
        f"paired on {', '.join(c.pair_fields) or '(nothing)'}: {c.pairs} pairs; unpaired: "
        f"{c.unpaired_baseline} baseline, {c.unpaired_candidate} candidate",
        f"deltas are candidate - baseline; {level} of the mean delta from {c.resamples} bootstrap "
        f"resamples (seed {c.seed})",
        "",
    ]
    cells = [[m.metric, _num(m.baseline_mean), _num(m.candidate_mean), _num(m.mean_delta, True),
              _percent(m.relative_change), _num(m.median_delta, True),
              f"[{_num(m.ci_low, True)}, {_num(m.ci_high, True)}]", _p(m.p_value)] for m in c.metrics]
    lines.append(align_table(["metric", "baseline", "candidate", "mean delta", "change", "median delta",
                              level, "p (Wilcoxon)"], cells, 1))
    if c.failures:
        cells = [[f.name, f.definition, f"{f.baseline_count} ({_percent(f.baseline_rate, False)})",
                  f"{f.candidate_count} ({_percent(f.candidate_rate, False)})",
                  f"{f.rate_delta * 100:+.1f}", f"[{f.ci_low * 100:+.1f}, {f.ci_high * 100:+.1f}]",
                  _p(f.p_value)] for f in c.failures]
        lines += ["", align_table(["failure statement", "definition", "baseline", "candidate", "delta (pp)",
                                   f"{level} (pp)", "p (McNemar)"], cells, 2)]
    if c.rules:
        failed = sum(r.regressed for r in c.rules)
        verdict = (f"REGRESSED ({failed} of {len(c.rules)} rules)" if failed
                   else f"passed ({len(c.rules)} rules)")
        cells = []
        for r in c.rules:
            observed = (_percent(_relative(r.observed, r.baseline)) if r.rule.relative
                        else _num(r.observed, True))
            sign = "+" if r.rule.direction > 0 else "-"
            threshold = f"{sign}{r.rule.amount:.4g}" if not r.rule.relative else f"{sign}{r.rule.amount:.1%}"
            interval = f"[{_num(r.ci_low, True)}, {_num(r.ci_high, True)}]"
            cells.append([r.rule.text, r.verdict, observed, threshold, interval])
        lines += ["", f"gate: {verdict}",
                  align_table(["rule", "verdict", "observed", "threshold", level], cells, 2)]
    return "\n".join(lines) + "\n"
