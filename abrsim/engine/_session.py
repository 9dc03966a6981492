"""The fast engine's drivers: the session step (:mod:`abrsim.engine.step`) over a trace walk.

Two drivers, one per kind of policy; both apply the step's rules in the same order, with the
transfer computed over the trace's piecewise-constant bandwidth:

- :func:`run_batch`, for a compiled policy, keeps each session's player state in
  local variables and calls the policy's functions (``policy_reset``, ``policy_choose``,
  ``policy_event``, ``policy_abandon``) directly. It is a template: :func:`specialise`
  compiles a copy per policy, bound to that policy's functions (so LLVM inlines them), so a run
  compiles only the policies it uses, and numba's disk cache keeps each copy;
- :func:`advance`, for a Python policy, runs the step's phases over the player-state array
  until the policy has something to answer or hear: a decision (``STOP_CHOOSE``), an
  abandonment checkpoint (``STOP_CHECK``) or an event (a full-buffer wait, a finished or
  abandoned download). :mod:`abrsim.engine.fast` answers through the player state
  (``PS_ANSWER_RUNG``, ``PS_ANSWER_PAUSE_S``) and calls again: the loop returns to Python only
  for the stops the policy listens to (by default, decisions).

Units: seconds, bits, bit/s. Arrays and scalars only.
"""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from abrsim.abr._kernels import (
    EVENT_ABANDONED,
    EVENT_DONE,
    EVENT_WAIT,
    OBS_SEGMENT_DURATION_S,
    OBS_SEGMENTS,
    OBS_WAIT_S,
)
from abrsim.engine import step
from abrsim.engine.step import (
    COL_ABANDONED,
    COL_BUFFER_AFTER_S,
    COL_BUFFER_BEFORE_S,
    COL_DONE_S,
    COL_DOWNLOADED_BITS,
    COL_FIRST_BYTE_S,
    COL_REQUEST_S,
    COL_SEGMENT,
    COL_SIZE_BITS,
    COL_STALL_S,
    COL_WAIT_S,
    LOG_COLUMNS,
    MODEL_PARAMS,
    MP_ABANDONMENT,
    MP_GOODPUT_FACTOR,
    MP_PROGRESS_BITS,
    MP_PROGRESS_S,
    MP_TCP,
    MP_TCP_INITIAL_WINDOW,
    MP_TIME_LIMIT_S,
    NO_RUNG,
    PLAYER_STATE,
    PS_INDEX,
    PS_MODEL,
    PS_OBS,
    PS_REQUEST_S,
    PS_SAMPLE,
    PS_SEGMENTS,
    PS_SENT_BITS,
    PS_SIZE_BITS,
    PS_TIMED_OUT,
    SES_END_S,
    SES_FIRST_RECORD,
    SES_REBUFFER_COUNT,
    SES_RECORDS,
    SES_SEGMENTS,
    SES_STARTUP_S,
    SES_TIMED_OUT,
    SESSION_COLUMNS,
    TIMED_OUT,
    after_abandon,
    begin_request,
    check_time,
    checkpoint,
    close_player,
    close_session,
    fill_checkpoint,
    fill_download,
    fill_observation,
    fill_request,
    finish_download,
    finish_rule,
    first_step_s,
    log_row,
    observe,
    over_time,
    play,
    player_rung,
    quiet_until_s,
    record_download,
    reset_player,
    session_segments,
    set_first_byte,
    skip_steps,
    tcp_begin,
    tcp_end,
    tcp_finish,
    time_out_rule,
    trace_latency,
    trace_step,
    trace_tcp,
    trace_transfer,
    transfer,
    wait_for_room,
    wait_rule,
    walk_latency,
    walk_step,
    walk_transfer,
    write_log,
)

