from __future__ import annotations

import dataclasses
import itertools
import math

import numba
import numpy as np
import pytest
import simpy
from conftest import shared_path, step_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abrsim.abr import available, make
from abrsim.engine import des, fast
from abrsim.engine.link import AccessLink, Link
from abrsim.engine.player import Player, SegmentRecord
from abrsim.ladder import Ladder, Rung, load_ladder
from abrsim.log import LOG_FIELDS, SessionLog
from abrsim.model import PENSIEVE, SABRE, PlayerModel
from abrsim.results import RESULT_FIELDS, rows_from_batch
from abrsim.scenario import (
    Abandonment,
    Arrivals,
    Bottleneck,
    Duration,
    PlayerGroup,
    Scenario,
    SessionSetup,
)
from abrsim.trace import Trace, load_trace, load_traces

FAMILIES = ("hsdpa_norway_3g", "fcc_broadband", "lte_belgium_4g", "lumos5g_mmwave_5g")


def assert_same_log(expected: SessionLog, got: SessionLog, where: str, time_abs: float = 1e-9) -> None:
    assert got.download_count == expected.download_count, where
    for name in LOG_FIELDS:
        a, b = getattr(expected, name), getattr(got, name)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=0, atol=time_abs, err_msg=f"{where}: {name}")
        else:
            np.testing.assert_array_equal(b, a, err_msg=f"{where}: {name}")
    assert got.startup_s == pytest.approx(expected.startup_s, abs=time_abs), where
    assert got.end_s == pytest.approx(expected.end_s, abs=time_abs), where
    assert got.rebuffer_count == expected.rebuffer_count, where


@pytest.fixture(scope="module")
def real_traces() -> list[Trace]:
    """20 real traces: five from each family of ../shared/traces, spread over each family."""
    traces = []
    for family in FAMILIES:
        found = load_traces([shared_path("traces", family)])
        traces += [found[i] for i in np.linspace(0, len(found) - 1, 5).astype(int)]
    return traces


@pytest.fixture(scope="module")
def bbb() -> Ladder:
    return load_ladder(str(shared_path("videos", "bbb_sabre", "chunk_sizes.csv")), segment_duration_s=3.0)


def short(ladder: Ladder, segments: int) -> Ladder:
    return Ladder(ladder.rungs, ladder.segment_duration_s, ladder.size_bits[:segments],
                  name=f"{ladder.name}-short")


def compare_engines(traces, ladder, model, names=None) -> int:
    """Every algorithm through both engines on every trace; returns the abandoned downloads seen."""
    abandoned = 0
    for name in names or available():
        batch = fast.run_batch(traces, ladder, name, model)
        for index, trace in enumerate(traces):
            log = des.run_session(trace, ladder, name, model)
            assert_same_log(batch.session_log(index), log, f"{name} on {trace.name} ({model.name})")
            abandoned += int(log.abandoned.sum())
    return abandoned


# With NUMBA_DISABLE_JIT=1 (CI's second pass) the kernels run as plain Python, RobustMPC's
# exhaustive search included: the real-trace comparisons then use a few traces and short titles.
NO_JIT = bool(numba.config.DISABLE_JIT)


def test_one_player_alone_equals_the_fast_engine_on_20_real_traces(real_traces, bbb):
    assert len(real_traces) == 20
    if NO_JIT:
        compare_engines(real_traces[::7], short(bbb, 8), PlayerModel())
        return
    compare_engines(real_traces, short(bbb, 40), PlayerModel())
    compare_engines(real_traces[::7], bbb, PlayerModel())  # whole titles on a few


def test_equivalence_with_the_sabre_preset_and_abandonment(real_traces, bbb):
    traces = real_traces[:2] if NO_JIT else real_traces[:5] + real_traces[6:8]
    abandoned = compare_engines(traces, short(bbb, 20 if NO_JIT else 60), SABRE)
    assert NO_JIT or abandoned > 0  # the abandonment checkpoints were exercised


