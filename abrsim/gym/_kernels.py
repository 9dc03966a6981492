"""Compiled steps of the Gymnasium environments: the session step, one decision at a time.

An environment's session is driven by :func:`abrsim.engine._session.advance`, the same driver
that runs Python policies: the phases of :mod:`abrsim.engine.step` on one player-state array.
An action is the answer to advance's ``STOP_CHOOSE``; the kernels here run the session to its
next decision (or its end) and turn the log rows written on the way into the reward and the
next observation. Nothing of the player's rules is repeated here.

Per-environment state is one float64 array: the driver's player state (``DRIVER_STATE`` values)
followed by the environment's own slots (``ENV_*``), the throughput and download-time histories
and Pensieve's 6 x 8 state. The configuration is one float64 array (``CFG_*``, then the utility
and the bitrate of each rung). Units: seconds, bits, bit/s. Arrays and scalars only.
"""

from __future__ import annotations

import numpy as np

from abrsim._jit import kernel
from abrsim.engine import _session as driver
from abrsim.engine.step import (
    COL_ABANDONED,
    COL_BUFFER_AFTER_S,
    COL_DONE_S,
    COL_FIRST_BYTE_S,
    COL_REQUEST_S,
    COL_SEGMENT,
    COL_SIZE_BITS,
    COL_STALL_S,
    NO_RUNG,
    PS_BUFFER_S,
    PS_INDEX,
    PS_LAG_S,
    PS_LAST_RUNG,
    PS_SAMPLE,
    PS_SEGMENTS,
    PS_STARTED,
    PS_STARTUP_S,
)

# Observation kinds.
OBSERVATION_ABRSIM = 0
OBSERVATION_PENSIEVE = 1

# Pensieve's state (hongzimao/pensieve sim/rl_test.py and multi_agent.py): S_INFO x S_LEN.
PENSIEVE_ROWS = 6
PENSIEVE_COLUMNS = 8
PENSIEVE_BUFFER_NORM_S = 10.0  # BUFFER_NORM_FACTOR
PENSIEVE_CHUNKS_CAP = 48.0  # CHUNK_TIL_VIDEO_END_CAP

# Configuration slots.
CFG_KIND = 0  # OBSERVATION_*
CFG_HISTORY = 1  # past downloads in the abrsim observation
CFG_REBUFFER_PENALTY = 2  # reward per second of stall
CFG_SWITCH_PENALTY = 3  # reward per unit of |utility change|
CFG_STARTUP_PENALTY = 4  # reward per second of startup delay
CFG_MAX_BITRATE_BPS = 5  # the ladder's top bitrate (Pensieve's state row 0)
CFG_REWIND = 6  # 1: the log keeps only the current step's rows (the vector environment)
CFG_SEGMENT_DURATION_S = 7
CFG_SCALARS = 8  # then utility[rungs], then bitrates_bps[rungs]

# Columns of the vector environment's per-environment trace table.
META_FIRST = 0  # the trace's samples in the concatenated arrays: first ...
META_LAST = 1  # ... and one past the last
META_HAS_LATENCY = 2
META_DURATION_S = 3
META_START_SAMPLE = 4  # the sample the session starts at
META_COLUMNS = 5

# The environment's slots, after the driver's.
ENV_PREVIOUS_RUNG = driver.DRIVER_STATE  # rung of the last played segment (for switches), -1 before
ENV_STARTUP_COUNTED = driver.DRIVER_STATE + 1  # 1 once the startup penalty is in a reward
ENV_DONE = driver.DRIVER_STATE + 2  # 1 once the session is over
ENV_HISTORY = driver.DRIVER_STATE + 3  # throughput (Mbit/s) then download time (s), oldest first
ENV_PENSIEVE = ENV_HISTORY  # (the observations are exclusive: one region serves both)

# Step results.
RUNNING = 0
ENDED = 1
BAD_ACTION = -1
LOG_FULL = -2


