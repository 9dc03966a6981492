"""dash.js v5.1.1's default ABR rule set as numba kernels (the ``dashjs`` algorithm).

Written from the description of dash.js v5.1.1 (Dash-Industry-Forum/dash.js, tag v5.1.1) in
``shared/reference/pensieve_dashjs_model.md`` sections 2.1-2.4. The rules and how they combine:

- **DYNAMIC** (``AbrController``): with both BolaRule and ThroughputRule active, only one of them
  runs. BOLA takes over when the buffer reaches ``buffer_time_default_s`` (18 s) and hands back
  when it falls below half of it (9 s). The level is checked at every decision and at every
  download's completion (before and after the segment is appended: the buffer only falls
  during a download, so its level just before the append is the lowest it reached).
- **ThroughputRule**: the highest rung whose bitrate is at most ``bandwidth_safety_factor``
  times the throughput estimate; no opinion before the first sample, while the buffer is
  empty, or within ``abandon_load_timeout_s`` of an abandonment.
- **BolaRule** (Spiteri, Urgaonkar, Sitaraman, "BOLA: Near-Optimal Bitrate Adaptation for Online
  Videos", IEEE INFOCOM 2016, Alg. 1; as dash.js implements it, see Spiteri, Sitaraman, Sparacio,
  "From Theory to Practice: Improving Bitrate Adaptation in the DASH Reference Player", ACM MMSys
  2018, Sec. 3-4): utilities ``u_i = ln(b_i) - ln(b_0) + 1``; buffer time
  ``max(buffer_time_default_s, 10 + 2 * rungs)``; ``gp = (u_max - 1) / (buffer_time / 10 - 1)``,
  ``Vp = 10 / gp``. The rule's state is created at its first decision. STARTUP picks the rung for
  the safe throughput and sets the placeholder so that BOLA would just prefer it; it turns STEADY
  once a segment has completed since the state was created and the buffer holds one segment.
  STEADY grows the placeholder by the non-download time since the last completion (full-buffer
  waits), scores ``(Vp * (u_i - bola_score_offset + gp) - Q) / b_i`` with ``Q = buffer +
  placeholder`` (ties to the higher rung), applies BOLA-O (never step *up* past both the last
  rung and the throughput rung), and turns ``Q - Vp * (u + gp)`` first into placeholder
  reduction, then into a delay before the request (none at the top rung). Each completed segment
  decays the placeholder by 0.99 and caps it at ``Vp * (u_q + gp)`` minus the estimated buffer at
  that segment's request; an empty buffer (STEADY only) zeroes it; an abandonment caps it at the
  level where BOLA just prefers the new rung (10 s for the lowest).
- **InsufficientBufferRule**: after ``ibr_ignore_segments`` appended segments, rung 0 while the
  buffer is empty, otherwise the highest rung at most ``ibr_safety_factor * throughput *
  buffer / segment duration`` (the average, not the safe, throughput).
- **SwitchHistoryRule**: every decision with an opinion pushes (old rung, new rung) into a
  history of the last 8; counting drops and non-drops per old rung from rung 0 up, the first
  rung where the counts reach ``switch_history_samples`` and ``drops / non-drops`` exceeds
  ``switch_history_threshold`` caps the choice (one rung lower if that rung saw drops). An
  abandonment clears the history and pushes the abandonment's drop.
- The decision is the **minimum** over the rules with an opinion (all have DEFAULT priority);
  with no opinion the rung stays. Within ``abandon_load_timeout_s`` of an abandonment the rung
  may only go down (``AbrController``).
- **AbandonRequestsRule**: during a download, unless the buffer exceeds
  ``buffer_time_default_s``: each progress sample stores the download's mean rate so far (kbit/s,
  rounded, over the time since its first byte); once there are ``abandon_min_samples`` samples
  and more than ``abandon_min_time_s`` has passed since the first byte, the measured rate is
  their rounded mean, and the download is abandoned if ``size / rate`` (rounded to 0.01 s) is at
  least ``abandon_multiplier`` segment durations, the rung is not the lowest, and the bits left
  exceed the size the segment would have at the highest rung the measured rate sustains (no
  safety factor). Once per segment.
- **Throughput** is dash.js's own EWMA, kept in this kernel's state (the player's estimator in
  ``obs`` is not used): each completed download gives a sample ``size / transfer time`` in kbit/s
  (transfer time = ``OBS_ELAPSED_S - OBS_TTFB_S``, i.e. latency excluded, as with dash.js's
  ``useDeadTimeLatency``) with weight ``0.0015 * transfer ms``; for half-lives ``h`` of 3 and 8
  (in those weight units) ``e = a e + (1 - a) x`` with ``a = 0.5 ** (w / h)``; the estimate is
  ``min_h e_h / (1 - 0.5 ** (W / h))`` with ``W`` the total weight; the safe estimate is 0.9 x
  that.

Simplifications, where the simulator has no equivalent:

- DroppedFramesRule (off by default in v5) is not modelled: the simulator renders no frames.
- dash.js drops throughput samples of responses it judges cached (transfer < 10 ms); here every
  completed download is a sample (the simulator has no cache in the path).
- "Progress samples" of AbandonRequestsRule are the player's abandonment checks (every
  ``abandon_check_bits`` / ``abandon_check_s`` of the player model); in a browser they are XHR or
  fetch progress events, whose timing the simulator does not model.
- Wall-clock gaps come from the events the kernel sees: full-buffer waits (``EVENT_WAIT``), the
  delays it asks for, and download times. dash.js re-checks a full buffer every 500 ms; the
  simulated player waits exactly as long as its model says. An abandoned download counts as a
  download for the placeholder's gap.
- BUFFER_EMPTY / BUFFER_LOADED are the buffer level below / at least ``stall_threshold_s``
  (0.3 s): at a decision, the level then; for BOLA's empty-buffer reset, the lowest level of a
  download (at its completion, before the append). The buffer dash.js reads when a download
  completes (BOLA's cap) is the level before the append, ``OBS_BUFFER_S`` minus one segment.
- The buffer target (dash.js's ``bufferTimeDefault`` / ``bufferTimeAtTopQuality`` scheduling)
  belongs to the player model (``max_buffer_s``); the kernel only uses ``buffer_time_default_s``
  for DYNAMIC, BOLA's buffer time and the abandonment limit.
- The first segment: dash.js starts at the highest rung at most ``initial_bitrate_bps`` (1000
  kbit/s) when no throughput is known. The player model's ``first_rung >= 0`` overrides that (the
  kernel is not asked for segment 0 and learns the rung at ``EVENT_DONE``); with
  ``first_rung = -1`` the player asks the kernel, whose rules all abstain without a sample (the
  IBR ignores the first segments, DYNAMIC starts with the throughput rule), so the kernel keeps
  its initial rung, the 1000 kbit/s rule.
- ``bola_score_offset``: the reference describes v5.1.1's score with ``u_i - 1`` (and the helper
  levels without it, so they sit ``Vp`` above the score's crossovers); earlier v5 sources score
  with ``u_i`` alone, which ``bola_score_offset = 0`` gives.
- The 10 s ``abandon_load_timeout_s`` (dash.js ``abandonLoadTimeout``) and the switch-history
  push at an abandonment follow ``AbrController``'s handling of an abandonment; they are not in
  the reference's rule table. ``abandon_load_timeout_s = 0`` turns the timeout off.
- No live streams, low-latency mode, seeking, audio or min/max bitrate limits.

Units: seconds, bits, bit/s at the interface; throughput in kbit/s inside, as dash.js keeps it.
"""