def test_sabres_residue_stalls_reach_the_discrete_event_player():
    # Four of Sabre's 3G logs where Sabre's final playout counts a zero-length stall (bola, noa).
    inputs = shared_path("reference", "sabre", "inputs")
    names = ("2010-09-28_1003CEST", "2010-09-29_1823CEST", "2010-11-16_1857CET", "2010-12-22_0826CET")
    traces = [load_trace(inputs / "3g" / f"report.{name}.json") for name in names]
    movie = load_ladder(str(inputs / "bbb.json"))
    model = SABRE.replace(abandonment=False)
    for option in (True, False):
        batch = fast.run_batch(traces, movie, "bola", model.replace(compat_sabre_residue_stalls=option))
        for index, trace in enumerate(traces):
            log = des.run_session(trace, movie, "bola", model.replace(compat_sabre_residue_stalls=option))
            assert_same_log(batch.session_log(index), log, f"{trace.name}, residue option {option}")
    counts = [fast.run_batch(traces, movie, "bola", model).session_log(i).rebuffer_count for i in range(4)]
    assert counts == [4, 2, 1, 3]  # Sabre's numbers; without the option 3, 1, 0, 2


def test_equivalence_with_the_pensieve_preset(real_traces):
    envivio = load_ladder(str(shared_path("videos", "envivio", "chunk_sizes.csv")), segment_duration_s=4.0)
    traces = real_traces[::10] if NO_JIT else real_traces[::4]
    compare_engines(traces, short(envivio, 8) if NO_JIT else envivio,
                    PENSIEVE)


def test_equivalence_with_trace_latency_thresholds_and_a_sliding_estimator(vbr_ladder):
    trace = Trace([0.0, 5.0, 9.0, 14.0], [2e6, 0.0, 4e6, 0.3e6], 20.0, latency_s=[0.1, 0.3, 0.05, 0.2],
                  name="lat")
    models = [
        PlayerModel(),
        PlayerModel(latency_scaled=True, request_latency_s=0.0),
        PlayerModel(max_buffer_s=12.0, startup_threshold_s=8.0, resume_threshold_s=4.0, first_rung=-1,
                    goodput_factor=0.9, estimator="sliding", sliding_window_sizes=(3, 5)),
        # Abandonment checks by time only; with 0.2 s latency the first step's budget is 0.
        PlayerModel(abandonment=True, abandon_check_bits=0.0, abandon_check_s=0.2,
                    latency_on_trace_clock=False),
    ]
    for model in models:
        compare_engines([trace], vbr_ladder, model)


def test_a_lone_player_on_a_shared_link_agrees_with_the_fast_engine(vbr_ladder, tiny_trace):
    # Behind a bottleneck whose capacity is the trace (unlimited access), or capped by its access
    # trace behind a huge bottleneck: the link's arithmetic differs, the session does not.
    # (A bottleneck's trace runs on the simulation clock, so Pensieve's latency off the trace clock
    # applies to access links only.)
    # (The tcp network's slow start is a window limit on the flow here, rounds on the trace there:
    # they agree while the capacity holds within a round; see tests/test_tcp.py.)
    for name in ("bola", "throughput", "robustmpc", "dynamic"):
        for model in (PlayerModel(network="throughput"), SABRE, PENSIEVE):
            expected = fast.run_session(tiny_trace, vbr_ladder, name, model)
            cases = [(Trace([0.0], [1e12], 1.0), tiny_trace)]
            if model.latency_on_trace_clock:
                cases.append((tiny_trace, None))
            for bottleneck, access in cases:
                env = simpy.Environment()
                player = Player(env, "p", make(name), vbr_ladder, model,
                                AccessLink(access, model.goodput_factor), Link(env, bottleneck))
                player.start()
                env.run()
                got = player.result().log
                np.testing.assert_array_equal(got.rung, expected.rung)
                np.testing.assert_array_equal(got.abandoned, expected.abandoned)
                for field in ("request_s", "first_byte_s", "done_s", "buffer_after_s", "stall_s"):
                    np.testing.assert_allclose(getattr(got, field), getattr(expected, field), atol=1e-6)
                np.testing.assert_allclose(got.downloaded_bits, expected.downloaded_bits, rtol=1e-9)


def test_segment_record_fields_are_the_log_fields():
    assert SegmentRecord._fields == LOG_FIELDS


def group(name="bola", count=4, **changes) -> PlayerGroup:
    ladder = Ladder.cbr([Rung(b) for b in (300e3, 750e3, 1.5e6, 3e6)], 4.0, 20, name="small")
    values = {"name": name, "count": count, "policy": make(name), "ladder": ladder, "model": PlayerModel()}
    values.update(changes)
    return PlayerGroup(**values)


def scenario(*groups: PlayerGroup, capacity_bps: float | None = 6e6, **changes) -> Scenario:
    bottleneck = Bottleneck(Trace([0.0], [capacity_bps], 1.0, name="link")) if capacity_bps else None
    return Scenario(name="test", groups=groups, bottleneck=bottleneck, **changes)


