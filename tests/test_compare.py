from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import wilcoxon

from abrsim.cli import cli
from abrsim.compare import (
    DEFAULT_RESAMPLES,
    bootstrap_mean_ci,
    compare,
    format_comparison,
    load_results,
    load_statements,
    pair_rows,
    pairing_fields,
    parse_rule,
    parse_selector,
    split_rows,
)
from abrsim.errors import InputError
from abrsim.failures import DEFAULT_STATEMENTS
from abrsim.qoe import METRICS
from abrsim.results import RESULT_FIELDS, format_rows

TRACES = 80


def session_rows(policy: str, metrics: dict[str, np.ndarray], params: str = "{}", seed: int = 0,
                 traces: int = TRACES) -> list[dict]:
    """Hand-made result rows: one per trace, harmless metrics unless given."""
    rows = []
    for index in range(traces):
        row = dict.fromkeys(RESULT_FIELDS, 0.0)
        row.update(scenario="synthetic", trace=f"family/t{index:03d}", ladder="hls", model="abrsim",
                   policy=policy, params=params, seed=seed, abrsim_version="0")
        row.update(played_s=600.0, startup_s=0.5, mean_bitrate_bps=3e6, qoe_lin=250.0)
        for name, values in metrics.items():
            row[name] = float(values[index])
        rows.append(row)
    return rows


@pytest.fixture
def baseline_metrics() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    ratio = rng.uniform(0.0, 0.02, size=TRACES)
    return {
        "rebuffer_ratio": ratio,
        "rebuffer_s": ratio * 600 / (1 - ratio),
        "rebuffer_count": (ratio > 0.005).astype(float),
        "startup_s": rng.uniform(0.3, 2.5, size=TRACES),
        "qoe_lin": rng.normal(250, 30, size=TRACES),
        "switch_count": rng.integers(0, 30, size=TRACES).astype(float),
    }


def by_metric(comparison):
    return {m.metric: m for m in comparison.metrics}


def by_rule(comparison):
    return {r.rule.text: r for r in comparison.rules}


# ---------------------------------------------------------------- selectors, rules, pairing


def test_selector_terms():
    rows = [
        {"policy": "bola", "params": '{"gamma_p":4.0,"guard":"u","scale_v":true}', "trace": "hsdpa/a",
         "seed": 3},
        {"policy": "bola", "params": '{"gamma_p":5.0,"guard":"o","scale_v":false}', "trace": "fcc/b",
         "seed": 4},
        {"policy": "throughput", "params": '{"safety_factor":0.9}', "trace": "hsdpa/c", "seed": 3},
    ]

    def chosen(text):
        selector = parse_selector(text)
        return [i for i, r in enumerate(rows) if selector.matches(r)]

    assert chosen("policy=bola") == [0, 1]
    assert chosen("policy=bola,params.gamma_p=4") == [0]
    assert chosen("params.gamma_p=4.0") == [0]
    assert chosen("params.guard=o") == [1]
    assert chosen("params.scale_v=true") == [0]
    assert chosen("params.safety_factor=0.9") == [2]
    assert chosen("trace=hsdpa/*") == [0, 2]
    assert chosen("policy!=bola") == [2]
    assert chosen(" seed = 3 , policy = bola ") == [0]
    assert chosen("") == [0, 1, 2]
    assert parse_selector("policy=bola,params.gamma_p=4").columns == {"policy", "params"}


@pytest.mark.parametrize("text", ["bola", "policy", "=bola", "policy==bola,", "pol icy=bola"])
def test_selector_syntax_errors(text):
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        parse_selector(text, "--baseline")


def test_rules():
    rule = parse_rule("rebuffer_ratio:+5%")
    assert (rule.name, rule.direction, rule.amount, rule.relative) == ("rebuffer_ratio", 1, 0.05, True)
    rule = parse_rule("qoe_lin:-2.5%")
    assert (rule.name, rule.direction, rule.amount, rule.relative) == ("qoe_lin", -1, 0.025, True)
    rule = parse_rule("startup_s:+0.2")
    assert (rule.direction, rule.amount, rule.relative) == (1, 0.2, False)
    assert parse_rule(" slow_start : +1e-2 ").amount == 0.01
    for bad in ("rebuffer_ratio", "rebuffer_ratio:5%", "rebuffer_ratio:+", "rebuffer_ratio>+5%", ":+5"):
        with pytest.raises(InputError, match="expected NAME:\\+AMOUNT"):
            parse_rule(bad)