__all__ = [
    "COL_ABANDONED",
    "COL_BUFFER_AFTER_S",
    "COL_BUFFER_BEFORE_S",
    "COL_DONE_S",
    "COL_DOWNLOADED_BITS",
    "COL_FIRST_BYTE_S",
    "COL_REQUEST_S",
    "COL_SEGMENT",
    "COL_SIZE_BITS",
    "COL_STALL_S",
    "COL_WAIT_S",
    "LOG_COLUMNS",
    "MODEL_PARAMS",
    "PS_OBS",
    "SESSION_COLUMNS",
    "SES_END_S",
    "SES_FIRST_RECORD",
    "SES_REBUFFER_COUNT",
    "SES_RECORDS",
    "SES_SEGMENTS",
    "SES_STARTUP_S",
    "SES_TIMED_OUT",
    "advance",
    "close_player",
    "play",
    "specialise",
    "start_session",
    "transfer",
]

# The driver's own slots, after the step's.
PS_PHASE = PLAYER_STATE  # where advance resumes
PS_ROW = PLAYER_STATE + 1  # the next log row
PS_CLOCK_S = PLAYER_STATE + 2  # a stepped transfer: the clock at the last checkpoint ...
PS_STEP_S = PLAYER_STATE + 3  # ... and the next step's time budget
PS_CHECKING = PLAYER_STATE + 4  # 1: this session's downloads are checked for abandonment
PS_STOPS = PLAYER_STATE + 5  # which event stops the caller listens to (STOPS_* bits)
PS_ANSWER_RUNG = PLAYER_STATE + 6  # the caller's answer: a rung (or NO_RUNG at a checkpoint) ...
PS_ANSWER_PAUSE_S = PLAYER_STATE + 7  # ... and a pause
PS_HAS_LATENCY = PLAYER_STATE + 8  # 1: the trace has per-sample latency
PS_TRACE_DURATION_S = PLAYER_STATE + 9
DRIVER_STATE = PLAYER_STATE + 10

# What advance stops for.
STOP_CHOOSE = 0  # the policy chooses: answer PS_ANSWER_RUNG and PS_ANSWER_PAUSE_S
STOP_WAIT = 1  # a full-buffer wait happened (EVENT_WAIT)
STOP_CHECK = 2  # an abandonment checkpoint: answer PS_ANSWER_RUNG (NO_RUNG to go on)
STOP_DONE = 3  # a download completed and was logged (EVENT_DONE)
STOP_ABANDONED = 4  # a download was abandoned and logged (EVENT_ABANDONED)
STOP_END = 5  # the session is over (its scalars are in the session row)
STOP_FULL = 6  # the log has no room for the next download

# Event stops the caller listens to (PS_STOPS); decisions, checkpoints and the end always stop.
STOPS_WAIT = 1
STOPS_DOWNLOAD = 2  # STOP_DONE and STOP_ABANDONED
STOPS_ALL = STOPS_WAIT | STOPS_DOWNLOAD

# Where advance resumes.
_PH_REQUEST = 0  # a new request: wait for room
_PH_OBSERVE = 1  # observe, then choose (or take the player's rung)
_PH_DECIDED = 2  # the answer to STOP_CHOOSE is in
_PH_STEP = 3  # a stepped transfer goes on
_PH_CHECKED = 4  # the answer to STOP_CHECK is in


@njit(cache=True)
def start_session(ps, model_params, est_params, segment_count, segment_duration_s, checking, stops,
                  has_latency, trace_duration_s, first_record):
    """Set up the player (and driver) state for a new session; returns the segments it plays."""
    segments = reset_player(ps, model_params, est_params, segment_count, segment_duration_s)
    ps[PS_PHASE] = _PH_REQUEST
    ps[PS_ROW] = first_record
    ps[PS_CHECKING] = 1.0 if checking else 0.0
    ps[PS_STOPS] = stops
    ps[PS_ANSWER_RUNG] = NO_RUNG
    ps[PS_HAS_LATENCY] = 1.0 if has_latency else 0.0
    ps[PS_TRACE_DURATION_S] = trace_duration_s
    return segments