class _Counting:
    """A Python policy that counts its sessions (state kept outside the rng it is given)."""

    sessions = 0

    def reset(self, ladder, segment_duration_s, rng):
        _Counting.sessions += 1

    def choose(self, obs):
        return 0, 0.0


def test_compiling_ahead_never_runs_a_python_policy(monkeypatch):
    # Only the real run may run user code: its state would otherwise differ with a cold cache.
    import abrsim._ahead
    import abrsim._jit
    from abrsim.abr import PythonPolicy

    monkeypatch.setattr(abrsim._ahead, "enabled", lambda: True)
    monkeypatch.setattr(abrsim._jit, "is_cached", lambda dispatcher: False)  # as on a cold cache
    monkeypatch.setattr(_Counting, "sessions", 0)
    mine = dataclasses.replace(group("bb", count=2), name="mine", policy=PythonPolicy(_Counting))
    mixed = scenario(mine, group("bola", count=1))
    jobs = des._compile_jobs(mixed)
    assert [key for key, _ in jobs] == ["first viewer", "metrics"]  # the viewer: bola's group
    for _, job in jobs:
        job()
    assert _Counting.sessions == 0
    assert des._compile_jobs(scenario(mine)) == []


def test_simulate_rows_have_the_results_schema_plus_the_startup_breakdown():
    setup = SessionSetup(dns_s=Duration("uniform", (0.01, 0.05)), connect_s=Duration.constant(0.1),
                         manifest_s=Duration.constant(0.05), decode_s=Duration("uniform", (0.05, 0.1)))
    run = des.simulate(scenario(group("bola", setup=setup, arrivals=Arrivals("periodic", interval_s=2.0)),
                                group("throughput", setup=setup)), seed=3)
    rows = run.rows()
    assert len(rows) == len(run) == 8
    assert list(rows[0]) == list(des.DES_FIELDS)
    assert des.DES_FIELDS[:len(RESULT_FIELDS)] == RESULT_FIELDS
    for row, session in zip(rows, run.sessions):
        log = session.log
        first_request_s = row["dns_s"] + row["connect_s"] + row["manifest_s"]
        assert 0.01 <= row["dns_s"] <= 0.05 and row["connect_s"] == 0.1 and row["manifest_s"] == 0.05
        assert 0.05 <= row["decode_s"] <= 0.1
        assert log.request_s[0] == pytest.approx(first_request_s, abs=1e-12)
        assert row["first_segment_s"] == pytest.approx(log.done_s[0] - log.request_s[0])
        # Startup: setup, the first segment, then the first frame's decode.
        assert row["startup_s"] == pytest.approx(first_request_s + row["first_segment_s"] + row["decode_s"])
        # Time is conserved from the arrival on.
        assert row["startup_s"] + row["played_s"] + row["rebuffer_s"] == pytest.approx(log.end_s)
        assert row["abandoned"] == 0 and math.isnan(row["left_s"])
        assert row["scenario"] == "test" and row["seed"] == 3 and row["bottleneck"] == "link"
        assert row["player"] == session.player and row["trace"] == "unlimited"
    assert [r["arrival_s"] for r in rows] == sorted(r["arrival_s"] for r in rows)
    metrics = run.metrics(rows)
    assert set(metrics) == set(des.SCENARIO_METRICS)
    assert 0.0 < metrics["fairness_jain_bitrate"] <= 1.0
    assert 0.0 < metrics["link_utilisation"] <= 1.0 + 1e-9


def test_a_scenario_player_alone_on_its_access_link_has_the_fast_engines_row():
    access = Trace([0.0, 7.0], [2e6, 0.5e6], 14.0, name="acc")
    run = des.simulate(scenario(group(count=1, access=access), capacity_bps=None))
    session = run.sessions[0]
    expected = fast.run_session(access, session.ladder, "bola")
    assert_same_log(expected, session.log, "alone in a scenario")
    fast_row = rows_from_batch(fast.run_batch([access], session.ladder, "bola"))[0]
    des_row = run.rows()[0]
    for name in RESULT_FIELDS:
        if name not in ("scenario", "seed"):
            got, expected = des_row[name], fast_row[name]
            assert got == expected or (math.isnan(got) and math.isnan(expected)), name