from __future__ import annotations

import numpy as np

# The module, not its names: the dispatch in _kernels imports this module, so _kernels may be
# half-initialised while this one loads; numba reads the constants when it compiles.
from abrsim._jit import kernel
from abrsim.abr import _kernels as kernels

__all__ = [
    "DASHJS_PARAMS",
    "dashjs_abandon",
    "dashjs_can_abandon",
    "dashjs_choose",
    "dashjs_event",
    "dashjs_reset",
    "dashjs_state_size",
]

# params = [buffer_time_default_s, bandwidth_safety_factor, fast_half_life, slow_half_life,
#           initial_bitrate_bps, stall_threshold_s, bola_rule, bola_score_offset, throughput_rule,
#           insufficient_buffer_rule, ibr_safety_factor, ibr_ignore_segments, switch_history_rule,
#           switch_history_samples, switch_history_threshold, abandon, abandon_multiplier,
#           abandon_min_time_s, abandon_min_samples, abandon_load_timeout_s]
# (booleans as 0.0 / 1.0, counts as floats).
P_BUFFER_TIME_DEFAULT_S = 0
P_SAFETY = 1
P_FAST_HALF_LIFE = 2
P_SLOW_HALF_LIFE = 3
P_INITIAL_BITRATE_BPS = 4
P_STALL_THRESHOLD_S = 5
P_BOLA = 6
P_BOLA_SCORE_OFFSET = 7
P_THROUGHPUT = 8
P_IBR = 9
P_IBR_SAFETY = 10
P_IBR_IGNORE = 11
P_SWITCH_HISTORY = 12
P_SWITCH_SAMPLES = 13
P_SWITCH_THRESHOLD = 14
P_ABANDON = 15
P_ABANDON_MULTIPLIER = 16
P_ABANDON_MIN_TIME_S = 17
P_ABANDON_MIN_SAMPLES = 18
P_ABANDON_TIMEOUT_S = 19
DASHJS_PARAM_COUNT = 20

