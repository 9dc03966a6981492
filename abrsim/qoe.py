"""QoE metrics: the one definition of every number abrsim reports per session.

All metrics are computed from a session's per-segment log by one compiled
kernel, so a single session and a batch of thousands give identical numbers.

Definitions (segment ``i`` played at rung ``q_i`` with nominal bitrate ``R_i``):

- ``startup_s``: time from the first request until playback starts.
- ``rebuffer_s``: time playback was stalled after it started (startup excluded).
- ``rebuffer_count``: number of stalls (a stall spanning several downloads counts once).
- ``played_s``: media played, seconds (the whole title: viewers do not quit yet).
- ``rebuffer_ratio``: ``rebuffer_s / (played_s + rebuffer_s)``, the stalled share of watch time.
- ``mean_bitrate_bps``: mean of ``R_i`` over played segments.
- ``mean_quality``: mean of the ladder's per-segment quality (e.g. VMAF); NaN without one.
- ``switch_count``: number of ``i`` with ``q_i != q_{i-1}``.
- ``switch_magnitude_bps``: mean ``|R_i - R_{i-1}|`` over those switches (0 without switches).
- ``qoe_lin``: Pensieve's linear QoE (Mao et al., SIGCOMM 2017, Sec. 5.1), summed over all
  segments: ``sum R_i/1e6 - 4.3 * rebuffer_s - sum |R_i - R_{i-1}|/1e6`` (R in Mbit/s).
- ``downloaded_bits``: bits transferred, including wasted ones.
- ``wasted_bits``: bits of downloads that were thrown away (abandoned); 0 without abandonment.
- ``abandoned``: 1 if the viewer left before playback ended, else 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["METRICS", "REBUFFER_PENALTY_LIN", "metrics_table"]

#: Metric names, in the column order of :func:`metrics_table`.
METRICS = (
    "startup_s",
    "rebuffer_s",
    "rebuffer_count",
    "rebuffer_ratio",
    "played_s",
    "mean_bitrate_bps",
    "mean_quality",
    "switch_count",
    "switch_magnitude_bps",
    "qoe_lin",
    "abandoned",
    "wasted_bits",
    "downloaded_bits",
)

#: Rebuffering penalty of QoE_lin, per second of stall (Pensieve's REBUF_PENALTY).
REBUFFER_PENALTY_LIN = 4.3


@njit(cache=True)
def _session_metrics(rungs, stall_s, size_bits, bitrates_bps, quality, startup_s, rebuffer_count,
                     segment_duration_s, out):
    segments = rungs.shape[0]
    rebuffer_s = 0.0
    bitrate_sum_bps = 0.0
    quality_sum = 0.0
    switch_sum_bps = 0.0
    switches = 0
    downloaded_bits = 0.0
    for index in range(segments):
        rate_bps = bitrates_bps[rungs[index]]
        rebuffer_s += stall_s[index]
        bitrate_sum_bps += rate_bps
        downloaded_bits += size_bits[index]
        if quality.shape[0] > 0:
            quality_sum += quality[index, rungs[index]]
        if index > 0 and rungs[index] != rungs[index - 1]:
            switches += 1
            switch_sum_bps += abs(rate_bps - bitrates_bps[rungs[index - 1]])
    played_s = segments * segment_duration_s
    out[0] = startup_s
    out[1] = rebuffer_s
    out[2] = rebuffer_count
    out[3] = rebuffer_s / (played_s + rebuffer_s)
    out[4] = played_s
    out[5] = bitrate_sum_bps / segments
    out[6] = quality_sum / segments if quality.shape[0] > 0 else np.nan
    out[7] = switches
    out[8] = switch_sum_bps / switches if switches > 0 else 0.0
    out[9] = (bitrate_sum_bps - switch_sum_bps) / 1e6 - 4.3 * rebuffer_s
    out[10] = 0.0
    out[11] = 0.0
    out[12] = downloaded_bits


@njit(cache=True)
def _metrics_batch(rungs, stall_s, size_bits, bitrates_bps, quality, startup_s, rebuffer_count,
                   segment_duration_s, segments, out):
    for index in range(out.shape[0]):
        rows = slice(index * segments, (index + 1) * segments)
        _session_metrics(rungs[rows], stall_s[rows], size_bits[rows], bitrates_bps, quality,
                         startup_s[index], rebuffer_count[index], segment_duration_s, out[index])


def metrics_table(
    rungs: np.ndarray,
    stall_s: np.ndarray,
    size_bits: np.ndarray,
    startup_s: np.ndarray,
    rebuffer_count: np.ndarray,
    bitrates_bps: np.ndarray,
    quality: np.ndarray | None,
    segment_duration_s: float,
) -> np.ndarray:
    """Metrics of sessions whose logs are concatenated, one row per session (columns: METRICS).

    Args:
        rungs: rung of every segment, sessions one after the other.
        stall_s: stall time accrued while fetching each segment, seconds.
        size_bits: bits downloaded for each segment.
        startup_s: startup delay of each session, seconds.
        rebuffer_count: stalls of each session.
        bitrates_bps: the ladder's nominal bitrates, bit/s.
        quality: the ladder's ``quality[segment, rung]``, or None.
        segment_duration_s: segment duration, seconds.
    """
    sessions = startup_s.shape[0]
    segments = rungs.shape[0] // max(sessions, 1)
    out = np.empty((sessions, len(METRICS)), dtype=np.float64)
    table = np.zeros((0, 0)) if quality is None else np.ascontiguousarray(quality, dtype=np.float64)
    _metrics_batch(rungs, stall_s, size_bits, bitrates_bps, table, np.asarray(startup_s, np.float64),
                   np.asarray(rebuffer_count, np.float64), float(segment_duration_s), segments, out)
    return out
