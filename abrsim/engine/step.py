"""The session step: the player's rules, once, for every engine.

A session requests segments one after the other. Each request goes through the same phases:

1. wait while the buffer is too full (:func:`wait_rule`; playback goes on);
2. observe, and decide: the first rung and the rung an abandoned download asked for are the
   player's (:func:`player_rung`), every other is the policy's ``choose``;
3. the policy's pause (:func:`play`), then the request leaves;
4. one request latency before the first byte (from the trace, :func:`walk_latency`, or from
   the driver's network);
5. the transfer -- the driver's: a trace walk (:func:`walk_transfer`, :func:`walk_step`), or
   flows on shared links; at abandonment checkpoints :func:`fill_checkpoint` fills the
   observation for the policy's ``abandon``;
6. finish (:func:`finish_rule`, :func:`record_download`): playback and stalls up to the last
   byte, the buffer, the estimator, the start and resume thresholds; the log row
   (:func:`write_log`).

After the last segment the buffer plays out (:func:`close_session`). Each rule is one function
of scalars. The compiled drivers call them with the player's state in local variables: the
fast loop (:mod:`abrsim.engine._session`, which adds the trace walk) and the oracle
(:mod:`abrsim.oracle`, which adds its branching over rungs). The drivers that stop between
phases -- the discrete-event player (:mod:`abrsim.engine.player`: simpy waits, links, CDN
routing, patience) and the Python-policy loop (:func:`abrsim.engine._session.advance`) --
call the phases at the end of this module (:func:`wait_for_room`, :func:`observe`,
:func:`begin_request`, :func:`set_first_byte`, :func:`checkpoint`, :func:`finish_download`,
:func:`log_row`), which apply the same rules to one player-state array ``ps`` (``PS_*``) that
also holds the model, the estimator and the observation. Every variation between player
models is a number in ``model_params`` (``MP_*``, from :func:`model_array`), so one step serves
every preset. Units: seconds, bits, bit/s. Arrays and scalars only.
"""

from __future__ import annotations

import math

import numpy as np

from abrsim._jit import kernel
from abrsim.abr import protocol
from abrsim.abr._kernels import (
    EST_PARAMS,
    EST_STATE_SIZE,
    estimator_latency_s,
    estimator_throughput_bps,
    estimator_update,
)
from abrsim.errors import InputError

NO_RUNG = -1

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
SES_TIMED_OUT = 6  # 1: the session passed the model's time limit and ended there
SESSION_COLUMNS = 7

# model_params layout (see model_array).
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
MP_TIME_LIMIT_S = 15  # a session still running at this session time ends, timed out
MP_TCP = 16  # 1: the tcp network model (slow start over a persistent connection), 0: throughput
MP_TCP_INITIAL_WINDOW = 17  # packets
MP_TCP_PACKET_BITS = 18  # a full packet on the link (MTU), bits
MP_TCP_PAYLOAD_BITS = 19  # its payload (MSS), bits
MP_TCP_QUEUE_PACKETS = 20  # the bottleneck's queue
MP_TCP_IDLE_RESTART = 21  # 1: slow-start restart after an idle period longer than the RTO (Linux, CUBIC)
MODEL_PARAMS = 22

#: Linux's minimum retransmission timeout (TCP_RTO_MIN): with a steady round trip the RTO is
#: about the smoothed RTT plus this.
TCP_RTO_MIN_S = 0.2

#: ``abandon_to`` of a download cut short by the session's time limit (logged as abandoned).
TIMED_OUT = -3

# The player-state array.
PS_TIME_S = 0  # session time now
PS_BUFFER_S = 1  # media in the buffer
PS_STARTED = 2  # 1 once playback has started
PS_STALLED = 3  # 1 while playback is stalled
PS_STARTUP_S = 4  # when playback started
PS_REBUFFER_COUNT = 5  # stalls so far
PS_REBUFFER_S = 6  # stall time so far
PS_INDEX = 7  # the segment being requested
PS_SEGMENTS = 8  # segments in the session
PS_ATTEMPTS = 9  # download attempts so far (abandoned ones included)
PS_LAST_RUNG = 10  # rung of the last completed download, NO_RUNG before the first
PS_PENDING_RUNG = 11  # the rung an abandoned download asked for, or NO_RUNG
PS_STALL_S = 12  # this request: stall so far
PS_WAIT_S = 13  # this request: full-buffer wait plus pause
PS_RUNG = 14  # this request: its rung
PS_SIZE_BITS = 15  # this request: the segment's size at that rung
PS_REQUEST_S = 16  # this request: when it left
PS_BUFFER_REQUEST_S = 17  # this request: the buffer then
PS_LATENCY_S = 18  # this request: its latency
PS_FIRST_BYTE_S = 19  # this request: when its first byte arrived
PS_DONE_S = 20  # this request: when its last (or last wanted) byte arrived
PS_SENT_BITS = 21  # this request: bits received
PS_ABANDON_TO = 22  # this request: the rung it was abandoned for, or NO_RUNG
PS_LAG_S = 23  # trace walk: session time minus trace time (latency off the trace clock)
PS_SAMPLE = 24  # trace walk: the cursor's sample ...
PS_LOOP_START_S = 25  # ... and the start of the trace pass it is in
PS_SEGMENT_DURATION_S = 26  # the ladder's segment duration
PS_TIMED_OUT = 27  # 1 once the session has passed the model's time limit
PS_CWND = 28  # tcp: the connection's congestion window, packets ...
PS_LAST_DONE_S = 29  # ... and when its last response ended (-1: no response yet) ...
PS_SLOW_START_BITS = 30  # ... and this request's bits delivered in slow-start rounds
# ... then, in the same array, the player's model and estimator and what the policy sees:
PS_MODEL = 31  # the model (MODEL_PARAMS values, MP_* order)
PS_EST_PARAMS = PS_MODEL + MODEL_PARAMS  # the estimator's parameters (EST_PARAMS values) ...
PS_EST_STATE = PS_EST_PARAMS + EST_PARAMS  # ... and its state (EST_STATE_SIZE values)
PS_OBS = PS_EST_STATE + EST_STATE_SIZE  # the policy's observation (OBS_SIZE values, OBS_* order)
PS_OBS_END = PS_OBS + protocol.OBS_SIZE
PS_MODEL_END = PS_EST_PARAMS
PLAYER_STATE = PS_OBS_END