def test_same_scenario_and_seed_give_identical_results():
    groups = (group("bola", arrivals=Arrivals("poisson", rate_per_s=2.0),
                    setup=SessionSetup(dns_s=Duration("exponential", (0.03,)),
                                       rtt_s=Duration("uniform", (0.02, 0.08)), reuse_connections=False,
                                       connect_s=Duration("uniform", (0.05, 0.2)))),
              group("throughput", model=SABRE, watch_s=Duration("exponential", (30.0,)),
                    arrivals=Arrivals("poisson", rate_per_s=3.0)))
    first = des.simulate(scenario(*groups, abandonment=Abandonment(0.5, 0.5)), seed=11)
    again = des.simulate(scenario(*groups, abandonment=Abandonment(0.5, 0.5)), seed=11)
    other = des.simulate(scenario(*groups, abandonment=Abandonment(0.5, 0.5)), seed=12)

    def strip(rows):
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in rows]

    assert strip(first.rows()) == strip(again.rows())
    for a, b in zip(first.sessions, again.sessions):
        for name in LOG_FIELDS:
            np.testing.assert_array_equal(getattr(a.log, name), getattr(b.log, name))
    assert strip(first.rows()) != strip(other.rows())


def test_no_connection_reuse_adds_a_connection_to_every_later_request():
    setup = SessionSetup(connect_s=Duration.constant(0.15), rtt_s=Duration.constant(0.05),
                         reuse_connections=False)
    run = des.simulate(scenario(group(count=1, setup=setup)))
    log = run.sessions[0].log
    latency = log.first_byte_s - log.request_s
    assert latency[0] == pytest.approx(0.05)
    np.testing.assert_allclose(latency[1:], 0.2)
    reused = des.simulate(scenario(group(count=1, setup=SessionSetup(connect_s=Duration.constant(0.15),
                                                                     rtt_s=Duration.constant(0.05)))))
    np.testing.assert_allclose(reused.sessions[0].log.first_byte_s - reused.sessions[0].log.request_s, 0.05)


def test_watch_time_limits_the_segments_played():
    run = des.simulate(scenario(group(count=3, watch_s=Duration.constant(10.0))))
    for row, session in zip(run.rows(), run.sessions):
        assert session.segments == 3  # 10 s of 4 s segments, rounded up
        assert row["played_s"] == 12.0


def test_viewers_abandon_a_slow_startup_with_the_given_probability():
    # 40 players arrive at once on a 2 Mbit/s link: each first segment (1.2 Mbit) takes 24 s to
    # arrive, far beyond the 3 s threshold; with probability 1 every viewer leaves at 3 s.
    crowd = group(count=40)
    run = des.simulate(scenario(crowd, capacity_bps=2e6, abandonment=Abandonment(3.0, 1.0)))
    rows = run.rows()
    assert all(r["abandoned"] == 1 and r["left_s"] == pytest.approx(3.0) for r in rows)
    assert all(math.isnan(r["startup_s"]) and math.isnan(r["mean_bitrate_bps"]) for r in rows)
    for session in run.sessions:  # the download in flight is logged as abandoned, partly received
        assert session.log.download_count == 1 and session.log.abandoned[0]
        # (the flows start after the 40 ms request latency; with the tcp network, 1448 of every 1500
        # bytes on the link are payload, and a 50 kbit/s share never needs more than the first window)
        received_bits = 2e6 * (3.0 - 0.04) / 40 * crowd.model.payload_factor
        assert session.log.downloaded_bits[0] == pytest.approx(received_bits, rel=1e-6)
    assert run.metrics(rows)["abandoned_share"] == 1.0
    # With probability 0.5 about half leave, and with probability 0 nobody does.
    half = des.simulate(scenario(crowd, capacity_bps=2e6, abandonment=Abandonment(3.0, 0.5)), seed=5)
    assert 0.3 < half.metrics()["abandoned_share"] < 0.7
    none = des.simulate(scenario(crowd, capacity_bps=2e6, abandonment=Abandonment(3.0, 0.0)))
    assert none.metrics()["abandoned_share"] == 0.0


def test_a_viewer_alone_on_its_access_link_can_abandon_too():
    slow = Trace([0.0], [0.2e6], 10.0, name="slow")  # the first segment (1.2 Mbit) takes 6 s
    run = des.simulate(scenario(group(count=1, access=slow), capacity_bps=None,
                                abandonment=Abandonment(2.0, 1.0)))
    session = run.sessions[0]
    assert session.abandoned and session.left_s == pytest.approx(2.0)
    assert session.log.downloaded_bits[0] == pytest.approx(0.2e6 * (2.0 - 0.04))  # after the 40 ms latency