#: The parameters in kernel order: (name, default, doc). Defaults are dash.js v5.1.1's.
DASHJS_PARAMS: tuple[tuple[str, float | int | bool, str], ...] = (
    ("buffer_time_default_s", 18.0, "dash.js bufferTimeDefault: BOLA takes over at this buffer and "
     "hands back below half of it; floor of BOLA's buffer time; no abandonment above it"),
    ("bandwidth_safety_factor", 0.9, "share of the throughput estimate the throughput rule and BOLA "
     "use (bandwidthSafetyFactor)"),
    ("fast_half_life", 3.0, "fast EWMA half-life in dash.js's weight units (0.0015 per ms of "
     "transfer, i.e. 1.5 per second)"),
    ("slow_half_life", 8.0, "slow EWMA half-life, same units"),
    ("initial_bitrate_bps", 1e6, "bitrate for the first segment when the player model lets the "
     "algorithm choose it (first_rung = -1)"),
    ("stall_threshold_s", 0.3, "buffer below which dash.js reports the buffer empty (stallThreshold)"),
    ("bola_rule", True, "BolaRule active (with the throughput rule too: DYNAMIC switching)"),
    ("bola_score_offset", 1.0, "BOLA scores with u_i - offset + gp: 1 as the reference describes "
     "v5.1.1, 0 as earlier v5 sources"),
    ("throughput_rule", True, "ThroughputRule active"),
    ("insufficient_buffer_rule", True, "InsufficientBufferRule active"),
    ("ibr_safety_factor", 0.7, "InsufficientBufferRule's share of the average throughput"),
    ("ibr_ignore_segments", 2, "InsufficientBufferRule abstains until this many segments are appended"),
    ("switch_history_rule", True, "SwitchHistoryRule active"),
    ("switch_history_samples", 8, "SwitchHistoryRule's minimum number of samples (of the last 8)"),
    ("switch_history_threshold", 0.075, "SwitchHistoryRule's drops / non-drops ratio that caps"),
    ("abandon", True, "AbandonRequestsRule active (when the player checks)"),
    ("abandon_multiplier", 1.8, "abandon when the estimated download time reaches this many "
     "segment durations"),
    ("abandon_min_time_s", 0.5, "no abandonment in the first this-many seconds after the first byte"),
    ("abandon_min_samples", 6, "no abandonment before this many progress samples (player checks)"),
    ("abandon_load_timeout_s", 10.0, "after an abandonment, the rung may only go down for this long "
     "and the throughput rule abstains (abandonLoadTimeout)"),
)

