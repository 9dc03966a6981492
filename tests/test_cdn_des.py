"""The CDN in the discrete-event engine: routing, failover, conservation, equivalence, bad input."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from click.testing import CliRunner

from abrsim.cli import cli
from abrsim.engine.des import CDN_FIELDS, DES_FIELDS, compare_fault, simulate
from abrsim.scenario import parse_scenario

PLAYERS = """
[[players]]
name = "bola"
abr = "bola"
count = {count}
arrivals = {{ process = "poisson", rate_per_s = 2.0 }}
watch_s = 30
{access}
"""

THREE_TIERS = """
[cdn]
titles = 5
alpha = 0.8
bin_s = 10

[[cdn.tiers]]
name = "edge"
capacity_bytes = {edge_bytes}
rtt_s = 0.005
serving_bandwidth_bps = 400e6
upstream_bandwidth_bps = 100e6

[[cdn.tiers]]
name = "exchange"
capacity_bytes = 1e10
rtt_s = 0.02
serving_bandwidth_bps = 1e9
upstream_bandwidth_bps = 300e6

[[cdn.tiers]]
name = "origin"
rtt_s = 0.05
"""


def scenario_text(count: int = 30, cdn: str = "", access: str = "", head: str = "") -> str:
    top = head or ('name = "t"\nseed = 5\nladder = "hls"\n[bottleneck]\nbandwidth_bps = 100e6\n'
                   "[setup]\nrtt_s = 0.02\n")
    return top + PLAYERS.format(count=count, access=access) + cdn


def three_tier(edge_bytes: float = 5e8, outages: str = "", count: int = 30) -> str:
    return scenario_text(count, THREE_TIERS.format(edge_bytes=edge_bytes) + outages)


def downloaded_bits(run) -> float:
    return float(sum(np.sum(s.log.downloaded_bits) for s in run.sessions))


def test_cdn_rows_and_conservation():
    run = simulate(parse_scenario(three_tier()))
    rows = run.rows()
    assert list(rows[0]) == list(DES_FIELDS + CDN_FIELDS)
    # Bytes served by all tiers = bytes the players downloaded, per request and in total.
    assert np.sum(run.cdn.served_bits) == pytest.approx(downloaded_bits(run), rel=1e-12)
    requests = run.cdn_requests()
    assert len(requests) == sum(s.log.download_count for s in run.sessions)
    assert sum(r["bytes"] for r in requests) * 8 == pytest.approx(downloaded_bits(run), rel=1e-12)
    assert sum(r["origin_bits"] for r in rows) == pytest.approx(run.cdn.served_bits[2], rel=1e-12)
    # Each serving link carried every segment that went through its tier, each upstream link
    # every segment its tier missed (no download was abandoned here, so nothing was cut short).
    assert not any(s.log.abandoned.any() for s in run.sessions)
    for tier, link in enumerate(run.cdn.serving):
        if link is not None:
            through = sum(r[4] for r in run.cdn.requests if tier in r[5])
            assert link.delivered_bits == pytest.approx(through, rel=1e-9)
    for tier, link in enumerate(run.cdn.upstream):
        if link is not None:
            missed = sum(r[4] for r in run.cdn.requests if tier in r[5] and r[3] != tier)
            assert link.delivered_bits == pytest.approx(missed, rel=1e-9)
            assert run.cdn.upstream_bits[tier] == pytest.approx(missed, rel=1e-12)
    # What the edge missed is what the exchange point saw.
    series = run.tier_series()
    reached = {name: sum(s["requests"] for s in series if s["tier"] == name) for name in run.cdn.names}
    hits = {name: sum(s["hits"] for s in series if s["tier"] == name) for name in run.cdn.names}
    assert reached["exchange"] == reached["edge"] - hits["edge"]
    assert reached["origin"] == reached["exchange"] - hits["exchange"] == hits["origin"]
    assert 0 < hits["edge"] < reached["edge"]
    metrics = run.metrics(rows)
    assert metrics["failure_rate"] == 0 and 0 < metrics["origin_offload"] < 1


@pytest.mark.parametrize("edge_bytes", [3e6, 3e7, 2e8])
def test_cache_never_exceeds_capacity(edge_bytes):
    run = simulate(parse_scenario(three_tier(edge_bytes)))
    for name, cache in run.cdn.state.caches.items():
        capacity = run.cdn.tiers[run.cdn.names.index(name)].capacity_bytes
        assert cache.used_bytes <= capacity
        assert run.cdn.max_used_bytes[run.cdn.names.index(name)] <= capacity
    assert run.cdn.state.caches["edge"].evictions > 0 or edge_bytes > 1e8


@pytest.mark.parametrize("access", ["", 'access_trace = "cell"'])
def test_large_healthy_caches_equal_no_cdn_run_with_same_rtt(access):
    # Unlimited tier links and an RTT on the edge only: every request costs exactly the edge's
    # round trip more, so the run equals the no-CDN run whose requests take that much longer.
    head = ('name = "t"\nseed = 5\nladder = "hls"\n[traces.cell]\nbuiltin = "4g_high"\n{bottleneck}'
            "[setup]\nrtt_s = {rtt}\n"
            'dns_s = {{ dist = "uniform", low_s = 0.01, high_s = 0.05 }}\n')
    bottleneck = "" if access else "[bottleneck]\nbandwidth_bps = 60e6\n"
    cdn = """