@njit(cache=True)
def _finish(ps, log, rungs, abandon_to, bandwidth_bps):
    """End the download in flight (at the driver's clock), log it; the stop to report."""
    completed = finish_download(ps, ps[PS_CLOCK_S], ps[PS_SENT_BITS], abandon_to)
    tcp_finish(ps, bandwidth_bps[np.int64(ps[PS_SAMPLE])])
    row = np.int64(ps[PS_ROW])
    log_row(ps, log, rungs, row)
    ps[PS_ROW] = row + 1
    ps[PS_PHASE] = _PH_REQUEST
    return STOP_DONE if completed else STOP_ABANDONED


@njit(cache=True)
def advance(ps, start_s, bandwidth_bps, latency_s, size_bits, log, rungs):
    """Run the session from where it stopped to the next stop (``STOP_*``); see the module doc.

    The observation the policy answers from is ``ps[PS_OBS:PS_OBS + OBS_SIZE]``.
    """
    duration_s = ps[PS_TRACE_DURATION_S]
    stops = np.int64(ps[PS_STOPS])
    progress_bits = ps[PS_MODEL + MP_PROGRESS_BITS]
    progress_s = ps[PS_MODEL + MP_PROGRESS_S]
    while True:
        phase = ps[PS_PHASE]
        if phase == _PH_REQUEST:
            if ps[PS_INDEX] >= ps[PS_SEGMENTS] or ps[PS_TIMED_OUT] != 0.0:
                return STOP_END
            if ps[PS_ROW] >= log.shape[0]:
                return STOP_FULL
            ps[PS_PHASE] = _PH_OBSERVE
            if wait_for_room(ps) > 0.0 and stops & STOPS_WAIT:
                return STOP_WAIT
        elif phase == _PH_OBSERVE:
            if check_time(ps):  # (after a download, or a wait)
                return STOP_END
            rung = observe(ps)
            ps[PS_PHASE] = _PH_DECIDED
            if rung == NO_RUNG:
                return STOP_CHOOSE
            ps[PS_ANSWER_RUNG] = rung
            ps[PS_ANSWER_PAUSE_S] = 0.0
        elif phase == _PH_DECIDED:
            rung = np.int64(ps[PS_ANSWER_RUNG])
            bits = size_bits[np.int64(ps[PS_INDEX]), rung]
            begin_request(ps, rung, ps[PS_ANSWER_PAUSE_S], bits)
            latency = trace_latency(ps, start_s, latency_s, ps[PS_HAS_LATENCY] != 0.0, duration_s)
            _, checked = set_first_byte(ps, latency, ps[PS_CHECKING] != 0.0)
            clock_s, slow_start_bits = trace_tcp(ps, start_s, bandwidth_bps, duration_s)
            if checked:
                ps[PS_CLOCK_S] = clock_s
                ps[PS_SENT_BITS] = slow_start_bits
                ps[PS_STEP_S] = first_step_s(ps[PS_MODEL:PS_MODEL + MODEL_PARAMS], ps[PS_REQUEST_S], latency,
                                             clock_s)
                ps[PS_PHASE] = _PH_STEP
            else:
                clock_s, sent_bits = trace_transfer(ps, start_s, bandwidth_bps, duration_s, clock_s,
                                                    bits - slow_start_bits)
                sent_bits += slow_start_bits
                ps[PS_CLOCK_S] = clock_s
                ps[PS_SENT_BITS] = sent_bits
                cut = sent_bits < bits and over_time(clock_s, ps[PS_MODEL:PS_MODEL + MODEL_PARAMS])
                stop = _finish(ps, log, rungs, TIMED_OUT if cut else NO_RUNG, bandwidth_bps)
                if stops & STOPS_DOWNLOAD and stop == STOP_DONE:
                    return stop
        elif phase == _PH_STEP:
            bits = ps[PS_SIZE_BITS]
            sent_bits = ps[PS_SENT_BITS]
            clock_s, step_bits = trace_step(ps, start_s, bandwidth_bps, duration_s, ps[PS_CLOCK_S],
                                            bits - sent_bits, progress_bits, ps[PS_STEP_S])
            sent_bits += step_bits
            ps[PS_CLOCK_S] = clock_s
            ps[PS_SENT_BITS] = sent_bits
            ps[PS_STEP_S] = progress_s
            if sent_bits < bits and over_time(clock_s, ps[PS_MODEL:PS_MODEL + MODEL_PARAMS]):
                _finish(ps, log, rungs, TIMED_OUT, bandwidth_bps)  # the session ends: no event
                continue
            if sent_bits < bits:
                checkpoint(ps, sent_bits, clock_s)
                ps[PS_PHASE] = _PH_CHECKED
                return STOP_CHECK
            stop = _finish(ps, log, rungs, NO_RUNG, bandwidth_bps)
            if stops & STOPS_DOWNLOAD:
                return stop
        else:  # _PH_CHECKED
            abandon_to = np.int64(ps[PS_ANSWER_RUNG])
            if abandon_to == NO_RUNG:
                ps[PS_PHASE] = _PH_STEP
            else:
                stop = _finish(ps, log, rungs, abandon_to, bandwidth_bps)
                if stops & STOPS_DOWNLOAD:
                    return stop