def state_size(history: int) -> int:
    """Length of one environment's state array."""
    return ENV_HISTORY + max(2 * history, PENSIEVE_ROWS * PENSIEVE_COLUMNS)


def observation_size(kind: int, history: int, rungs: int) -> int:
    """Values in one observation (flattened)."""
    if kind == OBSERVATION_PENSIEVE:
        return PENSIEVE_ROWS * PENSIEVE_COLUMNS
    return 2 * history + rungs + 3


@kernel
def _observe_download(state, log, rung, row, size_bits, cfg, last_row, done):
    """Take in one completed download (log row ``row``, at ``rung``): the history, or Pensieve's state."""
    size = log[row, COL_SIZE_BITS]
    request_s = log[row, COL_REQUEST_S]
    done_s = log[row, COL_DONE_S]
    if cfg[CFG_KIND] == OBSERVATION_PENSIEVE:
        rungs = size_bits.shape[1]
        matrix = state[ENV_PENSIEVE:ENV_PENSIEVE + PENSIEVE_ROWS * PENSIEVE_COLUMNS]
        for r in range(PENSIEVE_ROWS):  # np.roll(state, -1, axis=1)
            base = r * PENSIEVE_COLUMNS
            first = matrix[base]
            for c in range(PENSIEVE_COLUMNS - 1):
                matrix[base + c] = matrix[base + c + 1]
            matrix[base + PENSIEVE_COLUMNS - 1] = first
        last = PENSIEVE_COLUMNS - 1
        # Pensieve's buffer is the one after the drain sleep that follows the download; here that
        # wait precedes the next decision, which has just been reached (none follows the last download).
        buffer_s = state[PS_BUFFER_S] if last_row and not done else log[row, COL_BUFFER_AFTER_S]
        delay_ms = (done_s - request_s) * 1000.0
        segment = np.int64(log[row, COL_SEGMENT]) + 1
        matrix[last] = cfg[CFG_SCALARS + rungs + rung] / cfg[CFG_MAX_BITRATE_BPS]
        matrix[PENSIEVE_COLUMNS + last] = buffer_s / PENSIEVE_BUFFER_NORM_S
        matrix[2 * PENSIEVE_COLUMNS + last] = size / 8.0 / delay_ms / 1000.0  # kbyte/ms
        matrix[3 * PENSIEVE_COLUMNS + last] = delay_ms / 1000.0 / PENSIEVE_BUFFER_NORM_S
        for r in range(rungs):
            next_bytes = size_bits[segment, r] / 8.0 if segment < size_bits.shape[0] else 0.0
            matrix[4 * PENSIEVE_COLUMNS + r] = next_bytes / 1000.0 / 1000.0  # Mbyte
        remain = state[PS_SEGMENTS] - segment
        matrix[5 * PENSIEVE_COLUMNS + last] = min(remain, PENSIEVE_CHUNKS_CAP) / PENSIEVE_CHUNKS_CAP
        return
    history = np.int64(cfg[CFG_HISTORY])
    if history == 0:
        return
    throughput = state[ENV_HISTORY:ENV_HISTORY + history]
    download = state[ENV_HISTORY + history:ENV_HISTORY + 2 * history]
    for i in range(history - 1):
        throughput[i] = throughput[i + 1]
        download[i] = download[i + 1]
    throughput[history - 1] = size / (done_s - log[row, COL_FIRST_BYTE_S]) / 1e6
    download[history - 1] = done_s - request_s


