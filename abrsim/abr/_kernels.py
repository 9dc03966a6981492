"""Numba decision kernels: throughput estimators and ABR algorithms.

Everything here takes arrays and scalars only, so one compiled body serves the
fast engine (a whole session in compiled code) and the discrete-event engine
(one decision at a time). Per-session state lives in float64 arrays that
``*_reset`` fills and the other kernels update; parameters arrive as float64
arrays in the order the registry (``abrsim.abr``) declares.

Units: seconds, bits, bit/s.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Algorithm ids, fixed: they index the dispatch in abr_choose.
ALGO_BOLA = 0
ALGO_THROUGHPUT = 1

# Estimator kinds.
EST_EWMA = 0
EST_SLIDING = 1

#: Length of an estimator state array.
EST_STATE_SIZE = 48
#: Samples kept by the sliding-window estimator.
SLIDING_MAX_SAMPLES = 20
#: Length of an ABR state array: a few scalars plus one slot per rung.
ABR_STATE_SCALARS = 4

# BOLA oscillation guards (the ``guard`` parameter).
GUARD_NONE = 0
GUARD_U = 1
GUARD_O = 2


# ----------------------------------------------------------------------------------------------
# Throughput and latency estimators
#
# est_params = [kind, n, v_0 .. v_7, segment_duration_s]: v are EWMA half-lives (s) or window sizes.
# EWMA state:    [0] total download time s, [1] latency samples, [2:10] throughput, [10:18] latency.
# Sliding state: [0] samples pushed, [8:28] throughput ring, [28:48] latency ring.
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def estimator_update(est_params, est_state, throughput_bps, weight_s, latency_s):
    """Add one download's throughput sample (weighted by its transfer time) and latency sample."""
    kind = int(est_params[0])
    n = int(est_params[1])
    if kind == EST_EWMA:
        segment_duration_s = est_params[10]
        est_state[0] += weight_s
        est_state[1] += 1.0
        for i in range(n):
            half_life_s = est_params[2 + i]
            alpha = 0.5 ** (weight_s / half_life_s)
            est_state[2 + i] = alpha * est_state[2 + i] + (1.0 - alpha) * throughput_bps
            alpha = 0.5 ** (segment_duration_s / half_life_s)
            est_state[10 + i] = alpha * est_state[10 + i] + (1.0 - alpha) * latency_s
    else:
        slot = int(est_state[0]) % SLIDING_MAX_SAMPLES
        est_state[8 + slot] = throughput_bps
        est_state[28 + slot] = latency_s
        est_state[0] += 1.0


@njit(cache=True)
def estimator_throughput_bps(est_params, est_state):
    """Current throughput estimate, bit/s; 0 before the first sample."""
    kind = int(est_params[0])
    n = int(est_params[1])
    best = np.inf
    if kind == EST_EWMA:
        if est_state[1] == 0.0:
            return 0.0
        for i in range(n):
            half_life_s = est_params[2 + i]
            value = est_state[2 + i] / (1.0 - 0.5 ** (est_state[0] / half_life_s))
            best = min(best, value)
        return best
    count = int(est_state[0])
    if count == 0:
        return 0.0
    for i in range(n):
        used = min(int(est_params[2 + i]), count, SLIDING_MAX_SAMPLES)
        total = 0.0
        for back in range(1, used + 1):
            total += est_state[8 + (count - back) % SLIDING_MAX_SAMPLES]
        best = min(best, total / used)
    return best


@njit(cache=True)
def estimator_latency_s(est_params, est_state):
    """Current request-latency estimate, seconds; 0 before the first sample."""
    kind = int(est_params[0])
    n = int(est_params[1])
    worst = 0.0
    if kind == EST_EWMA:
        count = est_state[1]
        if count == 0.0:
            return 0.0
        segment_duration_s = est_params[10]
        for i in range(n):
            half_life_s = est_params[2 + i]
            value = est_state[10 + i] / (1.0 - 0.5 ** (count * segment_duration_s / half_life_s))
            worst = max(worst, value)
        return worst
    count = int(est_state[0])
    if count == 0:
        return 0.0
    for i in range(n):
        used = min(int(est_params[2 + i]), count, SLIDING_MAX_SAMPLES)
        total = 0.0
        for back in range(1, used + 1):
            total += est_state[28 + (count - back) % SLIDING_MAX_SAMPLES]
        worst = max(worst, total / used)
    return worst


# ----------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def rung_for_throughput(bitrates_bps, throughput_bps, latency_s, segment_duration_s):
    """Highest rung whose segment, after one request latency, downloads within a segment duration.

    That is the highest ``q`` with ``latency_s + segment_duration_s * b_q / throughput_bps <=
    segment_duration_s``; rung 0 if none qualifies (or no estimate yet).
    """
    budget_bps = throughput_bps * (1.0 - latency_s / segment_duration_s)
    best = 0
    for rung in range(bitrates_bps.shape[0]):
        if bitrates_bps[rung] <= budget_bps:
            best = rung
    return best


