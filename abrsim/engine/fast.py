"""The fast engine: whole sessions in compiled code, many per call.

The public entry points validate, pack inputs into arrays once, and call one
compiled loop (:mod:`abrsim.engine._session`) that runs every session of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abrsim.abr import KernelPolicy, estimator_arrays, make
from abrsim.abr._kernels import abr_can_abandon
from abrsim.engine import _session as kernel
from abrsim.engine._sabre_ms import add_residue_stalls
from abrsim.errors import InputError
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import PlayerModel
from abrsim.qoe import metrics_table
from abrsim.trace import Trace

__all__ = ["BatchRun", "PackedTraces", "model_array", "pack_traces", "run_batch", "run_session"]


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

    def __len__(self) -> int:
        return len(self.names)


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
    )


def model_array(model: PlayerModel, ladder: Ladder) -> np.ndarray:
    """The player model as the kernel reads it.

    Raises:
        InputError: if the model's first rung does not exist on ``ladder``, or one segment
            does not fit in its buffer.
    """
    if model.first_rung >= ladder.rung_count:
        raise InputError(
            f"got {model.first_rung}, expected -1 or a rung below {ladder.rung_count} "
            f"(ladder {ladder.name!r})",
            field="first_rung",
        )
    if model.cap_counts_next_segment and model.max_buffer_s < ladder.segment_duration_s:
        raise InputError(
            f"got {model.max_buffer_s:g}, expected at least one segment ({ladder.segment_duration_s:g} s "
            f"of ladder {ladder.name!r})",
            field="max_buffer_s",
        )
    values = np.zeros(kernel.MODEL_PARAMS, dtype=np.float64)
    values[kernel.MP_REQUEST_LATENCY_S] = model.request_latency_s
    values[kernel.MP_GOODPUT_FACTOR] = model.goodput_factor
    values[kernel.MP_MAX_BUFFER_S] = model.max_buffer_s
    values[kernel.MP_STARTUP_THRESHOLD_S] = model.startup_threshold_s
    values[kernel.MP_RESUME_THRESHOLD_S] = model.resume_threshold_s
    values[kernel.MP_FIRST_RUNG] = model.first_rung
    values[kernel.MP_LATENCY_SCALED] = model.latency_scaled
    values[kernel.MP_LATENCY_ON_TRACE] = model.latency_on_trace_clock
    values[kernel.MP_CAP_NEXT_SEGMENT] = model.cap_counts_next_segment
    values[kernel.MP_WAIT_STEP_S] = model.wait_step_s
    values[kernel.MP_SEGMENT_LIMIT] = model.segment_limit
    values[kernel.MP_ABANDONMENT] = model.abandonment
    values[kernel.MP_PROGRESS_BITS] = model.abandon_check_bits
    values[kernel.MP_PROGRESS_S] = model.abandon_check_s
    values[kernel.MP_RETRY_ABR] = model.compat_sabre_retry_abr
    return values


@dataclass(frozen=True, eq=False)
class BatchRun:
    """Sessions of one policy on one ladder, one per trace: logs and metrics as arrays.

    ``log[row, COL_*]`` and ``rungs[row]`` hold one row per download attempt, sessions one after
    the other; ``session[index, SES_*]`` holds each session's scalars, among them where its rows
    start (``SES_FIRST_RECORD``) and how many there are (``SES_RECORDS``).
    """

    traces: tuple[str, ...]
    ladder: Ladder
    policy: KernelPolicy
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
        log = self.log[rows]
        return SessionLog(
            trace=self.traces[index],
            policy=self.policy.name,
            segment=log[:, kernel.COL_SEGMENT].astype(np.int64),
            rung=self.rungs[rows],
            size_bits=log[:, kernel.COL_SIZE_BITS],
            downloaded_bits=log[:, kernel.COL_DOWNLOADED_BITS],
            abandoned=log[:, kernel.COL_ABANDONED] != 0.0,
            request_s=log[:, kernel.COL_REQUEST_S],
            first_byte_s=log[:, kernel.COL_FIRST_BYTE_S],
            done_s=log[:, kernel.COL_DONE_S],
            buffer_before_s=log[:, kernel.COL_BUFFER_BEFORE_S],
            buffer_after_s=log[:, kernel.COL_BUFFER_AFTER_S],
            stall_s=log[:, kernel.COL_STALL_S],
            wait_s=log[:, kernel.COL_WAIT_S],
            startup_s=float(self.session[index, kernel.SES_STARTUP_S]),
            end_s=float(self.session[index, kernel.SES_END_S]),
            rebuffer_count=int(self.session[index, kernel.SES_REBUFFER_COUNT]),
        )

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
        )


def run_batch(
    traces: Sequence[Trace] | PackedTraces,
    ladder: Ladder,
    policy: KernelPolicy | str,
    model: PlayerModel | None = None,
    seed: int = 0,
) -> BatchRun:
    """Run one session of ``policy`` per trace, all in one compiled call.

    Args:
        traces: the traces, or traces packed once with :func:`pack_traces`.
        ladder: the title's encoding ladder.
        policy: a policy from :func:`abrsim.abr.make`, or a registered name.
        model: the player model (default: abrsim's own).
        seed: recorded with the results; the built-in algorithms are deterministic.

    Raises:
        InputError: if a parameter does not fit the ladder or the model.
    """
    packed = traces if isinstance(traces, PackedTraces) else pack_traces(traces)
    model = PlayerModel() if model is None else model
    policy = (make(policy) if isinstance(policy, str) else policy).resolved(model)
    policy.check(ladder)
    est_params, _ = estimator_arrays(model, ladder.segment_duration_s)
    sessions = len(packed)
    params = model_array(model, ladder)
    abr_params = policy.param_array(ladder)
    # Room for every segment plus some abandoned attempts; grown and rerun if that is not enough.
    rows = sessions * model.segments_played(ladder) * (2 if model.abandonment else 1) + 16
    while True:
        log = np.empty((rows, kernel.LOG_COLUMNS), dtype=np.float64)
        rungs = np.empty(rows, dtype=np.int64)
        session = np.empty((sessions, kernel.SESSION_COLUMNS), dtype=np.float64)
        used = kernel.run_batch(
            packed.offsets, packed.start_s, packed.bandwidth_bps, packed.latency_s, packed.has_latency,
            packed.duration_s, ladder.size_bits, ladder.bitrates_bps, ladder.segment_duration_s,
            params, policy.spec.algo_id, abr_params, policy.state_array(ladder).size,
            est_params, log, rungs, session,
        )
        if used >= 0:
            break
        rows *= 4
    if model.compat_sabre_residue_stalls:
        # The downloads went in abandonment steps exactly when the session loop checked.
        checking = model.abandonment and abr_can_abandon(policy.spec.algo_id, abr_params)
        add_residue_stalls(
            packed.offsets, packed.start_s, packed.bandwidth_bps, packed.latency_s, packed.has_latency,
            packed.duration_s, ladder.size_bits, ladder.segment_duration_s, model.max_buffer_s,
            model.request_latency_s, model.goodput_factor, checking, model.abandon_check_bits,
            model.abandon_check_s, log[:used], rungs[:used], session)
    return BatchRun(packed.names, ladder, policy, model, int(seed), log[:used], rungs[:used], session)


def run_session(
    trace: Trace,
    ladder: Ladder,
    policy: KernelPolicy | str,
    model: PlayerModel | None = None,
    seed: int = 0,
) -> SessionLog:
    """Run one session and return its per-segment log (see :func:`run_batch`)."""
    return run_batch([trace], ladder, policy, model, seed).session_log(0)