# state = [use_bola, current_rung, clock_s, gap_s, ewma_fast_kbps, ewma_slow_kbps, ewma_weight,
#          samples, appended, abandon_until_s, abandoned_segment, progress_count, progress_sum_kbps,
#          bola_state, placeholder_s, bola_saw_segment, vp_s, gp, history_count,
#          history_old[8], history_new[8], utility[rungs]]
S_USE_BOLA = 0
S_CURRENT = 1
S_CLOCK_S = 2
S_GAP_S = 3
S_FAST_KBPS = 4
S_SLOW_KBPS = 5
S_WEIGHT = 6
S_SAMPLES = 7
S_APPENDED = 8
S_ABANDON_UNTIL_S = 9
S_ABANDONED_SEGMENT = 10
S_PROGRESS_COUNT = 11
S_PROGRESS_SUM_KBPS = 12
S_BOLA = 13
S_PLACEHOLDER_S = 14
S_BOLA_SAW_SEGMENT = 15
S_VP_S = 16
S_GP = 17
S_HISTORY_COUNT = 18
SWITCH_HISTORY_DEPTH = 8
S_HISTORY_OLD = 19
S_HISTORY_NEW = S_HISTORY_OLD + SWITCH_HISTORY_DEPTH
S_UTILITY = S_HISTORY_NEW + SWITCH_HISTORY_DEPTH
DASHJS_SCALARS = S_UTILITY

# BolaRule's states (S_BOLA); the rule's state does not exist until its first decision.
BOLA_ABSENT = 0
BOLA_STARTUP = 1
BOLA_STEADY = 2

BOLA_MINIMUM_BUFFER_S = 10.0
BOLA_MINIMUM_BUFFER_PER_LEVEL_S = 2.0
BOLA_PLACEHOLDER_DECAY = 0.99
#: dash.js weighs an EWMA sample by this much per millisecond of transfer.
EWMA_WEIGHT_PER_MS = 0.0015
#: DYNAMIC hands back to the throughput rule below this share of ``buffer_time_default_s``.
DYNAMIC_SWITCH_OFF_SHARE = 0.5


@kernel
def dashjs_state_size(rungs):
    """Length of the ``dashjs`` state array for a ladder of ``rungs`` rungs."""
    return DASHJS_SCALARS + rungs


@kernel
def _js_round(value):
    """JavaScript's ``Math.round`` (halves round up)."""
    return np.floor(value + 0.5)


@kernel
def _rung_for_kbps(bitrates_bps, kbps):
    """dash.js ``getOptimalRepresentationForBitrate``: the highest rung with kbit/s <= ``kbps``, else 0."""
    rung = 0
    for candidate in range(bitrates_bps.shape[0]):
        if bitrates_bps[candidate] / 1000.0 <= kbps:
            rung = candidate
    return rung


@kernel
def _average_kbps(params, state):
    """dash.js's bias-corrected EWMA throughput, kbit/s; NaN before the first sample."""
    if state[S_SAMPLES] == 0.0:
        return np.nan
    weight = state[S_WEIGHT]
    fast = state[S_FAST_KBPS] / (1.0 - 0.5 ** (weight / params[P_FAST_HALF_LIFE]))
    slow = state[S_SLOW_KBPS] / (1.0 - 0.5 ** (weight / params[P_SLOW_HALF_LIFE]))
    return min(fast, slow)


