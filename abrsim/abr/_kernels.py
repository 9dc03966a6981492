"""Numba decision kernels: throughput estimators and ABR algorithms.

Everything here takes arrays and scalars only, so one compiled body serves the
fast engine (a whole session in compiled code) and the discrete-event engine
(one decision at a time). Per-session state lives in float64 arrays that a
policy's ``reset`` fills and its other functions update; parameters arrive as
float64 arrays in the order the registry (``abrsim.abr``) declares them.

The protocol between a player and a compiled policy, one session (the functions
are registered per algorithm with :func:`abrsim.abr.register`):

- ``reset(params, state, bitrates_bps, segment_duration_s)`` once;
- before each request, ``choose(params, state, obs, bitrates_bps, size_bits)``
  returns ``(rung, pause_s)``;
- ``event(params, state, obs, event, bitrates_bps)`` reports a full-buffer wait
  (``EVENT_WAIT``), a completed download (``EVENT_DONE``) or an abandoned one
  (``EVENT_ABANDONED``);
- while a download is in flight, and only if the player checks for it (its model
  has abandonment on and ``can_abandon(params)`` is true),
  ``abandon(params, state, obs, bitrates_bps)`` returns a lower rung to abandon
  to, or -1.

What the player knows is passed in ``obs``, a float64 array indexed by the
``OBS_*`` constants. A policy whose ``reads_estimates(params)`` is false reads
neither estimate (``OBS_THROUGHPUT_BPS``, ``OBS_LATENCY_S``): the fast engine
then leaves them at 0 and does not run the estimator. Units: seconds, bits, bit/s.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from abrsim._jit import kernel

# Events reported to a policy's event function.
EVENT_WAIT = 0
EVENT_DONE = 1
EVENT_ABANDONED = 2

# Slots of the observation array.
OBS_SEGMENT = 0  # index of the segment being chosen or downloaded
OBS_SEGMENTS = 1  # segments in the session
OBS_BUFFER_S = 2  # buffer level now (abandon check: at request minus time elapsed, >= 0)
OBS_LAST_RUNG = 3  # rung of the last completed download, -1 before the first
OBS_THROUGHPUT_BPS = 4  # the player's throughput estimate, 0 before the first sample
OBS_LATENCY_S = 5  # the player's latency estimate, 0 before the first sample
OBS_SEGMENT_DURATION_S = 6
OBS_RUNG = 7  # rung of the download in flight or just finished
OBS_SIZE_BITS = 8  # its full size
OBS_DOWNLOADED_BITS = 9  # bits received so far
OBS_ELAPSED_S = 10  # time since the request, latency included
OBS_TTFB_S = 11  # the request's latency (time to first bit)
OBS_WAIT_S = 12  # length of a full-buffer wait (EVENT_WAIT)
OBS_ABANDON_TO = 13  # rung an abandoned download asked for (EVENT_ABANDONED)
OBS_TIME_S = 14  # session time at the decision
OBS_REBUFFER_S = 15  # stall time so far
OBS_SIZE = 16

# Estimator kinds.
EST_EWMA = 0
EST_SLIDING = 1

#: Length of an estimator parameter array (see estimator_arrays) and of a state array.
EST_PARAMS = 11
EST_STATE_SIZE = 48
#: Samples kept by the sliding-window estimator.
SLIDING_MAX_SAMPLES = 20

# BOLA oscillation guards (the ``guard`` parameter).
GUARD_NONE = 0
GUARD_U = 1
GUARD_O = 2

NO_RUNG = -1


# ----------------------------------------------------------------------------------------------
# Throughput and latency estimators
#
# est_params = [kind, n, v_0 .. v_7, segment_duration_s]: v are EWMA half-lives (s) or window sizes.
# EWMA state:    [0] total download time s, [1] latency samples, [2:10] throughput, [10:18] latency,
#                [18:26] the latency samples' weights (set by the first sample).
# Sliding state: [0] samples pushed, [8:28] throughput ring, [28:48] latency ring.
# ----------------------------------------------------------------------------------------------


@kernel
def estimator_update(est_params, est_state, throughput_bps, weight_s, latency_s):
    """Add one download's throughput sample (weighted by its transfer time) and latency sample."""
    kind = int(est_params[0])
    n = int(est_params[1])
    if kind == EST_EWMA:
        if est_state[1] == 0.0:  # the latency samples' weights, the same for every sample: once
            for i in range(n):
                est_state[18 + i] = 0.5 ** (est_params[10] / est_params[2 + i])
        est_state[0] += weight_s
        est_state[1] += 1.0
        for i in range(n):
            half_life_s = est_params[2 + i]
            alpha = 0.5 ** (weight_s / half_life_s)
            est_state[2 + i] = alpha * est_state[2 + i] + (1.0 - alpha) * throughput_bps
            alpha = est_state[18 + i]
            est_state[10 + i] = alpha * est_state[10 + i] + (1.0 - alpha) * latency_s
    else:
        slot = int(est_state[0]) % SLIDING_MAX_SAMPLES
        est_state[8 + slot] = throughput_bps
        est_state[28 + slot] = latency_s
        est_state[0] += 1.0


@kernel
def _debiased(value, half_lives):
    """An EWMA's value corrected for its start from zero, ``value / (1 - 0.5 ** half_lives)``.

    Past 55 half-lives the power is below half an ulp of 1, so the divisor is exactly 1 and the
    power is not computed (the same float either way).
    """
    if half_lives >= 55.0:
        return value
    return value / (1.0 - 0.5 ** half_lives)


@kernel
def _sliding_mean(est_params, est_state, window, ring):
    """Mean of the last ``est_params[2 + window]`` samples of the ring starting at ``est_state[ring]``."""
    count = int(est_state[0])
    used = min(int(est_params[2 + window]), count, SLIDING_MAX_SAMPLES)
    total = 0.0
    for back in range(1, used + 1):
        total += est_state[ring + (count - back) % SLIDING_MAX_SAMPLES]
    return total / used


@kernel
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
            value = _debiased(est_state[2 + i], est_state[0] / half_life_s)
            best = min(best, value)
        return best
    if est_state[0] == 0.0:
        return 0.0
    for i in range(n):
        best = min(best, _sliding_mean(est_params, est_state, i, np.int64(8)))
    return best


@kernel
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
            value = _debiased(est_state[10 + i], count * segment_duration_s / half_life_s)
            worst = max(worst, value)
        return worst
    if est_state[0] == 0.0:
        return 0.0
    for i in range(n):
        worst = max(worst, _sliding_mean(est_params, est_state, i, np.int64(28)))
    return worst


# ----------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------


