"""Links of the discrete-event engine: a player's own access link and shared bottleneck links.

:class:`AccessLink` is a player's own link. Its capacity is a trace (times the player model's
goodput factor) and it carries one download at a time, so its transfers are computed in closed
form by the fast engine's own trace walk (:func:`abrsim.engine.step.transfer`): a player
alone on its access link reproduces the fast engine operation for operation.

:class:`Link` is a shared link with processor sharing: its capacity (a looping trace on the
simulation clock) is split max-min fairly among the flows on it. A flow may be limited elsewhere
(by its player's access link); such a flow gets its limit, and the others share what is left
equally. Per event the cost does not grow with the number of flows: the equally-sharing flows
are tracked by one virtual clock (the bits each of them has received) and a heap of their
target marks on that clock; flows held below the fair share by their access link have their own
finish times in a second heap. Both are recomputed only when the capacity, the set of flows or a
flow's limit changes. Units: seconds, bits, bit/s.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any

import numpy as np
import simpy

from abrsim.engine.step import (
    next_sample,
    sample_end_s,
    scaled_latency,
    seek,
    tcp_begin,
    transfer,
    transfer_step,
)
from abrsim.errors import NoProgressError
from abrsim.trace import Trace

__all__ = ["STALL_LIMIT_S", "TIME_EPSILON_S", "AccessLink", "CdnNetwork", "CdnRoute", "Flow", "Link"]

#: Targets due within this much time are treated as reached (guards against rounding loops).
TIME_EPSILON_S = 1e-9
#: Relative rounding allowed on the virtual clock (bits received per sharing flow).
VIRTUAL_BITS_EPSILON = 1e-12
#: A link whose flows receive no data for this long (simulated) can never finish them.
STALL_LIMIT_S = 86_400.0

_INF = math.inf
_Entry = tuple[float, int, "Flow", int]  # (key, tie-break, flow, version) in the link's heaps


class AccessLink:
    """A player's own access link: a trace's bandwidth (times goodput), or unlimited.

    Times given to its methods are session times (seconds since the player arrived). The trace
    clock reads ``session time - lag_s + offset_s``: ``lag_s`` is the request latency that did
    not run the trace clock (``PlayerModel.latency_on_trace_clock`` False, as in Pensieve), which
    the player adds to; ``offset_s`` starts the player at a later point of the trace. One cursor
    follows the trace forward, as in the fast engine.

    Args:
        trace: the link's bandwidth over time, or None for a link that never limits.
        goodput_factor: share of the bandwidth a download achieves, in (0, 1].
        offset_s: where in the trace the player's session starts, seconds.
        origin_s: the simulation time of the player's arrival (session time 0).

    Raises:
        ValueError: if ``goodput_factor`` or ``offset_s`` is out of range.
    """

    def __init__(self, trace: Trace | None, goodput_factor: float = 1.0, offset_s: float = 0.0,
                 origin_s: float = 0.0) -> None:
        if not 0.0 < goodput_factor <= 1.0:
            raise ValueError(f'"goodput_factor" must be in (0, 1], got {goodput_factor!r}')
        if not (math.isfinite(offset_s) and offset_s >= 0.0):
            raise ValueError(f'"offset_s" must be finite and >= 0, got {offset_s!r}')
        self.trace = trace
        self.goodput_factor = float(goodput_factor)
        self.offset_s = float(offset_s)
        self.origin_s = float(origin_s)
        self.lag_s = 0.0
        self.sample = 0
        self.loop_start_s = 0.0
        if trace is not None:
            self._start_s = trace.start_s
            self._bandwidth_bps = trace.bandwidth_bps
            self._duration_s = trace.duration_s
            self._has_latency = trace.latency_s is not None
            self._latency_s = trace.latency_s if trace.latency_s is not None else np.zeros(trace.start_s.size)
            self._constant = trace.start_s.size == 1

    @property
    def name(self) -> str:
        """The trace's name, or ``"unlimited"``."""
        return "unlimited" if self.trace is None else self.trace.name

    @property
    def limited(self) -> bool:
        """Whether the link has a finite bandwidth (a trace)."""
        return self.trace is not None

    def request_latency_s(self, time_s: float, default_s: float, scaled: bool) -> float:
        """Time to first byte of a request sent at session time ``time_s``.

        The trace's per-sample latency if it has one (continued across samples at the next
        sample's latency if ``scaled``, as in Sabre), else ``default_s``.
        """
        if self.trace is None or not self._has_latency:
            return default_s
        trace_s = time_s - self.lag_s + self.offset_s
        if scaled:
            first_byte_trace_s, self.sample, self.loop_start_s = scaled_latency(
                self._start_s, self._latency_s, self._duration_s, trace_s, self.sample, self.loop_start_s)
            return float(first_byte_trace_s - trace_s)
        self.sample, self.loop_start_s = seek(self._start_s, self._duration_s, trace_s, self.sample,
                                              self.loop_start_s)
        return float(self._latency_s[self.sample])

    def transfer(self, time_s: float, size_bits: float, min_bits: float = 0.0,
                 min_s: float = 0.0, horizon_s: float = math.inf) -> tuple[float, float]:
        """Send bits from session time ``time_s`` over this link alone.

        Sends all of ``size_bits``, or, with ``min_bits > 0`` or ``min_s > 0``, one abandonment
        step (see :func:`abrsim.engine.step.transfer`); less if session time ``horizon_s`` comes
        first. Returns ``(time_s, sent_bits)``.

        Raises:
            ValueError: if the link is unlimited (a transfer would take no time).
        """
        if self.trace is None:
            raise ValueError("an unlimited access link cannot carry a download on its own")
        clock_trace_s, sent_bits, self.sample, self.loop_start_s = transfer(
            self._start_s, self._bandwidth_bps, self._duration_s, self.goodput_factor,
            time_s - self.lag_s + self.offset_s, size_bits, min_bits, min_s, self.sample,
            self.loop_start_s, horizon_s - self.lag_s + self.offset_s)
        return clock_trace_s - self.offset_s + self.lag_s, sent_bits

    def step(self, time_s: float, size_bits: float, min_bits: float, min_s: float,
             horizon_s: float = math.inf) -> tuple[float, float]:
        """One abandonment step of a transfer from session time ``time_s``: the fast engine's
        :func:`abrsim.engine.step.transfer_step`, on this link's cursor (stopping at session time
        ``horizon_s``). Returns ``(time_s, sent_bits)``.
        """
        if self.trace is None:
            raise ValueError("an unlimited access link cannot carry a download on its own")
        clock_trace_s, sent_bits, self.sample, self.loop_start_s = transfer_step(
            self._start_s, self._bandwidth_bps, self._duration_s, self.goodput_factor,
            time_s - self.lag_s + self.offset_s, size_bits, min_bits, min_s, self.sample,
            self.loop_start_s, horizon_s - self.lag_s + self.offset_s)
        return clock_trace_s - self.offset_s + self.lag_s, float(sent_bits)

    def sent_bits_between(self, cursor: tuple[int, float], from_s: float, to_s: float,
                          size_bits: float) -> float:
        """Bits (at most ``size_bits``) a transfer starting at ``from_s`` has sent by ``to_s``.

        ``cursor`` is the ``(sample, loop_start_s)`` the link had when that transfer started
        (:attr:`cursor`); the link's own cursor does not move.
        """
        if self.trace is None or to_s <= from_s:
            return 0.0
        _, sent_bits, _, _ = transfer(
            self._start_s, self._bandwidth_bps, self._duration_s, self.goodput_factor,
            from_s - self.lag_s + self.offset_s, size_bits, 0.0, to_s - from_s, cursor[0], cursor[1],
            math.inf)
        return float(sent_bits)

    def slow_start(self, ps: np.ndarray, model_params: np.ndarray) -> tuple[float, float]:
        """The tcp network's slow start of the request in the player state ``ps`` over this link
        alone (:func:`abrsim.engine.step.tcp_begin`, with the window and times in ``ps``, updated).
        Returns ``(time_s, sent_bits)``: where the rest of the response streams from."""
        if self.trace is None:
            raise ValueError("an unlimited access link cannot carry a download on its own")
        from abrsim.engine import step

        lag_s = self.lag_s - self.offset_s  # session time minus this link's trace time
        clock_s, sent_bits, cwnd, self.sample, self.loop_start_s = tcp_begin(
            self._start_s, self._bandwidth_bps, self._duration_s, model_params, float(ps[step.PS_REQUEST_S]),
            float(ps[step.PS_FIRST_BYTE_S]), lag_s, float(ps[step.PS_SIZE_BITS]), float(ps[step.PS_CWND]),
            float(ps[step.PS_LAST_DONE_S]), float(ps[step.PS_LATENCY_S]), self.sample, self.loop_start_s)
        ps[step.PS_CWND] = cwnd
        ps[step.PS_SLOW_START_BITS] = sent_bits
        return float(clock_s), float(sent_bits)

    def capacity_bps(self) -> float:
        """The trace's bandwidth at the link's cursor."""
        return 0.0 if self.trace is None else float(self._bandwidth_bps[self.sample])

    @property
    def cursor(self) -> tuple[int, float]:
        """The trace cursor ``(sample, loop_start_s)``."""
        return self.sample, self.loop_start_s

    # Used by shared links: the access bandwidth is a per-flow limit, in simulation time.

    def rate_at(self, now_s: float) -> tuple[float, float]:
        """Raw bandwidth at simulation time ``now_s`` and the simulation time it next changes."""
        if self.trace is None:
            return _INF, _INF
        trace_s = now_s - self.origin_s - self.lag_s + self.offset_s
        self.sample, self.loop_start_s = seek(self._start_s, self._duration_s, trace_s, self.sample,
                                              self.loop_start_s)
        return self._rate_and_change()

    def next_rate(self, now_s: float) -> tuple[float, float]:
        """Step to the next sample (its start is due at ``now_s``) and return as :meth:`rate_at`."""
        self.sample, self.loop_start_s = next_sample(self._start_s, self._duration_s, self.sample,
                                                     self.loop_start_s)
        return self.rate_at(now_s)

    def _rate_and_change(self) -> tuple[float, float]:
        rate_bps = float(self._bandwidth_bps[self.sample])
        if self._constant:
            return rate_bps, _INF
        end_s = sample_end_s(self._start_s, self._duration_s, self.sample, self.loop_start_s)
        return rate_bps, end_s - self.offset_s + self.lag_s + self.origin_s


