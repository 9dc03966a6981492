"""Sabre's millisecond arithmetic, replayed to find the zero-length stall its final playout counts.

Sabre keeps time in milliseconds, its buffer as a number of whole segments plus ``fcc``, the
milliseconds already played of the first one, and its place in the network trace as a period
index plus the milliseconds left in that period. When the last segment has arrived it plays
out ``segments * segment_ms - fcc`` ms. Rounding can leave about 1e-12 ms over once every
segment has played, and Sabre then counts one more rebuffer event, of zero length (quirk 2 of
the Sabre reference README).

Whether that happens depends on the last bits of ``fcc``, which come from every millisecond
sum Sabre made since its buffer last ran dry. abrsim's session loop works in seconds, so its
last bits differ and cannot tell. :func:`replay` replays one finished session
through Sabre's operations, in Sabre's units and order: the trace cursor's ``time_to_next``
decrements, the request latency, the transfer (in 12 kbit / 50 ms abandonment steps when the
player checks), full-buffer waits, ABR pauses and the buffer's ``fcc``. It decides nothing:
the rungs, abandoned attempts and pauses all come from the session's log.

Only :data:`abrsim.model.SABRE`-like models use it (``compat_sabre_residue_stalls``): the fast
engine through :func:`add_residue_stalls` after its sessions ran, the discrete-event player and
the oracle's replay per session. It is compiled only when first used. Arrays and scalars only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from abrsim._jit import kernel
from abrsim.engine.step import (
    COL_ABANDONED,
    COL_BUFFER_AFTER_S,
    COL_DOWNLOADED_BITS,
    COL_SEGMENT,
    COL_WAIT_S,
    SES_FIRST_RECORD,
    SES_REBUFFER_COUNT,
    SES_RECORDS,
    SES_TIMED_OUT,
)


@kernel
def to_ms(seconds):
    """Seconds to milliseconds, rounded to 1e-6 ms: a trace given in whole ms gets them back exactly."""
    return math.floor(seconds * 1e9 + 0.5) / 1e6


@kernel
def period_ms(start_s, duration_s, period):
    """Length of trace sample ``period`` in ms."""
    if period + 1 < start_s.shape[0]:
        return to_ms(start_s[period + 1] - start_s[period])
    return to_ms(duration_s - start_s[period])


@kernel
def next_period(start_s, duration_s, period):
    """Sabre's ``next_network_period``: the next sample (looping) and its whole length in ms."""
    period += 1
    if period == start_s.shape[0]:
        period = 0
    return period, period_ms(start_s, duration_s, period)


@kernel
def latency_delay(start_s, latency_s, has_latency, default_latency_s, duration_s, period, left_ms):
    """One request latency (``do_latency_delay(1)``): a crossing continues at the next sample's latency.

    Each sample's latency is ``latency_s`` if ``has_latency``, else ``default_latency_s``.
    Returns ``(delay_ms, period, left_ms)``.
    """
    units = 1.0
    total_ms = 0.0
    while units > 0.0:
        latency_ms = to_ms(latency_s[period] if has_latency else default_latency_s)
        wanted_ms = units * latency_ms
        if wanted_ms <= left_ms:
            total_ms += wanted_ms
            left_ms -= wanted_ms
            units = 0.0
        else:
            total_ms += left_ms
            units -= left_ms / latency_ms
            period, left_ms = next_period(start_s, duration_s, period)
    return total_ms, period, left_ms


@kernel
def download(start_s, bandwidth_bps, goodput_factor, duration_s, period, left_ms, size_bits):
    """Send ``size_bits`` at each sample's rate in bit/ms (``do_download``).

    Returns ``(ms, period, left_ms)``.
    """
    total_ms = 0.0
    while size_bits > 0.0:
        rate = bandwidth_bps[period] * goodput_factor / 1000.0
        if size_bits <= left_ms * rate:
            spent_ms = size_bits / rate
            total_ms += spent_ms
            left_ms -= spent_ms
            size_bits = 0.0
        else:
            total_ms += left_ms
            size_bits -= left_ms * rate
            period, left_ms = next_period(start_s, duration_s, period)
    return total_ms, period, left_ms