#: Relative rounding allowed at a trace sample's end: a transfer due within this share of the
#: end time (a few hundred float ulps) completes in the sample. Without it, a download that ends
#: exactly at a sample boundary, as whole-ms, whole-kbit/s traces make happen, could be left
#: 1e-12 bits short and wait out a following outage.
SAMPLE_END_SLACK = 1e-13

#: A trace cursor moved forward by more than this many passes of its trace skips them at once.
SEEK_SKIP_PASSES = 4096.0


def model_array(model, ladder) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The player model as the step reads it (``MP_*``), checked against ``ladder``.

    Raises:
        InputError: if the model does not fit the ladder (see :meth:`PlayerModel.check`).
    """
    model.check(ladder)
    values = np.zeros(MODEL_PARAMS, dtype=np.float64)
    values[MP_REQUEST_LATENCY_S] = model.request_latency_s
    values[MP_GOODPUT_FACTOR] = model.goodput_factor
    values[MP_MAX_BUFFER_S] = model.max_buffer_s
    values[MP_STARTUP_THRESHOLD_S] = model.startup_threshold_s
    values[MP_RESUME_THRESHOLD_S] = model.resume_threshold_s
    values[MP_FIRST_RUNG] = model.first_rung
    values[MP_LATENCY_SCALED] = model.latency_scaled
    values[MP_LATENCY_ON_TRACE] = model.latency_on_trace_clock
    values[MP_CAP_NEXT_SEGMENT] = model.cap_counts_next_segment
    values[MP_WAIT_STEP_S] = model.wait_step_s
    values[MP_SEGMENT_LIMIT] = model.segment_limit
    values[MP_ABANDONMENT] = model.abandonment
    values[MP_PROGRESS_BITS] = model.abandon_check_bits
    values[MP_PROGRESS_S] = model.abandon_check_s
    values[MP_RETRY_ABR] = model.compat_sabre_retry_abr
    values[MP_TIME_LIMIT_S] = model.time_limit_s(ladder)
    values[MP_GOODPUT_FACTOR] = model.payload_factor
    tcp = model.network == "tcp"
    values[MP_TCP] = tcp
    values[MP_TCP_INITIAL_WINDOW] = model.tcp_initial_window
    values[MP_TCP_PACKET_BITS] = 8.0 * model.tcp_packet_bytes
    values[MP_TCP_PAYLOAD_BITS] = 8.0 * model.tcp_mss_bytes
    values[MP_TCP_QUEUE_PACKETS] = model.tcp_queue_packets
    values[MP_TCP_IDLE_RESTART] = model.tcp_idle_restart
    return values


def session_log(log, rungs, trace: str, policy: str, startup_s: float, end_s: float,
                rebuffer_count: int):  # type: ignore[no-untyped-def]
    """A :class:`abrsim.log.SessionLog` over one session's rows of a log (columns ``COL_*``)."""
    from abrsim.log import SessionLog

    return SessionLog(
        trace=trace,
        policy=policy,
        segment=log[:, COL_SEGMENT].astype(np.int64),
        rung=np.asarray(rungs, dtype=np.int64),
        size_bits=log[:, COL_SIZE_BITS],
        downloaded_bits=log[:, COL_DOWNLOADED_BITS],
        abandoned=log[:, COL_ABANDONED] != 0.0,
        request_s=log[:, COL_REQUEST_S],
        first_byte_s=log[:, COL_FIRST_BYTE_S],
        done_s=log[:, COL_DONE_S],
        buffer_before_s=log[:, COL_BUFFER_BEFORE_S],
        buffer_after_s=log[:, COL_BUFFER_AFTER_S],
        stall_s=log[:, COL_STALL_S],
        wait_s=log[:, COL_WAIT_S],
        startup_s=float(startup_s),
        end_s=float(end_s),
        rebuffer_count=int(rebuffer_count),
    )


__all__ = ["InputError", "model_array", "session_log"]  # InputError: model_array's documented exception


# ----------------------------------------------------------------------------------------------
# The trace walk: a piecewise-constant trace that loops, read through a cursor (sample, loop start)
# ----------------------------------------------------------------------------------------------


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
    """Move a trace cursor ``(sample, loop_start_s)`` forward to the sample in force at ``time_s``.

    A jump of more than SEEK_SKIP_PASSES passes of the trace (only absurd inputs make one: a
    latency of years) skips whole passes at once; shorter moves walk sample by sample, so the
    cursor's pass starts are sums of durations, exactly as before.
    """
    if time_s - loop_start_s > SEEK_SKIP_PASSES * duration_s:
        loop_start_s += (math.floor((time_s - loop_start_s) / duration_s) - 1.0) * duration_s
        sample = 0
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
             sample, loop_start_s, horizon_s):
    """Send bits from trace time ``time_s``: all of ``size_bits``, or one abandonment step.

    With ``min_bits <= 0`` and ``min_s <= 0`` the whole ``size_bits`` is sent. Otherwise one step
    is sent: it ends once at least ``min_bits`` bits and at least ``min_s`` seconds' worth of the
    current bandwidth have gone (Sabre's ``do_minimal_download``), or the segment is complete.
    Samples with no bandwidth pass without data. The walk stops once it is past trace time
    ``horizon_s`` (the session's time limit; at a sample's end), with fewer bits sent.

    Returns ``(time_s, sent_bits, sample, loop_start_s)``.
    """
    sample, loop_start_s = seek(start_s, duration_s, time_s, sample, loop_start_s)
    stepping = min_bits > 0.0 or min_s > 0.0
    remaining_bits = size_bits
    sent_bits = 0.0
    while remaining_bits > 0.0 and (not stepping or min_bits > 0.0 or min_s > 0.0) and time_s <= horizon_s:
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
                  sample, loop_start_s, horizon_s):
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
                    sample, loop_start_s, horizon_s)