@kernel
def _bola_min_level_s(state, bitrates_bps, rung):
    """BolaRule's ``_minBufferLevelForRepresentation``: the level where ``rung`` beats every lower rung."""
    vp_s = state[S_VP_S]
    gp = state[S_GP]
    utility_q = state[S_UTILITY + rung]
    bitrate_q = bitrates_bps[rung]
    level_s = 0.0
    for lower in range(rung - 1, -1, -1):
        utility_i = state[S_UTILITY + lower]
        if utility_i < utility_q:
            bitrate_i = bitrates_bps[lower]
            level = vp_s * (gp + (bitrate_q * utility_i - bitrate_i * utility_q) / (bitrate_q - bitrate_i))
            level_s = max(level_s, level)
    return level_s


@kernel
def _bola_max_level_s(state, rung):
    """BolaRule's ``_maxBufferLevelForRepresentation``: ``Vp * (u + gp)``."""
    return state[S_VP_S] * (state[S_UTILITY + rung] + state[S_GP])


@kernel
def _update_mode(params, state, buffer_s):
    """DYNAMIC: BOLA from ``buffer_time_default_s`` up, the throughput rule below half of it."""
    if params[P_BOLA] == 0.0 or params[P_THROUGHPUT] == 0.0:
        return
    limit_s = params[P_BUFFER_TIME_DEFAULT_S]
    if state[S_USE_BOLA] != 0.0:
        if buffer_s < DYNAMIC_SWITCH_OFF_SHARE * limit_s:
            state[S_USE_BOLA] = 0.0
    elif buffer_s >= limit_s:
        state[S_USE_BOLA] = 1.0


@kernel
def _buffer_low_point(params, state, level_s):
    """The lowest level a download reached: DYNAMIC's check and BolaRule's BUFFER_EMPTY reset."""
    _update_mode(params, state, level_s)
    if level_s < params[P_STALL_THRESHOLD_S] and state[S_BOLA] == BOLA_STEADY:
        state[S_PLACEHOLDER_S] = 0.0


@kernel
def _history_push(state, old_rung, new_rung):
    slot = int(state[S_HISTORY_COUNT]) % SWITCH_HISTORY_DEPTH
    state[S_HISTORY_OLD + slot] = old_rung
    state[S_HISTORY_NEW + slot] = new_rung
    state[S_HISTORY_COUNT] += 1.0


@kernel
def _switch_history_cap(params, state, rungs):
    """SwitchHistoryRule: the capping rung, or -1 for no opinion."""
    held = min(int(state[S_HISTORY_COUNT]), SWITCH_HISTORY_DEPTH)
    drops = 0.0
    no_drops = 0.0
    for rung in range(rungs):
        rung_drops = 0.0
        seen = False
        for slot in range(held):
            if int(state[S_HISTORY_OLD + slot]) == rung:
                seen = True
                if state[S_HISTORY_NEW + slot] < state[S_HISTORY_OLD + slot]:
                    rung_drops += 1.0
                else:
                    no_drops += 1.0
        if not seen:
            continue
        drops += rung_drops
        # drops / no_drops as JavaScript divides: x / 0 is Infinity (x > 0) or NaN (x == 0).
        over = drops > 0.0 if no_drops == 0.0 else drops / no_drops > params[P_SWITCH_THRESHOLD]
        if drops + no_drops >= params[P_SWITCH_SAMPLES] and over:
            if rung > 0 and rung_drops > 0.0:
                return rung - 1
            return rung
    return kernels.NO_RUNG