class Flow:
    """One download on a shared :class:`Link`; sizes in bits on the wire.

    ``event`` succeeds when the flow reaches its current target: its full size (the flow is
    then done and off the link) unless :meth:`Link.wait` set a nearer checkpoint.

    Its rate is limited by its access link (``access_bps``, from ``access``) and by its sender's
    window (``window_bps``, set with :meth:`Link.set_window`); ``cap_bps`` is the smaller one.
    ``rate_bps`` is the rate it had when it left the link.
    """

    __slots__ = ("access", "access_bps", "cap_bps", "cap_version", "capped", "done", "event", "link",
                 "mark_version", "rate_bps", "sent_bits", "size_bits", "started_s", "target_bits",
                 "updated_s", "v_start", "window_bps")

    def __init__(self, link: Link, size_bits: float, access: AccessLink | None) -> None:
        self.link = link
        self.size_bits = size_bits
        self.target_bits = size_bits
        self.access = access
        self.event: simpy.Event = link.env.event()
        self.cap_bps = _INF
        self.access_bps = _INF
        self.window_bps = _INF
        self.rate_bps = 0.0
        self.capped = False  # limited by its access link (rate cap_bps) rather than sharing equally
        self.v_start = 0.0  # while sharing: virtual clock value at which it had received 0 bits
        self.sent_bits = 0.0  # while capped: bits received by updated_s
        self.updated_s = 0.0
        self.mark_version = 0
        self.cap_version = 0
        self.done = False
        self.started_s = link.env.now