@kernel
def walk_latency(start_s, latency_s, has_latency, duration_s, model_params, time_s, lag_s, sample,
                 loop_start_s):
    """The latency of a request leaving at session time ``time_s``, from the trace or the model.

    Returns ``(latency_s, lag_s, sample, loop_start_s)``: the lag grows by the latency when latency
    does not run the trace clock; the cursor moves to the request's sample.
    """
    trace_s = time_s - lag_s
    if has_latency and model_params[MP_LATENCY_SCALED] != 0.0:
        first_byte_trace_s, sample, loop_start_s = scaled_latency(
            start_s, latency_s, duration_s, trace_s, sample, loop_start_s)
        request_latency_s = first_byte_trace_s - trace_s
    elif has_latency:
        sample, loop_start_s = seek(start_s, duration_s, trace_s, sample, loop_start_s)
        request_latency_s = latency_s[sample]
    else:
        request_latency_s = model_params[MP_REQUEST_LATENCY_S]
    if model_params[MP_LATENCY_ON_TRACE] == 0.0:
        lag_s += request_latency_s
    return request_latency_s, lag_s, sample, loop_start_s


@kernel
def walk_transfer(start_s, bandwidth_bps, duration_s, model_params, clock_s, lag_s, size_bits, sample,
                  loop_start_s):
    """Send ``size_bits`` from session time ``clock_s``, or less if the session's time limit comes
    first; returns ``(clock_s, sent_bits, sample, loop_start_s)``."""
    clock_trace_s, sent_bits, sample, loop_start_s = transfer(
        start_s, bandwidth_bps, duration_s, model_params[MP_GOODPUT_FACTOR], clock_s - lag_s, size_bits, 0.0,
        0.0, sample, loop_start_s, model_params[MP_TIME_LIMIT_S] - lag_s)
    return clock_trace_s + lag_s, sent_bits, sample, loop_start_s


@kernel
def walk_step(start_s, bandwidth_bps, duration_s, model_params, clock_s, lag_s, size_bits, min_bits, min_s,
              sample, loop_start_s):
    """One abandonment step (:func:`transfer_step`) from session time ``clock_s``.

    Returns ``(clock_s, sent_bits, sample, loop_start_s)``.
    """
    clock_trace_s, sent_bits, sample, loop_start_s = transfer_step(
        start_s, bandwidth_bps, duration_s, model_params[MP_GOODPUT_FACTOR], clock_s - lag_s, size_bits,
        min_bits, min_s, sample, loop_start_s, model_params[MP_TIME_LIMIT_S] - lag_s)
    return clock_trace_s + lag_s, sent_bits, sample, loop_start_s


# ----------------------------------------------------------------------------------------------
# Skipping abandonment checkpoints: inside one trace sample every step of a stepped transfer adds
# the same two numbers to the clock and to the bits sent, so how far the steps go before the
# sample ends, the download ends or the policy's rule could fire is known in advance. The steps
# are then replayed as bare additions (the same sums, so the same bits), without checkpoints.
# ----------------------------------------------------------------------------------------------


@kernel
def quiet_until_s(request_s, after_s):
    """The session time before which no checkpoint of a download requested at ``request_s`` needs
    the policy, from its ``abandon_after`` answer ``after_s`` (an elapsed time), less a margin
    for the rounding of the elapsed time and the buffer at each checkpoint."""
    if after_s == np.inf:
        return np.inf
    return request_s + after_s - (1e-6 + 1e-9 * (abs(request_s) + abs(after_s)))


@kernel
def _whole_step(time_s, sent_bits, step_s, step_bits, rate_bps, size_bits, end_s, horizon_s, until_s):
    """Whether the next step from ``(time_s, sent_bits)`` goes as :func:`transfer_step`'s step inside
    the sample and is followed by a checkpoint before ``until_s``, within the time limit."""
    return (step_bits < size_bits - sent_bits and step_bits <= (end_s - time_s) * rate_bps
            and sent_bits + step_bits < size_bits and time_s + step_s <= horizon_s
            and time_s + step_s < until_s)


@kernel
def skip_steps(start_s, duration_s, rate_bps, time_s, sent_bits, size_bits, min_bits, min_s, horizon_s,
               until_s, sample, loop_start_s):
    """Whole abandonment steps of a transfer (:func:`transfer_step`, each ``min_bits`` / ``min_s``)
    taken at once, exactly as one by one, with their checkpoints skipped.

    From ``time_s`` with ``sent_bits`` of ``size_bits`` sent, at ``rate_bps`` in the trace sample
    of the cursor: every step that ends inside the sample, before the last bit, at or before
    ``horizon_s`` (the time limit) and before ``until_s`` (where a checkpoint could matter).
    Returns ``(time_s, sent_bits)`` after them (unchanged: none).
    """
    if not rate_bps > 0.0 or (min_bits <= 0.0 and min_s <= 0.0) or time_s < loop_start_s + start_s[sample]:
        return time_s, sent_bits
    end_s = sample_end_s(start_s, duration_s, sample, loop_start_s)
    step_bits = max(min_bits, min_s * rate_bps)
    step_s = step_bits / rate_bps
    estimate = min((size_bits - sent_bits) / step_bits, (min(end_s, horizon_s, until_s) - time_s) / step_s)
    if not estimate >= 1.0:
        return time_s, sent_bits
    # Bare steps a little short of the estimate, then checked ones: the conditions only get worse
    # from step to step, so where one holds, so did those of the steps before it.
    first = np.int64(min(estimate, 1e9)) - 3
    if first >= 1:
        before_s = time_s
        before_bits = sent_bits
        for _ in range(first - 1):
            before_s += step_s
            before_bits += step_bits
        if not _whole_step(before_s, before_bits, step_s, step_bits, rate_bps, size_bits, end_s, horizon_s,
                           until_s):
            return time_s, sent_bits
        time_s = before_s + step_s
        sent_bits = before_bits + step_bits
    for _ in range(8):
        if not _whole_step(time_s, sent_bits, step_s, step_bits, rate_bps, size_bits, end_s, horizon_s,
                           until_s):
            break
        time_s += step_s
        sent_bits += step_bits
    return time_s, sent_bits