def test_pairing_fields_follow_the_selectors():
    assert pairing_fields() == ("trace", "ladder", "model", "seed")
    assert pairing_fields(parse_selector("policy=bola"), parse_selector("policy=throughput")) == (
        "trace", "ladder", "model", "seed")
    assert pairing_fields(parse_selector("model=a"), parse_selector("model=b,policy=bola")) == (
        "trace", "ladder", "seed")
    assert pairing_fields(parse_selector("model=a"), parse_selector("policy=bola")) == (
        "trace", "ladder", "seed")
    # a term both sides share only filters
    shared = pairing_fields(parse_selector("policy=bola,trace=3g/*"), parse_selector("trace=3g/*,policy=x"))
    assert shared == ("trace", "ladder", "model", "seed")


def test_pairing_counts_unpaired_and_refuses_ambiguity(baseline_metrics):
    base = session_rows("a", baseline_metrics)
    cand = session_rows("b", baseline_metrics)[5:] + session_rows("b", baseline_metrics, seed=9)[:3]
    paired_base, paired_cand, unpaired_base, unpaired_cand = pair_rows(base, cand, pairing_fields())
    assert len(paired_base) == TRACES - 5
    assert [r["trace"] for r in paired_base] == [r["trace"] for r in paired_cand]
    assert (unpaired_base, unpaired_cand) == (5, 3)
    with pytest.raises(InputError, match="share the pairing key"):
        pair_rows(base + base[:1], cand, pairing_fields())
    with pytest.raises(InputError, match="no baseline session has a candidate"):
        pair_rows(base, session_rows("b", baseline_metrics, seed=1), pairing_fields())


def test_split_rows_checks_selectors(baseline_metrics):
    rows = session_rows("bola", baseline_metrics) + session_rows("throughput", baseline_metrics)
    base, cand = split_rows(rows, parse_selector("policy=bola"), parse_selector("policy=throughput"))
    assert len(base) == len(cand) == TRACES
    with pytest.raises(InputError, match="match both selectors"):
        split_rows(rows, parse_selector("policy=bola"), parse_selector("seed=0"))
    with pytest.raises(InputError, match="selects no rows"):
        split_rows(rows, parse_selector("policy=bola"), parse_selector("policy=robustmpc"))
    with pytest.raises(InputError, match="unknown results column 'polcy'"):
        split_rows(rows, parse_selector("polcy=bola"), parse_selector("policy=throughput"))


# ---------------------------------------------------------------- statistics


def test_bootstrap_ci_coverage():
    """A 95 % percentile interval of the mean covers the true mean about 95 % of the time."""
    rng = np.random.default_rng(2024)
    datasets, n, true_mean = 400, 60, 1.0
    samples = rng.exponential(true_mean, size=(datasets, n))  # skewed, like rebuffer times
    covered = 0
    widths = []
    for index, sample in enumerate(samples):
        low, high = bootstrap_mean_ci(sample, seed=index, resamples=1000)
        covered += low <= true_mean <= high
        widths.append(high - low)
    coverage = covered / datasets
    assert 0.90 <= coverage <= 0.98, coverage
    # the width is close to the normal-theory 2 * 1.96 * sd / sqrt(n)
    assert np.mean(widths) == pytest.approx(2 * 1.96 * true_mean / math.sqrt(n), rel=0.15)


def test_bootstrap_is_seeded_joint_and_columnwise():
    rng = np.random.default_rng(5)
    data = rng.normal(size=(200, 3))
    data[::7, 2] = np.nan
    low, high = bootstrap_mean_ci(data, seed=1)
    assert low.shape == high.shape == (3,)
    again = bootstrap_mean_ci(data, seed=1)
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])
    alone = bootstrap_mean_ci(data[:, 0], seed=1)
    assert alone == (low[0], high[0])  # a column's interval does not depend on the others
    assert np.all(low < np.nanmean(data, axis=0)) and np.all(np.nanmean(data, axis=0) < high)
    assert bootstrap_mean_ci(np.zeros(30)) == (0.0, 0.0)
    assert all(math.isnan(v) for v in bootstrap_mean_ci(np.full(10, np.nan)))
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_mean_ci(data, resamples=0)


def test_bootstrap_memory_is_bounded_for_many_sessions():
    data = np.random.default_rng(0).normal(size=200_000)
    low, high = bootstrap_mean_ci(data, resamples=200)
    assert low < data.mean() < high


# ---------------------------------------------------------------- the comparison and the gate


def test_identical_inputs_keep_the_gate_silent(baseline_metrics):
    base = session_rows("bola", baseline_metrics)
    cand = session_rows("throughput", baseline_metrics)
    rules = [parse_rule(r) for r in ("rebuffer_ratio:+5%", "qoe_lin:-0%", "slow_start:+0", "startup_s:+0")]
    result = compare(base, cand, rules=rules)
    assert result.pairs == TRACES
    assert not result.regressed
    for metric in result.metrics:
        assert metric.mean_delta == 0 and metric.median_delta == 0
        assert metric.ci_low <= 0 <= metric.ci_high
        assert metric.p_value == 1.0
    for failure in result.failures:
        assert failure.baseline_count == failure.candidate_count
        assert failure.ci_low <= 0 <= failure.ci_high
    assert [m.metric for m in result.metrics] == list(METRICS)
    assert all(r.verdict.startswith("ok") for r in result.rules)


