"""A discrete-event player: the session step (:mod:`abrsim.engine.step`) as a simpy process.

:class:`Player` drives the same phases as the fast engine: full-buffer waits, decisions (the
policy's, one at a time: a compiled policy's numba functions or a Python policy's methods),
the pause, request latency, abandonment checkpoints, buffer and stall accounting and estimator
updates are the step's kernels. What is its own: simpy waits, where the latency comes from
(the trace, a drawn round trip, reconnection, the CDN's tiers), the viewer's patience, and the
transfer, which differs only when the player shares a link:

- alone on its access link, a transfer (or one abandonment step) is computed by the fast
  engine's own trace walk (:meth:`AccessLink.transfer`), and the player sleeps until it ends;
- behind a shared :class:`~abrsim.engine.link.Link`, the player waits for its request latency,
  starts a flow and sleeps until the flow completes. With abandonment checks, a checkpoint comes
  once at least ``abandon_check_s`` has passed and at least ``abandon_check_bits`` have arrived
  since the previous one (the same rule as alone, where the bandwidth is known in advance).

Before the first request the player spends the :class:`~abrsim.scenario.SessionSetup` steps (DNS,
connection, manifest); a viewer who runs out of patience before the first frame interrupts the
process, and the download in flight is logged as abandoned. Session times in the log are seconds
since the player arrived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import simpy

from abrsim.abr import KernelPolicy, PythonPolicy, estimator_arrays
from abrsim.abr._kernels import EVENT_ABANDONED, EVENT_DONE, EVENT_WAIT, OBS_SIZE
from abrsim.engine import step as log_layout
from abrsim.engine._sabre_ms import replay
from abrsim.engine.link import AccessLink, CdnNetwork, CdnRoute, Flow, Link
from abrsim.engine.step import (
    LOG_COLUMNS,
    NO_RUNG,
    PLAYER_STATE,
    PS_ABANDON_TO,
    PS_BUFFER_REQUEST_S,
    PS_BUFFER_S,
    PS_CWND,
    PS_DONE_S,
    PS_FIRST_BYTE_S,
    PS_INDEX,
    PS_LAST_DONE_S,
    PS_LATENCY_S,
    PS_OBS,
    PS_REBUFFER_COUNT,
    PS_REQUEST_S,
    PS_RUNG,
    PS_SENT_BITS,
    PS_SIZE_BITS,
    PS_SLOW_START_BITS,
    PS_STARTED,
    PS_STARTUP_S,
    PS_TIME_S,
    PS_TIMED_OUT,
    TIMED_OUT,
    begin_request,
    check_time,
    checkpoint,
    finish_download,
    first_step_s,
    log_row,
    model_array,
    observe,
    reset_player,
    session_log,
    set_first_byte,
    tcp_finish,
    tcp_round_bits,
    tcp_window,
    wait_for_room,
)
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import PlayerModel
from abrsim.scenario import SessionSetup

__all__ = ["Player", "PlayerSession", "SegmentRecord"]


class SegmentRecord(NamedTuple):
    """One download attempt, fields as :data:`abrsim.log.LOG_FIELDS`."""

    segment: int
    rung: int
    size_bits: float
    downloaded_bits: float
    abandoned: bool
    request_s: float
    first_byte_s: float
    done_s: float
    buffer_before_s: float
    buffer_after_s: float
    stall_s: float
    wait_s: float


@dataclass(frozen=True, eq=False)
class PlayerSession:
    """What one discrete-event player did.

    Args:
        player: the player's name (``<group>/<index>``).
        group: its group.
        policy: its algorithm (with the model's defaults applied).
        ladder: the title.
        model: its player model.
        arrival_s: simulation time of its arrival; the log's times are relative to it.
        log: its per-download log; ``startup_s`` includes the setup steps and the first frame's
            decode, NaN if the viewer left before it.
        dns_s: DNS lookup time.
        connect_s: connection and TLS setup time (the first one).
        manifest_s: manifest fetch time.
        first_segment_s: from the first segment request to its last byte (NaN if never done).
        decode_s: first-frame decode time.
        left_s: session time at which the viewer gave up waiting for the first frame (NaN if not).
        segments: segments the viewer meant to watch.
        failed_s: session time at which a request found no healthy CDN tier, ending the session
            (NaN if it did not happen).
        cdn_served: per segment request behind a CDN, in order: (serving tier index, bits
            delivered); tier -1 for the request that failed.
        timed_out: whether the session passed its model's time limit and ended there (see
            ``PlayerModel.session_time_limit_factor``).
    """

    player: str
    group: str
    policy: KernelPolicy | PythonPolicy
    ladder: Ladder
    model: PlayerModel
    arrival_s: float
    log: SessionLog
    dns_s: float
    connect_s: float
    manifest_s: float
    first_segment_s: float
    decode_s: float
    left_s: float
    segments: int
    failed_s: float = math.nan
    cdn_served: tuple[tuple[int, float], ...] = ()
    timed_out: bool = False

    @property
    def failed(self) -> bool:
        """Whether playback failed (a request found no healthy CDN tier)."""
        return not math.isnan(self.failed_s)

    @property
    def abandoned(self) -> bool:
        """Whether the viewer left before the first frame."""
        return not math.isnan(self.left_s)


class Player:
    """One viewer's player, run as a simpy process by :meth:`run`.

    Args:
        env: the simulation environment.
        name: the player's name.
        policy: a registered algorithm (its parameters, resolved against ``model``).
        ladder: the title.
        model: the player model.
        access: the player's access link (its ``origin_s`` is the arrival time).
        link: the shared link behind the access link, or None (the player is alone on ``access``).
        rng: the player's own random generator (setup steps, per-request draws).
        setup: the steps before the first frame.
        segments: segments to play (at most the model's); None: the model's.
        group: the player's group, for reports.
        cdn: the CDN the player's requests go through, or None (no CDN: requests cost only the
            player's own latency and path).
        first_object: with a CDN, the object id of the title's first object in the catalog.
        cdn_share: with a CDN, the player's draw in [0, 1) against a fault's ``fraction``.

    Raises:
        ValueError: if the player has neither a limited access link nor a shared link.
    """

    def __init__(self, env: simpy.Environment, name: str, policy: KernelPolicy | PythonPolicy, ladder: Ladder,
                 model: PlayerModel, access: AccessLink, link: Link | None = None,
                 rng: np.random.Generator | None = None, setup: SessionSetup | None = None,
                 segments: int | None = None, group: str = "", cdn: CdnNetwork | None = None,
                 first_object: int = 0, cdn_share: float = 0.0) -> None:
        if link is None and not access.limited:
            raise ValueError(f"player {name!r} has an unlimited access link and no shared link")
        self.env = env
        self.name = name
        self.group = group
        self.policy = policy.resolved(model)
        self.ladder = ladder
        self.model = model
        self.access = access
        self.link = link
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.setup = setup if setup is not None else SessionSetup()
        played = model.segments_played(ladder)
        self.segments = played if segments is None else max(1, min(int(segments), played))
        self.origin_s = access.origin_s
        draw = self.rng
        self.dns_s = self.setup.dns_s.draw(draw)
        self.connect_s = self.setup.connect_s.draw(draw)
        self.manifest_s = self.setup.manifest_s.draw(draw)
        self.decode_s = self.setup.decode_s.draw(draw)
        # The per-download log, as the step's log_row writes it (grown when full).
        self._log = np.zeros((self.segments + 8, LOG_COLUMNS))
        self._rungs = np.zeros(self.segments + 8, dtype=np.int64)
        self._rows = 0
        self.started = False
        self.startup_s = math.nan
        self.end_s = math.nan
        self.rebuffer_count = 0
        self.left_s = math.nan
        self.process: simpy.Process | None = None
        self._ps: np.ndarray | None = None
        # The request in flight: its cursor on the access link (the rest is in the player state).
        self._inflight: tuple[int, float] | None = None
        self._flow: Flow | None = None
        self.cdn = cdn
        self.first_object = int(first_object)
        self.cdn_share = float(cdn_share)
        self.failed_s = math.nan
        self.cdn_served: list[tuple[int, float]] = []
        self._route: CdnRoute | None = None

    # -- process --------------------------------------------------------------------------

    def start(self) -> simpy.Process:
        """Start the player's process now (the access link's ``origin_s`` should be now)."""
        self.process = self.env.process(self.run())
        return self.process

    def run(self) -> Any:
        """The player's simpy process: a whole session, or until the viewer leaves."""
        try:
            yield from self._session()
        except simpy.Interrupt:
            self._leave()

    def lose_patience(self, _event: object = None) -> None:
        """The viewer gives up unless playback has started (a callback for a patience timer)."""
        if not self.started and self.process is not None and self.process.is_alive:
            self.process.interrupt("viewer left")

    @property
    def records(self) -> list[SegmentRecord]:
        """The download attempts so far, one record each."""
        log = session_log(self._log[:self._rows], self._rungs[:self._rows], "", "", 0.0, 0.0, 0)
        columns = [getattr(log, name).tolist() for name in SegmentRecord._fields]
        return [SegmentRecord(*row) for row in zip(*columns, strict=True)]

    def result(self) -> PlayerSession:
        """The session's outcome (call after the simulation ran)."""
        table = self._log[:self._rows]
        log = session_log(table, self._rungs[:self._rows], self.access.name, self.policy.name, self.startup_s,
                          self.end_s, self.rebuffer_count)
        done = np.flatnonzero(~log.abandoned)
        return PlayerSession(
            player=self.name,
            group=self.group,
            policy=self.policy,
            ladder=self.ladder,
            model=self.model,
            arrival_s=self.origin_s,
            log=log,
            dns_s=self.dns_s,
            connect_s=self.connect_s,
            manifest_s=self.manifest_s,
            first_segment_s=float(log.done_s[done[0]] - log.request_s[0]) if done.size else math.nan,
            decode_s=self.decode_s,
            left_s=self.left_s,
            segments=self.segments,
            failed_s=self.failed_s,
            timed_out=bool(self._ps is not None and self._ps[PS_TIMED_OUT] != 0.0),
            cdn_served=tuple(self.cdn_served),
        )

    # -- the session: the step's phases, with simpy waits between them --------------------

    def _log_row(self, ps: np.ndarray) -> None:
        """The download that just ended, into the log (:func:`abrsim.engine.step.log_row`)."""
        if self._rows == self._rungs.shape[0]:
            self._log = np.concatenate([self._log, np.zeros_like(self._log)])
            self._rungs = np.concatenate([self._rungs, np.zeros_like(self._rungs)])
        log_row(ps, self._log, self._rungs, self._rows)
        self._rows += 1

    def _session(self) -> Any:
        env = self.env
        origin_s = self.origin_s
        model = self.model
        ladder = self.ladder
        access = self.access
        link = self.link
        setup = self.setup
        rng = self.rng
        cdn = self.cdn
        rung_count = ladder.rung_count
        ladder_segments = ladder.segment_count
        # A Python policy draws from its own child of the player's generator (the player's own
        # draws stay as they are); compiled policies are deterministic.
        decider = self.policy.decider(
            ladder, model, rng.spawn(1)[0] if isinstance(self.policy, PythonPolicy) else rng)
        model_params = model_array(model, ladder)
        est_params, _ = estimator_arrays(model, ladder.segment_duration_s)
        size_bits = ladder.size_bits
        segment_duration_s = float(ladder.segment_duration_s)
        segments = self.segments
        payload_factor = float(model.payload_factor)  # payload bits per bit on a link
        latency_on_trace = model.latency_on_trace_clock
        latency_scaled = model.latency_scaled
        default_latency_s = float(model.request_latency_s)
        checking = model.abandonment and decider.can_abandon
        tcp = model.network == "tcp"
        progress_bits = float(model.abandon_check_bits)
        progress_s = float(model.abandon_check_s)
        rtt = setup.rtt_s
        reconnect = None if setup.reuse_connections else setup.connect_s
        ps = self._ps = np.zeros(PLAYER_STATE)
        obs = ps[PS_OBS:PS_OBS + OBS_SIZE]  # what the policy sees, inside the player state
        reset_player(ps, model_params, est_params, segments, segment_duration_s)

        # DNS, connection and manifest come before the first request; like request latency,
        # they do not run the trace clock of a model whose latency is off that clock.
        ps[PS_TIME_S] = self.dns_s + self.connect_s + self.manifest_s
        if not latency_on_trace:
            access.lag_s += ps[PS_TIME_S]
        limit_s = model.time_limit_s(ladder)
        while ps[PS_INDEX] < segments and ps[PS_TIMED_OUT] == 0.0:
            if wait_for_room(ps) > 0.0:
                self.started = True
                decider.event(obs, EVENT_WAIT)
            if check_time(ps):  # (after a download, or a wait)
                break
            rung = observe(ps)
            pause_s = 0.0
            if rung == NO_RUNG:
                rung, pause_s = decider.choose(obs)
            index = int(ps[PS_INDEX])
            bits = float(size_bits[index, rung])
            time_s = request_s = begin_request(ps, rung, pause_s, bits)
            # Request latency (plus a new connection per request when connections are not reused).
            if rtt is None:
                request_latency_s = access.request_latency_s(time_s, default_latency_s, latency_scaled)
            else:
                request_latency_s = rtt.draw(rng)
            if reconnect is not None and self._rows:
                request_latency_s += reconnect.draw(rng)
            route = None
            if cdn is not None:
                # The CDN is looked up when the request leaves; its tiers' round trips add to the latency.
                delay_s = origin_s + time_s - env.now
                if delay_s > 0.0:
                    yield env.timeout(delay_s)
                object_id = self.first_object + (index % ladder_segments) * rung_count + rung
                route = self._route = cdn.route(self.group, object_id, origin_s + time_s, self.cdn_share)
                if route.tier < 0:
                    # No healthy tier: the request fails and so does playback.
                    cdn.fail(route, self.name, origin_s + time_s, index)
                    self.cdn_served.append((-1, 0.0))
                    self._route = None
                    self.failed_s = time_s
                    self.startup_s = ps[PS_STARTUP_S] + self.decode_s if ps[PS_STARTED] else math.nan
                    self.end_s = time_s
                    self.rebuffer_count = int(ps[PS_REBUFFER_COUNT])
                    return
                request_latency_s += route.rtt_s
            if not latency_on_trace:
                access.lag_s += request_latency_s
            first_byte_s, checked = set_first_byte(ps, request_latency_s, checking)
            sent_bits = 0.0
            clock_s = first_byte_s
            abandon_to = NO_RUNG
            self._inflight = access.cursor
            cdn_flows: list[Flow] = []
            if route is not None:
                delay_s = origin_s + first_byte_s - env.now
                if delay_s > 0.0:
                    yield env.timeout(delay_s)
                cdn_flows = cdn.start(route, bits)  # type: ignore[union-attr]
            if link is None:
                # Alone on the access link: the fast engine's trace walk, then sleep until done.
                slow_start_bits = 0.0
                if tcp:  # the response's slow start first, no checkpoint inside it
                    clock_s, slow_start_bits = access.slow_start(ps, model_params)
                    sent_bits = slow_start_bits
                if checked:
                    step_s = first_step_s(model_params, request_s, request_latency_s, clock_s)
                    while sent_bits < bits:
                        clock_s, step_bits = access.step(clock_s, bits - sent_bits, progress_bits, step_s,
                                                         limit_s)
                        sent_bits += step_bits
                        step_s = progress_s
                        if sent_bits < bits and clock_s > limit_s:
                            abandon_to = TIMED_OUT
                            break
                        if sent_bits < bits:
                            checkpoint(ps, sent_bits, clock_s)
                            abandon_to = decider.abandon(obs)
                            if abandon_to != NO_RUNG:
                                break
                else:
                    clock_s, sent_bits = access.transfer(clock_s, bits - slow_start_bits, 0.0, 0.0, limit_s)
                    sent_bits += slow_start_bits
                    if sent_bits < bits and clock_s > limit_s:
                        abandon_to = TIMED_OUT
                delay_s = origin_s + clock_s - env.now
                if delay_s > 0.0:
                    yield env.timeout(delay_s)
                if abandon_to == NO_RUNG and any(not flow.done for flow in cdn_flows):
                    # The CDN's links carry the segment alongside; it has arrived when all are done.
                    yield env.all_of([flow.event for flow in cdn_flows if not flow.done])
                    clock_s = env.now - origin_s
            else:
                # Behind a shared link: wait out the latency, then one flow until it completes.
                delay_s = origin_s + first_byte_s - env.now
                if delay_s > 0.0:
                    yield env.timeout(delay_s)
                flow = self._flow = link.start(bits / payload_factor, access if access.limited else None)
                if tcp:  # the response's slow start first, no checkpoint inside it
                    yield from self._slow_start(flow, model_params)
                    sent_bits = float(ps[PS_SLOW_START_BITS])
                    clock_s = env.now - origin_s
                if checked:
                    step_s = first_step_s(model_params, request_s, request_latency_s, clock_s)
                    while True:
                        done = yield from self._checkpoint(flow, sent_bits, progress_bits, step_s)
                        if done:
                            break
                        sent_bits = link.sent_bits(flow) * payload_factor
                        step_s = progress_s
                        clock_s = env.now - origin_s
                        checkpoint(ps, sent_bits, clock_s)
                        abandon_to = decider.abandon(obs)
                        if abandon_to != NO_RUNG:
                            sent_bits = link.cancel(flow) * payload_factor
                            break
                elif not flow.done:
                    yield flow.event
                self._flow = None
                if abandon_to == NO_RUNG and any(not flow.done for flow in cdn_flows):
                    yield env.all_of([flow.event for flow in cdn_flows if not flow.done])
                clock_s = env.now - origin_s
            self._inflight = None
            completed = finish_download(ps, clock_s, sent_bits, abandon_to)
            if tcp:  # the window grows up to what the path held: the flow's share of a shared link
                tcp_finish(ps, access.capacity_bps() if link is None else flow.rate_bps)
            if route is not None:
                cdn.finish(route, self.name, origin_s + request_s, index, float(ps[PS_SENT_BITS]),  # type: ignore[union-attr]
                           completed)
                self.cdn_served.append((route.tier, float(ps[PS_SENT_BITS])))
                self._route = None
            self._log_row(ps)
            self.started = ps[PS_STARTED] != 0.0
            if abandon_to != TIMED_OUT:  # a download cut by the time limit ends the session
                decider.event(obs, EVENT_DONE if completed else EVENT_ABANDONED)
        rebuffer_count = int(ps[PS_REBUFFER_COUNT])
        if (model.compat_sabre_residue_stalls and link is None and cdn is None and rtt is None
                and reconnect is None and access.limited):
            rebuffer_count += self._sabre_residue(checking, progress_bits, progress_s)
        # The first frame shows decode_s after playback starts; the whole playout shifts with it.
        self.startup_s = float(ps[PS_STARTUP_S]) + self.decode_s
        self.end_s = float(ps[PS_TIME_S] + ps[PS_BUFFER_S]) + self.decode_s
        self.rebuffer_count = rebuffer_count

    def _sabre_residue(self, checking: bool, progress_bits: float, progress_s: float) -> int:
        """1 if Sabre's final playout would count a zero-length stall (see :mod:`abrsim.engine._sabre_ms`).

        Only for a player alone on its access link, whose requests see the trace's latency.
        """
        trace = self.access.trace
        assert trace is not None
        model = self.model
        table = self._log[:self._rows]
        latency_s = trace.latency_s if trace.latency_s is not None else np.zeros(trace.start_s.size)
        # The trace clock ran during DNS, connection and manifest (latency is on it in Sabre's model).
        skip_s = self.access.offset_s + self.dns_s + self.connect_s + self.manifest_s
        return int(replay(
            trace.start_s, trace.bandwidth_bps, latency_s, trace.latency_s is not None, trace.duration_s,
            self.ladder.size_bits, float(self.ladder.segment_duration_s), float(model.max_buffer_s),
            float(model.request_latency_s), float(model.goodput_factor), checking, progress_bits,
            progress_s, skip_s, table[:, log_layout.COL_SEGMENT], self._rungs[:self._rows],
            table[:, log_layout.COL_DOWNLOADED_BITS], table[:, log_layout.COL_BUFFER_AFTER_S],
            table[:, log_layout.COL_WAIT_S], table[:, log_layout.COL_ABANDONED], 0, self._rows)[0])

    def _slow_start(self, flow: Flow, model_params: np.ndarray) -> Any:
        """The tcp network's slow start of the response ``flow`` carries on a shared link: the same
        rounds as over an access link alone (:func:`abrsim.engine.step.tcp_round_bits`), each one
        window in one round trip, here as a limit on the flow's rate (the window over the round
        trip) that the link applies beside the other flows' shares. Sets the window and the slow
        start's bits in the player state."""
        link = self.link
        assert link is not None
        ps = self._ps
        assert ps is not None
        rtt_s = float(ps[PS_LATENCY_S])
        bits = float(ps[PS_SIZE_BITS])
        cwnd = tcp_window(model_params, float(ps[PS_CWND]), float(ps[PS_REQUEST_S]),
                          float(ps[PS_LAST_DONE_S]), rtt_s)
        sent_bits = 0.0
        payload_factor = self.model.payload_factor
        while not flow.done and rtt_s > 0.0:
            path_bps = min(link.capacity_bps(), flow.access_bps)
            window_bits = tcp_round_bits(model_params, cwnd, path_bps, rtt_s, sent_bits, bits)
            if window_bits == 0.0:
                break
            link.set_window(flow, window_bits / payload_factor / rtt_s)
            yield self.env.any_of((self.env.timeout(rtt_s), flow.event))
            sent_bits = link.sent_bits(flow) * payload_factor
            cwnd = 2.0 * cwnd
        link.set_window(flow, math.inf)
        ps[PS_CWND] = cwnd
        ps[PS_SLOW_START_BITS] = sent_bits

    def _checkpoint(self, flow: Flow, sent_bits: float, min_bits: float, min_s: float) -> Any:
        """Wait for one abandonment step on a shared link; return whether the flow completed.

        A step ends once at least ``min_s`` has passed and at least ``min_bits`` more bits have
        arrived, as in the fast engine's :func:`abrsim.engine._session.run_batch` (with both <= 0, at
        once).
        """
        link = self.link
        assert link is not None
        if min_s > 0.0:
            yield self.env.any_of((self.env.timeout(min_s), flow.event))
            if flow.done:
                return True
        if min_bits > 0.0:
            target_bits = (sent_bits + min_bits) / self.model.payload_factor
            if link.sent_bits(flow) < target_bits:
                yield link.wait(flow, target_bits)
        return flow.done

    def _leave(self) -> None:
        """The viewer gave up: log the download in flight as abandoned and stop."""
        now_s = self.env.now - self.origin_s
        self.left_s = now_s
        if self._inflight is None:
            return
        cursor = self._inflight
        ps = self._ps
        assert ps is not None
        index = int(ps[PS_INDEX])
        bits = float(ps[PS_SIZE_BITS])
        request_s = float(ps[PS_REQUEST_S])
        first_byte_s = float(ps[PS_FIRST_BYTE_S])
        if self._flow is not None:
            sent_bits = self.link.cancel(self._flow) * self.model.payload_factor  # type: ignore[union-attr]
        elif self.link is None:
            sent_bits = self.access.sent_bits_between(cursor, first_byte_s, now_s, bits)
        else:  # still waiting for the first byte
            sent_bits = 0.0
        # Logged as abandoned where it stands: nothing arrived in the buffer.
        ps[PS_DONE_S] = now_s
        ps[PS_SENT_BITS] = sent_bits
        ps[PS_ABANDON_TO] = ps[PS_RUNG]
        ps[PS_BUFFER_S] = ps[PS_BUFFER_REQUEST_S]
        self._log_row(ps)
        if self._route is not None and self.cdn is not None:
            self.cdn.finish(self._route, self.name, self.origin_s + request_s, index, sent_bits, False)
            self.cdn_served.append((self._route.tier, sent_bits))
            self._route = None
        self._inflight = None
        self._flow = None
