"""The fast engine: whole sessions in compiled code, many per call.

The public entry points validate, pack inputs into arrays once, and call the
session loop (:mod:`abrsim.engine._session`) compiled for the policy, which runs
every session of a batch. A Python policy runs the same loop, which returns to
Python only for its decisions (and the hooks it has).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from abrsim import limits
from abrsim.abr import KernelPolicy, PythonPolicy, estimator_arrays, make
from abrsim.abr._kernels import EST_STATE_SIZE, EVENT_ABANDONED, EVENT_DONE, EVENT_WAIT, OBS_SIZE
from abrsim.engine import _session as kernel
from abrsim.engine._sabre_ms import add_residue_stalls
from abrsim.engine.step import model_array, session_log
from abrsim.errors import InputError
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import PlayerModel
from abrsim.qoe import metrics_table
from abrsim.trace import Trace

__all__ = [
    "BatchRun", "PackedTraces", "checks_abandonment", "compiled_loop", "compiled_loops", "model_array",
    "pack_traces", "run_batch", "run_session",
]


#: The compiled loop runs a batch in slices of sessions of about this many seconds each, so that
#: Ctrl-C (seen by Python between slices) stops any run within a second; the first slice holds
#: about FIRST_SLICE_SEGMENTS segments, later ones are sized from the time the last one took.
SLICE_S = 0.2
FIRST_SLICE_SEGMENTS = 20_000

#: A batch whose sessions abandon more often than this per segment stops with an error (a policy
#: that abandons every download it starts would otherwise never end).
MAX_ATTEMPTS_PER_SEGMENT = 64


@dataclass(frozen=True, eq=False)
class PackedTraces:
    """Traces concatenated into flat arrays, packed once and reused across runs."""

    names: tuple[str, ...]
    offsets: np.ndarray
    start_s: np.ndarray
    bandwidth_bps: np.ndarray
    latency_s: np.ndarray
    has_latency: np.ndarray
    duration_s: np.ndarray
    capacity: np.ndarray  # per trace: True if its numbers are link capacity (Trace.measures)

    def __len__(self) -> int:
        return len(self.names)

    def bandwidth_for(self, model: PlayerModel) -> np.ndarray:
        """The bandwidths the model's walk reads (see :attr:`PlayerModel.goodput_to_capacity`)."""
        factor = model.goodput_to_capacity
        if factor == 1.0 or self.capacity.all():
            return self.bandwidth_bps
        scale = np.where(self.capacity, 1.0, factor)
        return self.bandwidth_bps * np.repeat(scale, np.diff(self.offsets))