# ----------------------------------------------------------------------------------------------
# The tcp network model: one persistent connection per session, its congestion window carried
# from one response to the next. The trace's bandwidth is the bottleneck link's capacity (IP
# packets); a response's payload moves at capacity x MSS / packet size x goodput_factor.
# ----------------------------------------------------------------------------------------------


@kernel
def tcp_restart(cwnd, idle_s, rtt_s, model_params):
    """The window after the connection sat idle for ``idle_s`` (the sender's view: from its last
    packet to the next request's arrival), as Linux's ``tcp_cwnd_restart`` sets it when
    ``tcp_slow_start_after_idle`` is on and the congestion control does not pace itself (CUBIC,
    Reno; BBR keeps its window): one halving per RTO (the RTT plus TCP_RTO_MIN_S) after the
    first, down to the initial window."""
    if model_params[MP_TCP_IDLE_RESTART] == 0.0:
        return cwnd
    rto_s = rtt_s + TCP_RTO_MIN_S
    restart = min(model_params[MP_TCP_INITIAL_WINDOW], cwnd)
    delta_s = idle_s - rto_s
    if delta_s <= 0.0:
        return cwnd
    while delta_s > 0.0 and cwnd > restart:
        cwnd = math.floor(cwnd / 2.0)
        delta_s -= rto_s
    return max(cwnd, restart)


@kernel
def walk_tcp(start_s, bandwidth_bps, duration_s, model_params, clock_s, lag_s, size_bits, cwnd, rtt_s,
             sample, loop_start_s):
    """Slow start of one response from its first byte at session time ``clock_s``: while the window
    holds less than the path's bandwidth-delay product, each round trip delivers one window and
    the window doubles. Stops where the window fills the pipe or the rest of the response fits in
    one window (from there it streams at the link's rate: :func:`walk_transfer`).

    Returns ``(clock_s, sent_bits, cwnd, sample, loop_start_s)``.
    """
    limit_s = model_params[MP_TIME_LIMIT_S]
    sent_bits = 0.0
    while clock_s <= limit_s:
        sample, loop_start_s = seek(start_s, duration_s, clock_s - lag_s, sample, loop_start_s)
        window_bits = tcp_round_bits(model_params, cwnd, bandwidth_bps[sample], rtt_s, sent_bits, size_bits)
        if window_bits == 0.0:
            break
        sent_bits += window_bits
        clock_s += rtt_s
        cwnd = 2.0 * cwnd
    return clock_s, sent_bits, cwnd, sample, loop_start_s


@kernel
def tcp_round_bits(model_params, cwnd, capacity_bps, rtt_s, sent_bits, size_bits):
    """The payload bits of a response's next slow-start round: one window (``cwnd`` packets), which
    arrives one round trip later, then the window doubles. 0 when slow start is over: the window
    holds the path's bandwidth-delay product (``capacity_bps`` x ``rtt_s``; the rest streams at the
    path's rate), or the rest of the response (``size_bits`` less the ``sent_bits`` so far) fits in it."""
    pipe = capacity_bps * rtt_s / model_params[MP_TCP_PACKET_BITS]  # packets the path holds in flight
    window_bits = cwnd * model_params[MP_TCP_PAYLOAD_BITS]
    if cwnd >= pipe or sent_bits + window_bits >= size_bits:
        return 0.0
    return window_bits


@kernel
def tcp_begin(start_s, bandwidth_bps, duration_s, model_params, request_s, first_byte_s, lag_s, size_bits,
              cwnd, last_done_s, rtt_s, sample, loop_start_s):
    """A response on the session's connection: the window after the idle time since the last one
    (:func:`tcp_restart`; ``last_done_s`` < 0: a new connection), then its slow start
    (:func:`walk_tcp`). Returns ``(clock_s, sent_bits, cwnd, sample, loop_start_s)``."""
    cwnd = tcp_window(model_params, cwnd, request_s, last_done_s, rtt_s)
    return walk_tcp(start_s, bandwidth_bps, duration_s, model_params, first_byte_s, lag_s, size_bits, cwnd,
                    rtt_s, sample, loop_start_s)


@kernel
def tcp_window(model_params, cwnd, request_s, last_done_s, rtt_s):
    """The window a request sent at ``request_s`` starts with: ``cwnd`` after the idle time since the
    last response ended at ``last_done_s`` (:func:`tcp_restart`; ``last_done_s`` < 0: a new
    connection, whose ``cwnd`` is already the initial window)."""
    if last_done_s >= 0.0:
        return tcp_restart(cwnd, request_s - last_done_s + rtt_s, rtt_s, model_params)
    return cwnd


@kernel
def tcp_end(cwnd, streamed_bits, rate_bps, rtt_s, completed, model_params):
    """The window after a response that streamed ``streamed_bits`` after its slow start: one packet
    more per packet acknowledged, held at what the path (``rate_bps`` x ``rtt_s``) and its queue take
    before they drop packets (losses trim a larger one). An abandoned response closed the
    connection, so the next request opens a new one at the initial window."""
    initial_window = model_params[MP_TCP_INITIAL_WINDOW]
    if not completed:
        return initial_window
    grown = cwnd + streamed_bits / model_params[MP_TCP_PAYLOAD_BITS]
    cap = rate_bps * rtt_s / model_params[MP_TCP_PACKET_BITS] + model_params[MP_TCP_QUEUE_PACKETS]
    return min(grown, max(cap, initial_window))