@kernel
def rung_for_throughput(bitrates_bps, throughput_bps, latency_s, segment_duration_s):
    """Highest rung whose segment, after one request latency, downloads within a segment duration.

    Climbs while ``latency_s + segment_duration_s * b_{q+1} / throughput_bps <= segment_duration_s``
    (Sabre's ``quality_from_throughput``); rung 0 without an estimate.
    """
    rung = 0
    if throughput_bps <= 0.0:
        return rung
    while (rung + 1 < bitrates_bps.shape[0]
           and latency_s + segment_duration_s * bitrates_bps[rung + 1] / throughput_bps
           <= segment_duration_s):
        rung += 1
    return rung


@kernel
def insufficient_buffer_rung(rung, safety, buffer_s, latency_s, throughput_bps, bitrates_bps,
                             segment_duration_s):
    """Lower ``rung`` until the next rung up would not fit ``safety * (buffer - latency) * throughput``.

    The insufficient-buffer rule of Sabre's BOLA-E and throughput rule (Spiteri, Sitaraman,
    Sparacio, MMSys 2018, Sec. 4.3); returns the rung unchanged if it is safe.
    """
    safe_bits = safety * (buffer_s - latency_s) * throughput_bps
    for lower in range(rung):
        if bitrates_bps[lower + 1] * segment_duration_s > safe_bits:
            return lower
    return rung


# ----------------------------------------------------------------------------------------------
# BOLA  (Spiteri, Urgaonkar, Sitaraman: "BOLA: Near-Optimal Bitrate Adaptation for Online
# Videos", IEEE INFOCOM 2016, Algorithm 1; BOLA-U/BOLA-O and abandonment from "From Theory to
# Practice: Improving Bitrate Adaptation in the DASH Reference Player", ACM MMSys 2018, Sec. 3.)
#
# params = [buffer_target_s, gamma_p, guard, scale_v, abandon(, utility, u_0 .. u_{R-1})]: the
#          standalone algorithm may add a utility mode (1: quality) and its per-rung utilities.
# state  = [v_s, last_quality, utility_0 .. utility_{R-1}]
# ----------------------------------------------------------------------------------------------
BOLA_PARAMS = 5
BOLA_SCALARS = 2


@kernel
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


@kernel
def _bola_reset(params, state, bitrates_bps, segment_duration_s):
    rungs = bitrates_bps.shape[0]
    quality_utility = params.shape[0] > BOLA_PARAMS and params[BOLA_PARAMS] != 0.0
    for rung in range(rungs):
        if quality_utility:  # per-rung utilities from the ladder's quality, after the parameters
            state[BOLA_SCALARS + rung] = params[BOLA_PARAMS + 1 + rung]
        else:
            state[BOLA_SCALARS + rung] = np.log(bitrates_bps[rung]) - np.log(bitrates_bps[0])
    top_utility = state[BOLA_SCALARS + rungs - 1]
    state[0] = (params[0] - segment_duration_s) / (top_utility + params[1])
    state[1] = 0.0


@kernel
def _bola_choose(params, state, obs, bitrates_bps):
    buffer_target_s = params[0]
    gamma_p = params[1]
    guard = int(params[2])
    segment_duration_s = obs[OBS_SEGMENT_DURATION_S]
    rungs = bitrates_bps.shape[0]
    utilities = state[BOLA_SCALARS:BOLA_SCALARS + rungs]
    if params[3] != 0.0:
        # Smaller V near the start and the end of the title, so that BOLA does not fill a
        # buffer it will never use (MMSys 2018, Sec. 3.3).
        index = obs[OBS_SEGMENT]
        segments_left = min(index, obs[OBS_SEGMENTS] - index)
        horizon_s = max(segments_left / 2.0, 3.0) * segment_duration_s
        target_s = min(buffer_target_s, horizon_s)
        state[0] = (target_s - segment_duration_s) / (utilities[rungs - 1] + gamma_p)
    v_s = state[0]
    buffer_s = obs[OBS_BUFFER_S]
    rung = bola_best_rung(buffer_s, utilities, bitrates_bps, v_s, gamma_p)
    pause_s = 0.0
    last = int(state[1])
    if guard != GUARD_NONE and rung > last:
        safe = rung_for_throughput(bitrates_bps, obs[OBS_THROUGHPUT_BPS], obs[OBS_LATENCY_S],
                                   segment_duration_s)
        if rung <= safe:
            pass
        elif last > safe:
            rung = last
        elif guard == GUARD_U:
            rung = safe + 1
        else:
            rung = safe
            if rung < rungs - 1:
                pause_s = max(0.0, buffer_s - v_s * (gamma_p + utilities[safe]))
    state[1] = rung
    return rung, pause_s


@kernel
def _bola_event(params, state, obs, event):
    if event == EVENT_DONE and obs[OBS_SEGMENT] == 0:
        state[1] = obs[OBS_RUNG]  # the first segment was chosen by the player, not by BOLA


@kernel
def _bola_abandon(params, state, obs, bitrates_bps):
    if params[4] == 0.0:
        return NO_RUNG
    gamma_p = params[1]
    current = int(obs[OBS_RUNG])
    size_bits = obs[OBS_SIZE_BITS]
    remain_bits = size_bits - obs[OBS_DOWNLOADED_BITS]
    if obs[OBS_DOWNLOADED_BITS] <= 0.0 or remain_bits <= 0.0:
        return NO_RUNG
    v_s = state[0]
    buffer_s = obs[OBS_BUFFER_S]
    utilities = state[BOLA_SCALARS:BOLA_SCALARS + bitrates_bps.shape[0]]
    score = (v_s * (gamma_p + utilities[current]) - buffer_s) / remain_bits
    if score < 0.0:
        return NO_RUNG
    target = NO_RUNG
    for rung in range(current):
        other_bits = size_bits * bitrates_bps[rung] / bitrates_bps[current]
        if other_bits >= remain_bits:
            break  # sizes grow with the rung: no higher rung is smaller either
        other_score = (v_s * (gamma_p + utilities[rung]) - buffer_s) / other_bits
        if other_score > score:
            score = other_score
            target = rung
    if target != NO_RUNG:
        state[1] = target
    return target


@kernel
def _first_root_s(g0, g1, curvature):
    """The first ``t > 0`` at which ``g0 + g1 t - curvature t^2`` (``g0 < 0 < g1``) reaches 0, or
    inf if it never does: the smaller root, in the form that does not cancel."""
    discriminant = g1 * g1 + 4.0 * curvature * g0
    if discriminant < 0.0:
        return math.inf
    return -2.0 * g0 / (g1 + math.sqrt(discriminant))


