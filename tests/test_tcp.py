"""The tcp network model (issue 15): hand-worked cases, properties, and every engine agreeing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abrsim.abr import load_policy
from abrsim.emulation.predict import LinkDescription, predict_tcp, predict_throughput
from abrsim.engine import des, fast, step
from abrsim.errors import InputError
from abrsim.ladder import Ladder, Rung
from abrsim.model import PlayerModel
from abrsim.trace import Trace

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
MSS_BITS = 1448 * 8.0
PACKET_BITS = 1500 * 8.0


def params(**fields) -> np.ndarray:
    values = step.model_array(PlayerModel(network="tcp", **fields), Ladder.cbr([Rung(1e6)], 1.0, 1))
    values[step.MP_TIME_LIMIT_S] = np.inf
    return values


def one_response(rate_bps, rtt_s, size_bits, cwnd=10.0, **fields):
    """(done_s, cwnd after) of one response on a constant link, first byte at rtt_s."""
    trace = Trace([0.0], [rate_bps], 100.0)
    p = params(**fields)
    walk = (trace.start_s, trace.bandwidth_bps, trace.duration_s, p)
    clock_s, slow_bits, cwnd, sample, loop_start_s = step.tcp_begin(
        *walk, 0.0, rtt_s, 0.0, size_bits, cwnd, -1.0, rtt_s, 0, 0.0)
    done_s, sent_bits, sample, _ = step.walk_transfer(*walk, clock_s, 0.0, size_bits - slow_bits, sample,
                                                      loop_start_s)
    assert slow_bits + sent_bits == pytest.approx(size_bits)
    return done_s, step.tcp_end(cwnd, sent_bits, rate_bps, rtt_s, True, p)


def test_a_small_response_on_a_new_connection_takes_two_round_trips():
    # 14 packets at 10 Mbit/s, 100 ms: the pipe holds 83 packets. Round one sends the initial
    # window (10), the last 4 follow one round trip later, back to back at the link's rate.
    size_bits = 14 * MSS_BITS
    done_s, cwnd = one_response(10e6, 0.1, size_bits)
    payload_bps = 10e6 * 1448 / 1500
    assert done_s == pytest.approx(0.1 + 0.1 + 4 * MSS_BITS / payload_bps)
    assert cwnd == pytest.approx(20 + 4)  # doubled after round one, one more per packet streamed


def test_a_window_that_fills_the_pipe_streams_at_once():
    size_bits = 500 * MSS_BITS
    done_s, _ = one_response(10e6, 0.1, size_bits, cwnd=100.0)  # 100 >= 83 packets in flight
    assert done_s == pytest.approx(0.1 + size_bits / (10e6 * 1448 / 1500))


def test_the_window_is_held_at_the_pipe_plus_the_queue():
    _, cwnd = one_response(10e6, 0.1, 10_000 * MSS_BITS, cwnd=100.0, tcp_queue_packets=50)
    assert cwnd == pytest.approx(10e6 * 0.1 / PACKET_BITS + 50)


@pytest.mark.parametrize(("idle_s", "restart", "expected"), [
    (1.0, True, 12.0),  # RTO 0.3 s: 0.7 s past the first RTO, halved per RTO: 100 -> 50 -> 25 -> 12
    (0.25, True, 100.0),  # shorter than the RTO
    (1.0, False, 100.0),  # BBR keeps its window
    (100.0, True, 10.0),  # never below the initial window
])
def test_slow_start_restart_after_idle_halves_per_rto(idle_s, restart, expected):
    p = params(tcp_idle_restart=restart)
    assert step.tcp_restart(100.0, idle_s, 0.1, p) == expected


def test_an_abandoned_response_closes_the_connection():
    p = params()
    assert step.tcp_end(400.0, 1e6, 10e6, 0.1, False, p) == 10.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate_bps=st.floats(1e5, 1e9), rtt_s=st.floats(0.001, 0.5), size_bits=st.floats(1e3, 1e8),
       cwnd=st.floats(1.0, 5000.0))
def test_never_faster_than_the_link_and_monotone_in_size_and_rtt(rate_bps, rtt_s, size_bits, cwnd):
    cwnd = float(int(cwnd))
    done_s, _ = one_response(rate_bps, rtt_s, size_bits, cwnd)
    assert done_s >= rtt_s + size_bits / (rate_bps * 1448 / 1500) * (1 - 1e-12)
    assert one_response(rate_bps, rtt_s, size_bits * 1.5, cwnd)[0] >= done_s
    assert one_response(rate_bps, rtt_s * 1.5, size_bits, cwnd)[0] >= done_s


def test_predictions_for_the_benchmark_use_the_same_rules():
    link = LinkDescription(Trace([0.0], [10e6], 100.0), 0.1, 100, "cubic", True)
    tcp = predict_tcp([0.0, 5.0], [14 * 1448, 14 * 1448], link)
    assert tcp[0] == pytest.approx(0.2 + 4 * MSS_BITS / (10e6 * 1448 / 1500))
    # After 4.8 s idle (> RTO) CUBIC restarts from 10 packets: the same two round trips again.
    assert tcp[1] == pytest.approx(tcp[0])
    bbr = predict_tcp([0.0, 5.0], [14 * 1448, 14 * 1448], LinkDescription(link.trace, 0.1, 100, "bbr", True))
    assert bbr[1] < bbr[0]  # BBR kept its window of 24: one round trip
    assert (predict_throughput([0.0], [14 * 1448], link) < tcp[0]).all()


# -- the model in the engines ------------------------------------------------------------------------

TRACES = [Trace(np.arange(60.0), np.random.default_rng(i).uniform(3e5, 8e6, 60), 60.0, name=f"t{i}")
          for i in range(3)]
LADDER = Ladder.cbr([Rung(b) for b in (3e5, 7.5e5, 1.2e6, 2.85e6, 4.3e6)], 2.0, 40, name="five")


@pytest.mark.parametrize("abandonment", [False, True])
def test_the_discrete_event_player_alone_on_its_link_equals_the_fast_engine(abandonment):
    model = PlayerModel(network="tcp", abandonment=abandonment, tcp_idle_restart=True)
    batch = fast.run_batch(TRACES, LADDER, "bola", model)
    for index, trace in enumerate(TRACES):
        alone = des.run_session(trace, LADDER, "bola", model)
        log = batch.session_log(index)
        np.testing.assert_array_equal(alone.rung, log.rung)
        np.testing.assert_allclose(alone.done_s, log.done_s, rtol=1e-12)


def test_a_python_policy_runs_the_same_tcp_sessions_as_its_compiled_twin():
    python = load_policy(f"{EXAMPLES / 'buffer_based.py'}:BufferBased")
    compiled = load_policy(f"{EXAMPLES / 'buffer_based_numba.py'}:bb_numba")
    model = PlayerModel(network="tcp", tcp_idle_restart=True)
    a = fast.run_batch(TRACES, LADDER, python, model)
    b = fast.run_batch(TRACES, LADDER, compiled, model)
    np.testing.assert_array_equal(a.rungs, b.rungs)
    np.testing.assert_allclose(a.log, b.log, rtol=1e-12)


def test_tcp_costs_time_the_throughput_model_does_not_see():
    tcp = fast.run_batch(TRACES, LADDER, "throughput", PlayerModel(network="tcp"))
    plain = fast.run_batch(TRACES, LADDER, "throughput", PlayerModel(network="throughput"))
    # The traces are goodput: tcp reads them as capacity x 1500/1448, so once the window fills the
    # pipe a download moves at the trace's rate, as with throughput; slow start only adds time.
    first = [tcp.session_log(i).done_s[0] for i in range(3)]
    plain_first = [plain.session_log(i).done_s[0] for i in range(3)]
    assert all(t >= p * (1 - 1e-12) for t, p in zip(first, plain_first, strict=True))
    assert any(t > p + 0.01 for t, p in zip(first, plain_first, strict=True))


def test_a_goodput_trace_is_read_as_capacity_by_tcp_and_a_capacity_trace_as_it_is():
    goodput = Trace([0.0], [10e6], 100.0)
    capacity = Trace([0.0], [10e6], 100.0, measures="capacity")
    model = PlayerModel(network="tcp")
    assert model.link_trace(goodput).bandwidth_bps[0] == pytest.approx(10e6 * 1500 / 1448)
    assert model.link_trace(capacity) is capacity
    assert PlayerModel(network="throughput").link_trace(goodput) is goodput
    big = Ladder.cbr([Rung(5e6)], 4.0, 5)
    on_goodput = fast.run_batch([goodput], big, "bola", model).session_log(0)
    on_capacity = fast.run_batch([capacity], big, "bola", model).session_log(0)
    # The last segment streams at the payload rate: 10 Mbit/s of goodput, 1448/1500 of capacity.
    last_goodput = on_goodput.done_s[-1] - on_goodput.first_byte_s[-1]
    last_capacity = on_capacity.done_s[-1] - on_capacity.first_byte_s[-1]
    assert last_goodput == pytest.approx(20e6 / 10e6, rel=1e-9)
    assert last_capacity == pytest.approx(20e6 / (10e6 * 1448 / 1500), rel=1e-9)


@pytest.mark.parametrize("abandonment", [False, True])
def test_a_lone_player_on_a_shared_link_runs_the_same_tcp_session_as_the_fast_engine(abandonment):
    # Slow start as a window limit on the link's flow (Player._slow_start) or as rounds on the
    # trace (step.walk_tcp): one rule (step.tcp_round_bits), the same session, behind a bottleneck
    # whose capacity is the trace or behind an access link that is. (Constant capacities: a round
    # in the trace walk delivers its window whatever the capacity does inside it.)
    import simpy

    from abrsim.abr import make
    from abrsim.engine.link import AccessLink, Link
    from abrsim.engine.player import Player

    model = PlayerModel(network="tcp", abandonment=abandonment)
    for bandwidth_bps in (1e6, 3e6, 2e7, 1e8):
        trace = Trace([0.0], [bandwidth_bps], 100.0, measures="capacity")
        for name in ("bola", "throughput", "robustmpc"):
            expected = fast.run_session(trace, LADDER, name, model)
            for bottleneck, access in ((trace, None), (Trace([0.0], [1e12], 1.0), trace)):
                env = simpy.Environment()
                own = AccessLink(model.link_trace(access), model.payload_factor)
                player = Player(env, "p", make(name), LADDER, model, own, Link(env, bottleneck))
                player.start()
                env.run()
                got = player.result().log
                np.testing.assert_array_equal(got.rung, expected.rung)
                np.testing.assert_allclose(got.done_s, expected.done_s, rtol=1e-10)
                np.testing.assert_allclose(got.downloaded_bits, expected.downloaded_bits, rtol=1e-9)


def shared_link_text(network: str, cdn: str = "") -> str:
    return ('name = "shared"\nseed = 3\nladder = "hls"\n[bottleneck]\nbandwidth_bps = 50e6\n'
            '[setup]\nrtt_s = 0.04\n[[players]]\nabr = "bola"\ncount = 8\nwatch_s = 40\n'
            'arrivals = { process = "poisson", rate_per_s = 1.0 }\n'
            f'model = {{ fields = {{ network = "{network}" }} }}\n' + cdn)


TWO_TIERS = ('[cdn]\ntitles = 3\n[[cdn.tiers]]\nname = "edge"\ncapacity_bytes = 1e9\nrtt_s = 0.005\n'
             'serving_bandwidth_bps = 400e6\n[[cdn.tiers]]\nname = "origin"\nrtt_s = 0.05\n')


@pytest.mark.parametrize("cdn", ["", TWO_TIERS])
def test_tcp_players_sharing_a_link_pay_for_slow_start(tmp_path, cdn):
    from abrsim.engine.des import simulate
    from abrsim.scenario import load_scenario

    runs = {}
    for network in ("throughput", "tcp"):
        path = tmp_path / f"{network}.toml"
        path.write_text(shared_link_text(network, cdn))
        runs[network] = simulate(load_scenario(path))
    startup = {network: np.mean([row["startup_s"] for row in run.rows()]) for network, run in runs.items()}
    assert startup["tcp"] > startup["throughput"] + 0.05  # a few round trips per first segment
    for session in runs["tcp"].sessions:
        assert session.log.completed.sum() == session.segments
    # Every bit a tcp player received crossed the bottleneck as packets (headers included).
    payload_factor = PlayerModel(network="tcp").payload_factor
    received_bits = sum(float(np.sum(s.log.downloaded_bits)) for s in runs["tcp"].sessions)
    assert runs["tcp"].bottleneck["delivered_bits"] == pytest.approx(received_bits / payload_factor, rel=1e-9)
    # Windows smaller than the pipe leave it idle now and then, which sharing alone never does.
    assert runs["tcp"].bottleneck["busy_utilisation"] < 1.0 - 1e-6
    assert runs["throughput"].bottleneck["busy_utilisation"] == pytest.approx(1.0)


def test_model_fields_are_checked():
    with pytest.raises(InputError, match="network"):
        PlayerModel().replace(network="quic")
    with pytest.raises(InputError, match="tcp_mss_bytes"):
        PlayerModel().replace(tcp_mss_bytes=2000)


def test_traces_say_what_they_measure_and_keep_it_through_files(tmp_path):
    from click.testing import CliRunner

    from abrsim.cli import cli
    from abrsim.trace import load_trace, write_abrsim_csv, write_mahimahi

    capacity = Trace([0.0, 1.0], [12e6, 24e6], 2.0, name="c", measures="capacity")
    path = write_abrsim_csv(capacity, tmp_path / "c.csv")
    assert "# measures=capacity" in path.read_text()
    assert load_trace(path).measures == "capacity"
    assert load_trace(write_abrsim_csv(Trace([0.0], [1e6], 1.0), tmp_path / "g.csv")).measures == "goodput"
    write_mahimahi(capacity, tmp_path / "m.trace")
    assert load_trace(tmp_path / "m.trace", "mahimahi").measures == "capacity"
    (tmp_path / "bad.csv").write_text("# measures=bandwidth\ntime_s,bandwidth_mbps\n0,1\n1,2\n")
    result = CliRunner().invoke(cli, ["traces", "stats", str(tmp_path / "bad.csv")])
    assert result.exit_code == 2 and "bad.csv:1" in result.output and "measures" in result.output
    result = CliRunner().invoke(cli, ["traces", "stats", str(path)])
    assert result.exit_code == 0 and "capacity" in result.output
    with pytest.raises(ValueError, match="measures"):
        Trace([0.0], [1e6], 1.0, measures="bandwidth")


def test_the_offline_optimum_refuses_the_tcp_network():
    from abrsim.oracle import optimal_session, replay_rungs

    with pytest.raises(InputError, match="throughput network"):
        optimal_session(TRACES[0], LADDER, PlayerModel(network="tcp"))
    with pytest.raises(InputError, match="throughput network"):
        replay_rungs(TRACES[0], LADDER, PlayerModel(network="tcp"), [0] * LADDER.segment_count)