# ----------------------------------------------------------------------------------------------
# The compiled-policy loop: templates, specialised per policy by specialise()
# ----------------------------------------------------------------------------------------------


#: run_session's answer when the policy chose a rung outside the ladder.
BAD_RUNG = -2

#: Whether the loop has the abandonment checkpoints at all (a constant of each specialised copy).
CHECKING = True
#: Whether the policy says when its abandonment rule could next fire (``abandon_after``), so
#: that the loop skips the checkpoints before then (a constant of each specialised copy).
SKIPPING = True


def policy_can_abandon(params):  # pragma: no cover - replaced by specialise()
    raise NotImplementedError


def policy_reset(params, state, bitrates_bps, segment_duration_s):  # pragma: no cover
    raise NotImplementedError


def policy_choose(params, state, obs, bitrates_bps, size_bits):  # pragma: no cover
    raise NotImplementedError


def policy_event(params, state, obs, event, bitrates_bps):  # pragma: no cover
    raise NotImplementedError


def policy_abandon(params, state, obs, bitrates_bps):  # pragma: no cover
    raise NotImplementedError


def policy_abandon_after(params, state, obs, bitrates_bps, rate_bps):  # pragma: no cover
    raise NotImplementedError


def policy_reads_estimates(params):  # pragma: no cover
    raise NotImplementedError


