"""The emulation harness (issue 15): link traces, link logs, the payload server, and real runs.

The unit tests need nothing special. The ``emulation`` tests download through Mahimahi with
the kernel's TCP; they need root and ``tools/emulation/emulation.sh up``, and skip with the
reason otherwise.
"""

from __future__ import annotations

import http.client

import numpy as np
import pytest

from abrsim.emulation import (
    PayloadServer,
    constant_trace,
    emulation_unavailable,
    read_link_log,
    repeat_trace,
    run_downloads,
    trace_stretch,
    write_link_trace,
)
from abrsim.emulation.predict import LinkDescription, predict_tcp, predict_throughput
from abrsim.errors import InputError
from abrsim.trace import Trace, read_mahimahi

# Bytes of IP + TCP header (with timestamps) per packet, and of the tun header mm-link logs.
IP_TCP_HEADER_BYTES = 52
TUN_HEADER_BYTES = 4
MSS_BYTES = 1448


def cumulative_bits(trace: Trace, times_s: np.ndarray) -> np.ndarray:
    edges = np.append(trace.start_s, trace.duration_s)
    cumulative = np.concatenate(([0.0], np.cumsum(trace.bandwidth_bps * trace.sample_duration_s)))
    return np.interp(times_s, edges, cumulative)


# ---------------------------------------------------------------------------------------------
# Link traces
# ---------------------------------------------------------------------------------------------


def test_constant_link_trace_is_repeated_to_whole_packets(tmp_path):
    link = write_link_trace(constant_trace(5e6), tmp_path / "link", min_period_s=30.0)
    assert link.passes == 30
    assert link.period_s == 30.0
    assert link.packets == 12500  # 5e6 * 30 / 12000, exactly
    assert link.mean_rate_bps == 5e6
    timestamps_ms = np.loadtxt(link.path, dtype=np.int64)
    assert timestamps_ms[-1] == 30000
    assert np.all(np.diff(timestamps_ms) >= 0)


def test_one_pass_of_a_short_trace_would_round_the_rate(tmp_path):
    # 5 Mbit/s for 1 s is 416.7 packets: one pass per period would loop at 417 (+0.08 %).
    single = write_link_trace(constant_trace(5e6), tmp_path / "one", min_period_s=0.0)
    assert (single.passes, single.packets) == (1, 417)
    repeated = write_link_trace(constant_trace(5e6), tmp_path / "many", min_period_s=30.0)
    assert abs(repeated.mean_rate_bps - 5e6) < abs(single.mean_rate_bps - 5e6)


def test_step_trace_round_trips_within_half_a_packet(tmp_path):
    trace = Trace([0.0, 2.0], [5e6, 1e6], 5.0, name="step")
    link = write_link_trace(trace, tmp_path / "step", min_period_s=10.0)
    assert link.passes == 2
    back = read_mahimahi(link.path, bin_ms=100)
    edges_s = np.arange(0, 10.001, 0.1)
    written = cumulative_bits(back, edges_s)
    wanted = cumulative_bits(repeat_trace(trace, 2), edges_s)
    assert np.max(np.abs(written - wanted)) <= 6000 + 1e-6
    assert back.duration_s == 10.0
    # 5 Mbit/s is 41.7 packets per 100 ms bin: bins hold 41 or 42, whole seconds hold the rate
    windows_bits = np.diff(cumulative_bits(back, np.array([0.0, 2.0, 5.0, 7.0])))
    assert windows_bits == pytest.approx([10e6, 3e6, 10e6], abs=12000)


def test_link_trace_needs_whole_milliseconds(tmp_path):
    with pytest.raises(ValueError, match="whole milliseconds"):
        write_link_trace(Trace([0.0], [5e6], 1.0005), tmp_path / "x")


def test_link_trace_needs_a_packet(tmp_path):
    with pytest.raises(InputError, match="at least one"):
        write_link_trace(Trace([0.0], [1.0], 1.0), tmp_path / "x", min_period_s=1.0)


def test_trace_stretch_crosses_the_end():
    trace = Trace([0.0, 4.0, 8.0], [1e6, 2e6, 3e6], 10.0, name="t")
    stretch = trace_stretch(trace, 7.0, 6.0)
    assert stretch.start_s.tolist() == [0.0, 1.0, 3.0]
    assert stretch.bandwidth_bps.tolist() == [2e6, 3e6, 1e6]
    assert stretch.duration_s == 6.0
    with pytest.raises(ValueError, match="duration_s"):
        trace_stretch(trace, 0.0, 0.0)


# ---------------------------------------------------------------------------------------------
# Link logs
# ---------------------------------------------------------------------------------------------


def test_read_link_log(tmp_path):
    path = tmp_path / "down.log"
    path.write_text(
        "# mahimahi mm-link (Downlink) [trace] > down.log\n"
        "# queue: droptail [packets=100]\n"
        "# init timestamp: 1700000000000\n"
        "# base timestamp: 40\n"
        "41 + 1504\n41 # 1504\n41 - 1504 0\n45 + 64\n47 - 64 2\n"
    )
    log = read_link_log(path)
    assert log.queue == "droptail [packets=100]"
    assert log.zero_realtime_s == pytest.approx(1700000000.04)
    assert log.arrival_s.tolist() == pytest.approx([0.001, 0.005])
    assert log.departure_bytes.tolist() == [1504, 64]
    assert log.departure_delay_s.tolist() == [0.0, 0.002]
    assert log.opportunity_s.tolist() == pytest.approx([0.001])
    assert log.drops == 0