def pack_traces(traces: Sequence[Trace]) -> PackedTraces:
    """Concatenate traces for :func:`run_batch`.

    Raises:
        InputError: if ``traces`` is empty.
    """
    if not traces:
        raise InputError("no traces given", field="traces")
    lengths = np.array([t.start_s.size for t in traces], dtype=np.int64)
    offsets = np.zeros(len(traces) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    latency = [t.latency_s if t.latency_s is not None else np.zeros(t.start_s.size) for t in traces]
    return PackedTraces(
        names=tuple(t.name for t in traces),
        offsets=offsets,
        start_s=np.concatenate([t.start_s for t in traces]),
        bandwidth_bps=np.concatenate([t.bandwidth_bps for t in traces]),
        latency_s=np.concatenate(latency),
        has_latency=np.array([t.latency_s is not None for t in traces], dtype=np.bool_),
        duration_s=np.array([t.duration_s for t in traces], dtype=np.float64),
        capacity=np.array([t.measures == "capacity" for t in traces], dtype=np.bool_),
    )


@dataclass(frozen=True, eq=False)
class BatchRun:
    """Sessions of one policy on one ladder, one per trace: logs and metrics as arrays.

    ``log[row, COL_*]`` and ``rungs[row]`` hold one row per download attempt, sessions one after
    the other; ``session[index, SES_*]`` holds each session's scalars, among them where its rows
    start (``SES_FIRST_RECORD``) and how many there are (``SES_RECORDS``).
    """

    traces: tuple[str, ...]
    ladder: Ladder
    policy: KernelPolicy | PythonPolicy
    model: PlayerModel
    seed: int
    log: np.ndarray
    rungs: np.ndarray
    session: np.ndarray

    def __len__(self) -> int:
        return len(self.traces)

    def session_log(self, index: int) -> SessionLog:
        """The per-download log of session ``index``."""
        first = int(self.session[index, kernel.SES_FIRST_RECORD])
        rows = slice(first, first + int(self.session[index, kernel.SES_RECORDS]))
        return session_log(self.log[rows], self.rungs[rows], self.traces[index], self.policy.name,
                           self.session[index, kernel.SES_STARTUP_S], self.session[index, kernel.SES_END_S],
                           self.session[index, kernel.SES_REBUFFER_COUNT])

    def metrics(self) -> np.ndarray:
        """QoE metrics, one row per session, columns as :data:`abrsim.qoe.METRICS`."""
        return metrics_table(
            self.rungs,
            self.log[:, kernel.COL_STALL_S],
            self.log[:, kernel.COL_SIZE_BITS],
            self.log[:, kernel.COL_DOWNLOADED_BITS],
            self.log[:, kernel.COL_ABANDONED],
            self.session[:, kernel.SES_FIRST_RECORD],
            self.session[:, kernel.SES_RECORDS],
            self.session[:, kernel.SES_STARTUP_S],
            self.session[:, kernel.SES_REBUFFER_COUNT],
            self.ladder.bitrates_bps,
            self.ladder.quality,
            self.ladder.segment_duration_s,
            self.session[:, kernel.SES_TIMED_OUT],
        )


def unresolvable_download(ladder: Ladder, trace_names: Sequence[str]) -> InputError:
    """The error for a download shorter than the session clock can resolve (its time step rounds to 0).

    Input limits keep ordinary inputs far from this (bandwidth at most 1 Tbit/s, segments of at
    least one bit); what is left is an extreme combination of a tiny segment, a fast link and a
    late clock.
    """
    shown = ", ".join(repr(name) for name in list(dict.fromkeys(trace_names))[:3])
    more = ", ..." if len(set(trace_names)) > 3 else ""
    return InputError(
        f"a download of ladder {ladder.name!r} over trace {shown}{more} took less time than the session "
        f"clock can resolve (smallest segment {float(ladder.size_bits.min()):.3g} bits); expected larger "
        "segments or slower links",
        field="ladder",
    )


def run_batch(
    traces: Sequence[Trace] | PackedTraces,
    ladder: Ladder,
    policy: KernelPolicy | PythonPolicy | str,
    model: PlayerModel | None = None,
    seed: int = 0,
) -> BatchRun:
    """Run one session of ``policy`` per trace, in compiled calls over slices of the sessions
    (short enough for Ctrl-C to stop a run within about a second).

    Args:
        traces: the traces, or traces packed once with :func:`pack_traces`.
        ladder: the title's encoding ladder.
        policy: a policy from :func:`abrsim.abr.make` or :func:`abrsim.abr.load_policy`, or a
            registered name.
        model: the player model (default: abrsim's own).
        seed: recorded with the results; the built-in algorithms are deterministic. A Python
            policy's ``reset`` gets ``numpy.random.default_rng([seed, session index])``.

    Raises:
        InputError: if a parameter does not fit the ladder or the model.
        PolicyError: if a Python policy fails or gives an invalid answer (no results then).
    """
    packed = traces if isinstance(traces, PackedTraces) else pack_traces(traces)
    model = PlayerModel() if model is None else model
    policy = (make(policy) if isinstance(policy, str) else policy).resolved(model)
    policy.check(ladder)
    est_params, _ = estimator_arrays(model, ladder.segment_duration_s)
    sessions = len(packed)
    params = model_array(model, ladder)
    abr_params = policy.param_array(ladder)
    checking = checks_abandonment(policy, ladder, model)
    segments = model.segments_played(ladder)
    limits.check("sessions", sessions, "sessions in the batch", field="traces")
    limits.check("log_rows", sessions * segments,
                 f"downloads of {sessions:,} sessions x {segments:,} segments")
    # Room for every segment plus some abandoned attempts; grown if that is not enough.
    rows = sessions * segments * (2 if model.abandonment else 1) + 16
    log = np.empty((rows, kernel.LOG_COLUMNS), dtype=np.float64)
    rungs = np.empty(rows, dtype=np.int64)
    session = np.empty((sessions, kernel.SESSION_COLUMNS), dtype=np.float64)
    try:
        if isinstance(policy, PythonPolicy):
            while True:
                used = _run_python_batch(packed, ladder, policy, model, params, est_params, log, rungs,
                                         session, int(seed))
                if used >= 0:
                    break
                log, rungs = _grow(log, rungs, 0, sessions * segments, policy.name)
        else:
            used, log, rungs = _run_compiled_batch(packed, packed.bandwidth_for(model), ladder, segments,
                                                   policy, checking, params, abr_params, est_params, log,
                                                   rungs, session)
    except ZeroDivisionError:
        raise unresolvable_download(ladder, packed.names) from None
    if model.compat_sabre_residue_stalls:
        add_residue_stalls(
            packed.offsets, packed.start_s, packed.bandwidth_bps, packed.latency_s, packed.has_latency,
            packed.duration_s, ladder.size_bits, ladder.segment_duration_s, model.max_buffer_s,
            model.request_latency_s, model.goodput_factor, checking, model.abandon_check_bits,
            model.abandon_check_s, log[:used], rungs[:used], session)
    return BatchRun(packed.names, ladder, policy, model, int(seed), log[:used], rungs[:used], session)


def checks_abandonment(policy: KernelPolicy | PythonPolicy, ladder: Ladder, model: PlayerModel) -> bool:
    """Whether downloads go in abandonment steps: only when the model checks and the policy can abandon."""
    return model.abandonment and policy.can_abandon(ladder)


def compiled_loops(policy: KernelPolicy, ladder: Ladder, model: PlayerModel) -> dict[str, Any]:
    """The compiled session loops of ``policy`` that :func:`run_batch` runs for ``ladder`` and
    ``model`` (not compiled by this call): ``policy.spec.loops``' entry for them."""
    policy = policy.resolved(model)
    return policy.spec.loops(checks_abandonment(policy, ladder, model))


def compiled_loop(policy: KernelPolicy, ladder: Ladder, model: PlayerModel) -> Any:
    """The compiled session loop :func:`run_batch` runs ``policy`` with (not compiled by this call)."""
    return compiled_loops(policy, ladder, model)["run_batch"]


def _run_compiled_batch(packed: PackedTraces, bandwidth_bps: np.ndarray, ladder: Ladder, segments: int,
                        policy: KernelPolicy, checking: bool, params: np.ndarray, abr_params: np.ndarray,
                        est_params: np.ndarray, log: np.ndarray, rungs: np.ndarray,
                        session: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The policy's compiled loop over the batch (``bandwidth_bps``: the traces' bandwidths as the
    model reads them; ``segments``: played per session), in slices of sessions of about SLICE_S
    each (Python sees Ctrl-C between them). Returns the log rows used, and the log (grown if it
    had to be)."""
    loop = policy.spec.loops(checking)["run_batch"]
    abr_state = policy.state_array(ladder)
    est_state = np.zeros(EST_STATE_SIZE)
    obs = np.zeros(OBS_SIZE)
    sessions = len(packed)
    used = 0
    first = 0
    count = max(1, FIRST_SLICE_SEGMENTS // max(1, segments))
    while first < sessions:
        last = min(sessions, first + count)
        started = time.perf_counter()
        rows_used = loop(
            packed.offsets[first:last + 1], packed.start_s, bandwidth_bps, packed.latency_s,
            packed.has_latency[first:last], packed.duration_s[first:last], ladder.size_bits,
            ladder.bitrates_bps, ladder.segment_duration_s, params, abr_params, abr_state, est_state, obs,
            est_params,
            log[used:], rungs[used:], session[first:last],
        )
        if rows_used == kernel.BAD_RUNG:
            raise InputError(
                f"chose a rung outside 0 to {ladder.rung_count - 1} (ladder {ladder.name!r}); a "
                "compiled policy's choose and abandon must answer with rungs of the ladder",
                field=f"{policy.name}.choose")
        if rows_used < 0:  # the log is full: grow it and run the slice again
            log, rungs = _grow(log, rungs, used, (last - first) * segments, policy.name)
            continue
        session[first:last, kernel.SES_FIRST_RECORD] += used
        used += rows_used
        elapsed_s = time.perf_counter() - started
        if first > 0 or elapsed_s < SLICE_S:  # (the first slice may include compiling)
            count = max(1, min(count * 4, int(count * SLICE_S / max(elapsed_s, 1e-6))))
        first = last
    return used, log, rungs


def _grow(log: np.ndarray, rungs: np.ndarray, used: int, wanted: int,
          policy: str) -> tuple[np.ndarray, np.ndarray]:
    """A log four times as long, with the first ``used`` rows kept.

    Raises:
        InputError: if ``wanted`` segments would need more than MAX_ATTEMPTS_PER_SEGMENT attempts each.
    """
    if log.shape[0] - used > wanted * MAX_ATTEMPTS_PER_SEGMENT:
        raise InputError(
            f"the sessions made more than {MAX_ATTEMPTS_PER_SEGMENT} download attempts per segment: "
            f"does {policy!r} abandon every download it starts?", field="policy")
    rows = 4 * log.shape[0]
    grown_log = np.empty((rows, log.shape[1]), dtype=log.dtype)
    grown_rungs = np.empty(rows, dtype=rungs.dtype)
    grown_log[:used] = log[:used]
    grown_rungs[:used] = rungs[:used]
    return grown_log, grown_rungs


def _run_python_batch(packed: PackedTraces, ladder: Ladder, policy: PythonPolicy, model: PlayerModel,
                      params: np.ndarray, est_params: np.ndarray, log: np.ndarray, rungs: np.ndarray,
                      session: np.ndarray, seed: int) -> int:
    """:func:`abrsim.engine._session.run_batch` for a Python policy: the compiled step returns to
    Python for each decision (and each download and checkpoint, if the policy has those hooks)."""
    ps = np.zeros(kernel.DRIVER_STATE)
    obs = ps[kernel.PS_OBS:kernel.PS_OBS + OBS_SIZE]
    all_bandwidth_bps = packed.bandwidth_for(model)
    stops = kernel.STOPS_DOWNLOAD if policy.listens_to_downloads else 0
    checking = model.abandonment and policy.has_abandon
    size_bits = ladder.size_bits
    segment_count = size_bits.shape[0]
    segment_duration_s = float(ladder.segment_duration_s)
    advance = kernel.advance
    answer_rung = kernel.PS_ANSWER_RUNG
    answer_pause_s = kernel.PS_ANSWER_PAUSE_S
    stop_choose = kernel.STOP_CHOOSE
    stop_end = kernel.STOP_END
    events = {kernel.STOP_WAIT: EVENT_WAIT, kernel.STOP_DONE: EVENT_DONE,
              kernel.STOP_ABANDONED: EVENT_ABANDONED}
    row = 0
    for index in range(len(packed)):
        first, last = packed.offsets[index], packed.offsets[index + 1]
        start_s = packed.start_s[first:last]
        bandwidth_bps = all_bandwidth_bps[first:last]
        latency_s = packed.latency_s[first:last]
        kernel.start_session(ps, params, est_params, segment_count, segment_duration_s, checking, stops,
                             bool(packed.has_latency[index]), float(packed.duration_s[index]), row)
        decider = policy.decider(ladder, model, np.random.default_rng([seed, index]))
        choose = decider.choose
        while True:
            stop = advance(ps, start_s, bandwidth_bps, latency_s, size_bits, log, rungs)
            if stop == stop_choose:
                ps[answer_rung], ps[answer_pause_s] = choose(obs)
            elif stop == stop_end:
                break
            elif stop == kernel.STOP_CHECK:
                ps[answer_rung] = decider.abandon(obs)
            elif stop == kernel.STOP_FULL:
                return -1
            else:
                decider.event(obs, events[stop])
        records = int(ps[kernel.PS_ROW]) - row
        kernel.close_player(ps, session[index], row, records)
        row += records
    return row


def run_session(
    trace: Trace,
    ladder: Ladder,
    policy: KernelPolicy | PythonPolicy | str,
    model: PlayerModel | None = None,
    seed: int = 0,
) -> SessionLog:
    """Run one session and return its per-segment log (see :func:`run_batch`)."""
    return run_batch([trace], ladder, policy, model, seed).session_log(0)