def run_batch(trace_offsets, trace_start_s, trace_bandwidth_bps, trace_latency_s, trace_has_latency,
              trace_duration_s, size_bits, bitrates_bps, segment_duration_s, model_params, abr_params,
              abr_state, est_state, obs, est_params, log, rungs, sessions):
    """Run one session per trace (traces concatenated, ``trace_offsets`` delimit them).

    Fills ``log`` (one row per download attempt) and ``sessions[index, SES_*]``. The step's rules
    with each session's player state in local variables (one function, not a call per session:
    numba then optimises the loop once). ``abr_state``, ``est_state`` (``EST_STATE_SIZE``) and
    ``obs`` (``OBS_SIZE``) are scratch arrays (given, not allocated: allocating would compile
    numba's allocator into every copy): ``abr_state`` is zeroed once per call, as a fresh array
    was, and the policy's ``reset`` sets it up per session; the others are zeroed per session.
    Returns the number of log rows used, -1 if ``log`` is too small, or ``BAD_RUNG`` if the policy
    chose a rung the ladder does not have.
    """
    abr_state[:] = 0.0  # (as a fresh array would be)
    row = np.int64(0)
    for session_index in range(trace_offsets.shape[0] - 1):
        first = trace_offsets[session_index]
        last = trace_offsets[session_index + 1]
        start_s = trace_start_s[first:last]
        bandwidth_bps = trace_bandwidth_bps[first:last]
        latency_s = trace_latency_s[first:last]
        has_latency = trace_has_latency[session_index]
        duration_s = trace_duration_s[session_index]
        first_record = row
        segments = session_segments(size_bits.shape[0], model_params)
        checking = CHECKING and model_params[MP_ABANDONMENT] != 0.0 and policy_can_abandon(abr_params)
        # A policy that reads neither estimate is not given them, and the estimator does not run.
        estimating = policy_reads_estimates(abr_params)
        progress_bits = model_params[MP_PROGRESS_BITS]
        progress_s = model_params[MP_PROGRESS_S]
        policy_reset(abr_params, abr_state, bitrates_bps, segment_duration_s)
        est_state[:] = 0.0
        obs[:] = 0.0
        obs[OBS_SEGMENTS] = segments
        obs[OBS_SEGMENT_DURATION_S] = segment_duration_s
        time_s = 0.0
        lag_s = 0.0  # wall time minus trace time: latency that did not run the trace clock
        buffer_s = 0.0
        # np.int64 / np.bool_ rather than bare constants: numba would otherwise type them as literals
        # and compile the callees once more for each literal value it sees.
        started = np.bool_(False)
        stalled = np.bool_(False)
        startup_s = 0.0
        rebuffer_count = 0
        rebuffer_s = 0.0
        sample = np.int64(0)
        loop_start_s = 0.0
        last_rung = np.int64(NO_RUNG)
        pending_rung = np.int64(NO_RUNG)
        row = first_record
        index = np.int64(0)
        timed_out = np.bool_(False)
        tcp = model_params[MP_TCP] != 0.0
        cwnd = model_params[MP_TCP_INITIAL_WINDOW]  # tcp: the connection's window, packets ...
        last_done_s = -1.0  # ... and when its last response ended (-1: none yet)
        while index < segments:
            if row >= log.shape[0]:
                return -1
            wait_s, time_s, buffer_s, started, startup_s, stall_s, stalled, new = wait_rule(
                time_s, buffer_s, started, stalled, startup_s, model_params, segment_duration_s)
            rebuffer_count += new
            rebuffer_s += stall_s
            if wait_s > 0.0:
                obs[OBS_WAIT_S] = wait_s
                policy_event(abr_params, abr_state, obs, np.int64(EVENT_WAIT), bitrates_bps)
            if over_time(time_s, model_params):  # (after a download, or a wait)
                timed_out = np.bool_(True)
                break
            fill_observation(obs, index, buffer_s, last_rung, time_s, rebuffer_s, est_params, est_state,
                             estimating)
            rung = player_rung(index, row - first_record, pending_rung, model_params)
            pending_rung = np.int64(NO_RUNG)
            pause_s = 0.0
            if rung == NO_RUNG:
                rung, pause_s = policy_choose(abr_params, abr_state, obs, bitrates_bps, size_bits)
            if rung < 0 or rung >= bitrates_bps.shape[0]:
                return BAD_RUNG  # (an abandonment's target included) nothing to index a size with
            if pause_s > 0.0:
                buffer_s, extra_s, stalled, new = play(buffer_s, pause_s, started, stalled)
                stall_s += extra_s
                rebuffer_s += extra_s
                rebuffer_count += new
                time_s += pause_s
                wait_s += pause_s
            request_s = time_s
            buffer_request_s = buffer_s
            bits = size_bits[index, rung]
            latency, lag_s, sample, loop_start_s = walk_latency(
                start_s, latency_s, has_latency, duration_s, model_params, time_s, lag_s, sample,
                loop_start_s)
            first_byte_s = time_s + latency
            fill_request(obs, rung, bits, latency)
            abandon_to = NO_RUNG
            sent_bits = bits
            clock_s = first_byte_s
            slow_start_bits = 0.0  # tcp: bits of the slow-start rounds, which no checkpoint splits
            if tcp:
                clock_s, slow_start_bits, cwnd, sample, loop_start_s = tcp_begin(
                    start_s, bandwidth_bps, duration_s, model_params, request_s, first_byte_s, lag_s, bits,
                    cwnd, last_done_s, latency, sample, loop_start_s)
            if CHECKING and checking and index > 0:  # CHECKING False: numba does not compile this branch
                sent_bits = slow_start_bits
                step_s = first_step_s(model_params, request_s, latency, clock_s)
                while sent_bits < bits:
                    clock_s, step_bits, sample, loop_start_s = walk_step(
                        start_s, bandwidth_bps, duration_s, model_params, clock_s, lag_s, bits - sent_bits,
                        progress_bits, step_s, sample, loop_start_s)
                    sent_bits += step_bits
                    step_s = progress_s
                    if sent_bits < bits and over_time(clock_s, model_params):
                        abandon_to = np.int64(TIMED_OUT)
                        break
                    if sent_bits < bits:
                        fill_checkpoint(obs, sent_bits, clock_s - request_s, buffer_request_s)
                        abandon_to = policy_abandon(abr_params, abr_state, obs, bitrates_bps)
                        if abandon_to != NO_RUNG:
                            break
                        # The steps before the policy's rule could fire, at once, to the bit (SKIPPING
                        # False: numba does not compile this branch; a lag would round each clock twice).
                        if SKIPPING and lag_s == 0.0:
                            rate_bps = bandwidth_bps[sample] * model_params[MP_GOODPUT_FACTOR]
                            after_s = policy_abandon_after(abr_params, abr_state, obs, bitrates_bps, rate_bps)
                            if after_s > clock_s - request_s:
                                clock_s, sent_bits = skip_steps(
                                    start_s, duration_s, rate_bps, clock_s, sent_bits, bits, progress_bits,
                                    progress_s, model_params[MP_TIME_LIMIT_S],
                                    quiet_until_s(request_s, after_s), sample, loop_start_s)
                if abandon_to == NO_RUNG:
                    sent_bits = bits  # the steps' sum may differ from the size by rounding
            else:
                clock_s, sent_bits, sample, loop_start_s = walk_transfer(
                    start_s, bandwidth_bps, duration_s, model_params, clock_s, lag_s, bits - slow_start_bits,
                    sample, loop_start_s)
                sent_bits += slow_start_bits
                if sent_bits < bits and over_time(clock_s, model_params):  # (not float rounding)
                    abandon_to = np.int64(TIMED_OUT)
                else:
                    sent_bits = bits
            completed = abandon_to == NO_RUNG
            if tcp:
                cwnd = tcp_end(cwnd, sent_bits - slow_start_bits, bandwidth_bps[sample], latency, completed,
                               model_params)
                last_done_s = clock_s if completed else -1.0
            buffer_s, started, stalled, startup_s, extra_s, new = finish_rule(
                time_s, buffer_s, started, stalled, startup_s, clock_s, completed, index == segments - 1,
                model_params, segment_duration_s)
            time_s = clock_s
            stall_s += extra_s
            rebuffer_s += extra_s
            rebuffer_count += new
            write_log(log, rungs, row, index, rung, request_s, first_byte_s, clock_s, bits, sent_bits,
                      buffer_request_s, buffer_s, stall_s, wait_s, not completed)
            row += 1
            if abandon_to == TIMED_OUT:
                timed_out = np.bool_(True)
                break
            fill_download(obs, rung, bits, sent_bits, clock_s - request_s, latency, buffer_s, abandon_to)
            if completed:
                if estimating:
                    record_download(est_params, est_state, bits, first_byte_s, clock_s, latency)
                policy_event(abr_params, abr_state, obs, np.int64(EVENT_DONE), bitrates_bps)
                last_rung = np.int64(rung)
                index += 1
            else:
                policy_event(abr_params, abr_state, obs, np.int64(EVENT_ABANDONED), bitrates_bps)
                pending_rung = after_abandon(abandon_to, model_params)
        if timed_out:
            startup_s = time_out_rule(time_s, started, startup_s)
        close_session(startup_s, time_s + buffer_s, rebuffer_count, segments, sessions[session_index],
                      first_record, row - first_record, timed_out)
    return row


