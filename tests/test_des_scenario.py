from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from abrsim.cli import cli
from abrsim.engine.des import DES_FIELDS, SCENARIO_METRICS, simulate
from abrsim.errors import InputError
from abrsim.log import LOG_FIELDS
from abrsim.scenario import Duration, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((REPO / "experiments").glob("des_*.toml"))

MINIMAL = """
name = "mini"
seed = 4
[traces.home]
bandwidth_bps = 5e6
[[players]]
abr = "bola"
count = 2
access_trace = "home"
"""


@pytest.fixture
def invoke():
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def write(tmp_path):
    def make(text: str, name: str = "scenario.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


def test_the_project_scenarios_parse_and_run():
    assert [p.name for p in EXPERIMENTS] == ["des_flash_crowd.toml", "des_shared_bottleneck.toml"]
    shared = load_scenario(REPO / "experiments" / "des_shared_bottleneck.toml")
    assert shared.bottleneck is not None and shared.bottleneck.trace.start_s.size > 1  # a real-looking trace
    assert len({g.policy.name for g in shared.groups}) >= 4
    crowd = load_scenario(REPO / "experiments" / "des_flash_crowd.toml")
    assert crowd.bottleneck is not None and crowd.bottleneck.trace.start_s.size == 1  # a constant link
    assert crowd.abandonment.probability > 0
    run = simulate(shared)
    metrics = run.metrics()
    assert metrics["players"] == shared.players == 16
    assert 0.0 < metrics["link_utilisation"] <= 1.0 + 1e-9
    assert 0.0 < metrics["fairness_jain_bitrate"] <= 1.0


def test_the_documented_scenario_file_parses_with_and_without_its_cdn(write):
    # docs/des.md's annotated scenario file, as a user would copy it, and with the page's [cdn]
    # example appended (a player group's traces must be tables the file defines).
    text = (REPO / "docs" / "des.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```toml\n")[1:]]
    (scenario_text,) = [block for block in blocks if "[[players]]" in block]
    (cdn_text,) = [block for block in blocks if block.startswith("[cdn]")]
    scenario = load_scenario(write(scenario_text))
    assert scenario.name == "evening" and scenario.bottleneck is not None
    with_cdn = load_scenario(write(scenario_text + "\n" + cdn_text, "with_cdn.toml"))
    assert [tier.name for tier in with_cdn.cdn.chain.tiers] == ["edge", "exchange", "origin"]


def test_minimal_scenario_defaults():
    scenario = parse_scenario(MINIMAL)
    (group,) = scenario.groups
    assert scenario.name == "mini" and scenario.seed == 4 and scenario.bottleneck is None
    assert group.name == "bola" and group.count == 2 and group.ladder.name == "hls"
    assert group.model.name == "abrsim" and group.access.name == "home"
    assert group.setup.dns_s.is_zero and group.setup.reuse_connections
    assert scenario.abandonment.startup_threshold_s == 3.0 and scenario.abandonment.probability == 0.0


def test_full_scenario_reads_every_section(write, tmp_path):
    (tmp_path / "link.csv").write_text("# duration_s=30\ntime_s,bandwidth_mbps\n0,3.0\n10,0.8\n20,5\n")
    path = write("""
name = "full"
ladder = "mobile"
model = { preset = "sabre", fields = { max_buffer_s = 30 } }
[traces.file]
path = "link.csv"
scale = 2.0
[traces.big]
bandwidth_bps = 1e9
[bottleneck]
trace = "big"
[setup]
dns_s = { dist = "uniform", low_s = 0.01, high_s = 0.05 }
connect_s = 0.1
rtt_s = { dist = "lognormal", median_s = 0.04, sigma = 0.3 }
reuse_connections = false
[abandonment]
startup_threshold_s = 2.5
probability = 0.25
[[players]]
name = "a"
abr = "throughput"
params = { safety_factor = 0.8 }
count = 3
access_trace = "file"
trace_offset_s = { dist = "uniform", low_s = 0, high_s = 20 }
watch_s = { dist = "exponential", mean_s = 60 }
arrivals = { process = "poisson", rate_per_s = 2, start_s = 1 }
[[players]]
name = "b"
abr = "bola"
ladder = "hls"
model = "abrsim"
arrivals = { process = "schedule", times_s = [0, 5] }
setup = { decode_s = 0.07 }
""")
    scenario = load_scenario(path)
    a, b = scenario.groups
    assert scenario.bottleneck.trace.bandwidth_bps[0] == 1e9
    assert a.access.bandwidth_bps[0] == 6e6 and a.access.name == "file"
    assert a.model.name.startswith("sabre") and a.model.max_buffer_s == 30.0 and a.model.abandonment
    assert a.policy.params["safety_factor"] == 0.8 and a.ladder.name == "mobile"
    assert a.setup.dns_s == Duration("uniform", (0.01, 0.05)) and not a.setup.reuse_connections
    assert a.watch_s == Duration("exponential", (60.0,)) and a.arrivals.start_s == 1.0
    assert b.count == 2 and b.arrivals.times_s == (0.0, 5.0) and b.ladder.name == "hls"
    assert b.setup.decode_s == Duration.constant(0.07) and b.setup.dns_s == a.setup.dns_s  # overrides merge
    assert scenario.abandonment.probability == 0.25
    run = simulate(scenario)
    assert len(run) == 5
    assert all(s.arrival_s >= 1.0 for s in run.sessions if s.group == "a")


