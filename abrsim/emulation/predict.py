"""Download-time predictions for emulated requests, from abrsim's own download models.

A predictor maps the requests of one run (their link times and sizes) and the link
(:class:`LinkDescription`) to predicted download times. :func:`predict_throughput` is abrsim's
``throughput`` model as the engine applies it today (:mod:`abrsim.engine.step`): one request
latency, then the body's bits at the trace's bandwidth, walking the trace (the trace clock runs
during the latency, ``latency_on_trace_clock``). The request latency is the path's round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abrsim.engine.step import transfer
from abrsim.trace import Trace

__all__ = ["LinkDescription", "predict_tcp", "predict_throughput"]


@dataclass(frozen=True)
class LinkDescription:
    """The emulated path a run used.

    Args:
        trace: the downlink's trace (IP-level capacity, as written for mm-link).
        rtt_s: the base round trip, seconds (twice mm-delay's one-way delay).
        queue_packets: the downlink's drop-tail queue, packets.
        congestion_control: the sender's TCP congestion control.
        slow_start_after_idle: the sender's ``net.ipv4.tcp_slow_start_after_idle``.
    """

    trace: Trace
    rtt_s: float
    queue_packets: int
    congestion_control: str = ""
    slow_start_after_idle: bool = True


def predict_throughput(request_s: Sequence[float] | np.ndarray, size_bytes: Sequence[int] | np.ndarray,
                       link: LinkDescription) -> np.ndarray:
    """abrsim's ``throughput`` model: latency of one RTT, then size over the trace's bandwidth.

    Args:
        request_s: when each request leaves, seconds on the trace's clock.
        size_bytes: each request's body size, bytes.
        link: the path.

    Returns:
        The predicted download times (request to last byte), seconds.
    """
    trace = link.trace
    predicted = np.empty(len(request_s))
    for k, (start_s, size) in enumerate(zip(request_s, size_bytes, strict=True)):
        first_byte_s = float(start_s) + link.rtt_s
        done_s, _, _, _ = transfer(trace.start_s, trace.bandwidth_bps, trace.duration_s, 1.0, first_byte_s,
                                   float(size) * 8, 0.0, 0.0, 0, 0.0, np.inf)
        predicted[k] = done_s - float(start_s)
    return predicted


def predict_tcp(request_s: Sequence[float] | np.ndarray, size_bytes: Sequence[int] | np.ndarray,
                link: LinkDescription, idle_restart: bool | None = None) -> np.ndarray:
    """abrsim's ``tcp`` model, through the engine's own rules (:func:`abrsim.engine.step.tcp_begin`,
    :func:`~abrsim.engine.step.walk_transfer`, :func:`~abrsim.engine.step.tcp_end`), for the
    requests of one connection in order: the window carries from one response to the next.

    Args:
        request_s: when each request leaves, seconds on the trace's clock.
        size_bytes: each request's body size, bytes.
        link: the path; its queue is the model's ``tcp_queue_packets``.
        idle_restart: the model's ``tcp_idle_restart``; default: on for a sender whose congestion
            control does not pace itself (not BBR) with ``tcp_slow_start_after_idle``.

    Returns:
        The predicted download times (request to last byte), seconds.
    """
    from abrsim.engine import step
    from abrsim.ladder import Ladder, Rung
    from abrsim.model import PlayerModel

    if idle_restart is None:
        idle_restart = link.slow_start_after_idle and link.congestion_control != "bbr"
    model = PlayerModel(network="tcp", request_latency_s=link.rtt_s, tcp_queue_packets=link.queue_packets,
                        tcp_idle_restart=idle_restart)
    params = step.model_array(model, Ladder.cbr([Rung(1e6)], 1.0, 1))
    params[step.MP_TIME_LIMIT_S] = np.inf
    trace = link.trace
    cwnd = params[step.MP_TCP_INITIAL_WINDOW]
    last_done_s = -1.0
    sample, loop_start_s = 0, 0.0
    predicted = np.empty(len(request_s))
    for k, (start_s, size) in enumerate(zip(request_s, size_bytes, strict=True)):
        start_s = float(start_s)
        bits = float(size) * 8.0
        first_byte_s = start_s + link.rtt_s
        clock_s, slow_start_bits, cwnd, sample, loop_start_s = step.tcp_begin(
            trace.start_s, trace.bandwidth_bps, trace.duration_s, params, start_s, first_byte_s, 0.0, bits,
            cwnd, last_done_s, link.rtt_s, sample, loop_start_s)
        done_s, sent_bits, sample, loop_start_s = step.walk_transfer(
            trace.start_s, trace.bandwidth_bps, trace.duration_s, params, clock_s, 0.0,
            bits - slow_start_bits, sample, loop_start_s)
        cwnd = step.tcp_end(cwnd, sent_bits, trace.bandwidth_bps[sample], link.rtt_s, True, params)
        last_done_s = done_s
        predicted[k] = done_s - start_s
    return predicted
