"""The player and network model: one frozen dataclass, presets are instances.

Both engines read the same :class:`PlayerModel`; no engine has a code path per
preset. The model covers how a request is served (latency, then transfer over
the trace's piecewise-constant bandwidth), how the buffer fills and drains,
when playback starts and resumes, and how the player estimates throughput.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import Ladder
from abrsim.trace import Trace

__all__ = ["DASHJS", "ESTIMATORS", "PENSIEVE", "PRESETS", "SABRE", "PlayerModel", "get_preset"]

#: Throughput estimators a player can use, by name.
ESTIMATORS = ("ewma", "sliding")
#: Download models: ``throughput`` (a download gets the trace's bandwidth from its first byte)
#: and ``tcp`` (slow start over a persistent connection; see :class:`PlayerModel`).
NETWORKS = ("throughput", "tcp")
#: Abandonment checkpoints come at least this far apart (one of the two), so a download's checks
#: stay countable.
MIN_ABANDON_CHECK_S = 1e-3
MIN_ABANDON_CHECK_BITS = 1e3
#: The model's durations (latency, buffer, waits, checkpoints) are at most this many seconds
#: (about 11.6 days): beyond it, session clocks lose the precision the trace walk needs.
MAX_MODEL_TIME_S = 1e6


@dataclass(frozen=True)
class PlayerModel:
    """Parameters of the simulated player and its network path.

    Args:
        name: preset name, written to results.
        request_latency_s: time from sending a request to its first byte, seconds, used when
            the trace has no per-sample latency. No data moves during it; playback goes on.
        goodput_factor: share of the trace's bandwidth a download achieves, in (0, 1].
        max_buffer_s: the player requests a segment only when it fits: buffer + one
            segment <= max_buffer_s; otherwise it waits (playback continues). Must hold at
            least one segment of the ladder it is used with.
        startup_threshold_s: buffered media needed before playback starts, seconds; 0 means
            the first segment. Playback also starts when the next segment would not fit.
        resume_threshold_s: buffered media needed to resume after a stall, seconds; 0 means
            one segment. Playback also resumes when the next segment would not fit.
        first_rung: rung of the first segment; -1 lets the algorithm choose it.
        estimator: ``"ewma"`` (time-weighted, bias-corrected, minimum over half-lives) or
            ``"sliding"`` (mean of the last N samples, minimum over window sizes).
        ewma_half_lives_s: half-lives of the EWMA estimator, seconds of download time.
        sliding_window_sizes: window sizes of the sliding estimator, in samples (<= 20).
        latency_scaled: when a request's latency crosses into the next trace sample, continue it
            at that sample's latency (Sabre); otherwise the latency in force at the request holds.
        latency_on_trace_clock: whether the trace advances during request latency (False in
            Pensieve, whose 80 ms RTT is added to the download time but not to the trace clock).
        cap_counts_next_segment: wait until buffer + one segment <= ``max_buffer_s`` (True), or
            only until buffer <= ``max_buffer_s`` (Pensieve's drain rule).
        wait_step_s: round every full-buffer wait up to a multiple of this (Pensieve: 0.5 s).
        segment_limit: play only the first N segments of the ladder (0: all). Algorithms may
            still look at the sizes of later segments.
        abandonment: check during each download (except the first) whether the algorithm wants
            to abandon it; abandoned bits are wasted and the segment is requested again.
        abandon_check_bits: a check happens after at least this many bits ...
        abandon_check_s: ... and at least this long a transfer (Sabre: 12,000 bits, 50 ms).
        compat_sabre_retry_abr: Sabre compatibility: after an abandonment, ask the algorithm
            again instead of requesting the rung it abandoned to (Sabre ignores that rung).
        compat_sabre_residue_stalls: Sabre compatibility: count the zero-length stall Sabre's
            final playout records when its millisecond arithmetic leaves a residue of about
            1e-12 ms (see :mod:`abrsim.engine._sabre_ms`). Adds at most one to
            ``rebuffer_count`` and nothing to stall time. Needs Sabre's download model:
            ``latency_scaled``, ``latency_on_trace_clock`` and ``cap_counts_next_segment`` on,
            ``wait_step_s``, ``startup_threshold_s`` and ``resume_threshold_s`` 0.
        algorithm_defaults: parameter defaults this preset gives algorithms, as
            ``("algorithm.parameter", value)`` pairs; explicit parameters still win.
        network: the download model. ``throughput``: after the request latency a download moves
            at the trace's bandwidth (x ``goodput_factor``). ``tcp``: the session's requests share
            one persistent connection; the trace's bandwidth is the bottleneck's capacity in IP
            packets, the latency is the round trip. Each response starts in slow start from the
            connection's window (``tcp_initial_window`` for a new connection; RFC 6928): while the
            window is below the path's bandwidth-delay product each round trip delivers one
            window and the window doubles; from there the rest moves at capacity x
            ``tcp_mss_bytes`` / ``tcp_packet_bytes`` x ``goodput_factor``. The window carries over
            to the next response (grown by what was acknowledged, at most the bandwidth-delay
            product plus ``tcp_queue_packets``); an abandoned download closes the connection.
            Default ``tcp``: measured against the Linux stack it is the closer model
            (docs/real_network.md); the ``sabre`` and ``pensieve`` presets use ``throughput``.
        tcp_initial_window: packets a new connection may send before the first ACK (Linux: 10).
        tcp_mss_bytes: payload bytes per packet (1448: a 1500-byte MTU less 20 IP, 20 TCP and 12
            timestamp-option bytes).
        tcp_packet_bytes: bytes a full packet takes on the link (the MTU, 1500).
        tcp_queue_packets: the bottleneck's queue, packets (Mahimahi's droptail default here: 100).
        tcp_idle_restart: after an idle period longer than the retransmission timeout, the window
            restarts from the initial window, halved once per RTO (Linux's default:
            ``tcp_slow_start_after_idle`` with CUBIC or Reno); off for BBR, which keeps its window.
        session_time_limit_factor: a session still running after this multiple of the media
            duration it plays (session time, from the first request) ends there, timed out: a
            download in flight is cut and logged as abandoned, and the results say
            ``timed_out = 1``. Bounds the work of absurd inputs (a trace of a few bit/s, a
            latency of years); no session of the shipped traces comes near it.

    Raises:
        ValueError: on construction, if a value is out of range (the message names it).
    """

    name: str = "abrsim"
    request_latency_s: float = 0.04
    goodput_factor: float = 1.0
    max_buffer_s: float = 25.0
    startup_threshold_s: float = 0.0
    resume_threshold_s: float = 0.0
    first_rung: int = 0
    estimator: str = "ewma"
    ewma_half_lives_s: tuple[float, ...] = (3.0, 8.0)
    sliding_window_sizes: tuple[int, ...] = (3,)
    latency_scaled: bool = False
    latency_on_trace_clock: bool = True
    cap_counts_next_segment: bool = True
    wait_step_s: float = 0.0
    segment_limit: int = 0
    abandonment: bool = False
    abandon_check_bits: float = 12000.0
    abandon_check_s: float = 0.05
    compat_sabre_retry_abr: bool = False
    compat_sabre_residue_stalls: bool = False
    algorithm_defaults: tuple[tuple[str, object], ...] = ()
    session_time_limit_factor: float = 20.0
    network: str = "tcp"
    tcp_initial_window: int = 10
    tcp_mss_bytes: int = 1448
    tcp_packet_bytes: int = 1500
    tcp_queue_packets: int = 100
    tcp_idle_restart: bool = True

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, expected: str) -> None:
            if not ok:
                raise ValueError(f'"{field}" must be {expected}, got {getattr(self, field)!r}')

        object.__setattr__(self, "ewma_half_lives_s", tuple(float(v) for v in self.ewma_half_lives_s))
        object.__setattr__(self, "sliding_window_sizes", tuple(int(v) for v in self.sliding_window_sizes))
        check(0 <= self.request_latency_s <= MAX_MODEL_TIME_S, "request_latency_s",
              f"in [0, {MAX_MODEL_TIME_S:g}] s")
        check(0 < self.goodput_factor <= 1, "goodput_factor", "in (0, 1]")
        check(0 < self.max_buffer_s <= MAX_MODEL_TIME_S, "max_buffer_s", f"in (0, {MAX_MODEL_TIME_S:g}] s")
        check(0 <= self.startup_threshold_s <= self.max_buffer_s, "startup_threshold_s",
              "in [0, max_buffer_s]")
        check(0 <= self.resume_threshold_s <= self.max_buffer_s, "resume_threshold_s",
              "in [0, max_buffer_s]")
        check(int(self.first_rung) == self.first_rung and self.first_rung >= -1, "first_rung",
              "an integer >= -1")
        check(self.estimator in ESTIMATORS, "estimator", f"one of {', '.join(ESTIMATORS)}")
        check(0 < len(self.ewma_half_lives_s) <= 8 and all(v > 0 for v in self.ewma_half_lives_s),
              "ewma_half_lives_s", "1 to 8 values > 0")
        check(0 < len(self.sliding_window_sizes) <= 8
              and all(1 <= v <= 20 for v in self.sliding_window_sizes),
              "sliding_window_sizes", "1 to 8 integers in [1, 20]")
        check(0 <= self.wait_step_s <= MAX_MODEL_TIME_S, "wait_step_s", f"in [0, {MAX_MODEL_TIME_S:g}] s")
        check(int(self.segment_limit) == self.segment_limit and self.segment_limit >= 0, "segment_limit",
              "an integer >= 0")
        check(0 <= self.abandon_check_bits <= 1e15 and 0 <= self.abandon_check_s <= MAX_MODEL_TIME_S
              and self.abandon_check_bits + self.abandon_check_s > 0, "abandon_check_bits",
              "with abandon_check_s, >= 0 and not both 0")
        # Checkpoints at least every millisecond of transfer or every kilobit keep a download's
        # checks countable (a 1e-9 s step would make billions).
        check(not self.abandonment or self.abandon_check_s >= MIN_ABANDON_CHECK_S
              or self.abandon_check_bits >= MIN_ABANDON_CHECK_BITS, "abandon_check_s",
              f">= {MIN_ABANDON_CHECK_S:g} s or abandon_check_bits >= {MIN_ABANDON_CHECK_BITS:g} "
              "when abandonment is on")
        check(np.isfinite(self.session_time_limit_factor) and self.session_time_limit_factor >= 1,
              "session_time_limit_factor", "finite and >= 1")
        check(self.network in NETWORKS, "network", f"one of {', '.join(NETWORKS)}")
        check(_whole(self.tcp_initial_window, 1, 1000), "tcp_initial_window", "an integer in [1, 1000]")
        check(_whole(self.tcp_packet_bytes, 64, 65536), "tcp_packet_bytes", "an integer in [64, 65536]")
        check(_whole(self.tcp_mss_bytes, 1, self.tcp_packet_bytes), "tcp_mss_bytes",
              "an integer in [1, tcp_packet_bytes]")
        check(_whole(self.tcp_queue_packets, 0, 10**7), "tcp_queue_packets", "an integer in [0, 10000000]")
        if self.compat_sabre_residue_stalls:
            other = [name for name, ok in (
                ("latency_scaled", self.latency_scaled),
                ("latency_on_trace_clock", self.latency_on_trace_clock),
                ("cap_counts_next_segment", self.cap_counts_next_segment),
                ("wait_step_s", self.wait_step_s == 0),
                ("startup_threshold_s", self.startup_threshold_s == 0),
                ("resume_threshold_s", self.resume_threshold_s == 0)) if not ok]
            if other:
                raise ValueError(
                    f'"compat_sabre_residue_stalls" replays Sabre\'s download model, which '
                    f"{', '.join(other)} would change (Sabre: latency_scaled, latency_on_trace_clock "
                    "and cap_counts_next_segment on; wait_step_s, startup_threshold_s and "
                    "resume_threshold_s 0); also set compat_sabre_residue_stalls=false")
        object.__setattr__(self, "algorithm_defaults",
                           tuple((str(k), v) for k, v in self.algorithm_defaults))

    def check(self, ladder: Ladder) -> None:
        """Check that the model fits ``ladder``.

        Raises:
            InputError: if the model's first rung does not exist on ``ladder``, or one segment
                does not fit in its buffer.
        """
        if self.first_rung >= ladder.rung_count:
            raise InputError(
                f"got {self.first_rung}, expected -1 or a rung below {ladder.rung_count} "
                f"(ladder {ladder.name!r})",
                field="first_rung",
            )
        if self.cap_counts_next_segment and self.max_buffer_s < ladder.segment_duration_s:
            raise InputError(
                f"got {self.max_buffer_s:g}, expected at least one segment ({ladder.segment_duration_s:g} s "
                f"of ladder {ladder.name!r})",
                field="max_buffer_s",
            )

    @property
    def payload_factor(self) -> float:
        """The share of the trace's bandwidth that carries a download's bytes: ``goodput_factor``,
        times MSS / packet size with the ``tcp`` network (headers take the rest)."""
        if self.network == "tcp":
            return self.goodput_factor * self.tcp_mss_bytes / self.tcp_packet_bytes
        return self.goodput_factor

    @property
    def goodput_to_capacity(self) -> float:
        """What a goodput trace's numbers are multiplied by for this model's download walk: packet
        size / MSS with the tcp network (which reads traces as link capacity), else 1."""
        return self.tcp_packet_bytes / self.tcp_mss_bytes if self.network == "tcp" else 1.0

    def link_trace(self, trace: Trace | None) -> Trace | None:
        """The trace as this model's download walk reads it (see :attr:`goodput_to_capacity`)."""
        if self.network != "tcp" or trace is None:
            return trace
        return trace.as_capacity(self.goodput_to_capacity)

    def time_limit_s(self, ladder: Ladder) -> float:
        """Session time after which a session on ``ladder`` ends, timed out (see
        ``session_time_limit_factor``)."""
        media_s = self.segments_played(ladder) * ladder.segment_duration_s
        return float(self.session_time_limit_factor * media_s)

    def segments_played(self, ladder: Ladder) -> int:
        """How many segments of ``ladder`` a session plays under this model."""
        if 0 < self.segment_limit < ladder.segment_count:
            return int(self.segment_limit)
        return ladder.segment_count

    def replace(self, **changes: object) -> PlayerModel:
        """Return a copy with some fields changed (validated like the constructor).

        Raises:
            InputError: if a field name is unknown or a value is invalid.
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        converted: dict[str, object] = {}
        for key, value in changes.items():
            if key not in fields:
                raise UnknownNameError("player model field", key, sorted(fields))
            converted[key] = _coerce(key, value, getattr(self, key))
        try:
            return dataclasses.replace(self, **converted)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(str(exc), field=next(iter(changes))) from None

    def describe(self) -> str:
        """One line per field that differs from abrsim's own model."""
        base = PlayerModel()
        return "\n".join(f"{f.name} = {getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                         if getattr(self, f.name) != getattr(base, f.name))

    def fields(self) -> dict[str, object]:
        """The model's fields as a plain dict (for results and docs)."""
        return dataclasses.asdict(self)


def _whole(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is a whole number (not a bool) in [low, high]."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and float(value).is_integer() and low <= value <= high)


def _field_kind(current: object) -> tuple[tuple[type, ...], str] | None:
    """The types a value for a field holding ``current`` may have, and how to name them."""
    if isinstance(current, bool):
        return (bool,), "true or false"
    if isinstance(current, numbers.Integral):
        return (numbers.Integral,), "an integer"
    if isinstance(current, numbers.Real):
        return (numbers.Real,), "a number"
    if isinstance(current, tuple):
        return (tuple, list), "a list"
    if isinstance(current, str):
        return (str,), "a string"
    return None


def _coerce(key: str, value: object, current: object) -> object:
    """Convert a value given as text (from the CLI) to the type of the current one.

    Raises:
        InputError: if the text cannot be read as that type, or a value that is not text (from
            TOML) has another kind than the field's (a list for a number, a string for a flag).
    """
    if not isinstance(value, str):
        expected = _field_kind(current)
        if expected is not None and not (isinstance(value, expected[0]) and
                                         (isinstance(current, bool) or not isinstance(value, bool))):
            raise InputError(f"got {value!r}; expected {expected[1]}", field=key)
        return value
    try:
        if isinstance(current, bool):
            return {"true": True, "false": False, "1": True, "0": False}[value.lower()]
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            kind = type(current[0]) if current else float
            return tuple(kind(v) for v in value.replace(";", ",").split(",") if v.strip())
    except (KeyError, ValueError):
        raise InputError(
            f"cannot read {value!r} as {type(current).__name__}", field=key
        ) from None
    return value


#: Sabre (UMass-LIDS/sabre at 09b03bb, its defaults): latency from the trace, continued across
#: samples; 25 s buffer; first segment at rung 0; EWMA 3 s / 8 s; abandonment checked every
#: 12 kbit / 50 ms; after an abandonment the ABR is asked again (Sabre's typo, see its README);
#: the zero-length stall its final playout can count from float residue is counted too.
SABRE = PlayerModel(
    name="sabre",
    request_latency_s=0.0,
    max_buffer_s=25.0,
    latency_scaled=True,
    abandonment=True,
    compat_sabre_retry_abr=True,
    compat_sabre_residue_stalls=True,
    network="throughput",
)

#: Pensieve's test environment (hongzimao/pensieve test/fixed_env.py): 80 ms RTT outside the
#: trace clock, 95 % payload, 60 s buffer drained in 0.5 s sleeps, first chunk at rung 1,
#: 48 chunks; RobustMPC/FastMPC plan with the next chunk's sizes as test/mpc.py does.
PENSIEVE = PlayerModel(
    name="pensieve",
    request_latency_s=0.08,
    goodput_factor=0.95,
    max_buffer_s=60.0,
    first_rung=1,
    latency_on_trace_clock=False,
    cap_counts_next_segment=False,
    wait_step_s=0.5,
    segment_limit=48,
    network="throughput",
    algorithm_defaults=(("robustmpc.compat_pensieve_lookahead", True),
                        ("fastmpc.compat_pensieve_lookahead", True)),
)

#: dash.js v5.1.1's player around the ``dashjs`` rule set (docs/real_player.md), measured against
#: dash.js in Chromium through Mahimahi (``abrsim validate real-player``): ScheduleController asks
#: for the next segment while buffer + one segment < the target (``bufferTimeDefault``, 18 s; the
#: real player is given the same target at the top quality, abrsim has one) and re-checks a full
#: buffer every 500 ms (``scheduling.defaultTimeout``); playback starts and resumes with the first
#: segment appended; the first segment at dash.js's 1000 kbit/s initial bitrate (``first_rung = -1``
#: lets the rule set choose it); AbandonRequestsRule on XHR progress events (~50 ms apart); the
#: download over one persistent connection with the ``tcp`` model (BBR here: no idle restart) and
#: the emulated path's round trip as seen from the page (40 ms base + ~10 ms of tun and XHR).
DASHJS = PlayerModel(
    name="dashjs",
    request_latency_s=0.05,
    max_buffer_s=18.0,
    first_rung=-1,
    wait_step_s=0.5,
    abandonment=True,
    abandon_check_bits=0.0,
    abandon_check_s=0.05,
    network="tcp",
    tcp_idle_restart=False,
)

#: Built-in presets, by name: abrsim's own model and the peers' models, all of one dataclass.
PRESETS: Mapping[str, PlayerModel] = MappingProxyType(
    {"abrsim": PlayerModel(), "sabre": SABRE, "pensieve": PENSIEVE, "dashjs": DASHJS})


def get_preset(name: str) -> PlayerModel:
    """Return the preset ``name``.

    Raises:
        UnknownNameError: if there is no such preset.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError("player model", name, sorted(PRESETS)) from None