@pytest.mark.parametrize(("body", "field", "message"), [
    (MINIMAL + "colour = 1\n", "players[0].colour", "unknown key"),
    (MINIMAL.replace('name = "mini"', 'name = "mini"\ncolour = 1'), "colour", "unknown key"),
    (MINIMAL.replace("count = 2", "count = 0"), "players[0].count", "expected an integer >= 1"),
    ('name = "x"\n[traces.a]\nbandwidth_bps = 1e6\n', "players", "missing key"),
    ('name = "x"\nplayers = []\n', "players", "missing key"),
    (MINIMAL.replace('access_trace = "home"', 'access_trace = "office"'), "players[0].access_trace",
     "no trace named 'office'"),
    (MINIMAL.replace('access_trace = "home"', ''), "players[0].access_trace", "needs an access_trace"),
    (MINIMAL.replace("bandwidth_bps = 5e6", "bandwidth_bps = -5e6"), "traces.home.bandwidth_bps",
     "expected a finite number > 0"),
    (MINIMAL + 'arrivals = { process = "poisson", rate_per_s = -1 }\n', "players[0].arrivals.rate_per_s",
     "expected a finite number > 0"),
    (MINIMAL + 'arrivals = { process = "burst" }\n', "players[0].arrivals.process", "expected one of"),
    (MINIMAL + 'arrivals = { process = "schedule", times_s = [0, 1, 2] }\n', "players[0].arrivals.times_s",
     "count is 2"),
    (MINIMAL + 'watch_s = -3\n', "players[0].watch_s", "expected a number of seconds in [0, 1e+06]"),
    (MINIMAL + 'watch_s = { dist = "gamma", mean_s = 3 }\n', "players[0].watch_s.dist", "expected one of"),
    (MINIMAL + 'watch_s = { dist = "uniform", low_s = 3 }\n', "players[0].watch_s.high_s", "missing key"),
    (MINIMAL + 'watch_s = { dist = "uniform", low_s = 3, high_s = 1 }\n', "players[0].watch_s", "high_s"),
    (MINIMAL + 'params = { gamma_p = -2 }\n', "players[0].params.gamma_p", "got -2.0"),
    (MINIMAL + 'params = { gama_p = 2 }\n', "players[0].params", "unknown parameter of bola"),
    (MINIMAL.replace('abr = "bola"', 'abr = "bolla"'), "players[0].abr", "unknown algorithm 'bolla'"),
    (MINIMAL + 'model = { fields = { max_buffer_s = -1 } }\n', "players[0].model.fields.max_buffer_s",
     "max_buffer_s"),
    (MINIMAL + 'model = "fancy"\n', "players[0].model.preset", "unknown player model"),
    (MINIMAL + 'ladder = "nonesuch"\n', "players[0].ladder", "unknown ladder"),
    (MINIMAL + 'ladder = "nope.toml"\n', "players[0].ladder", "nope.toml'; expected a ladder file"),
    (MINIMAL.replace('seed = 4', 'seed = 4\nladder = "nope.toml"'), "ladder", "found no file"),
    (MINIMAL + 'ladder = { path = "nope.csv", segment_duration_s = 4 }\n', "players[0].ladder",
     "found no file"),
    (MINIMAL + "[bottleneck]\ntrace = \"home\"\nbandwidth_bps = 1e6\n", "bottleneck", "exactly one of"),
    (MINIMAL + "[abandonment]\nprobability = 1.5\n", "abandonment.probability", "[0, 1]"),
    (MINIMAL + "[abandonment]\nstartup_threshold_s = -1\n", "abandonment.startup_threshold_s", ">= 0"),
    (MINIMAL + "[setup]\ndns_s = \"fast\"\n", "setup.dns_s", "expected a number of seconds"),
    (MINIMAL + "[setup]\nreuse_connections = 1\n", "setup.reuse_connections", "expected true or false"),
    (MINIMAL + "[traces.more]\npath = \"missing.csv\"\n", "traces.more.path", "is not a file"),
    (MINIMAL + "[traces.more]\nbuiltin = \"moon\"\n", "traces.more.builtin", "unknown built-in trace"),
    (MINIMAL + "[traces.more]\nbandwidth_bps = 1e6\nbuiltin = \"3g_low\"\n", "traces.more", "exactly one of"),
    (MINIMAL.replace('seed = 4', 'seed = -4'), "seed", "expected an integer >= 0"),
    (MINIMAL.replace('name = "mini"', 'name = "two words"'), "name", "expected letters"),
])
def test_scenario_errors_name_the_file_and_the_field(write, body, field, message):
    path = write(body)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    error = info.value
    assert error.source == str(path)
    assert error.field == field
    assert message in error.detail
    assert "\n" not in str(error)