[cdn]
titles = 3
[[cdn.tiers]]
name = "edge"
capacity_bytes = inf
rtt_s = 0.125
[[cdn.tiers]]
name = "origin"
"""
    with_cdn = simulate(parse_scenario(scenario_text(12, cdn, access, head.format(bottleneck=bottleneck,
                                                                                  rtt=0.25))))
    without = simulate(parse_scenario(scenario_text(12, "", access, head.format(bottleneck=bottleneck,
                                                                                rtt=0.375))))
    rows_cdn = with_cdn.rows()
    rows_plain = without.rows()
    assert _same(rows_cdn, rows_plain)
    assert any(r["edge_hit_ratio"] > 0 for r in rows_cdn)


def _same(rows_a, rows_b) -> bool:
    for a, b in zip(rows_a, rows_b, strict=True):
        for key in DES_FIELDS:
            x, y = a[key], b[key]
            if isinstance(x, float) and math.isnan(x):
                assert isinstance(y, float) and math.isnan(y), key
            else:
                assert x == y, (key, x, y)
    return True


def test_edge_down_every_request_goes_to_the_next_tier():
    outage = '\n[[cdn.outages]]\ntier = "edge"\nstart_s = 0\nend_s = 1e9\n'
    run = simulate(parse_scenario(three_tier(outages=outage)))
    requests = run.cdn_requests()
    assert requests and all(r["visited"].startswith("exchange") for r in requests)
    assert {r["tier"] for r in requests} <= {"exchange", "origin"}
    rows = run.rows()
    assert all(r["edge_hit_ratio"] == 0.0 for r in rows)
    assert {r["tier_of_first_segment"] for r in rows} <= {"exchange", "origin"}
    assert run.cdn.served_bits[0] == 0 and run.cdn.state.caches["edge"].requests == 0
    assert run.metrics(rows)["failure_rate"] == 0


def test_edge_outage_window_shows_failover_in_the_series():
    outage = '\n[[cdn.outages]]\ntier = "edge"\nstart_s = 5\nend_s = 10\n'
    run = simulate(parse_scenario(three_tier(outages=outage, count=60)))
    inside = [r for r in run.cdn_requests() if 5 <= r["time_s"] < 10]
    outside = [r for r in run.cdn_requests() if not 5 <= r["time_s"] < 10]
    assert inside and not any("edge" in r["visited"] for r in inside)
    assert all(r["visited"].startswith("edge") for r in outside)


def test_partial_outage_affects_a_fraction_of_players():
    outage = '\n[[cdn.outages]]\ntier = "edge"\nstart_s = 0\nend_s = 1e9\nfraction = 0.5\n'
    run = simulate(parse_scenario(three_tier(outages=outage, count=60)))
    skipped = {r["player"] for r in run.cdn_requests() if not r["visited"].startswith("edge")}
    used = {r["player"] for r in run.cdn_requests() if r["visited"].startswith("edge")}
    assert skipped and used and not skipped & used
    assert 0.25 < len(skipped) / 60 < 0.75


def test_latency_fault_adds_round_trip():
    fault = ('\n[[cdn.outages]]\ntier = "edge"\nstart_s = 0\nend_s = 1e9\nkind = "latency"\n'
             "extra_rtt_s = 0.5\n")
    base = simulate(parse_scenario(three_tier()))
    slow = simulate(parse_scenario(three_tier(outages=fault)))
    slow_startup = np.mean([r["startup_s"] for r in slow.rows()])
    assert slow_startup > np.mean([r["startup_s"] for r in base.rows()]) + 0.4


def test_no_healthy_tier_fails_playback():
    outages = ('\n[[cdn.outages]]\ntier = "edge"\nstart_s = 4\nend_s = 8\n'
               '\n[[cdn.outages]]\ntier = "exchange"\nstart_s = 4\nend_s = 8\n'
               '\n[[cdn.outages]]\ntier = "origin"\nstart_s = 4\nend_s = 8\n')
    run = simulate(parse_scenario(three_tier(outages=outages)))
    rows = run.rows()
    failed = [r for r in rows if r["playback_failed"]]
    assert failed and len(failed) < len(rows)
    assert all(math.isnan(r["qoe_lin"]) for r in failed)
    assert all(s.failed and 4 <= s.arrival_s + s.failed_s < 8 for s in run.sessions if s.failed)
    failures = [r for r in run.cdn_requests() if r["tier"] == ""]
    assert len(failures) == len(failed)
    metrics = run.metrics(rows)
    assert metrics["failure_rate"] == pytest.approx(len(failed) / len(rows))
    assert not math.isnan(metrics["mean_startup_s"])
    assert np.sum(run.cdn.served_bits) == pytest.approx(downloaded_bits(run), rel=1e-12)


def test_branched_chain_two_groups_share_the_exchange_point():
    other = PLAYERS.format(count=20, access="").replace('"bola"\nabr', '"other"\nabr')
    text = scenario_text(20) + other + """