class Link:
    """A shared link: time-varying capacity, max-min fair processor sharing among its flows.

    The capacity follows ``trace`` on the simulation clock, looping; a one-sample trace is a
    constant capacity. Flows start with :meth:`start`, report progress with :meth:`sent_bits`,
    notify at a number of bits with :meth:`wait` and end early with :meth:`cancel`.

    Args:
        env: the simulation environment.
        trace: capacity over time.
        name: a label for reports.
        stall_limit_s: raise :class:`~abrsim.errors.NoProgressError` when the link has had
            flows but carried no data for this long (default one simulated day): its capacity
            and their access links are then never up together, and the run would not end.

    Attributes:
        delivered_bits: bits carried so far.
        capacity_bits: the capacity's integral from creation to the last update.
        busy_capacity_bits: that integral over the times some flow was active.
        busy_s: time with at least one flow.
    """

    def __init__(self, env: simpy.Environment, trace: Trace, name: str = "",
                 stall_limit_s: float = STALL_LIMIT_S) -> None:
        if not stall_limit_s > 0.0:
            raise ValueError(f'"stall_limit_s" must be > 0, got {stall_limit_s!r}')
        self.env = env
        self.stall_limit_s = float(stall_limit_s)
        self.trace = trace
        self.name = name or trace.name
        self._start_s = trace.start_s
        self._bandwidth_bps = trace.bandwidth_bps
        self._duration_s = trace.duration_s
        self._constant = trace.start_s.size == 1
        self._sample = 0
        self._loop_start_s = 0.0
        self._now_s = float(env.now)
        self._sample, self._loop_start_s = seek(self._start_s, self._duration_s, self._now_s, 0, 0.0)
        self._capacity_bps = float(self._bandwidth_bps[self._sample])
        self._next_capacity_s = self._capacity_change_s()
        self._virtual_bits = 0.0  # bits received by each equally-sharing flow (since it was last empty)
        self._sharing = 0  # flows sharing equally
        self._capped_bps = 0.0  # total rate of the flows held below the fair share
        self._capped = 0
        self._sharing_marks: list[_Entry] = []  # (virtual mark, seq, flow, version)
        self._capped_marks: list[_Entry] = []  # (time, seq, flow, version)
        self._sharing_caps: list[_Entry] = []  # min-heap of finite caps
        self._capped_caps: list[_Entry] = []  # max-heap (negated caps)
        self._cap_changes: list[_Entry] = []  # (time, seq, flow, version)
        self._seq = itertools.count()
        self._timer_version = 0
        self._timer_at_s = _INF
        self.delivered_bits = 0.0
        self.capacity_bits = 0.0
        self.busy_capacity_bits = 0.0
        self.busy_s = 0.0
        self.flows_started = 0
        self._progress_s = self._now_s  # when the link last carried data or became busy
        self._progress_bits = 0.0

    def __repr__(self) -> str:
        return f"Link({self.name!r}, flows={self.active_flows})"

    @property
    def active_flows(self) -> int:
        """Number of flows on the link now."""
        return self._sharing + self._capped

    # -- public flow operations --------------------------------------------------------------

    def start(self, size_bits: float, access: AccessLink | None = None, window_bps: float = _INF) -> Flow:
        """Start a flow of ``size_bits`` now, limited by ``access``'s bandwidth if given and to
        ``window_bps`` (see :meth:`set_window`).

        Raises:
            ValueError: if ``size_bits`` is not finite and > 0, or ``window_bps`` not > 0.
        """
        if not (math.isfinite(size_bits) and size_bits > 0.0):
            raise ValueError(f'"size_bits" must be finite and > 0, got {size_bits!r}')
        if not window_bps > 0.0:
            raise ValueError(f'"window_bps" must be > 0, got {window_bps!r}')
        now = self.env.now
        self._advance(now)
        if not self.active_flows:
            self._progress_s = now
            self._progress_bits = self.delivered_bits
        flow = Flow(self, float(size_bits), access)
        self.flows_started += 1
        change_s = _INF
        if access is not None:
            flow.access_bps, change_s = access.rate_at(now)
        flow.window_bps = float(window_bps)
        flow.cap_bps = min(flow.access_bps, flow.window_bps)
        flow.v_start = self._virtual_bits
        self._sharing += 1
        self._push_sharing(flow)
        if change_s < _INF:
            heapq.heappush(self._cap_changes, (change_s, next(self._seq), flow, flow.cap_version))
        self._rebalance(now)
        self._schedule()
        return flow

    def set_window(self, flow: Flow, window_bps: float) -> None:
        """Limit ``flow`` from now to ``window_bps`` (``math.inf``: no limit): a TCP sender's window
        over its round trip, while the window is smaller than the flow's share of the path."""
        if not window_bps > 0.0:
            raise ValueError(f'"window_bps" must be > 0, got {window_bps!r}')
        if flow.done:
            return
        now = self.env.now
        self._advance(now)
        flow.window_bps = float(window_bps)
        self._set_cap(flow, now, min(flow.access_bps, flow.window_bps))
        self._rebalance(now)
        self._schedule()

    def capacity_bps(self) -> float:
        """The link's capacity now."""
        self._advance(self.env.now)
        return self._capacity_bps

    def sent_bits(self, flow: Flow) -> float:
        """Bits ``flow`` has received so far."""
        if flow.done:
            return flow.sent_bits
        self._advance(self.env.now)
        return self._sent(flow, self.env.now)

    def wait(self, flow: Flow, bits: float) -> simpy.Event:
        """An event that succeeds once ``flow`` has received ``bits`` (its size at most).

        It replaces the flow's previous target; reaching the full size ends the flow.
        """
        now = self.env.now
        if flow.done:
            event = self.env.event()
            event.succeed()
            return event
        self._advance(now)
        flow.target_bits = min(float(bits), flow.size_bits)
        event = flow.event = self.env.event()
        if flow.capped:
            flow.sent_bits = self._sent(flow, now)
            flow.updated_s = now
        flow.mark_version += 1
        self._push_mark(flow, now)
        self._fire_due(now)
        self._schedule()
        return event

    def cancel(self, flow: Flow) -> float:
        """Take ``flow`` off the link now; return the bits it had received."""
        if flow.done:
            return self.sent_bits(flow)
        now = self.env.now
        self._advance(now)
        sent = self._sent(flow, now)
        self._remove(flow, sent)
        self._rebalance(now)
        self._schedule()
        return sent

    # -- internals ----------------------------------------------------------------------------

    def _capacity_change_s(self) -> float:
        if self._constant:
            return _INF
        return float(sample_end_s(self._start_s, self._duration_s, self._sample, self._loop_start_s))

    def _fair_share_bps(self) -> float:
        if self._sharing:
            return (self._capacity_bps - self._capped_bps) / self._sharing
        return _INF if self._capped_bps <= self._capacity_bps else -_INF

    def _integrate(self, until_s: float) -> None:
        elapsed_s = until_s - self._now_s
        if elapsed_s <= 0.0:
            return
        capacity_bps = self._capacity_bps
        self.capacity_bits += capacity_bps * elapsed_s
        if self._sharing or self._capped:
            self.busy_s += elapsed_s
            self.busy_capacity_bits += capacity_bps * elapsed_s
            carried_bps = self._capped_bps
            if self._sharing:
                share_bps = (capacity_bps - self._capped_bps) / self._sharing
                if share_bps > 0.0:
                    self._virtual_bits += share_bps * elapsed_s
                    carried_bps += share_bps * self._sharing
            self.delivered_bits += carried_bps * elapsed_s
        self._now_s = until_s

    def _advance(self, now: float) -> None:
        """Bring the clocks to ``now``, stepping through capacity changes on the way."""
        while self._next_capacity_s <= now + TIME_EPSILON_S:
            self._integrate(self._next_capacity_s)
            self._sample, self._loop_start_s = next_sample(self._start_s, self._duration_s, self._sample,
                                                           self._loop_start_s)
            self._capacity_bps = float(self._bandwidth_bps[self._sample])
            self._next_capacity_s = self._capacity_change_s()
        self._integrate(now)

    def _sent(self, flow: Flow, now: float) -> float:
        if flow.capped:
            return flow.sent_bits + flow.cap_bps * (now - flow.updated_s)
        return self._virtual_bits - flow.v_start

    def _push_mark(self, flow: Flow, now: float) -> None:
        if flow.capped:
            if flow.cap_bps > 0.0:
                due_s = now + (flow.target_bits - flow.sent_bits) / flow.cap_bps
                heapq.heappush(self._capped_marks, (due_s, next(self._seq), flow, flow.mark_version))
        else:
            heapq.heappush(self._sharing_marks,
                           (flow.v_start + flow.target_bits, next(self._seq), flow, flow.mark_version))

    def _push_sharing(self, flow: Flow) -> None:
        heapq.heappush(self._sharing_marks,
                       (flow.v_start + flow.target_bits, next(self._seq), flow, flow.mark_version))
        if flow.cap_bps < _INF:
            heapq.heappush(self._sharing_caps, (flow.cap_bps, next(self._seq), flow, flow.cap_version))

    @staticmethod
    def _live(entry: _Entry, kind: str) -> bool:
        """Whether a heap entry still holds (``kind``: mark, cap, or alive for cap changes)."""
        flow = entry[2]
        if flow.done:
            return False
        return kind == "alive" or entry[3] == (flow.mark_version if kind == "mark" else flow.cap_version)

    def _peek(self, heap: list[_Entry], kind: str = "mark") -> _Entry | None:
        """The first live entry of a heap, dropping stale ones."""
        while heap:
            if self._live(heap[0], kind):
                return heap[0]
            heapq.heappop(heap)
        return None

    def _to_capped(self, flow: Flow, now: float) -> None:
        flow.sent_bits = self._virtual_bits - flow.v_start
        flow.updated_s = now
        flow.capped = True
        flow.mark_version += 1
        flow.cap_version += 1
        self._sharing -= 1
        self._capped += 1
        self._capped_bps += flow.cap_bps
        if not self._sharing:
            self._virtual_bits = 0.0
        heapq.heappush(self._capped_caps, (-flow.cap_bps, next(self._seq), flow, flow.cap_version))
        self._push_mark(flow, now)

    def _to_sharing(self, flow: Flow, now: float) -> None:
        sent = flow.sent_bits + flow.cap_bps * (now - flow.updated_s)
        flow.capped = False
        flow.mark_version += 1
        flow.cap_version += 1
        self._capped -= 1
        self._capped_bps = self._capped_bps - flow.cap_bps if self._capped else 0.0
        self._sharing += 1
        flow.v_start = self._virtual_bits - sent
        self._push_sharing(flow)

    def _rebalance(self, now: float) -> None:
        """Water-fill: flows whose limit is below the fair share get their limit, the rest share."""
        for _ in range(2 * (self._sharing + self._capped) + 2):
            share_bps = self._fair_share_bps()
            entry = self._peek(self._sharing_caps, "cap")
            if entry is not None and entry[0] < share_bps * (1.0 - 1e-12):
                heapq.heappop(self._sharing_caps)
                self._to_capped(entry[2], now)
                continue
            entry = self._peek(self._capped_caps, "cap")
            if entry is not None and -entry[0] > share_bps * (1.0 + 1e-12):
                heapq.heappop(self._capped_caps)
                self._to_sharing(entry[2], now)
                continue
            return

    def _remove(self, flow: Flow, sent_bits: float) -> None:
        flow.done = True
        flow.rate_bps = flow.cap_bps if flow.capped else max(self._fair_share_bps(), 0.0)
        if flow.capped:
            self._capped -= 1
            self._capped_bps = self._capped_bps - flow.cap_bps if self._capped else 0.0
        else:
            self._sharing -= 1
            if not self._sharing:
                self._virtual_bits = 0.0
        flow.sent_bits = sent_bits
        live = self._sharing + self._capped
        heaps = ((self._sharing_marks, "mark"), (self._capped_marks, "mark"), (self._sharing_caps, "cap"),
                 (self._capped_caps, "cap"), (self._cap_changes, "alive"))
        for heap, kind in heaps:
            if not live:
                heap.clear()
            elif len(heap) > 4 * live + 64:  # mostly stale entries: rebuild (amortised O(1) per flow)
                heap[:] = [entry for entry in heap if self._live(entry, kind)]
                heapq.heapify(heap)

    def _fire_due(self, now: float) -> None:
        """Complete the targets due now, then apply the limit changes due now.

        Targets come first: one reached at the very moment its access link goes down was
        reached at the old rate (applying the change first could leave it a rounding error
        short until the access link comes back).
        """
        reached: list[Flow] = []
        share_bps = self._fair_share_bps() if self._sharing else 0.0
        # A mark within rounding of the virtual clock is reached, also when the capacity has just
        # dropped to nothing at the very moment it was due.
        slack_bits = max(share_bps * TIME_EPSILON_S if share_bps > 0.0 else 0.0,
                         VIRTUAL_BITS_EPSILON * self._virtual_bits)
        while True:
            entry = self._peek(self._sharing_marks)
            if entry is None or entry[0] > self._virtual_bits + slack_bits:
                break
            heapq.heappop(self._sharing_marks)
            if entry[0] > self._virtual_bits:
                self._virtual_bits = entry[0]
            reached.append(entry[2])
        while True:
            entry = self._peek(self._capped_marks)
            if entry is None or entry[0] > now + TIME_EPSILON_S:
                break
            heapq.heappop(self._capped_marks)
            flow = entry[2]
            flow.sent_bits = flow.target_bits
            flow.updated_s = now
            reached.append(flow)
        for flow in reached:
            event = flow.event
            if flow.target_bits >= flow.size_bits:
                self._remove(flow, flow.size_bits)
            else:  # a checkpoint: go on towards the full size unless the owner says otherwise
                flow.target_bits = flow.size_bits
                flow.event = self.env.event()
                flow.mark_version += 1
                self._push_mark(flow, now)
            event.succeed()
        while True:
            entry = self._peek(self._cap_changes, "alive")
            if entry is None or entry[0] > now + TIME_EPSILON_S:
                break
            heapq.heappop(self._cap_changes)
            self._change_cap(entry[2], now)
        if reached:
            self._rebalance(now)

    def _change_cap(self, flow: Flow, now: float) -> None:
        """The flow's access link changes rate now."""
        assert flow.access is not None
        flow.access_bps, change_s = flow.access.next_rate(now)
        self._set_cap(flow, now, min(flow.access_bps, flow.window_bps))
        if change_s < _INF:
            heapq.heappush(self._cap_changes, (change_s, next(self._seq), flow, flow.cap_version))
        self._rebalance(now)

    def _set_cap(self, flow: Flow, now: float, cap_bps: float) -> None:
        """Set the flow's limit now (the caller rebalances)."""
        if flow.capped:
            flow.sent_bits = self._sent(flow, now)
            flow.updated_s = now
            if cap_bps == _INF:  # no limit left: it shares (an infinite rate cannot join the sums)
                self._to_sharing(flow, now)
                flow.cap_bps = _INF
                flow.cap_version += 1
                return
            self._capped_bps -= flow.cap_bps
        flow.cap_bps = cap_bps
        flow.cap_version += 1
        if flow.capped:
            self._capped_bps += flow.cap_bps
            flow.mark_version += 1
            heapq.heappush(self._capped_caps, (-flow.cap_bps, next(self._seq), flow, flow.cap_version))
            self._push_mark(flow, now)
        elif flow.cap_bps < _INF:
            heapq.heappush(self._sharing_caps, (flow.cap_bps, next(self._seq), flow, flow.cap_version))

    def _next_event_s(self) -> float:
        if not (self._sharing or self._capped):
            return _INF
        next_s = self._next_capacity_s
        if self._sharing:
            entry = self._peek(self._sharing_marks)
            share_bps = self._fair_share_bps()
            if entry is not None and share_bps > 0.0:
                next_s = min(next_s, self._now_s + (entry[0] - self._virtual_bits) / share_bps)
        for heap, kind in ((self._capped_marks, "mark"), (self._cap_changes, "alive")):
            entry = self._peek(heap, kind)
            if entry is not None:
                next_s = min(next_s, entry[0])
        return next_s

    def _schedule(self) -> None:
        next_s = self._next_event_s()
        if next_s == self._timer_at_s:
            return
        self._timer_version += 1
        self._timer_at_s = next_s
        if next_s < _INF:
            version = self._timer_version
            timer = self.env.timeout(max(0.0, next_s - self.env.now))
            timer.callbacks.append(lambda _event, version=version: self._on_timer(version))  # type: ignore[misc]

    def _on_timer(self, version: int) -> None:
        if version != self._timer_version:
            return
        self._timer_at_s = _INF
        now = self.env.now
        self._advance(now)
        self._check_progress(now)
        self._fire_due(now)
        self._rebalance(now)
        self._schedule()

    def _check_progress(self, now: float) -> None:
        if self.delivered_bits > self._progress_bits:
            self._progress_s = now
            self._progress_bits = self.delivered_bits
        elif self.active_flows and now - self._progress_s > self.stall_limit_s:
            raise NoProgressError(
                f"link {self.name!r}: {self.active_flows} flow(s) received no data from "
                f"t={self._progress_s:.3f} s to t={now:.3f} s (stall limit {self.stall_limit_s:g} s); "
                "the link's capacity and their access links are never up at the same time"
            )

    def stats(self) -> dict[str, Any]:
        """Totals so far: delivered bits, capacity integrals, busy time and utilisation."""
        return {
            "link": self.name,
            "flows": self.flows_started,
            "delivered_bits": self.delivered_bits,
            "capacity_bits": self.capacity_bits,
            "busy_s": self.busy_s,
            "utilisation": self.delivered_bits / self.capacity_bits if self.capacity_bits > 0 else math.nan,
            "busy_utilisation": (self.delivered_bits / self.busy_capacity_bits
                                 if self.busy_capacity_bits > 0 else math.nan),
        }