def test_toml_syntax_errors_name_the_line(write):
    path = write(MINIMAL + "count = = 3\n")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.line == MINIMAL.count("\n") + 1


def test_cli_errors_are_one_line_with_exit_code_2(invoke, write, tmp_path):
    result = invoke("simulate", str(write(MINIMAL.replace("count = 2", "count = -1"))))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "scenario.toml" in result.output and "players[0].count" in result.output
    result = invoke("simulate", str(tmp_path / "nowhere.toml"))
    assert result.exit_code == 2 and "nowhere.toml: file not found" in result.output


def test_cli_table_json_and_csv(invoke, write, tmp_path):
    path = write(MINIMAL)
    table = invoke("simulate", str(path))
    assert table.exit_code == 0, table.output
    assert "per-algorithm summary" in table.output
    assert "scenario 'mini', seed 4" in table.output and "fairness_jain_bitrate" in table.output
    rows = json.loads(invoke("simulate", str(path), "--format", "json").stdout)
    assert len(rows) == 2 and list(rows[0]) == list(DES_FIELDS)
    assert rows[0]["scenario"] == "mini" and rows[0]["trace"] == "home" and rows[0]["seed"] == 4
    out = tmp_path / "results.csv"
    result = invoke("simulate", str(path), "--format", "csv", "--out", str(out), "--seed", "9",
                    "--logs", str(tmp_path / "logs"))
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 2 and list(table[0]) == list(DES_FIELDS) and table[0]["seed"] == "9"
    segments = list(csv.DictReader(io.StringIO((tmp_path / "logs" / "segments.csv").read_text())))
    assert list(segments[0]) == ["player", "policy", *LOG_FIELDS]
    assert {r["player"] for r in segments} == {"bola/0", "bola/1"}
    assert len(segments) == 2 * 100
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["seed"] == 9 and set(summary["metrics"]) == set(SCENARIO_METRICS)


def test_cli_is_deterministic(invoke):
    path = str(REPO / "experiments" / "des_flash_crowd.toml")
    first = json.loads(invoke("simulate", path, "--format", "json").stdout)
    second = json.loads(invoke("simulate", path, "--format", "json").stdout)
    assert first == second
    assert any(r["abandoned"] for r in first)  # the crowd makes some viewers give up
    startup = np.array([r["startup_s"] for r in first if not r["abandoned"]])
    assert startup.max() > 1.0  # the crowd slows startup down


def test_diurnal_poisson_arrivals_follow_the_rate_curve():
    import numpy as np

    from abrsim.scenario import Arrivals

    # Busy first half of each 100 s period (multiplier 3), quiet second half (multiplier 1).
    arrivals = Arrivals("poisson", rate_per_s=1.0, diurnal=(3.0, 1.0), diurnal_period_s=100.0)
    times = arrivals.draw(20_000, np.random.default_rng(4))
    assert (np.diff(times) >= 0).all()
    busy = ((times % 100.0) < 50.0).mean()
    assert busy == pytest.approx(0.75, abs=0.02)
    assert times[-1] / len(times) == pytest.approx(1 / 2.0, rel=0.05)  # mean rate 2/s
    with pytest.raises(ValueError, match="diurnal"):
        Arrivals("poisson", diurnal=(0.0, 0.0))