@kernel
def first_step_s(model_params, request_s, latency_s, clock_s):
    """The time budget of a download's first abandonment step from ``clock_s``: the checkpoint
    spacing less the latency (and, with the tcp network, the slow-start rounds since the request)."""
    if model_params[MP_TCP] != 0.0:
        return model_params[MP_PROGRESS_S] - (clock_s - request_s)
    return model_params[MP_PROGRESS_S] - latency_s


# ----------------------------------------------------------------------------------------------
# The player's rules, on scalars: each rule once. The compiled drivers (the fast loop, the oracle)
# keep the player's state in local variables and call these; the phases below apply them to the
# player-state array for the drivers that stop between phases (the discrete-event player, a
# Python policy's loop).
# ----------------------------------------------------------------------------------------------


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


@kernel
def over_time(time_s, model_params):
    """Whether a session at ``time_s`` has passed the model's time limit (and ends, timed out)."""
    return time_s > model_params[MP_TIME_LIMIT_S]


@kernel
def time_out_rule(time_s, started, startup_s):
    """A session ends, timed out, at ``time_s``: what is in the buffer plays out, so playback starts
    then if it had not yet (as at the last segment). Returns ``startup_s``."""
    return startup_s if started else time_s


@kernel
def session_segments(segment_count, model_params):
    """How many of a ladder's ``segment_count`` segments a session plays."""
    limit = int(model_params[MP_SEGMENT_LIMIT])
    if 0 < limit < segment_count:
        return limit
    return segment_count


@kernel
def wait_rule(time_s, buffer_s, started, stalled, startup_s, model_params, segment_duration_s):
    """Wait while the buffer is too full; a full buffer starts (or resumes) playback.

    Returns ``(wait_s, time_s, buffer_s, started, startup_s, stall_s, stalled, new_stall)``;
    ``wait_s`` is 0 when there is room, and then nothing changes.
    """
    cap_next = model_params[MP_CAP_NEXT_SEGMENT] != 0.0
    excess_s = buffer_s + (segment_duration_s if cap_next else 0.0) - model_params[MP_MAX_BUFFER_S]
    if not excess_s > 0.0:
        return 0.0, time_s, buffer_s, started, startup_s, 0.0, stalled, False
    if not started:
        started = True
        startup_s = time_s
    wait_s = excess_s
    wait_step_s = model_params[MP_WAIT_STEP_S]
    if wait_step_s > 0.0:
        wait_s = math.ceil(excess_s / wait_step_s) * wait_step_s
    # np.bool_, not a literal False: numba would compile play once more for the literal
    buffer_s, stall_s, stalled, new = play(buffer_s, wait_s, started, np.bool_(False))
    return wait_s, time_s + wait_s, buffer_s, started, startup_s, stall_s, stalled, new


@kernel
def player_rung(index, attempts, pending_rung, model_params):
    """The rung the player sets itself, or NO_RUNG when the policy chooses.

    The model's first rung for the session's first attempt; after an abandonment, the rung it
    asked for (``pending_rung``, NO_RUNG when the model asks the policy again).
    """
    first_rung = model_params[MP_FIRST_RUNG]
    if index == 0 and first_rung >= 0.0 and attempts == 0:
        return np.int64(first_rung)
    return np.int64(pending_rung)


@kernel
def after_abandon(abandon_to, model_params):
    """The rung the next attempt must use after an abandonment for ``abandon_to`` (or NO_RUNG)."""
    return np.int64(abandon_to if model_params[MP_RETRY_ABR] == 0.0 else NO_RUNG)


@kernel
def finish_rule(time_s, buffer_s, started, stalled, startup_s, done_s, completed, last_segment, model_params,
                segment_duration_s):
    """A download ended at ``done_s``: playback up to then; a complete segment joins the buffer and
    playback starts or resumes at its threshold (or at the last segment).

    Returns ``(buffer_s, started, stalled, startup_s, stall_s, new_stall)``; the time is ``done_s``.
    """
    buffer_s, stall_s, stalled, new = play(buffer_s, done_s - time_s, started, stalled)
    if completed:
        buffer_s += segment_duration_s
        if not started:
            if buffer_s >= model_params[MP_STARTUP_THRESHOLD_S] or last_segment:
                started = True
                startup_s = done_s
        elif stalled and (buffer_s >= model_params[MP_RESUME_THRESHOLD_S] or last_segment):
            stalled = False
    return buffer_s, started, stalled, startup_s, stall_s, new


@kernel
def record_download(est_params, est_state, size_bits, first_byte_s, done_s, latency_s):
    """A complete download's throughput (weighted by its transfer time) and latency to the estimator."""
    transfer_s = done_s - first_byte_s
    estimator_update(est_params, est_state, size_bits / transfer_s, transfer_s, latency_s)


@kernel
def fill_observation(obs, index, buffer_s, last_rung, time_s, rebuffer_s, est_params, est_state,
                     estimating):
    """What the policy sees before it chooses; the estimates only if ``estimating`` (a policy that
    reads neither, see ``reads_estimates`` in :func:`abrsim.abr.register`, is not given them)."""
    obs[protocol.OBS_SEGMENT] = index
    obs[protocol.OBS_BUFFER_S] = buffer_s
    obs[protocol.OBS_LAST_RUNG] = last_rung
    if estimating:
        obs[protocol.OBS_THROUGHPUT_BPS] = estimator_throughput_bps(est_params, est_state)
        obs[protocol.OBS_LATENCY_S] = estimator_latency_s(est_params, est_state)
    obs[protocol.OBS_TIME_S] = time_s
    obs[protocol.OBS_REBUFFER_S] = rebuffer_s