@kernel
def _bola_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    """The earliest elapsed time at which :func:`_bola_abandon` could answer a rung while bits arrive
    at ``rate_bps`` (np.inf: not at that rate; the checkpoint's own time: cannot tell).

    Lower rung ``r`` (``o_r`` bits) beats the current one (``R`` bits left) when
    ``(A_r - b) R > (A_c - b) o_r``, ``A = V (gamma_p + u)``, ``b`` the buffer. With the buffer
    draining one second per second and ``R`` shrinking at the rate, the difference of the two
    sides is a concave quadratic in the time from now: the first time it can turn positive
    (less a margin for rounding) is its first root, if any.
    """
    elapsed_s = obs[OBS_ELAPSED_S]
    current = int(obs[OBS_RUNG])
    size_bits = obs[OBS_SIZE_BITS]
    left_bits = size_bits - obs[OBS_DOWNLOADED_BITS]
    if params[4] == 0.0 or current <= 0:
        return np.inf
    if size_bits * bitrates_bps[0] / bitrates_bps[current] >= left_bits:
        return np.inf  # no rung is smaller than what is left, and that only shrinks
    if not (rate_bps > 0.0 and left_bits > 0.0):
        return elapsed_s
    gamma_p = params[1]
    v_s = state[0]
    buffer_s = obs[OBS_BUFFER_S]
    current_a = v_s * (gamma_p + state[BOLA_SCALARS + current])
    first_s = np.inf
    for rung in range(current):
        rung_a = v_s * (gamma_p + state[BOLA_SCALARS + rung])
        if not rung_a > 0.0:
            continue  # never above the buffer: never wins
        other_bits = size_bits * bitrates_bps[rung] / bitrates_bps[current]
        margin = 1e-9 * (abs(rung_a) + abs(current_a) + buffer_s + 1.0) * (left_bits + other_bits)
        if buffer_s <= 0.0:  # an empty buffer stays empty: the difference only falls
            if rung_a * left_bits - current_a * other_bits > -margin:
                return elapsed_s
            continue
        rung_gap = rung_a - buffer_s
        current_gap = current_a - buffer_s
        g0 = rung_gap * left_bits - current_gap * other_bits + margin
        if g0 >= 0.0:
            return elapsed_s
        g1 = left_bits - rate_bps * rung_gap - other_bits
        if g1 <= 0.0:
            continue
        first_s = min(first_s, _first_root_s(g0, g1, rate_bps))
    return elapsed_s + first_s * (1.0 - 1e-9)


# ----------------------------------------------------------------------------------------------
# BOLA-E (MMSys 2018, Sec. 4): BOLA with a virtual placeholder buffer, a startup decision from
# throughput and the insufficient-buffer rule; BOLA-PL (``ibr`` off) keeps BOLA's parameters.
#
# BOLA-E sizes its placeholder so that the next decision lands exactly on a switching threshold,
# so exact ties between rungs are common and rounding decides them. The kernel therefore computes
# in Sabre's units, milliseconds and kbit/s (bits per ms), with Sabre's order of operations, so
# that most ties break as in the original. Inputs and outputs stay in seconds and bit/s.
#
# params = [buffer_target_s, gamma_p, guard (0: u, 1: o), ibr]
# state  = [v_ms, gamma_p, placeholder_ms, steady, ibr_safety, last_quality,
#           utility_0 .., kbps_0 ..]
# ----------------------------------------------------------------------------------------------
BOLAE_PARAMS = 4
BOLAE_SCALARS = 6
BOLAE_MIN_BUFFER_MS = 10000.0
BOLAE_MIN_BUFFER_PER_RUNG_MS = 2000.0
IBR_SAFETY_INIT = 0.9
IBR_SAFETY_MIN = 0.5


@kernel
def _bolae_reset(params, state, bitrates_bps, segment_duration_s):
    rungs = bitrates_bps.shape[0]
    for rung in range(rungs):
        kbps = bitrates_bps[rung] / 1000.0
        state[BOLAE_SCALARS + rung] = np.log(kbps) + (1.0 - np.log(bitrates_bps[0] / 1000.0))
        state[BOLAE_SCALARS + rungs + rung] = kbps
    top_utility = state[BOLAE_SCALARS + rungs - 1]
    buffer_target_ms = params[0] * 1000.0
    if rungs == 1:  # nothing to choose; any finite parameters do
        gamma_p = 1.0
        state[0] = BOLAE_MIN_BUFFER_MS
    elif params[3] == 0.0:  # BOLA-PL
        gamma_p = params[1] - 1.0
        state[0] = (buffer_target_ms - segment_duration_s * 1000.0) / (top_utility + gamma_p)
    else:
        buffer_ms = max(BOLAE_MIN_BUFFER_MS + BOLAE_MIN_BUFFER_PER_RUNG_MS * rungs, buffer_target_ms)
        gamma_p = (top_utility - 1.0) / (buffer_ms / BOLAE_MIN_BUFFER_MS - 1.0)
        state[0] = BOLAE_MIN_BUFFER_MS / gamma_p
    state[1] = gamma_p
    state[2] = 0.0
    state[3] = 0.0
    state[4] = IBR_SAFETY_INIT
    state[5] = 0.0


@kernel
def _bolae_min_buffer_ms(state, rung, rungs):
    """Buffer level (ms) at which BOLA-E starts preferring ``rung`` to every lower rung."""
    v_ms = state[0]
    gamma_p = state[1]
    utilities = state[BOLAE_SCALARS:BOLAE_SCALARS + rungs]
    kbps = state[BOLAE_SCALARS + rungs:BOLAE_SCALARS + 2 * rungs]
    level_ms = 0.0
    for lower in range(rung):
        if utilities[lower] < utilities[rung]:
            level = v_ms * (gamma_p + (kbps[rung] * utilities[lower] - kbps[lower] * utilities[rung])
                            / (kbps[rung] - kbps[lower]))
            level_ms = max(level_ms, level)
    return level_ms


