from __future__ import annotations

import csv
import html.parser
import json
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from abrsim import __version__, report
from abrsim.cli import cli
from abrsim.engine.fast import run_batch
from abrsim.errors import InputError
from abrsim.failures import DEFAULT_STATEMENTS, FailureStatement, evaluate
from abrsim.model import PlayerModel, get_preset
from abrsim.qoe import METRICS
from abrsim.results import IDENTITY_FIELDS, RESULT_FIELDS, format_rows
from abrsim.trace import Trace

POLICIES = ("bola", "throughput", "mpc")


def synthetic_rows(rng: np.random.Generator, sessions: int = 40, policies=POLICIES, cdn: bool = False):
    """Plausible result rows for every field of RESULT_FIELDS (unknown metrics get noise)."""
    rows = []
    for p_index, policy in enumerate(policies):
        for index in range(sessions):
            row: dict = {}
            for name in RESULT_FIELDS:
                if name == "seed":
                    row[name] = index % 4
                elif name == "params":
                    row[name] = '{"gamma_p":5.0}' if policy == "bola" else "{}"  # canonical, as abrsim writes
                elif name == "abrsim_version":
                    row[name] = __version__
                elif name in IDENTITY_FIELDS:
                    row[name] = {"trace": f"trace_{index:03d}", "policy": policy}.get(name, "synthetic")
                else:
                    row[name] = float(rng.uniform(0, 10))
            stalled = rng.random() < 0.3 + 0.1 * p_index
            row.update(
                startup_s=float(rng.lognormal(0.0, 0.6)),
                rebuffer_count=int(rng.integers(1, 5)) if stalled else 0,
                rebuffer_s=float(rng.exponential(4.0)) if stalled else 0.0,
                played_s=600.0,
                mean_bitrate_bps=float(rng.uniform(0.5e6, 4e6) * (1 + 0.2 * p_index)),
                switch_count=int(rng.integers(0, 80)),
                abandoned=0,
                wasted_bits=0.0,
            )
            row["rebuffer_ratio"] = row["rebuffer_s"] / (row["played_s"] + row["rebuffer_s"])
            for name in ("mean_quality", "mean_quality_change", "below_quality_floor_s"):
                if name in row:
                    row[name] = float("nan")  # no quality table: all NaN
            if cdn:
                row.update(
                    link_utilisation=float(rng.uniform(0.5, 1.0)),
                    jain_fairness=float(rng.uniform(0.6, 1.0)),
                    edge_hit_ratio=float(rng.uniform(0.4, 1.0)),
                    origin_bits=float(rng.uniform(0, 5e8)),
                    tier_of_first_segment=str(rng.choice(["edge", "exchange", "origin"], p=[0.7, 0.2, 0.1])),
                )
            rows.append(row)
    return rows