@kernel
def dashjs_reset(params, state, bitrates_bps, segment_duration_s):
    """Fill the ``dashjs`` state array at the start of a session."""
    state[:] = 0.0
    rungs = bitrates_bps.shape[0]
    state[S_CURRENT] = _rung_for_kbps(bitrates_bps, params[P_INITIAL_BITRATE_BPS] / 1000.0)
    state[S_ABANDONED_SEGMENT] = -1.0
    if params[P_BOLA] != 0.0 and params[P_THROUGHPUT] == 0.0:
        state[S_USE_BOLA] = 1.0
    log_first = np.log(bitrates_bps[0])
    for rung in range(rungs):
        state[S_UTILITY + rung] = np.log(bitrates_bps[rung]) - log_first + 1.0
    if rungs > 1:
        buffer_time_s = max(params[P_BUFFER_TIME_DEFAULT_S],
                            BOLA_MINIMUM_BUFFER_S + BOLA_MINIMUM_BUFFER_PER_LEVEL_S * rungs)
        gp = (state[S_UTILITY + rungs - 1] - 1.0) / (buffer_time_s / BOLA_MINIMUM_BUFFER_S - 1.0)
        state[S_GP] = gp
        state[S_VP_S] = BOLA_MINIMUM_BUFFER_S / gp


@kernel
def _bola_choose(params, state, buffer_s, segment_duration_s, safe_kbps, bitrates_bps):
    """BolaRule: ``(rung or -1 for no opinion, delay_s)``."""
    rungs = bitrates_bps.shape[0]
    if state[S_BOLA] == BOLA_ABSENT:
        state[S_BOLA] = BOLA_STARTUP
        state[S_PLACEHOLDER_S] = 0.0
        state[S_BOLA_SAW_SEGMENT] = 0.0
    if state[S_BOLA] == BOLA_STARTUP:
        if np.isnan(safe_kbps):
            return kernels.NO_RUNG, 0.0
        rung = _rung_for_kbps(bitrates_bps, safe_kbps)
        state[S_PLACEHOLDER_S] = max(0.0, _bola_min_level_s(state, bitrates_bps, rung) - buffer_s)
        if state[S_BOLA_SAW_SEGMENT] != 0.0 and buffer_s >= segment_duration_s:
            state[S_BOLA] = BOLA_STEADY
        return rung, 0.0
    # STEADY: time that passed without a download must not lower the effective buffer.
    state[S_PLACEHOLDER_S] += max(0.0, state[S_GAP_S])
    state[S_GAP_S] = 0.0
    placeholder_s = state[S_PLACEHOLDER_S]
    level_s = buffer_s + placeholder_s
    vp_s = state[S_VP_S]
    gp = state[S_GP]
    offset = params[P_BOLA_SCORE_OFFSET]
    rung = 0
    best = np.nan
    for candidate in range(rungs):
        score = (vp_s * (state[S_UTILITY + candidate] - offset + gp) - level_s) / bitrates_bps[candidate]
        if np.isnan(best) or score >= best:
            best = score
            rung = candidate
    # BOLA-O: never step up past both the last rung and the rung the throughput sustains.
    current = int(state[S_CURRENT])
    throughput_rung = _rung_for_kbps(bitrates_bps, safe_kbps)
    if rung > current and rung > throughput_rung:
        rung = throughput_rung if throughput_rung > current else current
    delay_s = max(0.0, level_s - _bola_max_level_s(state, rung))
    if delay_s <= placeholder_s:
        state[S_PLACEHOLDER_S] = placeholder_s - delay_s
        delay_s = 0.0
    else:
        delay_s -= placeholder_s
        state[S_PLACEHOLDER_S] = 0.0
        if rung == rungs - 1:
            delay_s = 0.0  # at the top rung the scheduler decides how full the buffer gets
    return rung, delay_s