@kernel
def _bolae_choose(params, state, obs, bitrates_bps):
    rungs = bitrates_bps.shape[0]
    utilities = state[BOLAE_SCALARS:BOLAE_SCALARS + rungs]
    kbps = state[BOLAE_SCALARS + rungs:BOLAE_SCALARS + 2 * rungs]
    segment_ms = obs[OBS_SEGMENT_DURATION_S] * 1000.0
    buffer_ms = obs[OBS_BUFFER_S] * 1000.0
    throughput_kbps = obs[OBS_THROUGHPUT_BPS] / 1000.0
    latency_ms = obs[OBS_LATENCY_S] * 1000.0
    if state[3] == 0.0:  # startup: pick from throughput, size the placeholder to match
        if throughput_kbps <= 0.0:
            return int(state[5]), 0.0
        state[3] = 1.0
        state[4] = IBR_SAFETY_INIT
        rung = rung_for_throughput(kbps, throughput_kbps, latency_ms, segment_ms)
        state[2] = max(0.0, _bolae_min_buffer_ms(state, rung, rungs) - buffer_ms)
        return rung, 0.0
    v_ms = state[0]
    gamma_p = state[1]
    rung = bola_best_rung(buffer_ms + state[2], utilities, kbps, v_ms, gamma_p)
    safe = rung_for_throughput(kbps, throughput_kbps, latency_ms, segment_ms)
    last = int(state[5])
    if rung > last and rung > safe:
        rung = max(last, safe)
        if params[2] == 0.0:  # BOLA-U: one rung above what throughput sustains
            rung += 1
    pause_ms = buffer_ms + state[2] - v_ms * (utilities[rung] + gamma_p)
    if pause_ms > 0.0:
        if pause_ms <= state[2]:
            state[2] -= pause_ms
            pause_ms = 0.0
        else:
            pause_ms -= state[2]
            state[2] = 0.0
    else:
        pause_ms = 0.0
    if rung == rungs - 1:
        pause_ms = 0.0
    if params[3] != 0.0:
        lowered = insufficient_buffer_rung(rung, state[4], buffer_ms, latency_ms, throughput_kbps, kbps,
                                           segment_ms)
        state[4] = max(state[4] * IBR_SAFETY_INIT, IBR_SAFETY_MIN)
        if lowered != rung:
            rung = lowered
            pause_ms = 0.0
            ceiling_ms = max(0.0, _bolae_min_buffer_ms(state, rung, rungs) - buffer_ms)
            state[2] = min(ceiling_ms, state[2])
    return rung, pause_ms / 1000.0


@kernel
def _bolae_event(params, state, obs, event, bitrates_bps):
    rungs = bitrates_bps.shape[0]
    if event == EVENT_WAIT:
        state[2] += obs[OBS_WAIT_S] * 1000.0
        return
    state[5] = obs[OBS_RUNG]
    level_ms = obs[OBS_BUFFER_S] * 1000.0
    if event == EVENT_DONE:
        rung = int(obs[OBS_RUNG])
        level_was_ms = level_ms + obs[OBS_ELAPSED_S] * 1000.0
        max_level_ms = state[0] * (state[BOLAE_SCALARS + rung] + state[1])
        state[2] = min(state[2], max(0.0, max_level_ms - level_was_ms))
        if level_ms > 0.0:  # do not inflate the placeholder while rebuffering
            state[2] = max(state[2], _bolae_min_buffer_ms(state, rung, rungs) - level_was_ms)
    else:
        target = int(obs[OBS_ABANDON_TO])
        want_ms = _bolae_min_buffer_ms(state, target, rungs) if target > 0 else BOLAE_MIN_BUFFER_MS
        state[2] = min(state[2], max(0.0, want_ms - level_ms))


@kernel
def _bolae_abandon(params, state, obs, bitrates_bps):
    rungs = bitrates_bps.shape[0]
    current = int(obs[OBS_RUNG])
    size_bits = obs[OBS_SIZE_BITS]
    downloaded_bits = obs[OBS_DOWNLOADED_BITS]
    remain_bits = size_bits - downloaded_bits
    if downloaded_bits <= 0.0 or remain_bits <= 0.0:
        return NO_RUNG
    ttfb_ms = obs[OBS_TTFB_S] * 1000.0
    # A new request costs another latency: judge the state as it will be after it.
    level_ms = max(0.0, obs[OBS_BUFFER_S] * 1000.0 + state[2] - ttfb_ms)
    rate_kbps = downloaded_bits / (obs[OBS_ELAPSED_S] * 1000.0 - ttfb_ms)
    left_bits = remain_bits - ttfb_ms * rate_kbps
    if left_bits <= 0.0:
        return NO_RUNG
    v_ms = state[0]
    gamma_p = state[1]
    utilities = state[BOLAE_SCALARS:BOLAE_SCALARS + rungs]
    kbps = state[BOLAE_SCALARS + rungs:BOLAE_SCALARS + 2 * rungs]
    score = (v_ms * (gamma_p + utilities[current]) - level_ms) / left_bits
    target = NO_RUNG
    for rung in range(current):
        other_bits = size_bits * kbps[rung] / kbps[current]
        if other_bits >= left_bits:
            break  # sizes grow with the rung: no higher rung is smaller either
        other_score = (v_ms * (gamma_p + utilities[rung]) - level_ms) / other_bits
        if other_score > score:
            score = other_score
            target = rung
    return target


@kernel
def _bolae_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    """The earliest elapsed time at which :func:`_bolae_abandon` could answer a rung while bits arrive
    at ``rate_bps`` (np.inf: not at that rate; the checkpoint's own time: cannot tell).

    As for BOLA (:func:`_bola_abandon_after`), with the level (buffer plus placeholder less the
    latency, in ms) for the buffer and the bits left for the bits left less the latency's share
    (never more): lower rung ``r`` needs ``(A_r - level) left > (A_c - level) o_r`` with
    ``o_r < left``, which the same sides with the unclamped level and all bits left bound from
    above; that bound is a concave quadratic in the time from now.
    """
    elapsed_s = obs[OBS_ELAPSED_S]
    rungs = bitrates_bps.shape[0]
    current = int(obs[OBS_RUNG])
    size_bits = obs[OBS_SIZE_BITS]
    left_bits = size_bits - obs[OBS_DOWNLOADED_BITS]
    if current <= 0:
        return np.inf
    kbps = state[BOLAE_SCALARS + rungs:BOLAE_SCALARS + 2 * rungs]
    if size_bits * kbps[0] / kbps[current] >= left_bits:
        return np.inf  # no rung is smaller than what is left, and that only shrinks
    v_ms = state[0]
    gamma_p = state[1]
    utilities = state[BOLAE_SCALARS:BOLAE_SCALARS + rungs]
    current_a = v_ms * (gamma_p + utilities[current])
    if not (v_ms > 0.0 and rate_bps > 0.0 and left_bits > 0.0):
        return elapsed_s
    level_ms = obs[OBS_BUFFER_S] * 1000.0 + state[2] - obs[OBS_TTFB_S] * 1000.0
    first_s = np.inf
    for rung in range(current):
        rung_a = v_ms * (gamma_p + utilities[rung])
        if not current_a >= rung_a:
            return elapsed_s  # utilities not rising with the rung: no bound
        if not rung_a > 0.0:
            continue  # never above the level: never wins
        other_bits = size_bits * kbps[rung] / kbps[current]
        margin = 1e-9 * (abs(rung_a) + abs(current_a) + abs(level_ms) + 1.0) * (left_bits + other_bits)
        rung_gap = rung_a - level_ms
        current_gap = current_a - level_ms
        g0 = rung_gap * left_bits - current_gap * other_bits + margin
        if g0 >= 0.0:
            return elapsed_s
        if obs[OBS_BUFFER_S] <= 0.0:
            continue  # an empty buffer stays empty: the bound only falls
        g1 = 1000.0 * (left_bits - other_bits) - rate_bps * rung_gap
        if g1 <= 0.0:
            continue
        first_s = min(first_s, _first_root_s(g0, g1, 1000.0 * rate_bps))
    return elapsed_s + first_s * (1.0 - 1e-9)