@kernel
def minimal_download(start_s, bandwidth_bps, goodput_factor, duration_s, period, left_ms, size_bits, min_bits,
                     min_ms):
    """One abandonment step (``do_minimal_download``). Returns ``(ms, bits, period, left_ms)``."""
    total_ms = 0.0
    total_bits = 0.0
    while size_bits > 0.0 and (min_bits > 0.0 or min_ms > 0.0):
        rate = bandwidth_bps[period] * goodput_factor / 1000.0
        if rate > 0.0:
            step_bits = max(min_bits, min_ms * rate)
            to_next_bits = left_ms * rate
            if size_bits <= step_bits and size_bits <= to_next_bits:
                bits = size_bits
                spent_ms = bits / rate
                left_ms -= spent_ms
            elif step_bits <= to_next_bits:
                bits = step_bits
                spent_ms = bits / rate
                min_bits = 0.0
                min_ms = 0.0
                left_ms -= spent_ms
            else:
                bits = to_next_bits
                spent_ms = left_ms
                period, left_ms = next_period(start_s, duration_s, period)
        else:
            bits = 0.0
            if min_bits > 0.0 or min_ms > left_ms:
                spent_ms = left_ms
                period, left_ms = next_period(start_s, duration_s, period)
            else:
                spent_ms = min_ms
                left_ms -= spent_ms
        total_bits += bits
        total_ms += spent_ms
        size_bits -= bits
        min_bits -= bits
        min_ms -= spent_ms
    return total_ms, total_bits, period, left_ms


@kernel
def _whole_ms_step(left_ms, got_bits, rate, step_bits, size_bits, stop_bits):
    """Whether the next abandonment step from ``(left_ms, got_bits)`` is a whole one inside the
    period that neither ends the download nor reaches ``stop_bits``."""
    return (step_bits < size_bits - got_bits and step_bits <= left_ms * rate
            and got_bits + step_bits < size_bits and got_bits + step_bits < stop_bits)


@kernel
def skip_ms_steps(rate, left_ms, spent_ms, got_bits, size_bits, progress_bits, step_ms, stop_bits):
    """The whole abandonment steps (each ``progress_bits`` / ``step_ms``) left in the period at
    ``rate`` bit/ms, before the last bit and before ``stop_bits``, as bare additions: the same
    sums as :func:`replay`'s steps one by one. Returns ``(left_ms, spent_ms, got_bits)``."""
    if not rate > 0.0 or (progress_bits <= 0.0 and step_ms <= 0.0):
        return left_ms, spent_ms, got_bits
    step_bits = max(progress_bits, step_ms * rate)
    estimate = min(size_bits - got_bits, left_ms * rate, stop_bits - got_bits) / step_bits
    if not estimate >= 1.0:
        return left_ms, spent_ms, got_bits
    spent_step_ms = step_bits / rate
    # Bare steps a little short of the estimate, then checked ones: the conditions only get worse
    # from step to step, so where one holds, so did those of the steps before it.
    first = np.int64(min(estimate, 1e9)) - 3
    if first >= 1:
        before_left_ms = left_ms
        before_spent_ms = spent_ms
        before_bits = got_bits
        for _ in range(first - 1):
            before_left_ms -= spent_step_ms
            before_spent_ms += spent_step_ms
            before_bits += step_bits
        if not _whole_ms_step(before_left_ms, before_bits, rate, step_bits, size_bits, stop_bits):
            return left_ms, spent_ms, got_bits
        left_ms = before_left_ms - spent_step_ms
        spent_ms = before_spent_ms + spent_step_ms
        got_bits = before_bits + step_bits
    for _ in range(8):
        if not _whole_ms_step(left_ms, got_bits, rate, step_bits, size_bits, stop_bits):
            break
        left_ms -= spent_step_ms
        spent_ms += spent_step_ms
        got_bits += step_bits
    return left_ms, spent_ms, got_bits