_TEMPLATES = (run_batch,)
_LOOPS: dict[str, dict[str, Any]] = {}


def _digest(files: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()[:16]


def specialise(name: str, functions: dict[str, Callable[..., Any]], sources: Iterable[str],
               checking: bool = True) -> dict[str, Any]:
    """The compiled session loop (``run_batch``) bound to one policy's functions.

    ``functions`` maps ``can_abandon``, ``reset``, ``choose``, ``event`` and ``abandon`` (and
    optionally ``abandon_after``: the checkpoints before it are skipped; and ``reads_estimates``:
    when it answers false the estimator is skipped) to numba functions. Each
    copy has its own name, made of ``name`` and a digest of ``sources`` (the policy's source
    files) and of the engine's, so numba's disk cache keeps one per policy and
    version and a changed policy or engine compiles anew; the cache files of the policy's older
    versions are removed then. Copies are made once per process.
    With ``checking`` False the copy has no abandonment checkpoints (for a model without
    abandonment, or a policy that never abandons), so a run without them compiles none of it.
    """
    import abrsim.abr._kernels as abr_kernels

    engine = [str(module.__file__) for module in (step, abr_kernels, sys.modules[__name__])]
    tag = f"{_safe(name)}{'' if checking else '_nocheck'}_{_digest([*sources, *engine])}"
    loops = _LOOPS.get(tag)
    if loops is not None:
        return loops
    namespace = dict(globals())
    namespace["CHECKING"] = bool(checking)
    namespace["SKIPPING"] = bool(checking) and functions.get("abandon_after") is not None
    for key in ("can_abandon", "reset", "choose", "event", "abandon"):
        namespace[f"policy_{key}"] = functions[key]
    namespace["policy_abandon_after"] = functions.get("abandon_after", abr_kernels.no_abandon_after)
    namespace["policy_reads_estimates"] = (functions.get("reads_estimates")
                                           or abr_kernels.always_reads_estimates)
    loops = {}
    for template in _TEMPLATES:
        copy = types.FunctionType(template.__code__, namespace, template.__name__, template.__defaults__,
                                  template.__closure__)
        copy.__qualname__ = f"{template.__name__}__{tag}"
        copy.__doc__ = template.__doc__
        dispatcher = njit(cache=True)(copy)
        loops[template.__name__] = namespace[template.__name__] = dispatcher
        _prune_cache(dispatcher, f"{template.__name__}__{tag.rpartition('_')[0]}_", tag)
    _LOOPS[tag] = loops
    return loops


def _prune_cache(dispatcher: Any, prefix: str, tag: str) -> None:
    """Remove numba's cache files of the copies named ``prefix`` + another digest than ``tag``'s."""
    cache = getattr(dispatcher, "_cache", None)
    if cache is None or not hasattr(cache, "cache_path"):
        return
    module = dispatcher.py_func.__module__.rpartition(".")[2]  # numba names the files module.qualname-...
    keep = f"{module}.{dispatcher.py_func.__qualname__}-"
    try:
        for path in Path(cache.cache_path).glob(f"{module}.{prefix}*"):
            digest = path.name[len(f"{module}.{prefix}"):].partition("-")[0]
            if not path.name.startswith(keep) and len(digest) == 16 and "_" not in digest:
                path.unlink(missing_ok=True)
    except OSError:  # a read-only or shared cache: leave it
        pass


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _refresh_cache() -> None:
    from numba.core.registry import CPUDispatcher

    from abrsim import _jit
    from abrsim.abr import _kernels

    _jit.flush_if_dependencies_changed([start_session, _finish, advance], [step, _kernels])
    # The step's own rules inline the estimator from abr/_kernels.py (fill_observation,
    # record_download, ...): numba refreshes them when step.py changes, not when _kernels.py does.
    rules = [value for value in vars(step).values() if isinstance(value, CPUDispatcher)]
    _jit.flush_if_dependencies_changed(rules, [_kernels])


_refresh_cache()
