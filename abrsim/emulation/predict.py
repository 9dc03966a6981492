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

__all__ = ["LinkDescription", "predict_throughput"]


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