@kernel
def _take_rows(state, log, rungs, first_row, last_row, size_bits, cfg):
    """The reward of log rows ``first_row`` to ``last_row`` - 1 (the downloads since the last
    decision); updates the history or Pensieve's state.

    The reward's terms are those of :mod:`abrsim.qoe`: the utility of each played segment, less
    the penalty of its stall and of the utility change from the segment played before it, less
    the startup penalty once playback has started. Summed over a session they give its QoE.
    """
    rung_count = size_bits.shape[1]
    utility = cfg[CFG_SCALARS:CFG_SCALARS + rung_count]
    rebuffer_penalty = cfg[CFG_REBUFFER_PENALTY]
    switch_penalty = cfg[CFG_SWITCH_PENALTY]
    done = state[ENV_DONE] != 0.0
    reward = 0.0
    for row in range(first_row, last_row):
        reward -= rebuffer_penalty * log[row, COL_STALL_S]
        if log[row, COL_ABANDONED] != 0.0:
            continue
        rung = rungs[row]
        reward += utility[rung]
        previous = np.int64(state[ENV_PREVIOUS_RUNG])
        if previous != NO_RUNG:
            reward -= switch_penalty * abs(utility[rung] - utility[previous])
        state[ENV_PREVIOUS_RUNG] = rung
        _observe_download(state, log, rung, row, size_bits, cfg, row == last_row - 1, done)
    if state[ENV_STARTUP_COUNTED] == 0.0 and state[PS_STARTED] != 0.0:
        state[ENV_STARTUP_COUNTED] = 1.0
        reward -= cfg[CFG_STARTUP_PENALTY] * state[PS_STARTUP_S]
    return reward


@kernel
def _write_observation(state, size_bits, cfg, obs):
    """The observation after the rows just taken in (see :mod:`abrsim.gym.env` for the layout)."""
    if cfg[CFG_KIND] == OBSERVATION_PENSIEVE:
        for i in range(PENSIEVE_ROWS * PENSIEVE_COLUMNS):
            obs[i] = state[ENV_PENSIEVE + i]
        return
    history = np.int64(cfg[CFG_HISTORY])
    for i in range(2 * history):
        obs[i] = state[ENV_HISTORY + i]
    rungs = size_bits.shape[1]
    index = np.int64(state[PS_INDEX])
    at = 2 * history
    for r in range(rungs):
        obs[at + r] = size_bits[index, r] / 1e6 if index < state[PS_SEGMENTS] else 0.0
    at += rungs
    obs[at] = state[PS_BUFFER_S]
    obs[at + 1] = state[PS_LAST_RUNG]
    obs[at + 2] = state[PS_SEGMENTS] - state[PS_INDEX]


@kernel
def _to_decision(state, start_s, bandwidth_bps, latency_s, size_bits, log, rungs, cfg, obs):
    """Run the session to its next decision or its end; returns ``(reward, status)``."""
    if cfg[CFG_REWIND] != 0.0:
        state[driver.PS_ROW] = 0.0
    first_row = np.int64(state[driver.PS_ROW])
    stop = driver.advance(state, start_s, bandwidth_bps, latency_s, size_bits, log, rungs)
    if stop == driver.STOP_FULL:
        return 0.0, LOG_FULL
    status = RUNNING
    if stop == driver.STOP_END:
        state[ENV_DONE] = 1.0
        status = ENDED
    reward = _take_rows(state, log, rungs, first_row, np.int64(state[driver.PS_ROW]), size_bits, cfg)
    _write_observation(state, size_bits, cfg, obs)
    return reward, status


@kernel
def reset_session(state, start_s, bandwidth_bps, latency_s, has_latency, duration_s, start_sample, size_bits,
                  log, rungs, cfg, model_params, est_params, obs):
    """Start a session on a trace at the start of its sample ``start_sample`` (its trace time then is
    that sample's start: session time minus the lag) and run it to its first decision.

    Returns ``(reward, status)``: the reward of what the player did on its own (the first segment,
    when the model sets its rung), and RUNNING or ENDED.
    """
    driver.start_session(state, model_params, est_params, size_bits.shape[0], cfg[CFG_SEGMENT_DURATION_S],
                         False, 0, has_latency, duration_s, 0)
    state[ENV_PREVIOUS_RUNG] = NO_RUNG
    if start_sample > 0:
        state[PS_SAMPLE] = start_sample
        state[PS_LAG_S] = -start_s[start_sample]
    return _to_decision(state, start_s, bandwidth_bps, latency_s, size_bits, log, rungs, cfg, obs)