def test_injected_regression_fires_the_gate(baseline_metrics):
    rng = np.random.default_rng(12)
    worse = dict(baseline_metrics)
    worse["rebuffer_ratio"] = baseline_metrics["rebuffer_ratio"] * 1.3 + rng.uniform(0, 1e-4, TRACES)
    worse["startup_s"] = baseline_metrics["startup_s"] + 0.6  # pushes sessions over 2 s
    base = session_rows("bola", baseline_metrics)
    cand = session_rows("bola", worse, params='{"gamma_p":1.0}')
    rules = [parse_rule(r) for r in ("rebuffer_ratio:+5%", "qoe_lin:-2%", "slow_start:+0.05",
                                     "rebuffer_ratio:+50%")]
    result = compare(base, cand, rules=rules, seed=3)
    assert result.regressed
    verdicts = by_rule(result)
    assert verdicts["rebuffer_ratio:+5%"].regressed
    assert verdicts["slow_start:+0.05"].regressed
    assert not verdicts["qoe_lin:-2%"].regressed  # unchanged
    assert not verdicts["rebuffer_ratio:+50%"].regressed  # a 30 % rise is within 50 %
    ratio = by_metric(result)["rebuffer_ratio"]
    assert ratio.relative_change == pytest.approx(0.3, abs=0.02)
    assert ratio.ci_low > 0
    assert ratio.p_value < 1e-6
    expected_delta = worse["rebuffer_ratio"] - baseline_metrics["rebuffer_ratio"]
    assert ratio.mean_delta == pytest.approx(expected_delta.mean())
    assert ratio.median_delta == pytest.approx(np.median(expected_delta))
    assert ratio.p_value == pytest.approx(wilcoxon(expected_delta).pvalue)
    slow = {f.name: f for f in result.failures}["slow_start"]
    assert slow.baseline_count == int(np.sum(baseline_metrics["startup_s"] > 2))
    assert slow.candidate_count == int(np.sum(worse["startup_s"] > 2))
    assert slow.rate_delta > 0.05

    text = format_comparison(result)
    assert "gate: REGRESSED (2 of 4 rules)" in text
    assert "REGRESSED: rebuffer_ratio rose" in text
    assert "REGRESSED: slow_start rose" in text
    doc = json.loads(format_comparison(result, "json"))
    assert doc["regressed"] is True
    assert [r["regressed"] for r in doc["rules"]] == [True, False, True, False]


def test_a_decrease_rule_and_noise_that_is_not_significant(baseline_metrics):
    rng = np.random.default_rng(4)
    lower = dict(baseline_metrics)
    lower["qoe_lin"] = baseline_metrics["qoe_lin"] * 0.9
    result = compare(session_rows("a", baseline_metrics), session_rows("b", lower),
                     rules=[parse_rule("qoe_lin:-2%"), parse_rule("qoe_lin:+2%")])
    assert [r.regressed for r in result.rules] == [True, False]

    noisy = dict(baseline_metrics)
    noisy["startup_s"] = baseline_metrics["startup_s"] + rng.normal(0, 0.5, TRACES)
    result = compare(session_rows("a", baseline_metrics), session_rows("b", noisy),
                     rules=[parse_rule("startup_s:+0")])
    startup = by_metric(result)["startup_s"]
    assert startup.ci_low < 0 < startup.ci_high
    assert not result.regressed
    assert "not significant" in result.rules[0].verdict or "within" in result.rules[0].verdict


def test_metric_selection_and_unknown_names(baseline_metrics):
    base, cand = session_rows("a", baseline_metrics), session_rows("b", baseline_metrics)
    result = compare(base, cand, metrics=["startup_s"], rules=[parse_rule("rebuffer_s:+1")])
    assert [m.metric for m in result.metrics] == ["startup_s", "rebuffer_s"]
    with pytest.raises(InputError, match="unknown metric 'rebuffering'"):
        compare(base, cand, metrics=["rebuffering"])
    with pytest.raises(InputError, match="unknown metric or failure statement 'stalls'"):
        compare(base, cand, rules=[parse_rule("stalls:+1")])
    with pytest.raises(InputError, match="has no values"):
        compare(base, [dict(r, mean_quality=math.nan) for r in cand],
                rules=[parse_rule("mean_quality:-1")])