[cdn]
titles = 4
groups = { bola = "edge_a", other = "edge_b" }
[[cdn.tiers]]
name = "edge_a"
capacity_bytes = 1e9
next = "exchange"
[[cdn.tiers]]
name = "edge_b"
capacity_bytes = 1e9
next = "exchange"
[[cdn.tiers]]
name = "exchange"
capacity_bytes = 1e10
next = "origin"
serving_bandwidth_bps = 500e6
[[cdn.tiers]]
name = "origin"
"""
    run = simulate(parse_scenario(text))
    requests = run.cdn_requests()
    assert {r["visited"].split(">")[0] for r in requests if r["player"].startswith("bola/")} == {"edge_a"}
    assert {r["visited"].split(">")[0] for r in requests if r["player"].startswith("other/")} == {"edge_b"}
    # The exchange point saw the misses of both edges and served some of them from its cache.
    exchange = [r for r in requests if "exchange" in r["visited"]]
    assert {r["visited"][:6] for r in exchange} == {"edge_a", "edge_b"}
    assert any(r["tier"] == "exchange" for r in exchange)
    assert np.sum(run.cdn.served_bits) == pytest.approx(downloaded_bits(run), rel=1e-12)


def test_determinism():
    text = three_tier(outages='\n[[cdn.outages]]\ntier = "edge"\nstart_s = 3\nend_s = 9\nfraction = 0.5\n')
    first, second = simulate(parse_scenario(text)), simulate(parse_scenario(text))
    assert _same(first.rows(), second.rows())
    assert first.cdn_requests() == second.cdn_requests()
    assert first.tier_series() == second.tier_series()
    other = simulate(parse_scenario(text), seed=6)
    assert other.cdn_requests() != first.cdn_requests()


def test_compare_fault():
    outage = '\n[[cdn.outages]]\ntier = "edge"\nstart_s = 0\nend_s = 1e9\n'
    result = compare_fault(parse_scenario(three_tier(outages=outage)))
    assert set(result) >= {"control", "fault", "delta"}
    assert result["delta"]["mean_startup_s"] > 0  # the edge's misses cost more round trips
    assert result["control_run"].cdn.served_bits[0] > 0 and result["fault_run"].cdn.served_bits[0] == 0
    # Same workload: the same players and titles in both runs.
    control, fault = result["control_run"], result["fault_run"]
    assert [s.player for s in control.sessions] == [s.player for s in fault.sessions]
    titles = [{r["player"]: r["object_id"] for r in run.cdn_requests() if r["segment"] == 0}
              for run in (control, fault)]
    assert titles[0] == titles[1]


def test_cli_compare_fault_and_logs(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(three_tier(outages='\n[[cdn.outages]]\ntier = "edge"\nstart_s = 2\nend_s = 8\n'))
    runner = CliRunner()
    result = runner.invoke(cli, ["simulate", str(path), "--compare-fault"], catch_exceptions=False)
    assert result.exit_code == 0 and "starts_per_s" in result.output and "delta" in result.output
    out = tmp_path / "sweep" / "results.csv"
    out.parent.mkdir()
    result = runner.invoke(cli, ["simulate", str(path), "--format", "csv", "--out", str(out),
                                 "--logs", str(tmp_path / "logs")], catch_exceptions=False)
    assert result.exit_code == 0
    with open(out.parent / "results.tier_series.csv") as handle:
        series = list(csv.DictReader(handle))
    assert series and set(series[0]) >= {"time_s", "tier", "hit_ratio"}
    with open(out.parent / "results.outages.csv") as handle:
        assert next(csv.DictReader(handle))["tier"] == "edge"
    logged = (tmp_path / "logs" / "tier_series.csv").read_text()
    assert logged == (out.parent / "results.tier_series.csv").read_text()
    assert (tmp_path / "logs" / "cdn_requests.csv").read_text().startswith("time_s,player,segment")
    from abrsim.report import load_results

    loaded = load_results(out.parent)
    assert loaded is not None


def test_cli_cache_size_sweep(tmp_path):
    sweep = 'sweep = { tier = "edge", capacity_bytes = [0, 1e7, 1e9] }'
    text = three_tier().replace("bin_s = 10", "bin_s = 10\n" + sweep)
    path = tmp_path / "s.toml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["simulate", str(path), "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0
    rows = list(csv.DictReader(result.stdout.splitlines()))
    by_size: dict[str, list[float]] = {}
    for row in rows:
        by_size.setdefault(row["scenario"], []).append(float(row["edge_hit_ratio"]))
    assert list(by_size) == ["t@edge=0", "t@edge=1e+07", "t@edge=1e+09"]
    means = [np.mean(v) for v in by_size.values()]
    assert means[0] == 0 and means[0] < means[1] < means[2]


BAD = [
    ('groups = { nobody = "edge" }\n[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\n'
     '[[cdn.tiers]]\nname = "origin"\n', "cdn.groups.nobody", "nobody"),
    ('[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\nnext = "origin"\n[[cdn.tiers]]\nname = "ixp"\n'
     'capacity_bytes = 1e9\nnext = "origin"\n[[cdn.tiers]]\nname = "origin"\n',
     "cdn.groups", "start a chain"),
    ('[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\nnext = "ixp"\n'
     '[[cdn.tiers]]\nname = "ixp"\ncapacity_bytes = 1e9\nnext = "edge"\n'
     '[[cdn.tiers]]\nname = "origin"\n', "cdn.tiers[", "cycle"),
    ('[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\nnext = "nowhere"\n'
     '[[cdn.tiers]]\nname = "origin"\n', "cdn.tiers[0].next", "nowhere"),
    ('[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = -5\n[[cdn.tiers]]\nname = "origin"\n',
     "cdn.tiers[0].capacity_bytes", "-5"),
    ('[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\n[[cdn.tiers]]\nname = "origin"\n'
     '[[cdn.outages]]\ntier = "mars"\nstart_s = 1\nend_s = 2\n', "cdn.outages[0].tier", "mars"),
    ('alpha = 0\n[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\n[[cdn.tiers]]\nname = "origin"\n',
     "cdn.alpha", "> 0"),
    ('alpha = -1\n[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\n[[cdn.tiers]]\nname = "origin"\n',
     "cdn.alpha", "> 0"),
    ('[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\nnext = "origin"\n'
     '[[cdn.tiers]]\nname = "origin"\ncapacity_bytes = 1e9\n', "cdn.tiers[1].capacity_bytes", "origin"),
    ('[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\n[[cdn.tiers]]\nname = "origin"\n'
     '[[cdn.outages]]\ntier = "edge"\nstart_s = 5\nend_s = 2\n', "cdn.outages[0].end_s", "after"),
]


@pytest.mark.parametrize(("cdn", "field", "words"), BAD)
def test_bad_input_is_one_line_with_file_and_field(tmp_path, cdn, field, words):
    path = tmp_path / "bad.toml"
    path.write_text(scenario_text(2, "\n[cdn]\n" + cdn))
    result = CliRunner().invoke(cli, ["simulate", str(path)])
    assert result.exit_code == 2
    message = result.output.strip()
    assert "\n" not in message and str(path) in message and field in message and words in message


def test_proactive_fill_raises_the_edge_hit_ratio():
    def edge_hit(fill: str) -> float:
        run = simulate(parse_scenario(three_tier(edge_bytes=2e9) + fill))
        rows = run.rows()
        return float(np.mean([r["edge_hit_ratio"] for r in rows if not math.isnan(r["edge_hit_ratio"])]))

    fill = """
