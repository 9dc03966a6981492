"""The compiled single-session loop shared by the fast engine's entry points.

A session requests segments one after the other. Before each request the player
waits while the buffer is too full, asks the ABR kernel for a rung (and an
optional pause), spends one request latency, then transfers the segment over the
trace's piecewise-constant bandwidth, optionally in small steps after each of
which the ABR may abandon the download. Playback drains the buffer through
every wait, latency and transfer; an empty buffer after playback has started is
a stall. After the last download the buffer plays out.

Every variation between presets is a number in ``model_params`` (``MP_*``), so
one loop serves all of them. Units: seconds, bits, bit/s. Arrays and scalars only.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from abrsim._jit import kernel
from abrsim.abr._kernels import (
    EST_STATE_SIZE,
    EVENT_ABANDONED,
    EVENT_DONE,
    EVENT_WAIT,
    NO_RUNG,
    OBS_ABANDON_TO,
    OBS_BUFFER_S,
    OBS_DOWNLOADED_BITS,
    OBS_ELAPSED_S,
    OBS_LAST_RUNG,
    OBS_LATENCY_S,
    OBS_RUNG,
    OBS_SEGMENT,
    OBS_SEGMENT_DURATION_S,
    OBS_SEGMENTS,
    OBS_SIZE,
    OBS_SIZE_BITS,
    OBS_THROUGHPUT_BPS,
    OBS_TTFB_S,
    OBS_WAIT_S,
    abr_abandon,
    abr_can_abandon,
    abr_choose,
    abr_event,
    abr_reset,
    estimator_latency_s,
    estimator_throughput_bps,
    estimator_update,
)

# Columns of the per-download float log (one row per download attempt).
COL_SEGMENT = 0
COL_REQUEST_S = 1
COL_FIRST_BYTE_S = 2
COL_DONE_S = 3
COL_SIZE_BITS = 4
COL_DOWNLOADED_BITS = 5
COL_BUFFER_BEFORE_S = 6
COL_BUFFER_AFTER_S = 7
COL_STALL_S = 8
COL_WAIT_S = 9
COL_ABANDONED = 10
LOG_COLUMNS = 11

# Per-session scalars.
SES_STARTUP_S = 0
SES_END_S = 1
SES_REBUFFER_COUNT = 2
SES_FIRST_RECORD = 3
SES_RECORDS = 4
SES_SEGMENTS = 5
SESSION_COLUMNS = 6

# model_params layout (see abrsim.engine.fast.model_array).
MP_REQUEST_LATENCY_S = 0
MP_GOODPUT_FACTOR = 1
MP_MAX_BUFFER_S = 2
MP_STARTUP_THRESHOLD_S = 3
MP_RESUME_THRESHOLD_S = 4
MP_FIRST_RUNG = 5
MP_LATENCY_SCALED = 6  # 1: a latency crossing a trace sample continues at the next sample's latency
MP_LATENCY_ON_TRACE = 7  # 1: the trace clock runs during request latency
MP_CAP_NEXT_SEGMENT = 8  # 1: wait until buffer + one segment <= max; 0: until buffer <= max
MP_WAIT_STEP_S = 9  # > 0: waits are rounded up to a multiple of this
MP_SEGMENT_LIMIT = 10  # > 0: play only this many segments of the ladder
MP_ABANDONMENT = 11  # 1: check for abandonment while downloading
MP_PROGRESS_BITS = 12  # abandonment checkpoints: at least this many bits ...
MP_PROGRESS_S = 13  # ... and this much time between checks
MP_RETRY_ABR = 14  # 1 (Sabre compatibility): after an abandonment, ask the ABR again
MODEL_PARAMS = 15

#: Relative rounding allowed at a trace sample's end: a transfer due within this share of the
#: end time (a few hundred float ulps) completes in the sample. Without it, a download that ends
#: exactly at a sample boundary, as whole-ms, whole-kbit/s traces make happen, could be left
#: 1e-12 bits short and wait out a following outage.
SAMPLE_END_SLACK = 1e-13


@kernel
def sample_end_s(start_s, duration_s, sample, loop_start_s):
    """When sample ``sample`` of the pass that began at ``loop_start_s`` ends."""
    if sample + 1 < start_s.shape[0]:
        return loop_start_s + start_s[sample + 1]
    return loop_start_s + duration_s


@kernel
def next_sample(start_s, duration_s, sample, loop_start_s):
    """The cursor of the sample after ``sample`` (looping)."""
    sample += 1
    if sample == start_s.shape[0]:
        return 0, loop_start_s + duration_s
    return sample, loop_start_s


@kernel
def seek(start_s, duration_s, time_s, sample, loop_start_s):
    """Move a trace cursor ``(sample, loop_start_s)`` forward to the sample in force at ``time_s``."""
    while time_s >= sample_end_s(start_s, duration_s, sample, loop_start_s):
        sample, loop_start_s = next_sample(start_s, duration_s, sample, loop_start_s)
    return sample, loop_start_s


@kernel
def scaled_latency(start_s, latency_s, duration_s, time_s, sample, loop_start_s):
    """Sabre's latency: one latency unit, continued at the next sample's rate when it crosses one.

    Returns the trace time at which the first bit arrives and the cursor there.
    """
    units = 1.0
    sample, loop_start_s = seek(start_s, duration_s, time_s, sample, loop_start_s)
    while units > 0.0:
        wanted_s = units * latency_s[sample]
        end_s = sample_end_s(start_s, duration_s, sample, loop_start_s)
        if time_s + wanted_s <= end_s:
            return time_s + wanted_s, sample, loop_start_s
        units -= (end_s - time_s) / latency_s[sample]
        time_s = end_s
        sample, loop_start_s = next_sample(start_s, duration_s, sample, loop_start_s)
    return time_s, sample, loop_start_s


@kernel
def transfer(start_s, bandwidth_bps, duration_s, goodput_factor, time_s, size_bits, min_bits, min_s,
             sample, loop_start_s):
    """Send bits from trace time ``time_s``: all of ``size_bits``, or one abandonment step.

    With ``min_bits <= 0`` and ``min_s <= 0`` the whole ``size_bits`` is sent. Otherwise one step
    is sent: it ends once at least ``min_bits`` bits and at least ``min_s`` seconds' worth of the
    current bandwidth have gone (Sabre's ``do_minimal_download``), or the segment is complete.
    Samples with no bandwidth pass without data.

    Returns ``(time_s, sent_bits, sample, loop_start_s)``.
    """
    sample, loop_start_s = seek(start_s, duration_s, time_s, sample, loop_start_s)
    stepping = min_bits > 0.0 or min_s > 0.0
    remaining_bits = size_bits
    sent_bits = 0.0
    while remaining_bits > 0.0 and (not stepping or min_bits > 0.0 or min_s > 0.0):
        end_s = sample_end_s(start_s, duration_s, sample, loop_start_s)
        left_s = end_s - time_s
        rate_bps = bandwidth_bps[sample] * goodput_factor
        bits = 0.0
        if rate_bps > 0.0:
            wanted_bits = max(min_bits, min_s * rate_bps) if stepping else remaining_bits
            # Bits due within rounding of the sample's end arrive in it, not after the next outage.
            to_end_bits = (left_s + SAMPLE_END_SLACK * max(1.0, end_s)) * rate_bps
            if remaining_bits <= wanted_bits and remaining_bits <= to_end_bits:
                bits = remaining_bits
                spent_s = bits / rate_bps
                time_s += spent_s
            elif wanted_bits <= to_end_bits:
                bits = wanted_bits
                spent_s = bits / rate_bps
                time_s += spent_s
                min_bits = 0.0  # this step is complete (also guards against rounding loops)
                min_s = 0.0
            else:
                bits = left_s * rate_bps
                spent_s = left_s
                time_s = end_s
                sample, loop_start_s = next_sample(start_s, duration_s, sample, loop_start_s)
        elif not stepping or min_bits > 0.0 or min_s > left_s:
            spent_s = left_s
            time_s = end_s
            sample, loop_start_s = next_sample(start_s, duration_s, sample, loop_start_s)
        else:
            spent_s = min_s
            time_s += spent_s
        sent_bits += bits
        remaining_bits -= bits
        if stepping:
            min_bits -= bits
            min_s -= spent_s
    return time_s, sent_bits, sample, loop_start_s


@kernel
def transfer_step(start_s, bandwidth_bps, duration_s, goodput_factor, time_s, size_bits, min_bits, min_s,
                  sample, loop_start_s):
    """One abandonment step of a transfer: at least ``min_bits`` and ``min_s`` worth, or the rest.

    A step with no budget left (both minimums <= 0, e.g. when the first step's time budget is used
    up by the request latency) sends nothing: the player checks at once. A step that fits in the
    current trace sample is computed in place; any other goes through :func:`transfer`.

    Returns ``(time_s, sent_bits, sample, loop_start_s)``.
    """
    if min_bits <= 0.0 and min_s <= 0.0:
        return time_s, 0.0, sample, loop_start_s
    rate_bps = bandwidth_bps[sample] * goodput_factor
    end_s = sample_end_s(start_s, duration_s, sample, loop_start_s)
    step_bits = max(min_bits, min_s * rate_bps)
    if (rate_bps > 0.0 and time_s >= loop_start_s + start_s[sample]
            and step_bits < size_bits and step_bits <= (end_s - time_s) * rate_bps):
        return time_s + step_bits / rate_bps, step_bits, sample, loop_start_s
    return transfer(start_s, bandwidth_bps, duration_s, goodput_factor, time_s, size_bits, min_bits, min_s,
                    sample, loop_start_s)


@kernel
def play(buffer_s, elapsed_s, started, stalled):
    """Advance playback by ``elapsed_s``: return ``(buffer_s, stall_s, stalled, new_stall)``."""
    if not started:
        return buffer_s, 0.0, stalled, False
    if stalled:
        return buffer_s, elapsed_s, True, False
    if buffer_s >= elapsed_s:
        return buffer_s - elapsed_s, 0.0, False, False
    return 0.0, elapsed_s - buffer_s, True, True


@njit(cache=True)
def run_session(start_s, bandwidth_bps, latency_s, has_latency, duration_s, size_bits, bitrates_bps,
                segment_duration_s, model_params, algo_id, abr_params, abr_state, est_params, est_state,
                log, rungs, first_record, session):
    """Simulate one session from ``log[first_record]`` on; fill ``session[SES_*]``.

    Returns the number of log rows written, or -1 if ``log`` ran out of rows.
    """
    segments = size_bits.shape[0]
    limit = int(model_params[MP_SEGMENT_LIMIT])
    if 0 < limit < segments:
        segments = limit
    goodput_factor = model_params[MP_GOODPUT_FACTOR]
    max_buffer_s = model_params[MP_MAX_BUFFER_S]
    first_rung = int(model_params[MP_FIRST_RUNG])
    cap_next = model_params[MP_CAP_NEXT_SEGMENT] != 0.0
    wait_step_s = model_params[MP_WAIT_STEP_S]
    latency_on_trace = model_params[MP_LATENCY_ON_TRACE] != 0.0
    checking = model_params[MP_ABANDONMENT] != 0.0 and abr_can_abandon(algo_id, abr_params)
    progress_bits = model_params[MP_PROGRESS_BITS]
    progress_s = model_params[MP_PROGRESS_S]
    retry_abr = model_params[MP_RETRY_ABR] != 0.0
    abr_reset(algo_id, abr_params, abr_state, bitrates_bps, segment_duration_s)
    est_state[:] = 0.0
    obs = np.zeros(OBS_SIZE)
    obs[OBS_SEGMENTS] = segments
    obs[OBS_SEGMENT_DURATION_S] = segment_duration_s

    time_s = 0.0
    trace_lag_s = 0.0  # wall time minus trace time: latency that did not run the trace clock
    buffer_s = 0.0
    # np.int64 / np.bool_ rather than bare constants: numba would otherwise type them as literals
    # and compile the callees once more for each literal value it sees.
    started = np.bool_(False)
    stalled = np.bool_(False)
    startup_s = 0.0
    rebuffer_count = 0
    sample = np.int64(0)
    loop_start_s = 0.0
    last_rung = NO_RUNG
    pending_rung = NO_RUNG  # the rung an abandoned download asked for
    row = first_record
    index = 0
    while index < segments:
        if row >= log.shape[0]:
            return -1
        stall_s = 0.0
        wait_s = 0.0
        excess_s = buffer_s + (segment_duration_s if cap_next else 0.0) - max_buffer_s
        if excess_s > 0.0:
            # The buffer is as full as it may get: start (or resume) rather than wait forever.
            if not started:
                started = True
                startup_s = time_s
            stalled = np.bool_(False)
            wait_s = excess_s
            if wait_step_s > 0.0:
                wait_s = math.ceil(excess_s / wait_step_s) * wait_step_s
            buffer_s, stall_s, stalled, new = play(buffer_s, wait_s, started, stalled)
            rebuffer_count += new
            time_s += wait_s
            obs[OBS_WAIT_S] = wait_s
            abr_event(algo_id, abr_params, abr_state, obs, np.int64(EVENT_WAIT), bitrates_bps)
        obs[OBS_SEGMENT] = index
        obs[OBS_BUFFER_S] = buffer_s
        obs[OBS_LAST_RUNG] = last_rung
        obs[OBS_THROUGHPUT_BPS] = estimator_throughput_bps(est_params, est_state)
        obs[OBS_LATENCY_S] = estimator_latency_s(est_params, est_state)
        pause_s = 0.0
        if index == 0 and first_rung >= 0 and row == first_record:
            rung = first_rung
        elif pending_rung != NO_RUNG:
            rung = pending_rung
        else:
            rung, pause_s = abr_choose(algo_id, abr_params, abr_state, obs, bitrates_bps, size_bits)
        pending_rung = NO_RUNG
        if pause_s > 0.0:
            buffer_s, extra_s, stalled, new = play(buffer_s, pause_s, started, stalled)
            stall_s += extra_s
            rebuffer_count += new
            time_s += pause_s
            wait_s += pause_s
        request_s = time_s
        buffer_request_s = buffer_s
        # Request latency.
        trace_s = time_s - trace_lag_s
        if has_latency and model_params[MP_LATENCY_SCALED] != 0.0:
            first_byte_trace_s, sample, loop_start_s = scaled_latency(
                start_s, latency_s, duration_s, trace_s, sample, loop_start_s)
            request_latency_s = first_byte_trace_s - trace_s
        elif has_latency:
            sample, loop_start_s = seek(start_s, duration_s, trace_s, sample, loop_start_s)
            request_latency_s = latency_s[sample]
        else:
            request_latency_s = model_params[MP_REQUEST_LATENCY_S]
        if not latency_on_trace:
            trace_lag_s += request_latency_s
        first_byte_s = time_s + request_latency_s
        # Transfer, in abandonment steps if the player checks for them.
        bits = size_bits[index, rung]
        sent_bits = 0.0
        clock_s = first_byte_s
        abandon_to = NO_RUNG
        if checking and index > 0:
            obs[OBS_RUNG] = rung
            obs[OBS_SIZE_BITS] = bits
            obs[OBS_TTFB_S] = request_latency_s
            step_s = progress_s - request_latency_s  # the first step's time budget includes latency
            while sent_bits < bits:
                clock_trace_s, step_bits, sample, loop_start_s = transfer_step(
                    start_s, bandwidth_bps, duration_s, goodput_factor, clock_s - trace_lag_s,
                    bits - sent_bits, progress_bits, step_s, sample, loop_start_s)
                clock_s = clock_trace_s + trace_lag_s
                sent_bits += step_bits
                step_s = progress_s
                if sent_bits < bits:
                    obs[OBS_DOWNLOADED_BITS] = sent_bits
                    obs[OBS_ELAPSED_S] = clock_s - request_s
                    obs[OBS_BUFFER_S] = max(0.0, buffer_request_s - (clock_s - request_s))
                    abandon_to = abr_abandon(algo_id, abr_params, abr_state, obs, bitrates_bps)
                    if abandon_to != NO_RUNG:
                        break
        else:
            clock_trace_s, sent_bits, sample, loop_start_s = transfer(
                start_s, bandwidth_bps, duration_s, goodput_factor, first_byte_s - trace_lag_s, bits,
                0.0, 0.0, sample, loop_start_s)
            clock_s = clock_trace_s + trace_lag_s
        done_s = clock_s
        if abandon_to == NO_RUNG:
            sent_bits = bits  # the steps' sum may differ from the size by rounding
        buffer_s, extra_s, stalled, new = play(buffer_s, done_s - time_s, started, stalled)
        stall_s += extra_s
        rebuffer_count += new
        time_s = done_s
        obs[OBS_RUNG] = rung
        obs[OBS_SIZE_BITS] = bits
        obs[OBS_DOWNLOADED_BITS] = sent_bits
        obs[OBS_ELAPSED_S] = done_s - request_s
        obs[OBS_TTFB_S] = request_latency_s
        log[row, COL_SEGMENT] = index
        log[row, COL_REQUEST_S] = request_s
        log[row, COL_FIRST_BYTE_S] = first_byte_s
        log[row, COL_DONE_S] = done_s
        log[row, COL_SIZE_BITS] = bits
        log[row, COL_DOWNLOADED_BITS] = sent_bits
        log[row, COL_BUFFER_BEFORE_S] = buffer_request_s
        log[row, COL_WAIT_S] = wait_s
        rungs[row] = rung
        if abandon_to != NO_RUNG:
            log[row, COL_BUFFER_AFTER_S] = buffer_s
            log[row, COL_STALL_S] = stall_s
            log[row, COL_ABANDONED] = 1.0
            row += 1
            obs[OBS_BUFFER_S] = buffer_s
            obs[OBS_ABANDON_TO] = abandon_to
            abr_event(algo_id, abr_params, abr_state, obs, np.int64(EVENT_ABANDONED), bitrates_bps)
            if not retry_abr:
                pending_rung = abandon_to
            continue
        buffer_s += segment_duration_s
        transfer_s = done_s - first_byte_s
        estimator_update(est_params, est_state, bits / transfer_s, transfer_s, request_latency_s)
        last_segment = index == segments - 1
        if not started:
            if buffer_s >= model_params[MP_STARTUP_THRESHOLD_S] or last_segment:
                started = True
                startup_s = time_s
        elif stalled and (buffer_s >= model_params[MP_RESUME_THRESHOLD_S] or last_segment):
            stalled = False
        log[row, COL_BUFFER_AFTER_S] = buffer_s
        log[row, COL_STALL_S] = stall_s
        log[row, COL_ABANDONED] = 0.0
        row += 1
        obs[OBS_BUFFER_S] = buffer_s
        abr_event(algo_id, abr_params, abr_state, obs, np.int64(EVENT_DONE), bitrates_bps)
        last_rung = rung
        index += 1
    session[SES_STARTUP_S] = startup_s
    session[SES_END_S] = time_s + buffer_s
    session[SES_REBUFFER_COUNT] = rebuffer_count
    session[SES_FIRST_RECORD] = first_record
    session[SES_RECORDS] = row - first_record
    session[SES_SEGMENTS] = segments
    return row - first_record


@njit(cache=True)
def run_batch(trace_offsets, start_s, bandwidth_bps, latency_s, has_latency, duration_s, size_bits,
              bitrates_bps, segment_duration_s, model_params, algo_id, abr_params, abr_state_size,
              est_params, log, rungs, session):
    """Run one session per trace (traces concatenated, ``trace_offsets`` delimit them).

    Returns the number of log rows used, or -1 if ``log`` is too small.
    """
    abr_state = np.zeros(abr_state_size)
    est_state = np.zeros(EST_STATE_SIZE)
    row = np.int64(0)  # not a literal: run_session compiles once
    for index in range(trace_offsets.shape[0] - 1):
        first = trace_offsets[index]
        last = trace_offsets[index + 1]
        written = run_session(start_s[first:last], bandwidth_bps[first:last], latency_s[first:last],
                              has_latency[index], duration_s[index], size_bits, bitrates_bps,
                              segment_duration_s, model_params, algo_id, abr_params, abr_state,
                              est_params, est_state, log, rungs, row, session[index])
        if written < 0:
            return -1
        row += written
    return row


def _refresh_cache() -> None:
    from abrsim import _jit
    from abrsim.abr import _dashjs, _kernels

    _jit.flush_if_dependencies_changed([run_session, run_batch], [_kernels, _dashjs])


_refresh_cache()
