"""The compiled single-session loop shared by the fast engine's entry points.

A session requests segments one after the other. Before each request the player
waits until one more segment fits under the buffer cap, asks the ABR kernel for a
rung (and an optional pause), spends one request latency, then transfers the
segment over the trace's piecewise-constant bandwidth. Playback drains the
buffer through every wait, latency and transfer; an empty buffer after playback
has started is a stall. After the last download the buffer plays out.

Units: seconds, bits, bit/s. Arrays and scalars only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from abrsim.abr._kernels import (
    EST_STATE_SIZE,
    abr_choose,
    abr_reset,
    estimator_latency_s,
    estimator_throughput_bps,
    estimator_update,
)

# Columns of the per-segment float log.
COL_REQUEST_S = 0
COL_FIRST_BYTE_S = 1
COL_DONE_S = 2
COL_SIZE_BITS = 3
COL_BUFFER_BEFORE_S = 4
COL_BUFFER_AFTER_S = 5
COL_STALL_S = 6
COL_WAIT_S = 7
LOG_COLUMNS = 8

# Per-session scalars.
SES_STARTUP_S = 0
SES_END_S = 1
SES_REBUFFER_COUNT = 2
SESSION_COLUMNS = 3

# model_params layout (see abrsim.engine.fast.model_array).
MP_REQUEST_LATENCY_S = 0
MP_GOODPUT_FACTOR = 1
MP_MAX_BUFFER_S = 2
MP_STARTUP_THRESHOLD_S = 3
MP_RESUME_THRESHOLD_S = 4
MP_FIRST_RUNG = 5
MODEL_PARAMS = 6


@njit(cache=True)
def seek(start_s, duration_s, time_s, sample, loop_start_s):
    """Move a trace cursor ``(sample, loop_start_s)`` forward to the sample in force at ``time_s``."""
    samples = start_s.shape[0]
    while True:
        end_s = loop_start_s + (start_s[sample + 1] if sample + 1 < samples else duration_s)
        if time_s < end_s:
            return sample, loop_start_s
        sample += 1
        if sample == samples:
            sample = 0
            loop_start_s += duration_s


@njit(cache=True)
def transfer(start_s, bandwidth_bps, duration_s, goodput_factor, time_s, size_bits, sample, loop_start_s):
    """Return when ``size_bits`` sent from ``time_s`` arrive, and the cursor at that time."""
    samples = start_s.shape[0]
    sample, loop_start_s = seek(start_s, duration_s, time_s, sample, loop_start_s)
    remaining_bits = size_bits
    while True:
        end_s = loop_start_s + (start_s[sample + 1] if sample + 1 < samples else duration_s)
        rate_bps = bandwidth_bps[sample] * goodput_factor
        if rate_bps > 0.0:
            capacity_bits = rate_bps * (end_s - time_s)
            if capacity_bits >= remaining_bits:
                return time_s + remaining_bits / rate_bps, sample, loop_start_s
            remaining_bits -= capacity_bits
        time_s = end_s
        sample += 1
        if sample == samples:
            sample = 0
            loop_start_s += duration_s


@njit(cache=True)
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
                log, rungs, session):
    """Simulate one session; fill ``log[segment, COL_*]``, ``rungs[segment]`` and ``session[SES_*]``."""
    segments = size_bits.shape[0]
    goodput_factor = model_params[MP_GOODPUT_FACTOR]
    max_buffer_s = model_params[MP_MAX_BUFFER_S]
    first_rung = int(model_params[MP_FIRST_RUNG])
    abr_reset(algo_id, abr_params, abr_state, bitrates_bps, segment_duration_s)
    est_state[:] = 0.0

    time_s = 0.0
    buffer_s = 0.0
    started = False
    stalled = False
    startup_s = 0.0
    rebuffer_count = 0
    sample = 0
    loop_start_s = 0.0
    last_rung = -1
    for index in range(segments):
        stall_s = 0.0
        wait_s = 0.0
        if buffer_s + segment_duration_s > max_buffer_s:
            # The buffer is as full as it can get: start (or resume) rather than wait forever.
            if not started:
                started = True
                startup_s = time_s
            stalled = False
            wait_s = buffer_s + segment_duration_s - max_buffer_s
            buffer_s, extra_s, stalled, new = play(buffer_s, wait_s, started, stalled)
            stall_s += extra_s
            rebuffer_count += new
            time_s += wait_s
        throughput_bps = estimator_throughput_bps(est_params, est_state)
        estimate_latency_s = estimator_latency_s(est_params, est_state)
        if index == 0 and first_rung >= 0:
            rung = first_rung
            pause_s = 0.0
        else:
            rung, pause_s = abr_choose(algo_id, abr_params, abr_state, index, segments, buffer_s,
                                       last_rung, throughput_bps, estimate_latency_s, bitrates_bps,
                                       segment_duration_s)
        if pause_s > 0.0:
            buffer_s, extra_s, stalled, new = play(buffer_s, pause_s, started, stalled)
            stall_s += extra_s
            rebuffer_count += new
            time_s += pause_s
            wait_s += pause_s
        log[index, COL_REQUEST_S] = time_s
        log[index, COL_BUFFER_BEFORE_S] = buffer_s
        if has_latency:
            sample, loop_start_s = seek(start_s, duration_s, time_s, sample, loop_start_s)
            request_latency_s = latency_s[sample]
        else:
            request_latency_s = model_params[MP_REQUEST_LATENCY_S]
        first_byte_s = time_s + request_latency_s
        bits = size_bits[index, rung]
        done_s, sample, loop_start_s = transfer(start_s, bandwidth_bps, duration_s, goodput_factor,
                                                first_byte_s, bits, sample, loop_start_s)
        buffer_s, extra_s, stalled, new = play(buffer_s, done_s - time_s, started, stalled)
        stall_s += extra_s
        rebuffer_count += new
        time_s = done_s
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
        log[index, COL_FIRST_BYTE_S] = first_byte_s
        log[index, COL_DONE_S] = done_s
        log[index, COL_SIZE_BITS] = bits
        log[index, COL_BUFFER_AFTER_S] = buffer_s
        log[index, COL_STALL_S] = stall_s
        log[index, COL_WAIT_S] = wait_s
        rungs[index] = rung
        last_rung = rung
    session[SES_STARTUP_S] = startup_s
    session[SES_END_S] = time_s + buffer_s
    session[SES_REBUFFER_COUNT] = rebuffer_count


@njit(cache=True)
def run_batch(trace_offsets, start_s, bandwidth_bps, latency_s, has_latency, duration_s, size_bits,
              bitrates_bps, segment_duration_s, model_params, algo_id, abr_params, abr_state_size,
              est_params, log, rungs, session):
    """Run one session per trace (traces concatenated, ``trace_offsets`` delimit them)."""
    segments = size_bits.shape[0]
    abr_state = np.zeros(abr_state_size)
    est_state = np.zeros(EST_STATE_SIZE)
    for index in range(trace_offsets.shape[0] - 1):
        first = trace_offsets[index]
        last = trace_offsets[index + 1]
        rows = slice(index * segments, (index + 1) * segments)
        run_session(start_s[first:last], bandwidth_bps[first:last], latency_s[first:last],
                    has_latency[index], duration_s[index], size_bits, bitrates_bps, segment_duration_s,
                    model_params, algo_id, abr_params, abr_state, est_params, est_state,
                    log[rows], rungs[rows], session[index])