def write_csv(rows, path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def compare_doc(statements=DEFAULT_STATEMENTS) -> dict:
    """A comparison as `abrsim compare --format json` writes it."""
    from abrsim.compare import compare

    rng = np.random.default_rng(3)
    rows = synthetic_rows(rng, sessions=30, policies=("bola", "throughput"))
    base = [r for r in rows if r["policy"] == "bola"]
    cand = [r for r in rows if r["policy"] == "throughput"]
    comparison = compare(base, cand, statements=statements, resamples=200, labels=("bola", "throughput"))
    return json.loads(json.dumps(comparison.to_dict()))


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """A sweep-like folder with every optional input the report reads."""
    folder = tmp_path_factory.mktemp("sweep")
    rows = synthetic_rows(np.random.default_rng(1), cdn=True)
    write_csv(rows, folder / "results.csv")
    (folder / "spec.toml").write_text('name = "synthetic"\n[failures]\nswitch_storm = 6\n')
    (folder / "meta.json").write_text(json.dumps({"scenario": "synthetic", "spec_sha256": "ab12" * 16,
                                                  "abrsim_version": __version__, "sessions": len(rows)}))
    (folder / "compare.json").write_text(json.dumps(compare_doc()))
    time_s = np.arange(0.0, 600.0, 10.0)
    with (folder / "tier_series.csv").open("w") as handle:
        handle.write("time_s,tier,hit_ratio\n")
        for tier, base in (("edge", 0.8), ("exchange", 0.5), ("origin", 1.0)):
            for t in time_s:
                drop = 0.5 if tier == "edge" and 200 <= t < 260 else 0.0
                handle.write(f"{t},{tier},{base - drop}\n")
    (folder / "outages.csv").write_text("start_s,end_s,tier\n200,260,edge\n")
    return folder


@pytest.fixture(scope="module")
def built_report(sweep_dir, tmp_path_factory) -> Path:
    return report.write_report(sweep_dir, tmp_path_factory.mktemp("report") / "out")


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag == "script":
            self.scripts += 1


def parse_page(index: Path) -> _Links:
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


# --------------------------------------------------------------------------------------------
# The report


def test_report_references_every_figure_file(built_report):
    page = parse_page(built_report)
    figures = sorted(p.name for p in (built_report.parent / "figures").iterdir())
    referenced = {Path(src).name for src in page.images + page.links if src.startswith("figures/")}
    assert figures, "no figure written"
    assert set(figures) == referenced
    for src in page.images + [link for link in page.links if link.startswith("figures/")]:
        assert (built_report.parent / src).is_file(), src
    assert all(src.endswith(".png") for src in page.images)
    stems = {Path(name).stem for name in figures}
    assert stems == {"cdf_core", "cdf_more", "tradeoff", "failures", "compare", "compare_failures", "links",
                     "tier_hit_ratio", "tier_qoe", "cdf_cdn"}
    assert {f"{stem}.{ext}" for stem in stems for ext in ("png", "svg")} == set(figures)
    assert page.scripts == 0


def test_report_header_says_what_was_run(built_report, sweep_dir):
    text = built_report.read_text(encoding="utf-8")
    assert "ab12" * 16 in text  # spec hash from meta.json
    assert "0, 1, 2, 3" in text  # the seeds
    assert __version__ in text
    assert str(sweep_dir) in text
    assert "[failures]" in text  # spec.toml shown
    # the spec's [failures] table moved switch_storm to 6 per minute
    assert "switch_count per minute &gt; 6" in text
    for section in ("Per-algorithm summary", "Failure statements", "Comparison", "Shared links", "CDN"):
        assert f">{section}</h2>" in text


def test_figure_files_are_valid(built_report):
    for path in (built_report.parent / "figures").iterdir():
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert b"<svg" in data[:2000] and data.rstrip().endswith(b"</svg>")


def test_report_without_optional_data_has_only_core_sections(tmp_path):
    rows = synthetic_rows(np.random.default_rng(2), sessions=15, policies=("bola",))
    source = tmp_path / "results.json"
    source.write_text(format_rows(rows, "json"))
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "compare.png").write_bytes(b"left by an earlier report")
    index = report.write_report(source, out)
    stems = {p.stem for p in (out / "figures").iterdir()}
    assert stems == {"cdf_core", "cdf_more", "tradeoff", "failures"}  # and the stale figure is gone
    text = index.read_text(encoding="utf-8")
    assert ">CDN</h2>" not in text and ">Comparison</h2>" not in text
    assert "Mean quality" not in text  # all NaN: no figure, no constant note