def test_fair_players_on_a_shared_link_get_equal_bitrates():
    run = des.simulate(scenario(group("throughput", count=6), capacity_bps=6e6))
    metrics = run.metrics()
    assert metrics["fairness_jain_bitrate"] > 0.99
    assert metrics["link_busy_utilisation"] == pytest.approx(1.0)


def test_jain_index():
    assert des.jain_index([1.0, 1.0, 1.0]) == 1.0
    assert des.jain_index([1.0, 0.0, 0.0, 0.0]) == 0.25
    assert des.jain_index([2.0, np.nan, 2.0]) == 1.0
    assert math.isnan(des.jain_index([]))


def test_player_needs_some_limit():
    env = simpy.Environment()
    with pytest.raises(ValueError, match="unlimited access link"):
        Player(env, "p", make("bola"), group().ladder, PlayerModel(), AccessLink(None))


POSITIVE_BPS = (0.3e6, 1e6, 2e6, 4e6, 8e6)


@st.composite
def shared_link_scenarios(draw: st.DrawFn) -> Scenario:
    """A few groups of players of any algorithm behind one trace-driven bottleneck."""
    steps = st.lists(st.floats(0.5, 8.0), min_size=4, max_size=4)
    capacity = step_trace(draw(st.lists(st.sampled_from(POSITIVE_BPS), min_size=1, max_size=4)), draw(steps),
                          "link")
    groups = []
    for index in range(draw(st.integers(1, 3))):
        access = None
        if draw(st.booleans()):  # with outages of its own: the link never goes down, so they end
            bandwidths = draw(st.lists(st.sampled_from((0.0, *POSITIVE_BPS)), min_size=1, max_size=4)
                              .filter(any))
            access = step_trace(bandwidths, draw(steps), f"access{index}")
        name = draw(st.sampled_from([n for n in available() if n != "oracle"]))
        model = draw(st.sampled_from((PlayerModel(), SABRE, PENSIEVE, PlayerModel(network="tcp"))))
        arrivals = Arrivals("poisson", rate_per_s=draw(st.floats(0.2, 2.0)))
        players = group(name, count=draw(st.integers(1, 3)), model=model, access=access, arrivals=arrivals)
        groups.append(dataclasses.replace(players, name=f"g{index}"))
    return Scenario(name="prop", groups=tuple(groups), bottleneck=Bottleneck(capacity))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=shared_link_scenarios(), seed=st.integers(0, 2**16))
def test_shared_link_sessions_are_whole_and_conserve_bits_and_time(case, seed):
    run = des.simulate(case, seed=seed)
    delivered_bits = 0.0
    for session, row in zip(run.sessions, run.rows(), strict=True):
        log = session.log
        model = session.model
        assert log.completed.sum() == session.segments == session.ladder.segment_count
        assert np.all(log.request_s <= log.first_byte_s) and np.all(log.first_byte_s <= log.done_s)
        assert np.all(np.diff(log.request_s) >= 0.0)
        assert np.all(log.stall_s >= 0.0) and np.all(log.wait_s >= 0.0)
        assert np.all(log.downloaded_bits <= log.size_bits * (1 + 1e-9))
        assert np.all(log.buffer_after_s <= model.max_buffer_s + session.ladder.segment_duration_s + 1e-9)
        assert row["startup_s"] + row["played_s"] + row["rebuffer_s"] == pytest.approx(log.end_s)
        delivered_bits += float(np.sum(log.downloaded_bits)) / model.payload_factor
    assert run.bottleneck["delivered_bits"] == pytest.approx(delivered_bits, rel=1e-9)


def test_simulate_reports_progress_without_changing_results(monkeypatch):
    """simulate's progress callback (abrsim simulate shows it on a terminal): the simulated time
    grows, the last call has every player done, and the rows are those of a run without it."""
    from abrsim.cli_des import _Progress
    from abrsim.scenario import load_scenario

    scenario = load_scenario("experiments/des_shared_bottleneck.toml")
    plain = des.simulate(scenario).rows()
    monkeypatch.setattr(des, "PROGRESS_INTERVAL_S", 0.0)
    calls = []
    shown = des.simulate(scenario, progress=lambda *args: calls.append(args)).rows()
    assert repr(shown) == repr(plain)  # (NaN != NaN in a plain ==)
    assert len(calls) > 3
    assert calls[-1][1:] == (16, 16)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(calls))
    line = _Progress("simulate x").line(123.4, 4, 16)
    assert "4/16 players done" in line and "123 s simulated" in line