@kernel
def fill_request(obs, rung, size_bits, latency_s):
    """The download in flight, for the policy's abandonment checks."""
    obs[protocol.OBS_RUNG] = rung
    obs[protocol.OBS_SIZE_BITS] = size_bits
    obs[protocol.OBS_TTFB_S] = latency_s


@kernel
def fill_checkpoint(obs, sent_bits, elapsed_s, buffer_request_s):
    """An abandonment checkpoint ``elapsed_s`` after the request: the buffer as playback has drained
    it since the request (never below 0)."""
    obs[protocol.OBS_DOWNLOADED_BITS] = sent_bits
    obs[protocol.OBS_ELAPSED_S] = elapsed_s
    obs[protocol.OBS_BUFFER_S] = max(0.0, buffer_request_s - elapsed_s)


@kernel
def fill_download(obs, rung, size_bits, sent_bits, elapsed_s, latency_s, buffer_s, abandon_to):
    """The download that just ended, for the policy's event."""
    obs[protocol.OBS_RUNG] = rung
    obs[protocol.OBS_SIZE_BITS] = size_bits
    obs[protocol.OBS_DOWNLOADED_BITS] = sent_bits
    obs[protocol.OBS_ELAPSED_S] = elapsed_s
    obs[protocol.OBS_TTFB_S] = latency_s
    obs[protocol.OBS_BUFFER_S] = buffer_s
    if abandon_to != NO_RUNG:
        obs[protocol.OBS_ABANDON_TO] = abandon_to


@kernel
def write_log(log, rungs, row, segment, rung, request_s, first_byte_s, done_s, size_bits, sent_bits,
              buffer_before_s, buffer_after_s, stall_s, wait_s, abandoned):
    """One download attempt as row ``row`` of a log (columns ``COL_*``)."""
    log[row, COL_SEGMENT] = segment
    log[row, COL_REQUEST_S] = request_s
    log[row, COL_FIRST_BYTE_S] = first_byte_s
    log[row, COL_DONE_S] = done_s
    log[row, COL_SIZE_BITS] = size_bits
    log[row, COL_DOWNLOADED_BITS] = sent_bits
    log[row, COL_BUFFER_BEFORE_S] = buffer_before_s
    log[row, COL_BUFFER_AFTER_S] = buffer_after_s
    log[row, COL_STALL_S] = stall_s
    log[row, COL_WAIT_S] = wait_s
    log[row, COL_ABANDONED] = 1.0 if abandoned else 0.0
    rungs[row] = rung


@kernel
def close_session(startup_s, end_s, rebuffer_count, segments, session, first_record, records, timed_out):
    """The session's scalars (``SES_*``); ``end_s``: after the buffer plays out."""
    session[SES_TIMED_OUT] = 1.0 if timed_out else 0.0
    session[SES_STARTUP_S] = startup_s
    session[SES_END_S] = end_s
    session[SES_REBUFFER_COUNT] = rebuffer_count
    session[SES_FIRST_RECORD] = first_record
    session[SES_RECORDS] = records
    session[SES_SEGMENTS] = segments


# ----------------------------------------------------------------------------------------------
# The phases: the rules applied to the player-state array ``ps``
# ----------------------------------------------------------------------------------------------


@kernel
def reset_player(ps, model_params, est_params, segment_count, segment_duration_s):
    """A new session on a ladder of ``segment_count`` segments: empty buffer, time 0, nothing
    requested yet; the model and the estimator's parameters copied in. Returns the segments played."""
    segments = session_segments(segment_count, model_params)
    ps[:] = 0.0
    ps[PS_SEGMENTS] = segments
    ps[PS_SEGMENT_DURATION_S] = segment_duration_s
    ps[PS_LAST_RUNG] = NO_RUNG
    ps[PS_PENDING_RUNG] = NO_RUNG
    ps[PS_ABANDON_TO] = NO_RUNG
    ps[PS_CWND] = model_params[MP_TCP_INITIAL_WINDOW]
    ps[PS_LAST_DONE_S] = -1.0
    for i in range(MODEL_PARAMS):
        ps[PS_MODEL + i] = model_params[i]
    for i in range(EST_PARAMS):
        ps[PS_EST_PARAMS + i] = est_params[i]
    obs = ps[PS_OBS:PS_OBS_END]
    obs[protocol.OBS_SEGMENTS] = segments
    obs[protocol.OBS_SEGMENT_DURATION_S] = segment_duration_s
    return segments


@kernel
def _count_stall(ps, stall_s, new):
    ps[PS_STALL_S] += stall_s
    ps[PS_REBUFFER_S] += stall_s
    if new:
        ps[PS_REBUFFER_COUNT] += 1.0


@kernel
def wait_for_room(ps):
    """Phase 1: start a request's accounting; wait while the buffer is too full (:func:`wait_rule`).

    Returns the wait, 0 when there is room (the driver then reports no wait event to the policy).
    """
    ps[PS_STALL_S] = 0.0
    ps[PS_WAIT_S] = 0.0
    wait_s, time_s, buffer_s, started, startup_s, stall_s, stalled, new = wait_rule(
        ps[PS_TIME_S], ps[PS_BUFFER_S], ps[PS_STARTED] != 0.0, ps[PS_STALLED] != 0.0, ps[PS_STARTUP_S],
        ps[PS_MODEL:PS_MODEL_END], ps[PS_SEGMENT_DURATION_S])
    if wait_s > 0.0:
        ps[PS_TIME_S] = time_s
        ps[PS_BUFFER_S] = buffer_s
        ps[PS_STARTED] = 1.0 if started else 0.0
        ps[PS_STARTUP_S] = startup_s
        ps[PS_STALLED] = 1.0 if stalled else 0.0
        ps[PS_WAIT_S] = wait_s
        ps[PS_OBS + protocol.OBS_WAIT_S] = wait_s
        _count_stall(ps, stall_s, new)
    return wait_s