# ----------------------------------------------------------------------------------------------
# BOLA  (Spiteri, Urgaonkar, Sitaraman: "BOLA: Near-Optimal Bitrate Adaptation for Online
# Videos", IEEE INFOCOM 2016, Algorithm 1; BOLA-U/BOLA-O from "From Theory to Practice:
# Improving Bitrate Adaptation in the DASH Reference Player", ACM MMSys 2018, Sec. 3.)
#
# params = [buffer_target_s, gamma_p, guard, scale_v]
# state  = [v_s, gamma_p, -, -, utility_0 .. utility_{R-1}]
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def _bola_reset(params, state, bitrates_bps, segment_duration_s):
    buffer_target_s = params[0]
    gamma_p = params[1]
    rungs = bitrates_bps.shape[0]
    for rung in range(rungs):
        state[ABR_STATE_SCALARS + rung] = np.log(bitrates_bps[rung] / bitrates_bps[0])
    top_utility = state[ABR_STATE_SCALARS + rungs - 1]
    state[0] = (buffer_target_s - segment_duration_s) / (top_utility + gamma_p)
    state[1] = gamma_p


@njit(cache=True)
def bola_best_rung(buffer_s, utilities, bitrates_bps, v_s, gamma_p):
    """The rung maximising BOLA's objective ``(V (u_q + gamma_p) - Q) / b_q`` (ties: lower rung).

    This is the per-slot decision of BOLA (INFOCOM 2016, Algorithm 1, eq. 10), with segment
    size ``p * b_q`` and the constant ``p`` dropped.
    """
    best = 0
    best_score = -np.inf
    for rung in range(bitrates_bps.shape[0]):
        score = (v_s * (utilities[rung] + gamma_p) - buffer_s) / bitrates_bps[rung]
        if score > best_score:
            best = rung
            best_score = score
    return best


@njit(cache=True)
def _bola_choose(params, state, segment_index, segment_count, buffer_s, last_rung, throughput_bps,
                 latency_s, bitrates_bps, segment_duration_s):
    buffer_target_s = params[0]
    gamma_p = params[1]
    guard = int(params[2])
    rungs = bitrates_bps.shape[0]
    utilities = state[ABR_STATE_SCALARS:ABR_STATE_SCALARS + rungs]
    v_s = state[0]
    if params[3] != 0.0:
        # Smaller V near the start and the end of the title, so that BOLA does not fill a
        # buffer it will never use (MMSys 2018, Sec. 3.3).
        segments_left = min(segment_index, segment_count - segment_index)
        horizon_s = max(segments_left / 2.0, 3.0) * segment_duration_s
        target_s = min(buffer_target_s, horizon_s)
        v_s = (target_s - segment_duration_s) / (utilities[rungs - 1] + gamma_p)
    rung = bola_best_rung(buffer_s, utilities, bitrates_bps, v_s, gamma_p)
    pause_s = 0.0
    last = max(last_rung, 0)
    if guard != GUARD_NONE and rung > last:
        safe = rung_for_throughput(bitrates_bps, throughput_bps, latency_s, segment_duration_s)
        if rung <= safe:
            pass
        elif last > safe:
            rung = last
        elif guard == GUARD_U:
            rung = safe + 1
        else:
            rung = safe
            pause_s = max(0.0, buffer_s - v_s * (gamma_p + utilities[safe]))
    return rung, pause_s


# ----------------------------------------------------------------------------------------------
# Throughput rule: the highest rung the discounted throughput estimate sustains.
#
# params = [safety_factor]
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def _throughput_choose(params, throughput_bps, latency_s, bitrates_bps, segment_duration_s):
    return rung_for_throughput(bitrates_bps, params[0] * throughput_bps, latency_s, segment_duration_s)


# ----------------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def abr_reset(algo_id, params, state, bitrates_bps, segment_duration_s):
    """Fill an algorithm's state array at the start of a session."""
    state[:] = 0.0
    if algo_id == ALGO_BOLA:
        _bola_reset(params, state, bitrates_bps, segment_duration_s)


@njit(cache=True)
def abr_choose(algo_id, params, state, segment_index, segment_count, buffer_s, last_rung,
               throughput_bps, latency_s, bitrates_bps, segment_duration_s):
    """Return ``(rung, pause_s)`` for the next segment: the rung and a pause before requesting it."""
    if algo_id == ALGO_BOLA:
        return _bola_choose(params, state, segment_index, segment_count, buffer_s, last_rung,
                            throughput_bps, latency_s, bitrates_bps, segment_duration_s)
    return _throughput_choose(params, throughput_bps, latency_s, bitrates_bps, segment_duration_s), 0.0
