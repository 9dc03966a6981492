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
- ``mean_quality_change``: mean absolute quality change between consecutive played segments
  (every pair, switch or not); NaN without quality.
- ``below_quality_floor_s``: media played at a quality below :data:`QUALITY_FLOOR` (60 on
  VMAF's scale, where "fair" begins), seconds; NaN without quality.
- ``switch_count``: number of ``i`` with ``q_i != q_{i-1}``.
- ``switch_magnitude_bps``: mean ``|R_i - R_{i-1}|`` over those switches (0 without switches).
- ``qoe_lin``: Pensieve's linear QoE (Mao et al., SIGCOMM 2017, Sec. 5.1), summed over all
  segments: ``sum R_i/1e6 - 4.3 * rebuffer_s - sum |R_i - R_{i-1}|/1e6`` (R in Mbit/s).
- ``qoe_log``: the same with ``q(R) = ln(R / R_min)`` for ``R/1e6`` and a penalty of 2.66 per
  second of rebuffering (the paper's value for QoE_log).
- ``qoe_hd``: the same with Pensieve's HD scores (1, 2, 3, 12, 15, 20 at 0.3, 0.75, 1.2, 1.85,
  2.85, 4.3 Mbit/s; linear in bitrate between those points, constant beyond them) and a penalty
  of 8 per second.
- ``downloaded_bits``: bits transferred, including wasted ones.
- ``wasted_bits``: bits of downloads that were abandoned and thrown away.
- ``abandoned_downloads``: number of downloads abandoned.
- ``abandoned``: 1 if the viewer left before playback ended, else 0 (viewers do not leave yet).
- ``timed_out``: 1 if the session passed its player model's time limit
  (``session_time_limit_factor`` times the media duration) and ended there, else 0; its other
  metrics cover what it played until then.
"""

from __future__ import annotations

import numpy as np

from abrsim._jit import kernel

__all__ = [
    "METRICS",
    "QUALITY_FLOOR",
    "REBUFFER_PENALTY_HD",
    "REBUFFER_PENALTY_LIN",
    "REBUFFER_PENALTY_LOG",
    "hd_scores",
    "metrics_table",
    "qoe_utility",
]

#: Metric names, in the column order of :func:`metrics_table`.
METRICS = (
    "startup_s",
    "rebuffer_s",
    "rebuffer_count",
    "rebuffer_ratio",
    "played_s",
    "mean_bitrate_bps",
    "mean_quality",
    "mean_quality_change",
    "below_quality_floor_s",
    "switch_count",
    "switch_magnitude_bps",
    "qoe_lin",
    "qoe_log",
    "qoe_hd",
    "abandoned",
    "abandoned_downloads",
    "wasted_bits",
    "downloaded_bits",
    "timed_out",
)

#: Rebuffering penalties per second of stall of QoE_lin (Pensieve's REBUF_PENALTY), QoE_log, QoE_hd.
REBUFFER_PENALTY_LIN = 4.3
REBUFFER_PENALTY_LOG = 2.66
REBUFFER_PENALTY_HD = 8.0
#: Quality below which a played segment counts towards ``below_quality_floor_s`` (VMAF scale).
QUALITY_FLOOR = 60.0
#: Pensieve's HD scores and the bitrates (bit/s) they belong to.
HD_BITRATES_BPS = np.array([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3])
HD_SCORES = np.array([1.0, 2.0, 3.0, 12.0, 15.0, 20.0])


def hd_scores(bitrates_bps: np.ndarray) -> np.ndarray:
    """QoE_hd's score of each bitrate (Pensieve's table, linear in between, constant beyond)."""
    return np.interp(np.asarray(bitrates_bps, dtype=np.float64), HD_BITRATES_BPS, HD_SCORES)


def qoe_utility(name: str, bitrates_bps: np.ndarray) -> tuple[np.ndarray, float]:
    """The per-rung utility and the rebuffering penalty of QoE model ``name``.

    Each model is ``sum utility(R_i) - penalty * rebuffer_s - sum |utility(R_i) - utility(R_{i-1})|``
    over the played segments: ``qoe_lin`` with ``R / 1e6`` and 4.3, ``qoe_log`` with
    ``ln(R / R_0)`` (``R_0``: the lowest rung's bitrate) and 2.66, ``qoe_hd`` with
    :func:`hd_scores` and 8, as :func:`metrics_table` computes them (the per-segment reward of
    :mod:`abrsim.gym` is these terms one segment at a time).

    Raises:
        ValueError: if ``name`` is not ``qoe_lin``, ``qoe_log`` or ``qoe_hd``.
    """
    rates = np.asarray(bitrates_bps, dtype=np.float64)
    if name == "qoe_lin":
        return rates / 1e6, REBUFFER_PENALTY_LIN
    if name == "qoe_log":
        return np.log(rates / rates[0]), REBUFFER_PENALTY_LOG
    if name == "qoe_hd":
        return hd_scores(rates), REBUFFER_PENALTY_HD
    raise ValueError(f"QoE model must be qoe_lin, qoe_log or qoe_hd, got {name!r}")


@kernel
def _session_metrics(rungs, stall_s, size_bits, downloaded_bits, abandoned, bitrates_bps, hd_score,
                     quality, startup_s, rebuffer_count, segment_duration_s, out):
    rebuffer_s = 0.0
    bitrate_sum_bps = 0.0
    log_sum = 0.0
    hd_sum = 0.0
    quality_sum = 0.0
    quality_change_sum = 0.0
    below_floor = 0
    previous_quality = 0.0
    switch_sum_bps = 0.0
    log_switch_sum = 0.0
    hd_switch_sum = 0.0
    switches = 0
    total_bits = 0.0
    wasted_bits = 0.0
    wasted_downloads = 0
    played = 0
    previous = -1
    for row in range(rungs.shape[0]):
        rebuffer_s += stall_s[row]
        total_bits += downloaded_bits[row]
        if abandoned[row] != 0.0:
            wasted_bits += downloaded_bits[row]
            wasted_downloads += 1
            continue
        rung = rungs[row]
        rate_bps = bitrates_bps[rung]
        log_value = np.log(rate_bps / bitrates_bps[0])
        bitrate_sum_bps += rate_bps
        log_sum += log_value
        hd_sum += hd_score[rung]
        if quality.shape[0] > 0:
            value = quality[played, rung]
            quality_sum += value
            if value < QUALITY_FLOOR:
                below_floor += 1
            if played > 0:
                quality_change_sum += abs(value - previous_quality)
            previous_quality = value
        if previous >= 0 and rung != previous:
            switches += 1
            switch_sum_bps += abs(rate_bps - bitrates_bps[previous])
            log_switch_sum += abs(log_value - np.log(bitrates_bps[previous] / bitrates_bps[0]))
            hd_switch_sum += abs(hd_score[rung] - hd_score[previous])
        previous = rung
        played += 1
    played_s = played * segment_duration_s
    # A viewer who left before any segment played has no rates to average: those means are NaN.
    watched_s = played_s + rebuffer_s
    out[0] = startup_s
    out[1] = rebuffer_s
    out[2] = rebuffer_count
    out[3] = rebuffer_s / watched_s if watched_s > 0.0 else 0.0
    out[4] = played_s
    out[5] = bitrate_sum_bps / played if played > 0 else np.nan
    has_quality = quality.shape[0] > 0
    out[6] = quality_sum / played if has_quality and played > 0 else np.nan
    out[7] = (quality_change_sum / (played - 1) if played > 1 else 0.0) if has_quality else np.nan
    out[8] = below_floor * segment_duration_s if has_quality else np.nan
    out[9] = switches
    out[10] = switch_sum_bps / switches if switches > 0 else 0.0
    out[11] = (bitrate_sum_bps - switch_sum_bps) / 1e6 - REBUFFER_PENALTY_LIN * rebuffer_s
    out[12] = log_sum - REBUFFER_PENALTY_LOG * rebuffer_s - log_switch_sum
    out[13] = hd_sum - REBUFFER_PENALTY_HD * rebuffer_s - hd_switch_sum
    out[14] = 0.0
    out[15] = wasted_downloads
    out[16] = wasted_bits
    out[17] = total_bits


@kernel
def _metrics_batch(rungs, stall_s, size_bits, downloaded_bits, abandoned, first_record, records,
                   startup_s, rebuffer_count, bitrates_bps, hd_score, quality, segment_duration_s, out):
    for index in range(out.shape[0]):
        rows = slice(int(first_record[index]), int(first_record[index] + records[index]))
        _session_metrics(rungs[rows], stall_s[rows], size_bits[rows], downloaded_bits[rows],
                         abandoned[rows], bitrates_bps, hd_score, quality, startup_s[index],
                         rebuffer_count[index], segment_duration_s, out[index])


def metrics_table(
    rungs: np.ndarray,
    stall_s: np.ndarray,
    size_bits: np.ndarray,
    downloaded_bits: np.ndarray,
    abandoned: np.ndarray,
    first_record: np.ndarray,
    records: np.ndarray,
    startup_s: np.ndarray,
    rebuffer_count: np.ndarray,
    bitrates_bps: np.ndarray,
    quality: np.ndarray | None,
    segment_duration_s: float,
    timed_out: np.ndarray | None = None,
) -> np.ndarray:
    """Metrics of sessions whose download logs are concatenated, one row per session.

    Args:
        rungs: rung of every download, sessions one after the other.
        stall_s: stall time accrued while waiting for and fetching each download, seconds.
        size_bits: full size of each download's segment.
        downloaded_bits: bits received by each download (less than the size if abandoned).
        abandoned: 1 for an abandoned download, else 0.
        first_record: index of each session's first download.
        records: number of downloads of each session.
        startup_s: startup delay of each session, seconds.
        rebuffer_count: stalls of each session.
        bitrates_bps: the ladder's nominal bitrates, bit/s.
        quality: the ladder's ``quality[segment, rung]``, or None.
        segment_duration_s: segment duration, seconds.
        timed_out: 1 for each session that passed its time limit (default: none did).

    Returns:
        An array of shape (sessions, len(METRICS)).
    """
    sessions = startup_s.shape[0]
    out = np.empty((sessions, len(METRICS)), dtype=np.float64)
    table = np.zeros((0, 0)) if quality is None else np.ascontiguousarray(quality, dtype=np.float64)

    def column(values: np.ndarray) -> np.ndarray:
        # A session table's column, contiguous: numba types a column as strided, except that of
        # a one-row table, so a batch of one session would compile the kernel once more. (The
        # log's columns, of one row only in a session of one download, are left as they are.)
        return np.ascontiguousarray(values, dtype=np.float64)

    _metrics_batch(rungs, stall_s, size_bits, downloaded_bits, abandoned, column(first_record),
                   column(records), column(startup_s), column(rebuffer_count), bitrates_bps,
                   hd_scores(bitrates_bps), table, float(segment_duration_s), out)
    if timed_out is None:
        out[:, METRICS.index("timed_out")] = 0.0
    else:
        out[:, METRICS.index("timed_out")] = np.asarray(timed_out, np.float64) != 0.0
    return out