@kernel
def observe(ps):
    """Phase 2: what the policy sees before it chooses (:func:`fill_observation`); then the rung the
    player sets itself (:func:`player_rung`), or NO_RUNG: the policy's turn."""
    fill_observation(ps[PS_OBS:PS_OBS_END], ps[PS_INDEX], ps[PS_BUFFER_S], ps[PS_LAST_RUNG], ps[PS_TIME_S],
                     ps[PS_REBUFFER_S], ps[PS_EST_PARAMS:PS_EST_STATE], ps[PS_EST_STATE:PS_OBS],
                     np.bool_(True))  # (not a literal: one compile of fill_observation)
    pending = ps[PS_PENDING_RUNG]
    ps[PS_PENDING_RUNG] = NO_RUNG
    return player_rung(ps[PS_INDEX], ps[PS_ATTEMPTS], pending, ps[PS_MODEL:PS_MODEL_END])


@kernel
def begin_request(ps, rung, pause_s, size_bits):
    """Phase 3: the policy's pause (playback goes on), then the request for ``rung`` leaves.

    A pause ends at the model's time limit at the latest; the request then leaves, and is cut like
    any download in flight. Returns when it leaves (the session time).
    """
    pause_s = min(pause_s, ps[PS_MODEL + MP_TIME_LIMIT_S] - ps[PS_TIME_S])
    if pause_s > 0.0:
        buffer_s, stall_s, stalled, new = play(ps[PS_BUFFER_S], pause_s, ps[PS_STARTED] != 0.0,
                                               ps[PS_STALLED] != 0.0)
        ps[PS_BUFFER_S] = buffer_s
        ps[PS_STALLED] = 1.0 if stalled else 0.0
        _count_stall(ps, stall_s, new)
        ps[PS_TIME_S] += pause_s
        ps[PS_WAIT_S] += pause_s
    ps[PS_RUNG] = rung
    ps[PS_SIZE_BITS] = size_bits
    ps[PS_REQUEST_S] = ps[PS_TIME_S]
    ps[PS_BUFFER_REQUEST_S] = ps[PS_BUFFER_S]
    ps[PS_SENT_BITS] = 0.0
    ps[PS_ABANDON_TO] = NO_RUNG
    return ps[PS_TIME_S]


@kernel
def set_first_byte(ps, latency_s, can_abandon):
    """Phase 4: the request's latency. Returns when its first byte arrives, and whether the download
    is checked for abandonment (the model checks, the policy can abandon, not the first segment)."""
    ps[PS_LATENCY_S] = latency_s
    first_byte_s = ps[PS_TIME_S] + latency_s
    ps[PS_FIRST_BYTE_S] = first_byte_s
    fill_request(ps[PS_OBS:PS_OBS_END], ps[PS_RUNG], ps[PS_SIZE_BITS], latency_s)
    checked = ps[PS_MODEL + MP_ABANDONMENT] != 0.0 and can_abandon and ps[PS_INDEX] > 0.0
    return first_byte_s, checked


@kernel
def checkpoint(ps, sent_bits, clock_s):
    """Phase 5: an abandonment checkpoint at ``clock_s``, ``sent_bits`` received (:func:`fill_checkpoint`)."""
    fill_checkpoint(ps[PS_OBS:PS_OBS_END], sent_bits, clock_s - ps[PS_REQUEST_S], ps[PS_BUFFER_REQUEST_S])


@kernel
def finish_download(ps, done_s, sent_bits, abandon_to):
    """Phase 6: the download ended at ``done_s``, abandoned for ``abandon_to`` (``TIMED_OUT``: cut
    short by the time limit, which ends the session) or complete (:func:`finish_rule`,
    :func:`record_download`); fills the observation for the policy's event.

    Returns True if the download completed.
    """
    model_params = ps[PS_MODEL:PS_MODEL_END]
    completed = abandon_to == NO_RUNG
    if completed:
        sent_bits = ps[PS_SIZE_BITS]  # the steps' sum may differ from the size by rounding
    buffer_s, started, stalled, startup_s, stall_s, new = finish_rule(
        ps[PS_TIME_S], ps[PS_BUFFER_S], ps[PS_STARTED] != 0.0, ps[PS_STALLED] != 0.0, ps[PS_STARTUP_S],
        done_s, completed, ps[PS_INDEX] == ps[PS_SEGMENTS] - 1.0, model_params, ps[PS_SEGMENT_DURATION_S])
    ps[PS_TIME_S] = done_s
    ps[PS_BUFFER_S] = buffer_s
    ps[PS_STARTED] = 1.0 if started else 0.0
    ps[PS_STALLED] = 1.0 if stalled else 0.0
    ps[PS_STARTUP_S] = startup_s
    _count_stall(ps, stall_s, new)
    ps[PS_DONE_S] = done_s
    ps[PS_SENT_BITS] = sent_bits
    ps[PS_ABANDON_TO] = abandon_to
    ps[PS_ATTEMPTS] += 1.0
    fill_download(ps[PS_OBS:PS_OBS_END], ps[PS_RUNG], ps[PS_SIZE_BITS], sent_bits, done_s - ps[PS_REQUEST_S],
                  ps[PS_LATENCY_S], buffer_s, abandon_to)
    if not completed:
        ps[PS_PENDING_RUNG] = after_abandon(abandon_to, model_params)
        if abandon_to == TIMED_OUT:
            _time_out(ps)
        return False
    record_download(ps[PS_EST_PARAMS:PS_EST_STATE], ps[PS_EST_STATE:PS_OBS], ps[PS_SIZE_BITS],
                    ps[PS_FIRST_BYTE_S], done_s, ps[PS_LATENCY_S])
    ps[PS_LAST_RUNG] = ps[PS_RUNG]
    ps[PS_INDEX] += 1.0
    return True