# ----------------------------------------------------------------------------------------------
# Throughput rule, with Sabre's insufficient-buffer rule and abandonment rule.
#
# params = [safety_factor, ibr, abandon]
# state  = [ibr_safety]
# ----------------------------------------------------------------------------------------------
THROUGHPUT_PARAMS = 3
THROUGHPUT_STATE = 1
ABANDON_MULTIPLIER = 1.8
ABANDON_GRACE_S = 0.5
#: Times closer than this are equal: check steps often end exactly at the grace time, and whether
#: float rounding lands a hair before or after it must not decide.
TIME_EPSILON_S = 1e-9


@kernel
def _throughput_reset(state):
    state[0] = IBR_SAFETY_INIT


@kernel
def _throughput_choose(params, state, obs, bitrates_bps):
    segment_duration_s = obs[OBS_SEGMENT_DURATION_S]
    throughput_bps = obs[OBS_THROUGHPUT_BPS]
    rung = rung_for_throughput(bitrates_bps, params[0] * throughput_bps, obs[OBS_LATENCY_S],
                               segment_duration_s)
    if params[1] != 0.0:
        rung = insufficient_buffer_rung(rung, state[0], obs[OBS_BUFFER_S], obs[OBS_LATENCY_S],
                                        throughput_bps, bitrates_bps, segment_duration_s)
        state[0] = max(state[0] * IBR_SAFETY_INIT, IBR_SAFETY_MIN)
    return rung


@kernel
def _throughput_abandon(params, state, obs, bitrates_bps):
    if params[2] == 0.0:
        return NO_RUNG
    elapsed_s = obs[OBS_ELAPSED_S]
    transfer_s = elapsed_s - obs[OBS_TTFB_S]
    if elapsed_s < ABANDON_GRACE_S - TIME_EPSILON_S or transfer_s <= 0.0 or obs[OBS_DOWNLOADED_BITS] <= 0.0:
        return NO_RUNG
    current = int(obs[OBS_RUNG])
    size_bits = obs[OBS_SIZE_BITS]
    rate_bps = obs[OBS_DOWNLOADED_BITS] / transfer_s
    left_bits = size_bits - obs[OBS_DOWNLOADED_BITS]
    segment_duration_s = obs[OBS_SEGMENT_DURATION_S]
    if elapsed_s + left_bits / rate_bps <= ABANDON_MULTIPLIER * segment_duration_s:
        return NO_RUNG
    rung = rung_for_throughput(bitrates_bps, rate_bps * params[0], obs[OBS_LATENCY_S], segment_duration_s)
    if rung >= current or size_bits * bitrates_bps[rung] / bitrates_bps[current] >= left_bits:
        return NO_RUNG
    return rung


@kernel
def _throughput_abandon_after(params, obs, rate_bps):
    """The earliest elapsed time at which :func:`_throughput_abandon` could answer a rung while bits
    arrive at ``rate_bps`` (np.inf: not at that rate; -np.inf: cannot tell).

    After the grace time the rule needs a predicted finish ``latency + S x / D(x)`` (``x`` the
    time since the first byte, ``D(x) = c + rate x`` the bits by then) past the limit; with
    ``c >= 0`` it rises to ``latency + S / rate`` and crosses the limit at one ``x``, with
    ``c < 0`` it falls.
    """
    if params[2] == 0.0:
        return np.inf
    ttfb_s = obs[OBS_TTFB_S]
    sent_bits = obs[OBS_DOWNLOADED_BITS]
    transfer_s = obs[OBS_ELAPSED_S] - ttfb_s
    if not (transfer_s > 0.0 and sent_bits > 0.0 and rate_bps > 0.0):
        return -np.inf
    grace_s = ABANDON_GRACE_S - TIME_EPSILON_S
    size_bits = obs[OBS_SIZE_BITS]
    room_s = ABANDON_MULTIPLIER * obs[OBS_SEGMENT_DURATION_S] * (1.0 - 1e-6) - ttfb_s
    if not room_s > 0.0:
        return grace_s
    start_bits = sent_bits - rate_bps * transfer_s
    if start_bits < 0.0:  # the prediction falls: below the limit now, below it from now on
        return np.inf if ttfb_s + size_bits * transfer_s / sent_bits <= ttfb_s + room_s else -np.inf
    spare_bits = size_bits - room_s * rate_bps
    if spare_bits <= 0.0:
        return np.inf
    return max(grace_s, ttfb_s + room_s * start_bits / spare_bits * (1.0 - 1e-6))


# ----------------------------------------------------------------------------------------------
# DYNAMIC (MMSys 2018, Sec. 5; dash.js): BOLA and the throughput rule both decide every segment;
# BOLA's answer is used above ``switch_buffer_s`` when it is at least the throughput rule's.
# Abandonment always comes from the throughput rule, as in Sabre.
#
# params = [bola params (5), throughput params (3), switch_buffer_s]
# state  = [is_bola, bola state .., throughput state]
# ----------------------------------------------------------------------------------------------


@kernel
def _dynamic_choose(params, state, obs, bitrates_bps):
    rungs = bitrates_bps.shape[0]
    bola_state = state[1:1 + BOLA_SCALARS + rungs]
    tput_params = params[BOLA_PARAMS:BOLA_PARAMS + THROUGHPUT_PARAMS]
    tput_state = state[1 + BOLA_SCALARS + rungs:]
    switch_s = params[BOLA_PARAMS + THROUGHPUT_PARAMS]
    buffer_s = obs[OBS_BUFFER_S]
    bola_rung, bola_pause_s = _bola_choose(params[:BOLA_PARAMS], bola_state, obs, bitrates_bps)
    tput_rung = _throughput_choose(tput_params, tput_state, obs, bitrates_bps)
    if state[0] != 0.0:
        if buffer_s < switch_s and bola_rung < tput_rung:
            state[0] = 0.0
    elif buffer_s > switch_s and bola_rung >= tput_rung:
        state[0] = 1.0
    if state[0] != 0.0:
        return bola_rung, bola_pause_s
    return tput_rung, 0.0


# ----------------------------------------------------------------------------------------------
# DYNAMIC-DASH (Sabre's ``dynamicdash``): BOLA-E above ``to_bola_s``, the throughput rule below
# ``to_throughput_s``; only the active rule decides and judges abandonment.
#
# params = [bolae params (4), throughput params (3), to_bola_s, to_throughput_s]
# state  = [is_bola, bolae state .., throughput state]
# ----------------------------------------------------------------------------------------------