@kernel
def dashjs_choose(params, state, obs, bitrates_bps, size_bits):
    """Return ``(rung, pause_s)`` for the next segment: the minimum over the active rules."""
    rungs = bitrates_bps.shape[0]
    if rungs == 1:
        return 0, 0.0
    buffer_s = obs[kernels.OBS_BUFFER_S]
    segment_duration_s = obs[kernels.OBS_SEGMENT_DURATION_S]
    _update_mode(params, state, buffer_s)
    current = int(state[S_CURRENT])
    average_kbps = _average_kbps(params, state)
    safe_kbps = average_kbps * params[P_SAFETY]
    loaded = buffer_s >= params[P_STALL_THRESHOLD_S]
    abandoning = state[S_CLOCK_S] < state[S_ABANDON_UNTIL_S]
    choice = rungs  # above every rung: no opinion yet
    pause_s = 0.0
    if state[S_USE_BOLA] != 0.0:
        if params[P_BOLA] != 0.0:
            rung, pause_s = _bola_choose(params, state, buffer_s, segment_duration_s, safe_kbps,
                                         bitrates_bps)
            if rung != kernels.NO_RUNG:
                choice = rung
    elif params[P_THROUGHPUT] != 0.0 and not np.isnan(safe_kbps) and loaded and not abandoning:
        choice = _rung_for_kbps(bitrates_bps, safe_kbps)
    if params[P_IBR] != 0.0 and state[S_APPENDED] >= params[P_IBR_IGNORE]:
        if not loaded:
            choice = 0
        elif not np.isnan(average_kbps):
            bitrate_kbps = average_kbps * params[P_IBR_SAFETY] * buffer_s / segment_duration_s
            if bitrate_kbps > 0.0:
                choice = min(choice, _rung_for_kbps(bitrates_bps, bitrate_kbps))
    if params[P_SWITCH_HISTORY] != 0.0:
        cap = _switch_history_cap(params, state, rungs)
        if cap != kernels.NO_RUNG:
            choice = min(choice, cap)
    if choice == rungs:
        choice = current  # no rule has an opinion: the rung stays
    else:
        _history_push(state, current, choice)
        if abandoning and choice > current:
            choice = current
    state[S_CURRENT] = choice
    state[S_CLOCK_S] += pause_s
    return choice, pause_s


@kernel
def dashjs_event(params, state, obs, event, bitrates_bps):
    """Tell the rules about a full-buffer wait, a completed or an abandoned download."""
    if event == kernels.EVENT_WAIT:
        state[S_CLOCK_S] += obs[kernels.OBS_WAIT_S]
        state[S_GAP_S] += obs[kernels.OBS_WAIT_S]
        return
    elapsed_s = obs[kernels.OBS_ELAPSED_S]
    buffer_s = obs[kernels.OBS_BUFFER_S]
    state[S_CLOCK_S] += elapsed_s
    state[S_GAP_S] = 0.0
    state[S_PROGRESS_COUNT] = 0.0
    state[S_PROGRESS_SUM_KBPS] = 0.0
    bola = state[S_BOLA] != BOLA_ABSENT
    if event == kernels.EVENT_DONE:
        transfer_ms = (elapsed_s - obs[kernels.OBS_TTFB_S]) * 1000.0
        if transfer_ms > 0.0:
            sample_kbps = obs[kernels.OBS_SIZE_BITS] / transfer_ms
            weight = EWMA_WEIGHT_PER_MS * transfer_ms
            alpha = 0.5 ** (weight / params[P_FAST_HALF_LIFE])
            state[S_FAST_KBPS] = alpha * state[S_FAST_KBPS] + (1.0 - alpha) * sample_kbps
            alpha = 0.5 ** (weight / params[P_SLOW_HALF_LIFE])
            state[S_SLOW_KBPS] = alpha * state[S_SLOW_KBPS] + (1.0 - alpha) * sample_kbps
            state[S_WEIGHT] += weight
            state[S_SAMPLES] += 1.0
        state[S_APPENDED] += 1.0
        rung = int(obs[kernels.OBS_RUNG])
        before_append_s = max(0.0, buffer_s - obs[kernels.OBS_SEGMENT_DURATION_S])
        _buffer_low_point(params, state, before_append_s)
        if bola:
            state[S_BOLA_SAW_SEGMENT] = 1.0
            state[S_PLACEHOLDER_S] *= BOLA_PLACEHOLDER_DECAY
            at_request_s = before_append_s + elapsed_s  # dash.js's own estimate
            ceiling_s = max(0.0, _bola_max_level_s(state, rung) - at_request_s)
            state[S_PLACEHOLDER_S] = min(ceiling_s, state[S_PLACEHOLDER_S])
        state[S_CURRENT] = rung
        _update_mode(params, state, buffer_s)
    elif event == kernels.EVENT_ABANDONED:
        target = int(obs[kernels.OBS_ABANDON_TO])
        _buffer_low_point(params, state, buffer_s)
        state[S_ABANDON_UNTIL_S] = state[S_CLOCK_S] + params[P_ABANDON_TIMEOUT_S]
        state[S_HISTORY_COUNT] = 0.0
        _history_push(state, int(obs[kernels.OBS_RUNG]), target)
        state[S_CURRENT] = target
        if bola:
            # Deflate to where BOLA just prefers the new rung to the one below (10 s for rung 0).
            want_s = _bola_min_level_s(state, bitrates_bps, target) if target > 0 else BOLA_MINIMUM_BUFFER_S
            state[S_PLACEHOLDER_S] = min(state[S_PLACEHOLDER_S], max(0.0, want_s - buffer_s))