@kernel
def log_row(ps, log, rungs, row):
    """The download that just ended as row ``row`` of a log (:func:`write_log`)."""
    abandoned = ps[PS_ABANDON_TO] != NO_RUNG
    write_log(log, rungs, row, ps[PS_INDEX] - (0.0 if abandoned else 1.0), np.int64(ps[PS_RUNG]),
              ps[PS_REQUEST_S], ps[PS_FIRST_BYTE_S], ps[PS_DONE_S], ps[PS_SIZE_BITS], ps[PS_SENT_BITS],
              ps[PS_BUFFER_REQUEST_S], ps[PS_BUFFER_S], ps[PS_STALL_S], ps[PS_WAIT_S], abandoned)


@kernel
def trace_latency(ps, start_s, latency_s, has_latency, duration_s):
    """Phase 4 over a trace: the latency of the request leaving now (:func:`walk_latency`)."""
    latency, lag_s, sample, loop_start_s = walk_latency(
        start_s, latency_s, has_latency, duration_s, ps[PS_MODEL:PS_MODEL_END], ps[PS_TIME_S], ps[PS_LAG_S],
        np.int64(ps[PS_SAMPLE]), ps[PS_LOOP_START_S])
    ps[PS_LAG_S] = lag_s
    ps[PS_SAMPLE] = sample
    ps[PS_LOOP_START_S] = loop_start_s
    return latency


@kernel
def trace_transfer(ps, start_s, bandwidth_bps, duration_s, clock_s, size_bits):
    """Phase 5 over a trace: the whole transfer (:func:`walk_transfer`); returns ``(clock_s, sent_bits)``:
    fewer bits than the size when the session's time limit cut it short."""
    clock_s, sent_bits, sample, loop_start_s = walk_transfer(
        start_s, bandwidth_bps, duration_s, ps[PS_MODEL:PS_MODEL_END], clock_s, ps[PS_LAG_S], size_bits,
        np.int64(ps[PS_SAMPLE]), ps[PS_LOOP_START_S])
    ps[PS_SAMPLE] = sample
    ps[PS_LOOP_START_S] = loop_start_s
    return clock_s, sent_bits


@kernel
def trace_tcp(ps, start_s, bandwidth_bps, duration_s):
    """Phase 5 over a trace, tcp network: the response's slow start from its first byte
    (:func:`tcp_begin`). Returns ``(clock_s, slow_start_bits)``: where the rest streams from, and
    the bits delivered until then (0 and the first byte with the throughput network)."""
    ps[PS_SLOW_START_BITS] = 0.0
    if ps[PS_MODEL + MP_TCP] == 0.0:
        return ps[PS_FIRST_BYTE_S], 0.0
    clock_s, sent_bits, cwnd, sample, loop_start_s = tcp_begin(
        start_s, bandwidth_bps, duration_s, ps[PS_MODEL:PS_MODEL_END], ps[PS_REQUEST_S], ps[PS_FIRST_BYTE_S],
        ps[PS_LAG_S], ps[PS_SIZE_BITS], ps[PS_CWND], ps[PS_LAST_DONE_S], ps[PS_LATENCY_S],
        np.int64(ps[PS_SAMPLE]), ps[PS_LOOP_START_S])
    ps[PS_CWND] = cwnd
    ps[PS_SAMPLE] = sample
    ps[PS_LOOP_START_S] = loop_start_s
    ps[PS_SLOW_START_BITS] = sent_bits
    return clock_s, sent_bits


@kernel
def tcp_finish(ps, rate_bps):
    """After phase 6, tcp network: the connection's window after the response that just ended
    (:func:`tcp_end`; ``rate_bps``: the link's capacity then)."""
    if ps[PS_MODEL + MP_TCP] == 0.0:
        return
    completed = ps[PS_ABANDON_TO] == NO_RUNG
    ps[PS_CWND] = tcp_end(ps[PS_CWND], ps[PS_SENT_BITS] - ps[PS_SLOW_START_BITS], rate_bps, ps[PS_LATENCY_S],
                          completed, ps[PS_MODEL:PS_MODEL_END])
    ps[PS_LAST_DONE_S] = ps[PS_DONE_S] if completed else -1.0


@kernel
def trace_step(ps, start_s, bandwidth_bps, duration_s, clock_s, size_bits, min_bits, min_s):
    """Phase 5 over a trace: one abandonment step (:func:`walk_step`); returns ``(clock_s, sent_bits)``."""
    clock_s, sent_bits, sample, loop_start_s = walk_step(
        start_s, bandwidth_bps, duration_s, ps[PS_MODEL:PS_MODEL_END], clock_s, ps[PS_LAG_S], size_bits,
        min_bits, min_s, np.int64(ps[PS_SAMPLE]), ps[PS_LOOP_START_S])
    ps[PS_SAMPLE] = sample
    ps[PS_LOOP_START_S] = loop_start_s
    return clock_s, sent_bits


@kernel
def close_player(ps, session, first_record, records):
    """The session's scalars from the player state (:func:`close_session`)."""
    close_session(ps[PS_STARTUP_S], ps[PS_TIME_S] + ps[PS_BUFFER_S], ps[PS_REBUFFER_COUNT], ps[PS_SEGMENTS],
                  session, first_record, records, ps[PS_TIMED_OUT] != 0.0)


@kernel
def check_time(ps):
    """Phase 0: whether the session has passed the model's time limit (:func:`over_time`); if so it
    is marked timed out and ends before its next request."""
    if over_time(ps[PS_TIME_S], ps[PS_MODEL:PS_MODEL_END]):
        _time_out(ps)
        return True
    return False


@kernel
def _time_out(ps):
    ps[PS_TIMED_OUT] = 1.0
    ps[PS_STARTUP_S] = time_out_rule(ps[PS_TIME_S], ps[PS_STARTED] != 0.0, ps[PS_STARTUP_S])
    ps[PS_STARTED] = 1.0