def test_results_formats_read_the_same(tmp_path):
    rows = synthetic_rows(np.random.default_rng(4), sessions=5)
    csv_path = tmp_path / "r.csv"
    csv_path.write_text(format_rows(rows, "csv"))
    json_path = tmp_path / "r.json"
    json_path.write_text(format_rows(rows, "json"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet_path = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet_path)
    loaded = [report.load_results(p).columns for p in (csv_path, json_path, parquet_path)]
    for columns in loaded[1:]:
        assert set(columns) == set(loaded[0])
        for name, values in loaded[0].items():
            if values.dtype == object:
                assert list(columns[name]) == list(values), name
            else:
                np.testing.assert_allclose(columns[name], values, equal_nan=True, err_msg=name)
    assert "switches_per_min" in loaded[0]


@pytest.mark.parametrize(("content", "name", "message"), [
    ("", "empty.csv", "no result rows"),
    ("trace,startup_s\nx,1\n", "nopolicy.csv", "no 'policy' column"),
    ("{not json", "bad.json", "not valid JSON"),
    ('{"a": 1}', "obj.json", "expected a list of result objects"),
    ("x", "results.txt", "expected .csv, .json or .parquet"),
])
def test_bad_results_files_name_the_problem(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        report.load_results(path)
    assert name in str(info.value)


def test_failure_counts_follow_abrsim_failures():
    rows = synthetic_rows(np.random.default_rng(5), sessions=25)
    columns = report.ResultSet.from_rows(rows).columns
    counts = report.evaluate_failures(columns)
    expected = evaluate(rows, DEFAULT_STATEMENTS)
    for count in counts:
        mask = np.array([r["policy"] == count.label for r in rows])
        assert count.failed == int(expected[count.statement.name][mask].sum())
        assert count.sessions == int(mask.sum())
        low, high = count.interval
        assert 0.0 <= low <= count.rate <= high <= 1.0
    # statements on a metric the table lacks are skipped, not an error
    assert report.evaluate_failures(columns, [FailureStatement("x", "no_such_metric", 1.0)]) == []


def test_algorithm_labels_show_the_parameters_that_differ():
    columns = {
        "policy": np.array(["bola", "bola", "throughput"], dtype=object),
        "params": np.array(['{"gamma_p":4.0,"guard":"u"}', '{"gamma_p":5.0,"guard":"u"}',
                            '{"safety_factor":0.9}'], dtype=object),
    }
    assert report.algorithm_labels(columns).tolist() == ["bola gamma_p=4", "bola gamma_p=5", "throughput"]


def test_algorithm_colours_are_fixed_and_distinct():
    names = ["bola", "throughput", "mpc", "robustmpc", "bba", "dynamic", "l2a", "lolp", "pensieve",
             "festive", "bola_e", "fastmpc"]
    styles = report.algorithm_styles(names)
    # every name keeps its colour and line style whatever else a report holds, unless two collide
    assert report.algorithm_styles(reversed(names)) == styles
    assert report.algorithm_styles(["bola"])["bola"] == styles["bola"]
    pairs = {(s.colour, s.linestyle) for s in styles.values()}
    assert len(pairs) == len(names)
    assert {s.colour for s in list(styles.values())} <= set(report.PALETTE)
    assert styles["bola"].colour == report.PALETTE[zlib.crc32(b"bola") % len(report.PALETTE)]
    assert report.STALL_COLOUR not in report.PALETTE


# --------------------------------------------------------------------------------------------
# Figure functions on their own


def test_every_figure_type_renders(tmp_path, tiny_trace, tiny_ladder, sweep_dir):
    results = report.load_results(sweep_dir)
    columns = results.columns
    logs = [run_batch([tiny_trace], tiny_ladder, name).session_log(0) for name in ("bola", "throughput")]
    summary = report.parse_compare(results.compare)
    figures = {
        "cdf": report.cdf_figure(columns),
        "tradeoff": report.tradeoff_figure(columns),
        "failures": report.failure_figure(report.evaluate_failures(columns)),
        "compare": report.compare_figure(summary),
        "compare_failures": report.compare_failures_figure(summary),
        "links": report.cdf_figure(columns, report.LINK_METRICS),
        "hit_ratio": report.tier_hit_ratio_figure(results.tier_series, results.outages),
        "tier_qoe": report.tier_qoe_figure(columns),
        "timeline": report.session_timeline_figure(logs, tiny_trace, tiny_ladder, max_buffer_s=25.0),
        "timeline_stacked": report.session_timeline_figure(logs, tiny_trace, tiny_ladder, layout="stacked"),
    }
    for name, figure in figures.items():
        # SVG output of every type is checked through the report; one timeline SVG here
        for suffix in (".png", ".svg") if name == "timeline" else (".png",):
            path = report.save_figure(figure, tmp_path / f"{name}{suffix}")
            assert path.stat().st_size > 1000, name
        for ax in figure.axes:
            if ax.get_visible() and any(t.get_visible() and t.get_text() for t in ax.get_xticklabels()):
                assert ax.get_xlabel(), f"{name}: an x axis without a label"
            if ax.get_visible() and any(t.get_visible() and t.get_text() for t in ax.get_yticklabels()):
                assert ax.get_ylabel() or name in ("failures", "compare_failures"), \
                    f"{name}: a y axis without a label"
    # one colour per algorithm across figures
    styles = report.algorithm_styles(report.algorithm_labels(columns).tolist())
    legend_colours = {text.get_text().split(" (")[0]: handle.get_color()
                      for text, handle in zip(figures["cdf"].legends[0].texts,
                                              figures["cdf"].legends[0].legend_handles)}
    assert legend_colours == {label: style.colour for label, style in styles.items()}


def test_saved_figures_are_reproducible(tmp_path):
    columns = report.ResultSet.from_rows(synthetic_rows(np.random.default_rng(6), sessions=8)).columns
    first = report.save_figure(report.cdf_figure(columns), tmp_path / "a.svg").read_bytes()
    second = report.save_figure(report.cdf_figure(columns), tmp_path / "b.svg").read_bytes()
    assert first == second


def test_save_figure_rejects_unknown_formats(tmp_path):
    columns = report.ResultSet.from_rows(synthetic_rows(np.random.default_rng(6), sessions=3)).columns
    with pytest.raises(InputError, match="expected .png, .svg or .pdf"):
        report.save_figure(report.cdf_figure(columns), tmp_path / "a.jpg")


def test_compare_json_of_the_compare_command_is_read():
    summary = report.parse_compare(compare_doc())
    assert (summary.baseline, summary.candidate) == ("bola", "throughput")
    assert {d.name for d in summary.metrics} == {m for m in METRICS if m in RESULT_FIELDS}
    assert [d.name for d in summary.failures] == [s.name for s in DEFAULT_STATEMENTS]
    startup = next(d for d in summary.metrics if d.name == "startup_s")
    assert startup.ci_low <= startup.delta <= startup.ci_high
    assert startup.pairs == 30
    with pytest.raises(InputError, match="no 'metrics' list"):
        report.parse_compare({"baseline": "a"})


# --------------------------------------------------------------------------------------------
# Session timelines


def _check_curve(log, segment_duration_s):
    time_s, buffer_s = report.buffer_curve(log, segment_duration_s)
    assert np.all(np.diff(time_s) >= 0)
    done = ~log.abandoned
    # right after each completed download the curve shows the logged buffer level ...
    after = [buffer_s[np.flatnonzero(time_s == t)[-1]] for t in log.done_s[done]]
    np.testing.assert_allclose(after, log.buffer_after_s[done], atol=1e-9)
    # ... and at each request the level the player saw
    before = [np.interp(t, time_s[np.flatnonzero(time_s == t)], buffer_s[np.flatnonzero(time_s == t)])
              if t in time_s else np.interp(t, time_s, buffer_s) for t in log.request_s]
    np.testing.assert_allclose(before, log.buffer_before_s, atol=1e-9)
    assert buffer_s[-1] == pytest.approx(0.0, abs=1e-9)
    stalls = report.stall_intervals(log)
    assert stalls.shape[0] == log.rebuffer_count
    assert float(np.sum(stalls[:, 1] - stalls[:, 0])) == pytest.approx(float(log.stall_s.sum()))


@pytest.mark.parametrize("model", [
    PlayerModel(),
    PlayerModel(max_buffer_s=12.0, resume_threshold_s=8.0, startup_threshold_s=6.0),
    get_preset("sabre"),
])
@pytest.mark.parametrize("policy", ["bola", "throughput"])
def test_buffer_curve_reproduces_the_log(model, policy, tiny_ladder):
    bursty = Trace([0.0, 8.0, 20.0, 30.0, 55.0], [4e6, 0.15e6, 3e6, 0.2e6, 6e6], 70.0, name="bursty")
    log = run_batch([bursty], tiny_ladder, policy, model).session_log(0)
    assert log.rebuffer_count > 0 or policy == "throughput"
    _check_curve(log, tiny_ladder.segment_duration_s)


def test_timeline_checks_its_inputs(tiny_trace, tiny_ladder):
    log = run_batch([tiny_trace], tiny_ladder, "bola").session_log(0)
    other = Trace([0.0], [1e6], 10.0, name="other")
    with pytest.raises(ValueError, match="plotted against trace 'other'"):
        report.session_timeline_figure([log], other, tiny_ladder)
    with pytest.raises(ValueError, match="no session logs"):
        report.session_timeline_figure([], tiny_trace, tiny_ladder)
    with pytest.raises(ValueError, match="layout"):
        report.session_timeline_figure([log], tiny_trace, tiny_ladder, layout="grid")


# --------------------------------------------------------------------------------------------
# Command line


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "link.csv"
    path.write_text("# duration_s=60\ntime_s,bandwidth_mbps\n0,3.0\n20,0.4\n40,5\n")
    return path


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_cli_run_plot(tmp_path, trace_file, suffix):
    plot = tmp_path / "new" / f"timeline{suffix}"  # its folder is made, as --out's is
    result = CliRunner().invoke(cli, ["run", "--trace", str(trace_file), "--abr", "bola", "--abr",
                                      "throughput", "--param", "gamma_p=4", "--format", "csv",
                                      "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert plot.stat().st_size > 1000
    assert f"wrote {plot}" in result.stderr
    assert result.stdout.startswith("scenario,")


def test_cli_run_plot_rejects_a_bad_file_before_simulating(tmp_path, trace_file):
    result = CliRunner().invoke(cli, ["run", "--trace", str(trace_file), "--plot", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("got '.jpg'; expected .png, .svg, .pdf")
    assert result.stdout == ""
    (tmp_path / "a-file").write_text("")
    result = CliRunner().invoke(cli, ["run", "--trace", str(trace_file), "--plot",
                                      str(tmp_path / "a-file" / "x.png")])
    assert result.exit_code == 2
    assert "cannot write the output here" in result.stderr and result.stdout == ""


def test_cli_report_from_run_output(tmp_path, trace_file):
    runner = CliRunner()
    results = tmp_path / "results.csv"
    result = runner.invoke(cli, ["run", "--trace", str(trace_file), "--trace", str(tmp_path),
                                 "--format", "csv", "--out", str(results)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "report"
    result = runner.invoke(cli, ["report", str(results), "-o", str(out), "--title", "Two & a half"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr and "index.html" in result.stderr
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "<title>Two &amp; a half</title>" in text


def test_cli_report_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "missing.csv: no such file or folder" in result.stderr


# --------------------------------------------------------------------------------------------
# A real browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_loads_in_a_headless_browser(built_report, tmp_path):
    """Open the report in Debian's chromium and count the images that loaded (PNG and SVG)."""
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium with apt-get when it can; "
                    "here it could not)")
    folder = built_report.parent.resolve()
    page = parse_page(built_report)
    svgs = list(dict.fromkeys(link for link in page.links if link.endswith(".svg")))
    # A test-only copy of the page: the report needs no JavaScript, the check does. The SVGs,
    # which the report links to, are added as images too, so that they are decoded as well.
    probe = folder / "_probe.html"
    extra = "".join(f'<img class="probe" src="{src}">' for src in svgs)
    script = (
        "<script>window.addEventListener('load', function () {"
        "var all = Array.from(document.images);"
        "var ok = all.filter(function (i) { return i.complete && i.naturalWidth > 0; });"
        "document.body.setAttribute('data-images', all.length);"
        "document.body.setAttribute('data-loaded', ok.length);"
        "document.body.setAttribute('data-failed', all.filter(function (i) {"
        "  return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.src; }).join(' '));"
        "});</script>")
    probe.write_text(built_report.read_text(encoding="utf-8").replace("</body>", extra + script + "</body>"),
                     encoding="utf-8")
    try:
        completed = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
             "--allow-file-access-from-files", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)},
        )
    finally:
        probe.unlink()
    assert completed.returncode == 0, completed.stderr[-2000:]
    dom = completed.stdout
    assert "data-images=" in dom, completed.stderr[-2000:]
    total = int(dom.split('data-images="')[1].split('"')[0])
    loaded = int(dom.split('data-loaded="')[1].split('"')[0])
    failed = dom.split('data-failed="')[1].split('"')[0]
    assert total == len(page.images) + len(svgs) > 0
    assert loaded == total, f"did not load: {failed}"


def test_select_keeps_the_matching_rows(sweep_dir):
    results = report.load_results(sweep_dir)
    chosen = results.select("policy!=mpc,seed=1")
    assert set(chosen.columns["policy"]) == {"bola", "throughput"}
    assert set(chosen.columns["seed"].tolist()) == {1.0}
    assert chosen.sessions == 20 and chosen.selection == "policy!=mpc,seed=1"
    assert chosen.select("params.gamma_p=5").sessions == 10
    with pytest.raises(InputError, match="unknown results column 'nope'"):
        results.select("nope=1")
    with pytest.raises(InputError, match="selects no rows"):
        results.select("policy=zzz")