@kernel
def dashjs_abandon(params, state, obs, bitrates_bps):
    """AbandonRequestsRule, at one progress sample: the rung to abandon to, or -1."""
    if params[P_ABANDON] == 0.0 or bitrates_bps.shape[0] == 1:
        return kernels.NO_RUNG
    if obs[kernels.OBS_BUFFER_S] > params[P_BUFFER_TIME_DEFAULT_S]:
        return kernels.NO_RUNG
    segment = obs[kernels.OBS_SEGMENT]
    if state[S_ABANDONED_SEGMENT] == segment:
        return kernels.NO_RUNG  # once per segment
    loaded_bits = obs[kernels.OBS_DOWNLOADED_BITS]
    size_bits = obs[kernels.OBS_SIZE_BITS]
    since_first_byte_ms = (obs[kernels.OBS_ELAPSED_S] - obs[kernels.OBS_TTFB_S]) * 1000.0
    if loaded_bits > 0.0 and since_first_byte_ms > 0.0:
        state[S_PROGRESS_COUNT] += 1.0
        state[S_PROGRESS_SUM_KBPS] += _js_round(loaded_bits / since_first_byte_ms)
    if (state[S_PROGRESS_COUNT] < params[P_ABANDON_MIN_SAMPLES]
            or since_first_byte_ms <= params[P_ABANDON_MIN_TIME_S] * 1000.0
            or loaded_bits >= size_bits):
        return kernels.NO_RUNG
    measured_kbps = _js_round(state[S_PROGRESS_SUM_KBPS] / state[S_PROGRESS_COUNT])
    estimate_s = np.inf
    if measured_kbps > 0.0:
        estimate_s = _js_round(size_bits / measured_kbps / 1000.0 * 100.0) / 100.0  # toFixed(2)
    current = int(obs[kernels.OBS_RUNG])
    if estimate_s < obs[kernels.OBS_SEGMENT_DURATION_S] * params[P_ABANDON_MULTIPLIER] or current == 0:
        return kernels.NO_RUNG
    target = _rung_for_kbps(bitrates_bps, measured_kbps)
    other_bits = size_bits * bitrates_bps[target] / bitrates_bps[current]
    if size_bits - loaded_bits > other_bits:
        state[S_ABANDONED_SEGMENT] = segment
        return target
    return kernels.NO_RUNG


@kernel
def dashjs_can_abandon(params):
    """Whether the player needs to check for abandonment at all."""
    return params[P_ABANDON] != 0.0


def _refresh_cache() -> None:
    # The kernels read _kernels' OBS_* / EVENT_* constants, which numba freezes into its on-disk
    # cache; flush that cache when _kernels changes.
    from numba.core.registry import CPUDispatcher

    from abrsim import _jit

    _jit.flush_if_dependencies_changed(
        [value for value in globals().values() if isinstance(value, CPUDispatcher)], [kernels])


_refresh_cache()
