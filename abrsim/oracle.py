"""Offline optimal bitrate sequences: the rungs that maximise QoE_lin for one session.

:func:`optimal_session` finds, for a trace, a ladder and a player model, the rung sequence with
the highest QoE_lin (Mao, Netravali, Alizadeh, "Neural Adaptive Video Streaming with Pensieve",
ACM SIGCOMM 2017, Sec. 5.1: ``sum R_i/1e6 - 4.3 * rebuffer_s - sum |R_i - R_{i-1}|/1e6``, as
:mod:`abrsim.qoe` defines it: startup delay is not rebuffering). It plays the role of Pensieve's
offline optimum (``test/dp.cc``), which runs a DP over (chunk, time, buffer, last bitrate) with
0.05 s steps and needed minutes and gigabytes per trace.
:func:`replay_rungs` plays a given rung sequence through the same player model without any
quantisation, so every oracle answer comes with the exact QoE_lin of its sequence.

The download model is the session step's (:mod:`abrsim.engine.step`), rule for rule and with
its own trace functions: request latency (the model's, or the trace's, optionally continued
across samples), on or off the trace clock, transfer at ``goodput_factor`` times the trace's
piecewise-constant bandwidth with the trace looping, full-buffer waits (optionally in
``wait_step_s`` steps), the startup and resume thresholds, and ``segment_limit``. The oracle
never pauses and never abandons (the model's ``abandonment`` is ignored), and the first segment
is the model's ``first_rung`` unless that is -1.

How the search works, and why it is exact up to its quantisation
----------------------------------------------------------------
The search is forward, segment by segment, over *labels*: exact partial sessions, each carrying
its state when the next request is due (wall time ``w``, trace lag, buffer ``B``, playback phase,
last rung, trace cursor), its utility so far ``U = sum R/1e6 - sum |dR|/1e6`` and its stall
``S``. Labels are expanded by every rung with the engine's own arithmetic, so a label's numbers
are those the engine computes for its rung prefix; no time or buffer value is ever rounded.
What keeps the search small is dominance pruning. For two labels at the same segment with the
same last rung, both playing, write ``D = w + B`` (when the buffer would run dry) and
``W = U - 4.3 S + 4.3 D``. Label Q *dominates* P if ``w_Q <= w_P``, ``D_Q <= D_P`` and
``W_Q >= W_P``; P is then dropped. This is safe: give Q P's best continuation. By induction over
the segments, Q requests no later than P (a full-buffer wait ends at ``max(w, D - c)``, with
``c`` the most buffer the cap allows at a request, and ``D`` does not change while waiting),
its download ends no later (a later start never finishes earlier on a piecewise-constant trace
with a fixed latency), and ``D_Q <= D_P`` stays true (a download moves ``D`` to
``max(D, end) + segment``). Every stall raises ``D`` by its length and every download adds one
segment, so Q's future stall exceeds P's by at most ``D_P - D_Q``; with equal future bitrates
and switches, Q's final QoE_lin is at least ``W_Q - W_P >= 0`` above P's.
The same holds across last rungs, at a price: if Q's last rung is ``a`` and P's is ``b``, Q can
play whatever P plays next and pays at most ``|R_a - R_b|/1e6`` more for its first switch
(triangle inequality), so Q dominates P if ``w_Q <= w_P``, ``D_Q <= D_P`` and
``W_Q >= W_P + |R_a - R_b|/1e6``. A second sweep applies this between the groups.
So with zero steps the search returns an optimal sequence, subject to the conditions below.

Quantisation: ``time_step_s`` and ``buffer_step_s`` coarsen the comparison of ``w`` and ``D``
(labels are compared by ``floor(w / time_step_s)`` and ``floor(D / buffer_step_s)``; zero means
one nanosecond, i.e. exact up to rounding noise), and labels that are not playing (before startup
or while stalled, where the argument above does not hold) are merged only when they fall in the
same time and buffer step, keeping the better. The error of a merge along the optimal path:

- a ``buffer_step_s`` merge (D up to one step worse) costs at most ``4.3 * buffer_step_s`` of
  QoE_lin while no full-buffer wait follows (the stall argument above, with the slack carried
  along); a following wait can make the kept label request up to ``buffer_step_s`` later;
- a ``time_step_s`` merge lets a label that requests up to one step later stand in for an
  earlier one. On a trace whose bandwidth stays within a factor ``r`` of itself a download
  started ``d`` later ends at most ``d * r`` later, but that lag carries into the following
  downloads, and a trace that drops to zero within one step can make the loss arbitrarily large,
  as for any time-quantised DP (``dp.cc`` included). Time steps trade accuracy for speed with
  no general bound; check them against a run with zero steps;
- ``wait_step_s > 0`` (Pensieve's 0.5 s sleeps) makes the end of a full-buffer wait jump by up
  to one wait step as ``w`` changes, so once the buffer reaches the cap even zero steps only
  keep the order above up to one wait step, with the same kind of error as a time step (on 100
  random 5-7 segment cases with a small cap and 0.5 s steps, one missed the optimum, by 0.17);
  with Pensieve's 60 s cap this needs a sustained fast network;
- per-sample trace latency can break the order too: without ``latency_scaled`` a later
  request's first byte can arrive earlier, and off the trace clock the lag between wall and
  trace time differs between labels. A constant latency (Pensieve, abrsim) and Sabre's scaled
  latency on the trace clock are safe.

At most one merge per segment affects the optimal path, so with S segments the loss is at most S
times the per-merge bound. The tests compare the search with brute force over every sequence on
small cases, and :attr:`OracleResult.replayed_qoe_lin` is always the exact QoE_lin of the
returned sequence, whatever the steps.

Cost, with zero steps, on the envivio ladder (48 segments, 6 rungs) under the ``pensieve`` model
on the 142 HSDPA 3G traces: 0.4 s per trace on average and 2 s at most, up to 65,000 labels per
segment and 37 MB of label arrays (``python benchmarks/oracle.py --count 142``). Pensieve's
``dp.cc`` took about 270 s and 5.6 GB for one trace. The width grows with the title and with a
slow network: on abrsim's default scenario (the ``hls`` ladder, 100 segments and 9 rungs) the exact
search takes 86 s and 510 MB of label arrays on the ``3g_high`` trace, 216 s and 910 MB on ``3g_low``, 300 s,
1.2 million labels per segment and 1.2 GB on ``broadband_low``. With 0.1 s steps the six traces
take 0-92 s each (under 400 MB of arrays) and those three got the same QoE_lin as the exact
search; 1 s steps take about 1 s on ``3g_high`` and lose 0.4 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from abrsim._jit import kernel
from abrsim.engine import _sabre_ms as sabre_ms
from abrsim.engine import step as engine
from abrsim.engine.step import model_array
from abrsim.errors import InputError
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import PlayerModel
from abrsim.qoe import METRICS, REBUFFER_PENALTY_LIN, metrics_table
from abrsim.trace import Trace

__all__ = ["OracleResult", "Replay", "optimal_session", "replay_rungs"]

#: Resolution used for a zero step: comparisons are exact up to this (floating-point noise).
EXACT_RESOLUTION_S = 1e-9

# Playback phases of a label when its next request is due.
PHASE_WAITING = 0  # playback has not started
PHASE_PLAYING = 1
PHASE_STALLED = 2


@dataclass(frozen=True)
class OracleResult:
    """The best rung sequence the search found, with its value.

    Attributes:
        rungs: the rung of each played segment.
        qoe_lin: QoE_lin of ``rungs`` as the search computed it.
        replayed_qoe_lin: QoE_lin of ``rungs`` replayed exactly by :func:`replay_rungs`.
        time_step_s: the time step used (0: exact comparisons).
        buffer_step_s: the buffer step used (0: exact comparisons).
        labels: labels kept after pruning, per segment (the search's width).
        candidates: labels generated, summed over segments.
        peak_array_bytes: the most memory the search's label arrays held at once (candidates of
            one segment plus the back-pointers of all), bytes; sort temporaries not included.
    """

    rungs: np.ndarray
    qoe_lin: float
    replayed_qoe_lin: float
    time_step_s: float
    buffer_step_s: float
    labels: np.ndarray
    candidates: int
    peak_array_bytes: int


@dataclass(frozen=True)
class Replay:
    """One session replayed with a fixed rung sequence.

    Attributes:
        log: the per-download log, as the engines produce it.
        metrics: every metric of :data:`abrsim.qoe.METRICS`, by name.
    """

    log: SessionLog
    metrics: dict[str, float]

    @property
    def qoe_lin(self) -> float:
        """QoE_lin of the session."""
        return self.metrics["qoe_lin"]


# ----------------------------------------------------------------------------------------------
# One request through the session step's rules (no pause, no abandonment)
# ----------------------------------------------------------------------------------------------


@kernel
def _advance(start_s, bandwidth_bps, latency_s, has_latency, duration_s, bits, segment_duration_s,
             model_params, last_segment, time_s, lag_s, buffer_s, phase, sample, loop_start_s):
    """Wait for room if needed, request and download one segment of ``bits``.

    The session step's rules (:mod:`abrsim.engine.step`), as the fast engine's loop applies
    them, without pause and abandonment. Returns ``(time_s, lag_s, buffer_s, phase, sample,
    loop_start_s, stall_s, wait_s, request_s, first_byte_s, buffer_request_s, started_at_s,
    new_stalls)``; ``started_at_s`` is when playback started during this step, or -1, and
    ``new_stalls`` the stalls that began in it.
    """
    was_started = phase != PHASE_WAITING
    wait_s, time_s, buffer_s, started, startup_s, stall_s, stalled, new = engine.wait_rule(
        time_s, buffer_s, was_started, phase == PHASE_STALLED, -1.0, model_params, segment_duration_s)
    new_stalls = np.int64(new)
    request_s = time_s
    buffer_request_s = buffer_s
    latency, lag_s, sample, loop_start_s = engine.walk_latency(
        start_s, latency_s, has_latency, duration_s, model_params, time_s, lag_s, sample, loop_start_s)
    first_byte_s = time_s + latency
    # (Past the model's time limit the walk stops: the download counts as done then, and the
    # replay marks the session timed out.)
    done_s, _, sample, loop_start_s = engine.walk_transfer(start_s, bandwidth_bps, duration_s, model_params,
                                                           first_byte_s, lag_s, bits, sample, loop_start_s)
    buffer_s, started, stalled, startup_s, extra_s, new = engine.finish_rule(
        time_s, buffer_s, started, stalled, startup_s, done_s, True, last_segment, model_params,
        segment_duration_s)
    new_stalls += new
    phase = PHASE_WAITING if not started else (PHASE_STALLED if stalled else PHASE_PLAYING)
    started_at_s = -1.0 if was_started else (startup_s if started else -1.0)
    return (done_s, lag_s, buffer_s, np.int64(phase), sample, loop_start_s, stall_s + extra_s, wait_s,
            request_s, first_byte_s, buffer_request_s, started_at_s, new_stalls)


@kernel
def _replay(start_s, bandwidth_bps, latency_s, has_latency, duration_s, size_bits, segment_duration_s,
            model_params, rungs, log, session):
    """Play ``rungs`` (one per segment); fill ``log[segment, COL_*]`` and ``session[SES_*]``."""
    segments = rungs.shape[0]
    time_s = 0.0
    lag_s = 0.0
    buffer_s = 0.0
    phase = np.int64(PHASE_WAITING)  # not literals: _advance compiles once
    sample = np.int64(0)
    loop_start_s = 0.0
    startup_s = 0.0
    rebuffer_count = 0
    for index in range(segments):
        bits = size_bits[index, rungs[index]]
        (time_s, lag_s, buffer_s, phase, sample, loop_start_s, stall_s, wait_s, request_s, first_byte_s,
         buffer_request_s, started_at_s, new_stalls) = _advance(
            start_s, bandwidth_bps, latency_s, has_latency, duration_s, bits, segment_duration_s,
            model_params, index == segments - 1, time_s, lag_s, buffer_s, phase, sample, loop_start_s)
        if started_at_s >= 0.0:
            startup_s = started_at_s
        rebuffer_count += new_stalls
        engine.write_log(log, rungs, np.int64(index), np.int64(index), rungs[index], request_s, first_byte_s,
                         time_s, bits, bits, buffer_request_s, buffer_s, stall_s, wait_s, False)
    engine.close_session(startup_s, time_s + buffer_s, rebuffer_count, segments, session, 0, segments,
                         engine.over_time(time_s, model_params))


# ----------------------------------------------------------------------------------------------
# The search
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def _expand(start_s, bandwidth_bps, latency_s, has_latency, duration_s, size_bits, bitrates_bps,
            segment_duration_s, model_params, index, last_segment, actions, time_s, lag_s, buffer_s,
            phase, last, utility, stall_s, sample, loop_start_s):
    """Every label of segment ``index`` extended by every rung in ``actions``.

    Returns the new labels' arrays and, for each, its parent label and its rung.
    """
    labels = time_s.shape[0]
    count = labels * actions.shape[0]
    new_time_s = np.empty(count)
    new_lag_s = np.empty(count)
    new_buffer_s = np.empty(count)
    new_phase = np.empty(count, dtype=np.int64)
    new_utility = np.empty(count)
    new_stall_s = np.empty(count)
    new_sample = np.empty(count, dtype=np.int64)
    new_loop_start_s = np.empty(count)
    parent = np.empty(count, dtype=np.int64)
    rung_of = np.empty(count, dtype=np.int64)
    out = 0
    for label in range(labels):
        for action in range(actions.shape[0]):
            rung = actions[action]
            result = _advance(start_s, bandwidth_bps, latency_s, has_latency, duration_s,
                              size_bits[index, rung], segment_duration_s, model_params, last_segment,
                              time_s[label], lag_s[label], buffer_s[label], phase[label], sample[label],
                              loop_start_s[label])
            new_time_s[out] = result[0]
            new_lag_s[out] = result[1]
            new_buffer_s[out] = result[2]
            new_phase[out] = result[3]
            new_sample[out] = result[4]
            new_loop_start_s[out] = result[5]
            new_stall_s[out] = stall_s[label] + result[6]
            gain = bitrates_bps[rung] / 1e6
            previous = last[label]
            if previous >= 0 and previous != rung:
                gain -= abs(bitrates_bps[rung] - bitrates_bps[previous]) / 1e6
            new_utility[out] = utility[label] + gain
            parent[out] = label
            rung_of[out] = rung
            out += 1
    return (new_time_s, new_lag_s, new_buffer_s, new_phase, new_utility, new_stall_s, new_sample,
            new_loop_start_s, parent, rung_of)


@njit(cache=True)
def _staircase_rank(stair_key, steps, key):
    """How many steps of a staircase have a key <= ``key``; the last of them holds their best value."""
    low = 0
    high = steps
    while low < high:
        middle = (low + high) // 2
        if stair_key[middle] <= key:
            low = middle + 1
        else:
            high = middle
    return low


@njit(cache=True)
def _staircase_insert(stair_key, stair_value, steps, rank, key, value):
    """Add a step that no step dominates (``rank`` from :func:`_staircase_rank`); return the new count.

    The steps from the first key >= ``key`` whose value is <= ``value`` are dropped: it dominates them.
    """
    position = rank
    if position > 0 and stair_key[position - 1] == key:
        position -= 1
    stop = position
    while stop < steps and stair_value[stop] <= value:
        stop += 1
    shift = 1 - (stop - position)
    if shift > 0:
        for i in range(steps - 1, stop - 1, -1):
            stair_key[i + shift] = stair_key[i]
            stair_value[i + shift] = stair_value[i]
    elif shift < 0:
        for i in range(stop, steps):
            stair_key[i + shift] = stair_key[i]
            stair_value[i + shift] = stair_value[i]
    stair_key[position] = key
    stair_value[position] = value
    return steps + shift


@njit(cache=True)
def _dominance_sweep(order, group, time_key, deadline_key, value):
    """Keep the labels that no other label of their group dominates.

    ``order`` lists labels by group, then time key. Within a run of equal (group, time key) the
    labels are taken by deadline key, then value descending; a label is dropped if one taken
    before it has a deadline key at most its own and a value at least its own. The labels kept
    so far form a staircase (deadline keys and values both increasing), so the check is a binary
    search and an insertion removes the steps the new label dominates.
    """
    count = order.shape[0]
    keep = np.zeros(count, dtype=np.bool_)
    stair_key = np.empty(count)
    stair_value = np.empty(count)
    steps = 0
    start = 0
    while start < count:
        first = order[start]
        if start == 0 or group[first] != group[order[start - 1]]:
            steps = 0
        end = start + 1
        while end < count and group[order[end]] == group[first] and time_key[order[end]] == time_key[first]:
            end += 1
        block = order[start:end]
        if end - start > 1:
            by_value = np.argsort(-value[block])
            block = block[by_value[np.argsort(deadline_key[block[by_value]], kind="mergesort")]]
        for label in block:
            key = deadline_key[label]
            rank = _staircase_rank(stair_key, steps, key)
            if rank > 0 and stair_value[rank - 1] >= value[label]:
                continue
            keep[label] = True
            steps = _staircase_insert(stair_key, stair_value, steps, rank, key, value[label])
        start = end
    return keep


@njit(cache=True)
def _cross_rung_sweep(order, group, time_key, deadline_key, value, switch_cost, groups):
    """Drop labels that a label with another last rung dominates, switch cost included.

    ``order`` lists the labels to consider (indices into the other arrays) by time key, then
    deadline key, then value descending; the others are dropped. Label Q with last rung ``a``
    dominates P with last rung ``b`` if its time and deadline keys are at most P's and its value
    is at least P's plus ``switch_cost[a, b]``: whatever P plays next, Q can play the same and
    pay at most that much more for its first switch (triangle inequality). Each group's kept
    labels form a staircase as in :func:`_dominance_sweep` (its own group costs nothing).
    """
    count = order.shape[0]
    keep = np.zeros(group.shape[0], dtype=np.bool_)
    stair_key = np.empty((groups, count))
    stair_value = np.empty((groups, count))
    steps = np.zeros(groups, dtype=np.int64)
    for label in order:
        mine = group[label]
        key = deadline_key[label]
        dominated = False
        for other in range(groups):
            rank = _staircase_rank(stair_key[other], steps[other], key)
            if rank > 0 and stair_value[other, rank - 1] >= value[label] + switch_cost[other, mine]:
                dominated = True
                break
        if not dominated:
            keep[label] = True
            steps[mine] = _staircase_insert(stair_key[mine], stair_value[mine], steps[mine],
                                            _staircase_rank(stair_key[mine], steps[mine], key), key,
                                            value[label])
    return keep


def _prune(time_s: np.ndarray, buffer_s: np.ndarray, phase: np.ndarray, rung_of: np.ndarray,
           utility: np.ndarray, stall_s: np.ndarray, rungs: int, time_resolution_s: float,
           buffer_resolution_s: float, switch_cost: np.ndarray) -> np.ndarray:
    """Indices of the labels that survive dominance (playing) or cell merging (the others)."""
    quality = utility - REBUFFER_PENALTY_LIN * stall_s
    time_key = np.floor(time_s / time_resolution_s)
    kept = []
    playing = np.flatnonzero(phase == PHASE_PLAYING)
    if playing.size:
        deadline_s = time_s[playing] + buffer_s[playing]
        group = rung_of[playing]
        order = np.argsort(time_key[playing])
        order = order[np.argsort(group[order], kind="stable")]
        deadline_key = np.floor(deadline_s / buffer_resolution_s)
        value = quality[playing] + REBUFFER_PENALTY_LIN * deadline_s
        keep = _dominance_sweep(order, group, time_key[playing], deadline_key, value)
        survivors = np.flatnonzero(keep)
        by_key = np.lexsort((-value[survivors], deadline_key[survivors], time_key[playing][survivors]))
        order = survivors[by_key]
        cross = _cross_rung_sweep(order, group, time_key[playing], deadline_key, value, switch_cost, rungs)
        kept.append(playing[cross])
    others = np.flatnonzero(phase != PHASE_PLAYING)
    if others.size:
        # Cells of (time step, buffer step) per phase and last rung; the best quality in each.
        group = rung_of[others] + rungs * phase[others]
        buffer_key = np.floor(buffer_s[others] / buffer_resolution_s)
        order = np.lexsort((-quality[others], buffer_key, time_key[others], group))
        cell = np.stack([group[order], time_key[others][order], buffer_key[order]])
        first = np.ones(order.size, dtype=bool)
        first[1:] = np.any(cell[:, 1:] != cell[:, :-1], axis=0)
        kept.append(others[order[first]])
    return np.sort(np.concatenate(kept))


def optimal_session(
    trace: Trace,
    ladder: Ladder,
    model: PlayerModel | None = None,
    *,
    time_step_s: float = 0.0,
    buffer_step_s: float = 0.0,
    on_segment: Callable[[int], None] | None = None,
) -> OracleResult:
    """The rung sequence with the highest QoE_lin for one session (see the module docstring).

    Args:
        trace: the network trace.
        ladder: the title's encoding ladder.
        model: the player model (default: abrsim's own with the throughput network, the one the
            search plans with); abandonment is ignored.
        time_step_s: labels are compared by request time in steps of this many seconds
            (0: exact). Larger steps prune more, with the error bounds of the module docstring.
        buffer_step_s: labels are compared by playback deadline (time + buffer) in steps of
            this many seconds (0: exact).
        on_segment: called with the number of segments searched so far after each one (for
            progress displays; the search's cost per segment grows with its width).

    Raises:
        InputError: if a step is negative or not finite, the model does not fit the ladder, or
            its network is not ``throughput``.
    """
    model = PlayerModel(network="throughput") if model is None else model
    _require_throughput(model)
    for name, step in (("time_step_s", time_step_s), ("buffer_step_s", buffer_step_s)):
        if not (math.isfinite(step) and step >= 0.0):
            raise InputError(f"got {step!r}, expected a finite number >= 0", field=name)
    model_params = model_array(model, ladder)
    segments = model.segments_played(ladder)
    rungs = ladder.rung_count
    inputs = _trace_inputs(trace)
    size_bits = np.ascontiguousarray(ladder.size_bits)
    bitrates_bps = np.ascontiguousarray(ladder.bitrates_bps)
    time_resolution_s = max(time_step_s, EXACT_RESOLUTION_S)
    buffer_resolution_s = max(buffer_step_s, EXACT_RESOLUTION_S)

    zero = np.zeros(1)
    state = (zero.copy(), zero.copy(), zero.copy(), np.full(1, PHASE_WAITING, dtype=np.int64),
             np.full(1, -1, dtype=np.int64), zero.copy(), zero.copy(), np.zeros(1, dtype=np.int64),
             zero.copy())
    parents: list[np.ndarray] = []
    chosen: list[np.ndarray] = []
    widths = np.zeros(segments, dtype=np.int64)
    candidates = 0
    history_bytes = 0
    peak_bytes = 0
    all_rungs = np.arange(rungs, dtype=np.int64)
    # QoE_lin's cost of switching between two rungs, Mbit/s.
    switch_cost = np.abs(bitrates_bps[:, None] - bitrates_bps[None, :]) / 1e6
    for index in range(segments):
        time_s, lag_s, buffer_s, phase, last, utility, stall_s, sample, loop_start_s = state
        actions = all_rungs
        if index == 0 and model.first_rung >= 0:
            actions = np.array([model.first_rung], dtype=np.int64)
        expanded = _expand(*inputs, size_bits, bitrates_bps, ladder.segment_duration_s, model_params,
                           index, index == segments - 1, actions, time_s, lag_s, buffer_s, phase, last,
                           utility, stall_s, sample, loop_start_s)
        time_s, lag_s, buffer_s, phase, utility, stall_s, sample, loop_start_s, parent, rung_of = expanded
        candidates += time_s.size
        peak_bytes = max(peak_bytes, history_bytes + sum(array.nbytes for array in expanded))
        if index < segments - 1:
            keep = _prune(time_s, buffer_s, phase, rung_of, utility, stall_s, rungs,
                          time_resolution_s, buffer_resolution_s, switch_cost)
        else:
            keep = np.array([int(np.argmax(utility - REBUFFER_PENALTY_LIN * stall_s))])
        state = (time_s[keep], lag_s[keep], buffer_s[keep], phase[keep], rung_of[keep], utility[keep],
                 stall_s[keep], sample[keep], loop_start_s[keep])
        parents.append(parent[keep].astype(np.int32))
        chosen.append(rung_of[keep].astype(np.int16))
        history_bytes += parents[-1].nbytes + chosen[-1].nbytes
        widths[index] = keep.size
        if on_segment is not None:
            on_segment(index + 1)
    best_value = float(state[5][0] - REBUFFER_PENALTY_LIN * state[6][0])
    sequence = np.empty(segments, dtype=np.int64)
    label = 0
    for index in range(segments - 1, -1, -1):
        sequence[index] = chosen[index][label]
        label = int(parents[index][label])
    replayed = replay_rungs(trace, ladder, model, sequence)
    return OracleResult(sequence, best_value, replayed.qoe_lin, float(time_step_s), float(buffer_step_s),
                        widths, candidates, peak_bytes)


def _require_throughput(model: PlayerModel) -> None:
    """The search's states hold no connection window: it plans with the throughput network only."""
    if model.network != "throughput":
        raise InputError(f"got {model.network!r}; the offline optimum plans with the throughput network "
                         "(its search states hold no connection window)", field="network")


def _trace_inputs(trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, float]:
    latency_s = trace.latency_s if trace.latency_s is not None else np.zeros(trace.start_s.size)
    return (np.ascontiguousarray(trace.start_s), np.ascontiguousarray(trace.bandwidth_bps),
            np.ascontiguousarray(latency_s), trace.latency_s is not None, float(trace.duration_s))


def replay_rungs(trace: Trace, ladder: Ladder, model: PlayerModel | None, rungs: Sequence[int] | np.ndarray,
                 ) -> Replay:
    """Play one session with a fixed rung per segment, exactly (no quantisation).

    The player model is applied as by the fast engine, without pauses and abandonment.

    Args:
        trace: the network trace.
        ladder: the title's encoding ladder.
        model: the player model (default: abrsim's own with the throughput network).
        rungs: one rung per played segment (``model.segments_played(ladder)`` of them).

    Raises:
        InputError: if the sequence has the wrong length or a rung is out of range, or the model
            does not fit the ladder.
    """
    model = PlayerModel(network="throughput") if model is None else model
    _require_throughput(model)
    model_params = model_array(model, ladder)
    segments = model.segments_played(ladder)
    sequence = np.asarray(rungs, dtype=np.int64)
    if sequence.shape != (segments,):
        raise InputError(f"got {sequence.size} rungs, expected one per played segment ({segments})",
                         field="rungs")
    if sequence.size and (sequence.min() < 0 or sequence.max() >= ladder.rung_count):
        raise InputError(f"got rungs from {sequence.min()} to {sequence.max()}, expected 0 to "
                         f"{ladder.rung_count - 1}", field="rungs")
    log = np.zeros((segments, engine.LOG_COLUMNS))
    session = np.zeros(engine.SESSION_COLUMNS)
    inputs = _trace_inputs(trace)
    _replay(*inputs, np.ascontiguousarray(ladder.size_bits), ladder.segment_duration_s,
            model_params, sequence, log, session)
    if model.compat_sabre_residue_stalls:
        session[engine.SES_REBUFFER_COUNT] += sabre_ms.replay(
            *inputs, ladder.size_bits, ladder.segment_duration_s, model.max_buffer_s, model.request_latency_s,
            model.goodput_factor, False, model.abandon_check_bits, model.abandon_check_s, 0.0,
            log[:, engine.COL_SEGMENT], sequence,
            log[:, engine.COL_DOWNLOADED_BITS], log[:, engine.COL_BUFFER_AFTER_S], log[:, engine.COL_WAIT_S],
            log[:, engine.COL_ABANDONED], 0, segments)[0]
    values = metrics_table(
        sequence, log[:, engine.COL_STALL_S], log[:, engine.COL_SIZE_BITS],
        log[:, engine.COL_DOWNLOADED_BITS], log[:, engine.COL_ABANDONED], np.zeros(1),
        np.array([segments]), np.array([session[engine.SES_STARTUP_S]]),
        np.array([session[engine.SES_REBUFFER_COUNT]]), ladder.bitrates_bps, ladder.quality,
        ladder.segment_duration_s, np.array([session[engine.SES_TIMED_OUT]]))[0]
    session_log = engine.session_log(log, sequence.copy(), trace.name, "oracle",
                                     session[engine.SES_STARTUP_S], session[engine.SES_END_S],
                                     session[engine.SES_REBUFFER_COUNT])
    return Replay(session_log, {name: float(v) for name, v in zip(METRICS, values, strict=True)})


def _refresh_cache() -> None:
    # The kernels call the engine's trace and playback functions: flush numba's on-disk cache of
    # this module when the engine changes (numba only watches this file).
    from numba.core.registry import CPUDispatcher

    from abrsim import _jit

    _jit.flush_if_dependencies_changed(
        [value for value in globals().values() if isinstance(value, CPUDispatcher)], [engine])


_refresh_cache()