def test_read_link_log_names_the_bad_line(tmp_path):
    path = tmp_path / "down.log"
    path.write_text("# init timestamp: 1\n# base timestamp: 0\n1 + x\n")
    with pytest.raises(InputError, match=":3: cannot parse"):
        read_link_log(path)


# ---------------------------------------------------------------------------------------------
# The payload server (loopback, no root)
# ---------------------------------------------------------------------------------------------


def test_payload_server_keeps_the_connection():
    with PayloadServer("127.0.0.1") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        sizes = [0, 1, 20_000, 3_000_000]
        for size in sizes:
            connection.request("GET", f"/bytes/{size}")
            response = connection.getresponse()
            assert response.status == 200
            assert len(response.read()) == size
        connection.request("GET", "/nothing")
        assert connection.getresponse().status == 400
        connection.close()
    assert [answer.size_bytes for answer in server.served] == sizes
    assert {answer.connection for answer in server.served} == {0}
    assert all(answer.before.mss_bytes > 0 for answer in server.served)


# ---------------------------------------------------------------------------------------------
# Real runs through Mahimahi
# ---------------------------------------------------------------------------------------------

_REASON = emulation_unavailable()
needs_emulation = pytest.mark.skipif(_REASON is not None, reason=f"emulation unavailable: {_REASON}")


def wire_s(body_bytes: int, rate_bps: float) -> float:
    """Time on a link of ``rate_bps`` (IP bytes) for a body in full-MSS packets."""
    return body_bytes / MSS_BYTES * (MSS_BYTES + IP_TCP_HEADER_BYTES) * 8 / rate_bps


@pytest.mark.emulation
@needs_emulation
def test_constant_link_downloads_in_the_expected_time():
    rtt_s = 0.04
    run = run_downloads(5e6, [(1_000_000, 0.0)], one_way_delay_s=rtt_s / 2, queue_packets=100)
    (record,) = run.records
    expected_s = rtt_s + wire_s(1_000_000 + record.header_bytes, 5e6)
    assert record.download_s == pytest.approx(expected_s, rel=0.10)
    assert record.request_s == pytest.approx(0.5, abs=0.005)
    assert record.request_s < record.server_received_s < record.first_byte_s < record.done_s
    assert record.first_byte_s - record.request_s >= rtt_s
    assert abs(run.clock_check_s) < 0.01
    assert record.retransmits == 0


@pytest.mark.emulation
@needs_emulation
def test_step_trace_is_followed():
    trace = Trace([0.0, 2.0], [5e6, 1e6], 8.0, name="step")
    run = run_downloads(trace, [(1_300_000, 0.0)], one_way_delay_s=0.01, queue_packets=100)
    (record,) = run.records
    departures_s, departed_bytes = run.downlink.departure_s, run.downlink.departure_bytes

    def delivered_bps(start_s, end_s):
        inside = (departures_s >= start_s) & (departures_s < end_s)
        return departed_bytes[inside].sum() * 8 / (end_s - start_s)

    assert delivered_bps(1.0, 2.0) == pytest.approx(5e6, rel=0.10)
    assert delivered_bps(3.0, 4.5) == pytest.approx(1e6, rel=0.10)
    link = LinkDescription(trace, 0.02, 100)
    # abrsim's tcp model counts the headers and the window's growth: within 0.3-0.7 % here.
    (tcp_s,) = predict_tcp([record.request_s], [record.size_bytes], link)
    assert record.download_s == pytest.approx(tcp_s, rel=0.05)
    # The throughput model counts neither, so it is early by the headers' share of what the fast
    # phase carried, paid again five times over at the slow rate: 8.6-9.1 % here. (Asked for
    # within 10 %, it failed one CI run in four, at 10.1 %.)
    (throughput_s,) = predict_throughput([record.request_s], [record.size_bytes], link)
    assert throughput_s < record.download_s < throughput_s * 1.15


@pytest.mark.emulation
@needs_emulation
def test_link_log_carries_what_the_client_received():
    run = run_downloads(20e6, [(300_000, 0.0), (20_000, 0.2), (700_000, 0.0)], one_way_delay_s=0.005,
                        queue_packets=1000)
    assert run.downlink.drops == 0
    assert sum(record.retransmits for record in run.records) == 0
    packet_bytes = run.downlink.departure_bytes - TUN_HEADER_BYTES
    # payload ~ IP length - IP/TCP headers; the few control packets with longer options (SYN-ACK,
    # a handful of 76-byte ones) add some tens of bytes, never a packet
    payload_bytes = int(np.sum(packet_bytes - IP_TCP_HEADER_BYTES))
    http_bytes = sum(record.size_bytes + record.header_bytes for record in run.records)
    assert 0 <= payload_bytes - http_bytes <= 200
    data_packets = packet_bytes[packet_bytes > 100]
    assert data_packets.size == pytest.approx(http_bytes / MSS_BYTES, abs=len(run.records) + 1)
    uplink_payload = int(np.sum(run.uplink.departure_bytes - TUN_HEADER_BYTES - IP_TCP_HEADER_BYTES))
    assert 0 <= uplink_payload - sum(record.request_bytes for record in run.records) <= 200