@kernel
def delay(start_s, duration_s, period, left_ms, wait_ms):
    """Let the network clock run for ``wait_ms`` (``NetworkModel.delay``). Returns ``(period, left_ms)``."""
    while wait_ms > left_ms:
        wait_ms -= left_ms
        period, left_ms = next_period(start_s, duration_s, period)
    return period, left_ms - wait_ms


@kernel
def deplete(segments, fcc_ms, play_ms, segment_ms):
    """Play ``play_ms`` from a buffer of ``segments`` segments with ``fcc_ms`` of the first played.

    Returns ``(segments, fcc_ms, stall_ms, new_stall)``. Time the buffer cannot cover is
    stall; it is a new stall when the buffer was not empty already, however little is left.
    """
    if segments == 0:
        return 0, fcc_ms, play_ms, False
    if fcc_ms > 0.0:
        if play_ms + fcc_ms < segment_ms:
            return segments, fcc_ms + play_ms, 0.0, False
        play_ms -= segment_ms - fcc_ms
        segments -= 1
        fcc_ms = 0.0
    while play_ms > 0.0 and segments > 0:
        if play_ms >= segment_ms:
            segments -= 1
            play_ms -= segment_ms
        else:
            fcc_ms = play_ms
            play_ms = 0.0
    return segments, fcc_ms, max(play_ms, 0.0), play_ms > 0.0


@kernel
def replay(start_s, bandwidth_bps, latency_s, has_latency, duration_s, size_bits, segment_duration_s,
           max_buffer_s, default_latency_s, goodput_factor, checking, progress_bits, progress_s, skip_s,
           segment, rung, downloaded_bits, buffer_after_s, wait_s, abandoned, first, end):
    """Replay rows ``first:end`` of one session's log in Sabre's milliseconds.

    Returns ``(residue, end_ms, stall_ms)``: 1 if the final playout counts a (zero-length)
    stall, else 0; when the session ends; and its stall time, as Sabre computes them.

    Each trace sample's latency is ``latency_s`` if ``has_latency``, else ``default_latency_s``.
    The log comes as columns (``abandoned`` is 0 or 1). ``checking``: whether downloads after
    the first went in abandonment steps of ``progress_bits`` and ``progress_s``. ``skip_s``:
    trace time that passed before the first request. The model must be Sabre's: latency
    continued across samples and on the trace clock, waits until the next segment fits, no
    wait rounding, playback from the first segment.
    """
    segment_ms = to_ms(segment_duration_s)
    max_buffer_ms = to_ms(max_buffer_s)
    step_ms = to_ms(progress_s)
    # np.int64 / np.bool_ rather than bare constants, which numba would type as literals and
    # compile the callees for once more.
    period = np.int64(0)
    left_ms = period_ms(start_s, duration_s, period)
    if skip_s > 0.0:
        period, left_ms = delay(start_s, duration_s, period, left_ms, to_ms(skip_s))
    segments = np.int64(0)
    fcc_ms = 0.0
    clock_ms = 0.0
    stall_ms = 0.0
    started = np.bool_(False)
    for row in range(first, end):
        # Full-buffer wait, from Sabre's own level.
        full_ms = segment_ms * segments - fcc_ms + segment_ms - max_buffer_ms
        if full_ms > 0.0:
            segments, fcc_ms, _, _ = deplete(segments, fcc_ms, full_ms, segment_ms)
            period, left_ms = delay(start_s, duration_s, period, left_ms, full_ms)
            clock_ms += full_ms
        # The ABR's pause: what the log's wait holds beyond the full-buffer wait.
        before_s = buffer_after_s[row - 1] if row > first else 0.0
        excess_s = before_s + segment_duration_s - max_buffer_s
        pause_s = wait_s[row] - max(excess_s, 0.0)
        if pause_s > 0.0:
            pause_ms = pause_s * 1000.0
            segments, fcc_ms, stalled_ms, _ = deplete(segments, fcc_ms, pause_ms, segment_ms)
            period, left_ms = delay(start_s, duration_s, period, left_ms, pause_ms)
            clock_ms += pause_ms
            if started:
                stall_ms += stalled_ms
        index = int(segment[row])
        bits = size_bits[index, rung[row]]
        given_up = abandoned[row] != 0.0
        spent_ms, period, left_ms = latency_delay(start_s, latency_s, has_latency, default_latency_s,
                                                  duration_s, period, left_ms)
        if checking and index > 0:
            got_bits = 0.0
            min_ms = step_ms - spent_ms
            while got_bits < bits:
                rate = bandwidth_bps[period] * goodput_factor / 1000.0
                step_bits = max(progress_bits, min_ms * rate)
                if (rate > 0.0 and (progress_bits > 0.0 or min_ms > 0.0) and step_bits < bits - got_bits
                        and step_bits <= left_ms * rate):
                    # A whole step inside the current sample: minimal_download's own arithmetic, inline.
                    step_spent_ms = step_bits / rate
                    left_ms -= step_spent_ms
                else:
                    step_spent_ms, step_bits, period, left_ms = minimal_download(
                        start_s, bandwidth_bps, goodput_factor, duration_s, period, left_ms, bits - got_bits,
                        progress_bits, min_ms)
                spent_ms += step_spent_ms
                got_bits += step_bits
                min_ms = step_ms
                # Steps are at least progress_bits apart: the one the log stopped after is unambiguous.
                if given_up and got_bits >= downloaded_bits[row] - 1.0:
                    break
                left_ms, spent_ms, got_bits = skip_ms_steps(
                    bandwidth_bps[period] * goodput_factor / 1000.0, left_ms, spent_ms, got_bits, bits,
                    progress_bits, step_ms, downloaded_bits[row] - 1.0 if given_up else np.inf)
        else:
            transfer_ms, period, left_ms = download(start_s, bandwidth_bps, goodput_factor, duration_s,
                                                    period, left_ms, bits)
            spent_ms += transfer_ms
        segments, fcc_ms, stalled_ms, _ = deplete(segments, fcc_ms, spent_ms, segment_ms)
        clock_ms += spent_ms
        if started:
            stall_ms += stalled_ms
        if not given_up:
            segments += 1
            started = True
    level_ms = segment_ms * segments - fcc_ms
    segments, fcc_ms, _, residue = deplete(segments, fcc_ms, level_ms, segment_ms)
    return (1 if residue else 0), clock_ms + level_ms, stall_ms