[[cdn.fills]]
tier = "edge"
start_s = -600
duration_s = 600
rate_bps = 20e6
"""
    assert edge_hit(fill) > edge_hit("") + 0.05


def test_fill_of_an_unknown_or_origin_tier_is_one_line_error(tmp_path):
    for tier in ("nowhere", "origin"):
        path = tmp_path / "s.toml"
        path.write_text(three_tier() + f'\n[[cdn.fills]]\ntier = "{tier}"\nstart_s = 0\nduration_s = 10\n'
                        "rate_bps = 1e6\n")
        result = CliRunner().invoke(cli, ["simulate", str(path)])
        assert result.exit_code == 2
        assert "cdn.fills[0].tier" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_side_tables_are_named_after_their_results_file(tmp_path):
    """Two scenarios into one folder: each keeps its own tier series and outages (issue 14)."""
    from abrsim.report import load_results

    faulty, healthy = tmp_path / "faulty.toml", tmp_path / "healthy.toml"
    faulty.write_text(three_tier(outages='\n[[cdn.outages]]\ntier = "edge"\nstart_s = 2\nend_s = 8\n'))
    healthy.write_text(three_tier(edge_bytes=0))
    folder = tmp_path / "d"
    for scenario, name in ((faulty, "a"), (healthy, "b")):
        result = CliRunner().invoke(cli, ["simulate", str(scenario), "--format", "csv",
                                          "--out", str(folder / f"{name}.csv")], catch_exceptions=False)
        assert result.exit_code == 0
        assert f"wrote {folder / name}.tier_series.csv and {folder / name}.outages.csv" in result.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "a.csv", "a.outages.csv", "a.tier_series.csv", "b.csv", "b.outages.csv", "b.tier_series.csv"]
    assert len((folder / "a.outages.csv").read_text().splitlines()) == 2  # the header and the outage
    assert len((folder / "b.outages.csv").read_text().splitlines()) == 1  # the header only
    assert (folder / "a.tier_series.csv").read_text() != (folder / "b.tier_series.csv").read_text()
    loaded = load_results(folder / "a.csv")
    assert loaded.outages is not None and list(loaded.outages["tier"]) == ["edge"]
    assert load_results(folder / "b.csv").outages is None
    # A later run of b without a CDN leaves no side table of the earlier one.
    plain = tmp_path / "plain.toml"
    plain.write_text(scenario_text(4, ""))
    result = CliRunner().invoke(cli, ["simulate", str(plain), "--format", "csv",
                                      "--out", str(folder / "b.csv")], catch_exceptions=False)
    assert result.exit_code == 0
    assert sorted(p.name for p in folder.glob("b.*")) == ["b.csv"]


def test_report_draws_one_line_per_cache_size_and_honours_select(tmp_path):
    """The cache-size sweep's tier series: a line per size and tier, never one line through all sizes;
    --select keeps the selected sizes' lines only (issue 14)."""
    from abrsim import report

    sweep = 'sweep = { tier = "edge", capacity_bytes = [0, 1e7, 1e9] }'
    path = tmp_path / "s.toml"
    path.write_text(three_tier().replace("bin_s = 10", "bin_s = 10\n" + sweep))
    out = tmp_path / "d" / "results.csv"
    result = CliRunner().invoke(cli, ["simulate", str(path), "--format", "csv", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0
    results = report.load_results(out.parent)

    def lines(series):
        figure = report.tier_hit_ratio_figure(series, results.outages)
        return sorted(line.get_label() for line in figure.axes[0].get_lines())

    tiers = ("edge", "exchange", "origin")
    sizes = ("t@edge=0", "t@edge=1e+07", "t@edge=1e+09")
    assert lines(results.tier_series) == sorted(f"{tier} tier, {size}" for tier in tiers for size in sizes)
    for series_line in report.tier_hit_ratio_figure(results.tier_series).axes[0].get_lines():
        times = series_line.get_xdata()
        assert np.all(np.diff(times) > 0), series_line.get_label()  # no zig-zag back in time
    chosen = results.select("scenario=t@edge=1e+07")
    assert set(chosen.tier_series["scenario"]) == {"t@edge=1e+07"}
    assert lines(chosen.tier_series) == [f"{tier} tier, t@edge=1e+07" for tier in tiers]
    # The command follows the selection.
    result = CliRunner().invoke(cli, ["report", str(out.parent), "-o", str(tmp_path / "report"),
                                      "--select", "scenario=t@edge=1e+07"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "figures" / "tier_hit_ratio.png").exists()


def test_failed_playback_is_not_counted_as_abandonment():
    """Edge and origin down for half the viewers: their playback fails; nobody left (issue 14)."""
    outages = ('\n[[cdn.outages]]\ntier = "edge"\nstart_s = 0\nend_s = 1000\nfraction = 0.5\n'
               '\n[[cdn.outages]]\ntier = "exchange"\nstart_s = 0\nend_s = 1000\nfraction = 0.5\n'
               '\n[[cdn.outages]]\ntier = "origin"\nstart_s = 0\nend_s = 1000\nfraction = 0.5\n')
    run = simulate(parse_scenario(three_tier(outages=outages, count=20)))
    rows = run.rows()
    failed = sum(r["playback_failed"] for r in rows)
    assert 0 < failed < len(rows)
    assert not any(r["abandoned"] for r in rows)
    metrics = run.metrics(rows)
    assert metrics["abandoned_players"] == 0 and metrics["abandoned_share"] == 0.0
    assert metrics["failed_players"] == failed
    assert metrics["failed_share"] == pytest.approx(failed / len(rows))
    assert list(metrics)[:5] == ["players", "abandoned_players", "abandoned_share", "failed_players",
                                 "failed_share"]