@kernel
def _dynamicdash_parts(params, state, rungs):
    bolae_params = params[:BOLAE_PARAMS]
    bolae_state = state[1:1 + BOLAE_SCALARS + 2 * rungs]
    tput_params = params[BOLAE_PARAMS:BOLAE_PARAMS + THROUGHPUT_PARAMS]
    tput_state = state[1 + BOLAE_SCALARS + 2 * rungs:]
    return bolae_params, bolae_state, tput_params, tput_state


@kernel
def _dynamicdash_choose(params, state, obs, bitrates_bps):
    bolae_params, bolae_state, tput_params, tput_state = _dynamicdash_parts(
        params, state, bitrates_bps.shape[0])
    buffer_s = obs[OBS_BUFFER_S]
    to_bola_s = params[BOLAE_PARAMS + THROUGHPUT_PARAMS]
    to_throughput_s = params[BOLAE_PARAMS + THROUGHPUT_PARAMS + 1]
    if state[0] != 0.0 and buffer_s < to_throughput_s:
        state[0] = 0.0
    elif state[0] == 0.0 and buffer_s > to_bola_s:
        state[0] = 1.0
    if state[0] != 0.0:
        return _bolae_choose(bolae_params, bolae_state, obs, bitrates_bps)
    return _throughput_choose(tput_params, tput_state, obs, bitrates_bps), 0.0


# ----------------------------------------------------------------------------------------------
# BB, Pensieve's buffer-based baseline (test/bb.py): rung 0 below the reservoir, the top rung
# above reservoir + cushion, linear in between (rounded down).
#
# params = [reservoir_s, cushion_s]
# ----------------------------------------------------------------------------------------------


@kernel
def _bb_choose(params, obs, bitrates_bps):
    buffer_s = obs[OBS_BUFFER_S]
    top = bitrates_bps.shape[0] - 1
    if buffer_s < params[0]:
        return 0
    if buffer_s >= params[0] + params[1]:
        return top
    return int(top * (buffer_s - params[0]) / params[1])


# ----------------------------------------------------------------------------------------------
# BBA-0 (Huang, Johari, McKeown, Trunnell, Watson, "A Buffer-Based Approach to Rate Adaptation",
# ACM SIGCOMM 2014, Sec. 4, Algorithm 1): a linear rate map f(B) from R_min at the reservoir to
# R_max at reservoir + cushion; move only when f(B) passes the next rate up or down.
#
# params = [reservoir_s, cushion_s]
# ----------------------------------------------------------------------------------------------


@kernel
def _bba0_choose(params, obs, bitrates_bps):
    buffer_s = obs[OBS_BUFFER_S]
    top = bitrates_bps.shape[0] - 1
    reservoir_s = params[0]
    cushion_s = params[1]
    last = int(obs[OBS_LAST_RUNG])
    if last < 0:
        last = 0
    if buffer_s <= reservoir_s:
        return 0
    if buffer_s >= reservoir_s + cushion_s:
        return top
    span_bps = bitrates_bps[top] - bitrates_bps[0]
    mapped_bps = bitrates_bps[0] + span_bps * (buffer_s - reservoir_s) / cushion_s
    rate_plus = bitrates_bps[min(last + 1, top)]
    rate_minus = bitrates_bps[max(last - 1, 0)]
    if mapped_bps >= rate_plus:
        rung = 0  # the highest rate strictly below f(B)
        for candidate in range(top + 1):
            if bitrates_bps[candidate] < mapped_bps:
                rung = candidate
        return rung
    if mapped_bps <= rate_minus:
        for candidate in range(top + 1):  # the lowest rate strictly above f(B)
            if bitrates_bps[candidate] > mapped_bps:
                return candidate
        return top
    return last


# ----------------------------------------------------------------------------------------------
# MPC (Yin, Jindal, Sekar, Sinopoli, "A Control-Theoretic Approach for Dynamic Adaptive Video
# Streaming over HTTP", ACM SIGCOMM 2015): exhaustive search over the next ``horizon`` rungs of a
# simulated buffer, maximising QoE_lin; throughput predicted by the harmonic mean of the last five
# samples, divided by 1 + the largest recent relative error for RobustMPC. As in Pensieve's
# test/mpc.py: a sample is chunk bytes over the whole download time (latency included), the plan
# ignores latency and the buffer cap, and ties go to the lexicographically last sequence.
#
# params = [horizon, robust, rebuffer_penalty, compat_pensieve_lookahead]
# state  = [samples, last_estimate, sample_0..4 (MB/s), error_0..4]
# ----------------------------------------------------------------------------------------------
MPC_PARAMS = 4
MPC_HISTORY = 5
MPC_MAX_HORIZON = 8


@kernel
def _mpc_event(state, obs, event):
    if event != EVENT_DONE:
        return
    # Throughput as Pensieve measures it: bytes / ms / 1000, i.e. MB/s, latency included.
    sample = (obs[OBS_SIZE_BITS] / 8.0) / (obs[OBS_ELAPSED_S] * 1000.0) / 1000.0
    count = int(state[0])
    if count >= MPC_HISTORY:
        for i in range(MPC_HISTORY - 1):
            state[2 + i] = state[3 + i]
        state[2 + MPC_HISTORY - 1] = sample
    else:
        state[2 + count] = sample
    error = 0.0
    if count > 0:
        error = abs(state[1] - sample) / sample
    if count >= MPC_HISTORY:
        for i in range(MPC_HISTORY - 1):
            state[7 + i] = state[8 + i]
        state[7 + MPC_HISTORY - 1] = error
    else:
        state[7 + count] = error
    state[0] = count + 1