def test_nan_metrics_are_reported_not_fatal(baseline_metrics):
    base = [dict(r, mean_quality=math.nan) for r in session_rows("a", baseline_metrics)]
    cand = [dict(r, mean_quality=math.nan) for r in session_rows("b", baseline_metrics)]
    quality = by_metric(compare(base, cand))["mean_quality"]
    assert quality.pairs == 0 and math.isnan(quality.mean_delta)
    assert "n/a" in format_comparison(compare(base, cand))


# ---------------------------------------------------------------- files and the command line


@pytest.fixture
def results_csv(tmp_path, baseline_metrics):
    rng = np.random.default_rng(12)
    worse = dict(baseline_metrics)
    worse["rebuffer_ratio"] = baseline_metrics["rebuffer_ratio"] * 1.4 + rng.uniform(0, 1e-4, TRACES)
    rows = (session_rows("bola", baseline_metrics) + session_rows("throughput", baseline_metrics)
            + session_rows("bola", worse, params='{"gamma_p":1.0}'))
    path = tmp_path / "results.csv"
    path.write_text(format_rows(rows, "csv"))
    return path


def test_load_results_reads_csv_exactly(results_csv, baseline_metrics):
    rows = load_results(results_csv)
    assert len(rows) == 3 * TRACES
    assert list(rows[0]) == list(RESULT_FIELDS)
    assert rows[0]["seed"] == 0 and isinstance(rows[0]["seed"], int)
    assert [r["rebuffer_ratio"] for r in rows[:TRACES]] == baseline_metrics["rebuffer_ratio"].tolist()
    assert load_results(results_csv.parent) == rows  # a folder with results.csv
    with pytest.raises(InputError, match="file not found"):
        load_results(results_csv.parent / "nothing.csv")


def test_load_statements_from_a_sweep_folder(tmp_path):
    assert load_statements(None) == DEFAULT_STATEMENTS
    assert load_statements(tmp_path) == DEFAULT_STATEMENTS
    (tmp_path / "spec.toml").write_text('name = "x"\n[failures]\nswitch_storm = 9\nany_rebuffer = false\n')
    statements = {s.name: s for s in load_statements(tmp_path / "results.csv")}
    assert statements["switch_storm"].threshold == 9
    assert "any_rebuffer" not in statements


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_gate_fires_with_exit_1(results_csv):
    result = invoke("compare", str(results_csv), "--baseline", "policy=bola,params.gamma_p=*",
                    "--candidate", "params.gamma_p=1", "--fail-on", "rebuffer_ratio:+5%")
    assert result.exit_code == 2  # the baseline selector also matches the candidate
    assert "match both selectors" in result.output
    result = invoke("compare", str(results_csv), "--baseline", "policy=throughput",
                    "--candidate", "policy=bola,params.gamma_p=1", "--fail-on", "rebuffer_ratio:+5%",
                    "--fail-on", "qoe_lin:-5%")
    assert result.exit_code == 1, result.output
    assert "gate: REGRESSED (1 of 2 rules)" in result.output
    assert "rebuffer_ratio:+5%" in result.output


def test_cli_gate_silent_on_identical_inputs(results_csv):
    result = invoke("compare", str(results_csv), "--baseline", "policy=bola,params={}",
                    "--candidate", "policy=throughput", "--fail-on", "rebuffer_ratio:+0%",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["regressed"] is False
    assert doc["pairs"] == TRACES
    assert doc["pair_fields"] == ["trace", "ladder", "model", "seed"]
    assert doc["resamples"] == DEFAULT_RESAMPLES
    for metric in doc["metrics"]:
        if metric["mean_delta"] is not None:
            assert metric["ci_low"] <= 0 <= metric["ci_high"]


def test_cli_two_results_files(results_csv, tmp_path):
    rows = load_results(results_csv)
    candidate = tmp_path / "candidate.csv"
    worse = [dict(r, startup_s=r["startup_s"] + 1.0, abrsim_version="1")
             for r in rows if r["policy"] == "bola"]
    candidate.write_text(format_rows(worse, "csv"))
    result = invoke("compare", str(results_csv), str(candidate), "--baseline", "policy=bola,params={}",
                    "--candidate", "params={}", "--metric", "startup_s", "--fail-on", "startup_s:+0.5")
    assert result.exit_code == 1, result.output
    assert f"in {candidate}" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--baseline", "policy=bola"], "give --baseline and --candidate"),
    (["--baseline", "policy", "--candidate", "policy=throughput"], "expected KEY=VALUE"),
    (["--baseline", "policy=bola", "--candidate", "policy=throughput", "--fail-on", "x"],
     "expected NAME:+AMOUNT"),
    (["--baseline", "policy=bola,params={}", "--candidate", "policy=throughput", "--metric", "nope"],
     "unknown metric 'nope'"),
])
def test_cli_errors_exit_2(results_csv, args, message):
    result = invoke("compare", str(results_csv), *args)
    assert result.exit_code == 2
    assert message in result.output