class CdnRoute:
    """Where one segment request goes in the CDN: the tiers it visited and the one that serves it.

    Attributes:
        object_id: the requested object.
        visited: tier indices looked up, entry first (down tiers are skipped, not visited).
        tier: the serving tier (the last visited), or -1 if no healthy tier was left.
        rtt_s: round trips of the visited tiers (plus latency faults), added to the request latency.
        flows: the flows of this transfer on the tiers' finite links.
    """

    __slots__ = ("flows", "object_id", "rtt_s", "tier", "visited")

    def __init__(self, object_id: int, visited: list[int], tier: int, rtt_s: float) -> None:
        self.object_id = object_id
        self.visited = visited
        self.tier = tier
        self.rtt_s = rtt_s
        self.flows: list[Flow] = []


class CdnNetwork:
    """The CDN tiers of a discrete-event run: caches, round trips, serving and upstream links, faults.

    A request walks its player group's chain from the entry tier, skipping tiers that are down
    for that player at that time; each visited tier adds its ``rtt_s`` (plus any latency fault)
    to the request latency and is looked up (:meth:`abrsim.cdn.Cache.lookup`); the first hit,
    or the origin, serves it. The transfer then runs, at the same time as the player's own
    path, on the serving link of every visited tier (each serves the one below it, the entry
    tier serves the player) and the upstream link of every tier that missed; each is a shared
    :class:`Link` of constant capacity (infinite: no link). The missed tiers are filled
    (:meth:`abrsim.cdn.Cache.fill`) when the transfer completes.

    Args:
        env: the simulation environment.
        chain: the tiers (an :class:`abrsim.cdn.TierChain`).
        sizes_bytes: object sizes (an :class:`abrsim.cdn.Catalog`'s).
        entry: player group name -> entry tier index.
        faults: :class:`abrsim.scenario.CdnFault` entries.
    """

    def __init__(self, env: simpy.Environment, chain: Any, sizes_bytes: np.ndarray, entry: dict[str, int],
                 faults: Any = ()) -> None:
        from abrsim.cdn import CdnState

        self.env = env
        self.chain = chain
        self.state = CdnState(chain, sizes_bytes)
        self.names = chain.names
        self.tiers = chain.tiers
        self.entry = entry
        self.next = [chain.index(t.next) if t.next is not None else -1 for t in self.tiers]
        self.caches = [None if t.is_origin else self.state.caches[t.name] for t in self.tiers]
        self.serving = [self._link(env, t.serving_bandwidth_bps, f"{t.name}/serving") for t in self.tiers]
        self.upstream = [None if t.is_origin
                         else self._link(env, t.upstream_bandwidth_bps, f"{t.name}/upstream")
                         for t in self.tiers]
        self.faults: list[list[Any]] = [[] for _ in self.tiers]
        for fault in faults:
            self.faults[chain.index(fault.tier)].append(fault)
        self.served_bits = np.zeros(len(self.tiers))
        self.upstream_bits = np.zeros(len(self.tiers))
        self.max_used_bytes = np.zeros(len(self.tiers), dtype=np.int64)
        #: One row per request: (time_s, player, object_id, tier, bits, visited, segment).
        self.requests: list[tuple[float, str, int, int, float, tuple[int, ...], int]] = []

    @staticmethod
    def _link(env: simpy.Environment, bandwidth_bps: float, name: str) -> Link | None:
        if math.isinf(bandwidth_bps):
            return None
        return Link(env, Trace([0.0], [bandwidth_bps], 1.0, name=name), name)

    def status(self, tier: int, now_s: float, share: float) -> tuple[bool, float]:
        """Whether ``tier`` is down for a player of ``share`` at ``now_s``, and its extra round trip."""
        down = False
        extra_s = 0.0
        for fault in self.faults[tier]:
            if fault.start_s <= now_s < fault.end_s and share < fault.fraction:
                if fault.kind == "down":
                    down = True
                else:
                    extra_s += fault.extra_rtt_s
        return down, extra_s

    def route(self, group: str, object_id: int, now_s: float, share: float) -> CdnRoute:
        """Walk ``group``'s chain for ``object_id`` at simulation time ``now_s`` (lookups happen now)."""
        tier = self.entry[group]
        visited: list[int] = []
        rtt_s = 0.0
        while tier >= 0:
            down, extra_s = self.status(tier, now_s, share)
            if not down:
                rtt_s += self.tiers[tier].rtt_s + extra_s
                visited.append(tier)
                cache = self.caches[tier]
                if cache is None or cache.lookup(object_id):
                    return CdnRoute(object_id, visited, tier, rtt_s)
            tier = self.next[tier]
        return CdnRoute(object_id, visited, -1, rtt_s)

    def start(self, route: CdnRoute, bits: float) -> list[Flow]:
        """Start the transfer's flows: visited tiers' serving links, missed tiers' upstream links."""
        flows = []
        for position, tier in enumerate(route.visited):
            links = [self.serving[tier]]
            if position + 1 < len(route.visited):
                links.append(self.upstream[tier])
            flows += [link.start(bits) for link in links if link is not None]
        route.flows = flows
        return flows

    def finish(self, route: CdnRoute, player: str, request_s: float, segment: int, bits: float,
               completed: bool) -> None:
        """Log the request (``bits`` delivered to the player); if completed, fill the tiers that missed."""
        for flow in route.flows:
            if not flow.done:
                flow.link.cancel(flow)
        route.flows = []
        self.requests.append((request_s, player, route.object_id, route.tier, bits, tuple(route.visited),
                              segment))
        self.served_bits[route.tier] += bits
        missed = route.visited[:-1]
        for tier in missed:
            self.upstream_bits[tier] += bits
        if completed:
            for tier in reversed(missed):
                cache = self.caches[tier]
                assert cache is not None
                cache.fill(route.object_id)
                self.max_used_bytes[tier] = max(self.max_used_bytes[tier], cache.used_bytes)

    def fail(self, route: CdnRoute, player: str, request_s: float, segment: int) -> None:
        """Log a request that found no healthy tier."""
        self.requests.append((request_s, player, route.object_id, -1, 0.0, tuple(route.visited), segment))

    def links(self) -> list[Link]:
        """Every finite serving and upstream link."""
        return [link for link in (*self.serving, *self.upstream) if link is not None]