@kernel
def step_session(state, start_s, bandwidth_bps, latency_s, size_bits, log, rungs, cfg, obs, action):
    """Answer the pending decision with rung ``action`` and run the session to its next decision.

    Returns ``(reward, status)``: BAD_ACTION (nothing done) for a rung the ladder does not have.
    """
    if action < 0 or action >= size_bits.shape[1]:
        return 0.0, BAD_ACTION
    state[driver.PS_ANSWER_RUNG] = action
    state[driver.PS_ANSWER_PAUSE_S] = 0.0
    return _to_decision(state, start_s, bandwidth_bps, latency_s, size_bits, log, rungs, cfg, obs)


@kernel
def step_vector(states, start_s, bandwidth_bps, latency_s, meta, size_bits, logs, rungs, cfg, model_params,
                est_params, actions, resetting, obs, rewards, ended):
    """One step of every environment: a new session where ``resetting`` (its reward 0), else the
    answer ``actions[i]``. Fills ``obs``, ``rewards`` and ``ended``; returns -1, or the index of an
    environment given a rung the ladder does not have (the step stops there)."""
    for i in range(states.shape[0]):
        first = np.int64(meta[i, META_FIRST])
        last = np.int64(meta[i, META_LAST])
        if resetting[i]:
            reward, status = reset_session(
                states[i], start_s[first:last], bandwidth_bps[first:last], latency_s[first:last],
                meta[i, META_HAS_LATENCY] != 0.0, meta[i, META_DURATION_S],
                np.int64(meta[i, META_START_SAMPLE]), size_bits, logs[i], rungs[i], cfg, model_params,
                est_params, obs[i])
            reward = 0.0
        else:
            reward, status = step_session(states[i], start_s[first:last], bandwidth_bps[first:last],
                                          latency_s[first:last], size_bits, logs[i], rungs[i], cfg, obs[i],
                                          actions[i])
        if status < 0:
            return i
        rewards[i] = reward
        ended[i] = status == ENDED
    return -1


@kernel
def observe_policy(state, log, downloads, count, size_bits, cfg, buffer_s, index, last_rung, segments, obs):
    """The environment's observation for a policy run by another driver (``abrsim run``): takes in
    ``count`` completed downloads (rows of ``downloads``: rung, segment, size_bits, latency_s,
    download_s incl. latency, buffer after) through a scratch log row, as :func:`_take_rows` does,
    then writes the observation at a decision (``buffer_s``, ``index``, ``last_rung``, ``segments``:
    the player's now)."""
    state[PS_BUFFER_S] = buffer_s
    state[PS_INDEX] = index
    state[PS_LAST_RUNG] = last_rung
    state[PS_SEGMENTS] = segments
    for i in range(count):
        log[0, COL_SEGMENT] = downloads[i, 1]
        log[0, COL_SIZE_BITS] = downloads[i, 2]
        log[0, COL_REQUEST_S] = 0.0
        log[0, COL_FIRST_BYTE_S] = downloads[i, 3]
        log[0, COL_DONE_S] = downloads[i, 4]
        log[0, COL_BUFFER_AFTER_S] = downloads[i, 5]
        _observe_download(state, log, np.int64(downloads[i, 0]), 0, size_bits, cfg, i == count - 1, False)
    _write_observation(state, size_bits, cfg, obs)


def _refresh_cache() -> None:
    """These kernels inline the session step's phases: their disk cache goes when those change."""
    from abrsim import _jit
    from abrsim.abr import _kernels as abr_kernels
    from abrsim.engine import step

    _jit.flush_if_dependencies_changed(
        [_observe_download, _take_rows, _write_observation, _to_decision, reset_session, step_session,
         step_vector, observe_policy], [step, driver, abr_kernels])


_refresh_cache()