@njit(cache=True)
def add_residue_stalls(trace_offsets, start_s, bandwidth_bps, latency_s, has_latency, duration_s, size_bits,
                       segment_duration_s, max_buffer_s, default_latency_s, goodput_factor, checking,
                       progress_bits, progress_s, log, rungs, session):
    """Add Sabre's final-playout residue stall to each session of a fast-engine batch.

    Arguments as for :func:`abrsim.engine._session.run_batch`, after it ran (``log`` and
    ``rungs`` its rows, ``session`` its per-session table, updated in place). A session that timed
    out has no final playout in Sabre's sense, so none is added to it.
    """
    for index in range(trace_offsets.shape[0] - 1):
        if session[index, SES_TIMED_OUT] != 0.0:
            continue
        first = trace_offsets[index]
        last = trace_offsets[index + 1]
        row = int(session[index, SES_FIRST_RECORD])
        residue, _, _ = replay(
            start_s[first:last], bandwidth_bps[first:last], latency_s[first:last], has_latency[index],
            duration_s[index], size_bits, segment_duration_s, max_buffer_s, default_latency_s, goodput_factor,
            checking, progress_bits, progress_s, 0.0, log[:, COL_SEGMENT], rungs, log[:, COL_DOWNLOADED_BITS],
            log[:, COL_BUFFER_AFTER_S], log[:, COL_WAIT_S], log[:, COL_ABANDONED], row,
            row + int(session[index, SES_RECORDS]))
        session[index, SES_REBUFFER_COUNT] += residue