@njit(cache=True)
def _mpc_choose(params, state, obs, bitrates_bps, size_bits):
    count = min(int(state[0]), MPC_HISTORY)
    if count == 0:
        return max(int(obs[OBS_LAST_RUNG]), 0)
    inverse_sum = 0.0
    for i in range(count):
        inverse_sum += 1.0 / state[2 + i]
    harmonic = 1.0 / (inverse_sum / count)
    max_error = 0.0
    if params[1] != 0.0:
        for i in range(count):
            max_error = max(max_error, state[7 + i])
    future = harmonic / (1.0 + max_error)
    state[1] = harmonic
    index = int(obs[OBS_SEGMENT])
    horizon = min(int(params[0]), MPC_MAX_HORIZON, int(obs[OBS_SEGMENTS]) - index)
    if horizon <= 0:
        return max(int(obs[OBS_LAST_RUNG]), 0)
    penalty = params[2]
    offset = 1 if params[3] != 0.0 else 0
    rungs = bitrates_bps.shape[0]
    segment_duration_s = obs[OBS_SEGMENT_DURATION_S]
    kbps = np.empty(rungs)
    for rung in range(rungs):
        kbps[rung] = bitrates_bps[rung] / 1000.0
    # Download time of each (step, rung), in seconds, as Pensieve computes it: (bytes / 1e6) / MB/s.
    download_s = np.zeros((MPC_MAX_HORIZON, rungs))
    for step in range(horizon):
        segment = index + offset + step
        for rung in range(rungs):
            if segment < size_bits.shape[0]:
                download_s[step, rung] = (size_bits[segment, rung] / 8.0 / 1000000.0) / future
    # Depth-first search in lexicographic order; each node extends its parent's partial sums,
    # which adds the same terms in the same order as scoring every sequence from scratch. The last
    # step is a flat loop over rungs (most nodes are leaves); ties go to the later sequence (>=).
    buffer_at = np.empty(MPC_MAX_HORIZON + 1)
    rebuffer_at = np.empty(MPC_MAX_HORIZON + 1)
    bitrate_at = np.empty(MPC_MAX_HORIZON + 1)
    smooth_at = np.empty(MPC_MAX_HORIZON + 1)
    choice = np.zeros(MPC_MAX_HORIZON, dtype=np.int64)
    buffer_at[0] = obs[OBS_BUFFER_S]
    rebuffer_at[0] = 0.0
    bitrate_at[0] = 0.0
    smooth_at[0] = 0.0
    last = max(int(obs[OBS_LAST_RUNG]), 0)
    best_reward = -100000000.0
    best_first = 0
    leaf = horizon - 1
    top_kbps = 0.0
    for rung in range(rungs):
        top_kbps = max(top_kbps, kbps[rung])
    # A subtree whose best conceivable reward is below a reward some sequence reaches cannot hold
    # the best sequence, nor a tie with it: it is skipped, which changes no decision. The bar is
    # the best constant sequence, scored with the search's own operations; a subtree's bound takes
    # the top bitrate for every step left and the stall and switches so far (rounding is monotone,
    # so the bound holds in floats too).
    bar = _mpc_constant_bar(download_s, kbps, rungs, leaf, buffer_at[0], segment_duration_s, last, penalty)
    pruning = penalty >= 0.0 and leaf > 0
    depth = 0
    choice[0] = 0
    while depth >= 0:
        if depth == leaf:
            previous = last if depth == 0 else choice[depth - 1]
            buffer_s = buffer_at[depth]
            rebuffer_s = rebuffer_at[depth]
            bitrate_sum = bitrate_at[depth]
            smooth_sum = smooth_at[depth]
            for rung in range(rungs):
                time_s = download_s[depth, rung]
                total_rebuffer_s = rebuffer_s + (time_s - buffer_s) if buffer_s < time_s else rebuffer_s
                reward = (bitrate_sum + kbps[rung]) / 1000.0 - penalty * total_rebuffer_s - (
                    smooth_sum + abs(kbps[rung] - kbps[previous])) / 1000.0
                if reward >= best_reward:
                    best_reward = reward
                    best_first = rung if depth == 0 else choice[0]
            depth -= 1
            if depth >= 0:
                choice[depth] += 1
            continue
        rung = choice[depth]
        if rung >= rungs:
            depth -= 1
            if depth >= 0:
                choice[depth] += 1
            continue
        previous = last if depth == 0 else choice[depth - 1]
        buffer_s = buffer_at[depth]
        rebuffer_s = rebuffer_at[depth]
        buffer_s, rebuffer_s = _drain(buffer_s, rebuffer_s, download_s[depth, rung])
        buffer_at[depth + 1] = buffer_s + segment_duration_s
        rebuffer_at[depth + 1] = rebuffer_s
        bitrate_at[depth + 1] = bitrate_at[depth] + kbps[rung]
        smooth_at[depth + 1] = smooth_at[depth] + abs(kbps[rung] - kbps[previous])
        if pruning:
            bound_kbps = bitrate_at[depth + 1]
            for _ in range(leaf - depth):
                bound_kbps = bound_kbps + top_kbps
            bound = bound_kbps / 1000.0 - penalty * rebuffer_s - smooth_at[depth + 1] / 1000.0
            if bound < max(bar, best_reward):
                choice[depth] += 1
                continue
        depth += 1
        choice[depth] = 0
    return best_first


@kernel
def _drain(buffer_s, rebuffer_s, time_s):
    """A download of ``time_s`` against ``buffer_s`` of buffer, in the MPC plan: ``(buffer_s,
    rebuffer_s)`` after it (the shortfall adds to the rebuffering)."""
    if buffer_s < time_s:
        return 0.0, rebuffer_s + (time_s - buffer_s)
    return buffer_s - time_s, rebuffer_s


@njit(cache=True)
def _mpc_constant_bar(download_s, kbps, rungs, leaf, buffer_s0, segment_duration_s, last, penalty):
    """The best reward of the constant sequences, each scored with :func:`_mpc_choose`'s operations in
    its order (so each is a reward the search itself reaches)."""
    bar = -np.inf
    for rung in range(rungs):
        buffer_s = buffer_s0
        rebuffer_s = 0.0
        bitrate_sum = 0.0
        smooth_sum = 0.0
        previous = last
        for depth in range(leaf):
            buffer_s, rebuffer_s = _drain(buffer_s, rebuffer_s, download_s[depth, rung])
            buffer_s = buffer_s + segment_duration_s
            bitrate_sum = bitrate_sum + kbps[rung]
            smooth_sum = smooth_sum + abs(kbps[rung] - kbps[previous])
            previous = rung
        time_s = download_s[leaf, rung]
        total_rebuffer_s = rebuffer_s + (time_s - buffer_s) if buffer_s < time_s else rebuffer_s
        reward = (bitrate_sum + kbps[rung]) / 1000.0 - penalty * total_rebuffer_s - (
            smooth_sum + abs(kbps[rung] - kbps[previous])) / 1000.0
        bar = max(bar, reward)
    return bar


# ----------------------------------------------------------------------------------------------
# The policy protocol, per algorithm: reset(params, state, bitrates_bps, segment_duration_s),
# choose(params, state, obs, bitrates_bps, size_bits) -> (rung, pause_s),
# event(params, state, obs, event, bitrates_bps), abandon(params, state, obs, bitrates_bps) -> rung,
# can_abandon(params) -> bool. The registry (abrsim.abr) binds them per algorithm; the session
# loop is compiled once per algorithm with its functions, so each compiles only what it calls.
# ----------------------------------------------------------------------------------------------


@kernel
def no_reset(params, state, bitrates_bps, segment_duration_s):
    """A policy with nothing to set up."""
    state[:] = 0.0


