"""abrsim traces as Mahimahi link traces, and the link traces an emulation run uses.

Mahimahi's ``mm-link`` reads one line per 1500-byte delivery opportunity, the millisecond at
which it occurs, and replays the file in a loop whose period is the last line (Netravali et
al., "Mahimahi: Accurate Record-and-Replay for HTTP", USENIX ATC 2015). :func:`write_link_trace`
writes any :class:`~abrsim.trace.Trace` that way through :func:`abrsim.trace.write_mahimahi`,
which keeps the cumulative bits to within half a packet up to every whole millisecond. Two
things need care, and are handled here:

* **Length.** The loop period is whole milliseconds; a trace whose duration is not is refused
  (its emulated clock would drift from abrsim's by the remainder on every pass).
* **Looping.** Each pass of the file rounds its bits to whole packets, so a short pass (a 1 s
  constant trace at 5 Mbit/s is 416.7 packets) would loop with a rate error of up to half a
  packet per pass. The trace is written as ``passes`` repetitions so that one period of the file
  lasts at least ``min_period_s``; the file's loop then coincides with the trace's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abrsim.trace import Trace, write_mahimahi

__all__ = [
    "PACKET_BYTES",
    "LinkTrace",
    "constant_trace",
    "repeat_trace",
    "trace_stretch",
    "write_link_trace",
]

PACKET_BYTES = 1500
"""Bytes per Mahimahi delivery opportunity (an IP packet of up to 1500 bytes)."""


@dataclass(frozen=True)
class LinkTrace:
    """A Mahimahi link trace written for one trace.

    Args:
        path: the file.
        passes: how many passes of the trace one period of the file holds.
        period_s: the file's loop period, seconds (``passes`` times the trace's duration).
        packets: delivery opportunities in one period.
    """

    path: Path
    passes: int
    period_s: float
    packets: int

    @property
    def mean_rate_bps(self) -> float:
        """The file's mean delivery rate, bit/s (IP bytes, headers included)."""
        return self.packets * PACKET_BYTES * 8 / self.period_s


def constant_trace(rate_bps: float, duration_s: float = 1.0, name: str = "") -> Trace:
    """A one-sample trace of ``rate_bps`` lasting ``duration_s`` (it loops).

    Raises:
        ValueError: if ``rate_bps`` is not > 0 (from :class:`~abrsim.trace.Trace`).
    """
    if not rate_bps > 0:
        raise ValueError(f'"rate_bps" must be > 0, got {rate_bps!r}')
    return Trace(np.array([0.0]), np.array([float(rate_bps)]), duration_s, name=name or f"{rate_bps:g}bps")


def repeat_trace(trace: Trace, passes: int) -> Trace:
    """``passes`` consecutive passes of ``trace`` as one trace (latencies dropped).

    Raises:
        ValueError: if ``passes`` is not an integer >= 1.
    """
    if isinstance(passes, bool) or not isinstance(passes, (int, np.integer)) or passes < 1:
        raise ValueError(f'"passes" must be an integer >= 1, got {passes!r}')
    offsets_s = np.repeat(np.arange(passes) * trace.duration_s, trace.start_s.size)
    return Trace(
        np.tile(trace.start_s, passes) + offsets_s,
        np.tile(trace.bandwidth_bps, passes),
        trace.duration_s * passes,
        name=trace.name,
    )


def trace_stretch(trace: Trace, start_s: float, duration_s: float) -> Trace:
    """The part of ``trace`` from ``start_s`` lasting ``duration_s``, as a trace starting at 0.

    The stretch may cross the trace's end (the trace loops). It must carry some bandwidth.

    Raises:
        ValueError: if ``duration_s`` is not > 0 or the stretch has no bandwidth at all.
    """
    if not duration_s > 0:
        raise ValueError(f'"duration_s" must be > 0, got {duration_s!r}')
    start_s = float(start_s) % trace.duration_s
    passes = math.ceil((start_s + duration_s) / trace.duration_s) + 1
    looped = repeat_trace(trace, passes)
    first = int(np.searchsorted(looped.start_s, start_s, side="right") - 1)
    last = int(np.searchsorted(looped.start_s, start_s + duration_s, side="left"))
    starts_s = looped.start_s[first:last] - start_s
    starts_s[0] = 0.0
    return Trace(starts_s, looped.bandwidth_bps[first:last], duration_s,
                 name=f"{trace.name}@{start_s:g}s+{duration_s:g}s")


def write_link_trace(trace: Trace, path: str | Path, *, min_period_s: float = 30.0) -> LinkTrace:
    """Write ``trace`` as a Mahimahi link trace whose loop matches the trace's.

    Args:
        trace: the trace (capacity at the IP layer: every 1500 bytes of it is one packet).
        path: the file to create or overwrite.
        min_period_s: repeat the trace until one period of the file lasts at least this long,
            seconds, so that rounding to whole packets per period costs at most half a packet
            in ``min_period_s``.

    Returns:
        What was written.

    Raises:
        ValueError: if the trace's duration is not a whole number of milliseconds.
        InputError: if the trace carries less than one packet per period
            (from :func:`~abrsim.trace.write_mahimahi`).
    """
    duration_ms = trace.duration_s * 1000
    if abs(duration_ms - round(duration_ms)) > 1e-6:
        raise ValueError(
            f"the trace's duration_s must be whole milliseconds for a Mahimahi loop, got {trace.duration_s!r}"
        )
    passes = max(1, math.ceil(min_period_s / trace.duration_s - 1e-9))
    target = write_mahimahi(repeat_trace(trace, passes), path, drop_latency=True)
    timestamps_ms = np.loadtxt(target, dtype=np.int64, ndmin=1)
    return LinkTrace(path=target, passes=passes, period_s=int(timestamps_ms[-1]) / 1000,
                     packets=int(timestamps_ms.size))