@kernel
def no_event(params, state, obs, event, bitrates_bps):
    """A policy that ignores events."""


@kernel
def no_abandon(params, state, obs, bitrates_bps):
    """A policy that never abandons."""
    return NO_RUNG


@kernel
def no_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    """A policy that cannot say when it could abandon: every checkpoint is checked."""
    return -np.inf


@kernel
def never_abandons(params):
    """The player need not check for abandonment."""
    return False


@kernel
def always_abandons(params):
    """The player checks for abandonment (if its model does)."""
    return True


@kernel
def always_reads_estimates(params):
    """The policy may read the player's estimates (``OBS_THROUGHPUT_BPS``, ``OBS_LATENCY_S``)."""
    return True


@kernel
def never_reads_estimates(params):
    """None of the policy's functions reads the player's estimates: the fast engine skips them."""
    return False


@kernel
def bola_reset(params, state, bitrates_bps, segment_duration_s):
    state[:] = 0.0
    _bola_reset(params, state, bitrates_bps, segment_duration_s)


@kernel
def bola_choose(params, state, obs, bitrates_bps, size_bits):
    return _bola_choose(params, state, obs, bitrates_bps)


@kernel
def bola_event(params, state, obs, event, bitrates_bps):
    _bola_event(params, state, obs, event)


@kernel
def bola_abandon(params, state, obs, bitrates_bps):
    return _bola_abandon(params, state, obs, bitrates_bps)


@kernel
def bola_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    return _bola_abandon_after(params, state, obs, bitrates_bps, rate_bps)


@kernel
def bola_can_abandon(params):
    return params[4] != 0.0


@kernel
def bola_reads_estimates(params):
    """Only BOLA's oscillation guards read the estimates (basic BOLA reads neither)."""
    return int(params[2]) != GUARD_NONE


@kernel
def bolae_reset(params, state, bitrates_bps, segment_duration_s):
    state[:] = 0.0
    _bolae_reset(params, state, bitrates_bps, segment_duration_s)


@kernel
def bolae_choose(params, state, obs, bitrates_bps, size_bits):
    return _bolae_choose(params, state, obs, bitrates_bps)


@kernel
def bolae_event(params, state, obs, event, bitrates_bps):
    _bolae_event(params, state, obs, event, bitrates_bps)


@kernel
def bolae_abandon(params, state, obs, bitrates_bps):
    return _bolae_abandon(params, state, obs, bitrates_bps)


@kernel
def bolae_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    return _bolae_abandon_after(params, state, obs, bitrates_bps, rate_bps)


@kernel
def throughput_reset(params, state, bitrates_bps, segment_duration_s):
    state[:] = 0.0
    _throughput_reset(state)


@kernel
def throughput_choose(params, state, obs, bitrates_bps, size_bits):
    return _throughput_choose(params, state, obs, bitrates_bps), 0.0


@kernel
def throughput_abandon(params, state, obs, bitrates_bps):
    return _throughput_abandon(params, state, obs, bitrates_bps)


@kernel
def throughput_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    return _throughput_abandon_after(params, obs, rate_bps)


@kernel
def throughput_can_abandon(params):
    return params[2] != 0.0


@kernel
def dynamic_reset(params, state, bitrates_bps, segment_duration_s):
    state[:] = 0.0
    rungs = bitrates_bps.shape[0]
    _bola_reset(params[:BOLA_PARAMS], state[1:1 + BOLA_SCALARS + rungs], bitrates_bps, segment_duration_s)
    _throughput_reset(state[1 + BOLA_SCALARS + rungs:])


@kernel
def dynamic_choose(params, state, obs, bitrates_bps, size_bits):
    return _dynamic_choose(params, state, obs, bitrates_bps)


@kernel
def dynamic_event(params, state, obs, event, bitrates_bps):
    rungs = bitrates_bps.shape[0]
    _bola_event(params[:BOLA_PARAMS], state[1:1 + BOLA_SCALARS + rungs], obs, event)


@kernel
def dynamic_abandon(params, state, obs, bitrates_bps):
    rungs = bitrates_bps.shape[0]
    return _throughput_abandon(params[BOLA_PARAMS:BOLA_PARAMS + THROUGHPUT_PARAMS],
                               state[1 + BOLA_SCALARS + rungs:], obs, bitrates_bps)


@kernel
def dynamic_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    return _throughput_abandon_after(params[BOLA_PARAMS:BOLA_PARAMS + THROUGHPUT_PARAMS], obs, rate_bps)


@kernel
def dynamicdash_reset(params, state, bitrates_bps, segment_duration_s):
    state[:] = 0.0
    bolae_params, bolae_state, _, tput_state = _dynamicdash_parts(params, state, bitrates_bps.shape[0])
    _bolae_reset(bolae_params, bolae_state, bitrates_bps, segment_duration_s)
    _throughput_reset(tput_state)


@kernel
def dynamicdash_choose(params, state, obs, bitrates_bps, size_bits):
    return _dynamicdash_choose(params, state, obs, bitrates_bps)


@kernel
def dynamicdash_event(params, state, obs, event, bitrates_bps):
    bolae_params, bolae_state, _, _ = _dynamicdash_parts(params, state, bitrates_bps.shape[0])
    _bolae_event(bolae_params, bolae_state, obs, event, bitrates_bps)


@kernel
def dynamicdash_abandon(params, state, obs, bitrates_bps):
    bolae_params, bolae_state, tput_params, tput_state = _dynamicdash_parts(params, state,
                                                                            bitrates_bps.shape[0])
    if state[0] != 0.0:
        return _bolae_abandon(bolae_params, bolae_state, obs, bitrates_bps)
    return _throughput_abandon(tput_params, tput_state, obs, bitrates_bps)


@kernel
def dynamicdash_abandon_after(params, state, obs, bitrates_bps, rate_bps):
    bolae_params, bolae_state, tput_params, _ = _dynamicdash_parts(params, state, bitrates_bps.shape[0])
    if state[0] != 0.0:
        return _bolae_abandon_after(bolae_params, bolae_state, obs, bitrates_bps, rate_bps)
    return _throughput_abandon_after(tput_params, obs, rate_bps)


@kernel
def bb_choose(params, state, obs, bitrates_bps, size_bits):
    return _bb_choose(params, obs, bitrates_bps), 0.0


@kernel
def bba0_choose(params, state, obs, bitrates_bps, size_bits):
    return _bba0_choose(params, obs, bitrates_bps), 0.0


@njit(cache=True)
def mpc_choose(params, state, obs, bitrates_bps, size_bits):
    return _mpc_choose(params, state, obs, bitrates_bps, size_bits), 0.0


@kernel
def mpc_event(params, state, obs, event, bitrates_bps):
    _mpc_event(state, obs, event)
