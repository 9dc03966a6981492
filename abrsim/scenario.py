"""Discrete-event scenarios: players, links, traces, ladders and algorithms in one TOML file.

:func:`load_scenario` reads a scenario file into frozen dataclasses (:class:`Scenario`), which
:func:`abrsim.engine.des.simulate` runs. Every problem is one :class:`~abrsim.errors.InputError`
naming the file and the key (the line, for TOML syntax errors). The format is described in
``docs/des.md``; in short::

    name = "evening"
    seed = 7
    ladder = "hls"                           # default for every player group
    model = "abrsim"                         # or { preset = "sabre", fields = { max_buffer_s = 30 } }

    [traces.uplink]                          # named traces: path, builtin or bandwidth_bps
    builtin = "4g_high"
    scale = 2.0

    [bottleneck]                             # optional shared link: trace = NAME or bandwidth_bps
    trace = "uplink"

    [setup]                                  # the steps before the first frame
    dns_s = { dist = "uniform", low_s = 0.01, high_s = 0.05 }

    [abandonment]
    startup_threshold_s = 3.0
    probability = 0.5

    [[players]]
    name = "bola"
    count = 10
    abr = "bola"
    arrivals = { process = "poisson", rate_per_s = 0.5 }

Durations that may vary (the setup steps, the per-request RTT, watch time, trace offset) are a
number of seconds or a distribution table (:class:`Duration`), drawn with the scenario's seeded
generator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from abrsim import limits
from abrsim._toml import NAME_PATTERN, TomlReader, unusable_path
from abrsim.abr import KernelPolicy, PythonPolicy, make
from abrsim.cdn import ProactiveFill, Tier, TierChain
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import Ladder, available_ladders, load_ladder
from abrsim.model import MAX_MODEL_TIME_S, PlayerModel
from abrsim.trace import MAX_BANDWIDTH_BPS, TRACE_FORMATS, Trace, load_trace

__all__ = [
    "ARRIVAL_PROCESSES",
    "DISTRIBUTIONS",
    "Abandonment",
    "Arrivals",
    "Bottleneck",
    "CdnConfig",
    "CdnFault",
    "Duration",
    "PlayerGroup",
    "Scenario",
    "SessionSetup",
    "load_scenario",
    "parse_scenario",
]

#: Distribution kinds of a :class:`Duration`, with the keys each takes.
DISTRIBUTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "constant": ("value_s",),
    "uniform": ("low_s", "high_s"),
    "exponential": ("mean_s",),
    "lognormal": ("median_s", "sigma"),
})
#: A lognormal duration's sigma is at most this (e^5 is a factor of about 150 per standard deviation).
MAX_LOGNORMAL_SIGMA = 5.0
#: Arrival processes of a player group, with the keys each takes.
ARRIVAL_PROCESSES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "schedule": ("times_s",),
    "periodic": ("start_s", "interval_s"),
    "poisson": ("start_s", "rate_per_s", "diurnal", "diurnal_period_s"),
})


@dataclass(frozen=True)
class Duration:
    """A duration in seconds: a constant or a distribution.

    Args:
        kind: one of :data:`DISTRIBUTIONS`.
        values: the parameters, in the order :data:`DISTRIBUTIONS` lists them (seconds, except
            the lognormal ``sigma``).

    Raises:
        ValueError: if the kind is unknown or a parameter is out of range.
    """

    kind: str = "constant"
    values: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        if self.kind not in DISTRIBUTIONS:
            raise ValueError(f'"kind" must be one of {", ".join(DISTRIBUTIONS)}, got {self.kind!r}')
        values = tuple(float(v) for v in self.values)
        object.__setattr__(self, "values", values)
        names = DISTRIBUTIONS[self.kind]
        if len(values) != len(names):
            raise ValueError(f'"values" of a {self.kind} duration must be ({", ".join(names)}), '
                             f"got {values!r}")
        for name, value in zip(names, values, strict=True):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'"{name}" must be finite and >= 0, got {value!r}')
            if name.endswith("_s") and value > MAX_MODEL_TIME_S:
                raise ValueError(f'"{name}" must be at most {MAX_MODEL_TIME_S:g} s, got {value!r}')
        if self.kind == "lognormal" and values[1] > MAX_LOGNORMAL_SIGMA:
            raise ValueError(f'"sigma" must be at most {MAX_LOGNORMAL_SIGMA:g}, got {values[1]!r}')
        if self.kind == "uniform" and values[1] < values[0]:
            raise ValueError(f'"high_s" must be >= low_s ({values[0]!r}), got {values[1]!r}')

    @classmethod
    def constant(cls, value_s: float) -> Duration:
        """A fixed duration."""
        return cls("constant", (value_s,))

    @property
    def is_zero(self) -> bool:
        """Whether every draw is 0 (and draws consume no randomness)."""
        return self.kind == "constant" and self.values[0] == 0.0

    def draw(self, rng: np.random.Generator) -> float:
        """One value, seconds; a constant uses no randomness. (A lognormal's rare huge draws are
        cut at MAX_MODEL_TIME_S.)"""
        if self.kind == "constant":
            return self.values[0]
        if self.kind == "uniform":
            return float(rng.uniform(self.values[0], self.values[1]))
        if self.kind == "exponential":
            if self.values[0] <= 0:
                return 0.0
            return min(float(rng.exponential(self.values[0])), MAX_MODEL_TIME_S)
        median_s, sigma = self.values
        if median_s <= 0:
            return 0.0
        return min(float(median_s * math.exp(sigma * rng.standard_normal())), MAX_MODEL_TIME_S)


_ZERO = Duration()


@dataclass(frozen=True)
class SessionSetup:
    """The steps a player takes before its first frame, as a streaming service breaks them down.

    Playback starts with a DNS lookup, connection and TLS setup and the manifest fetch (in that
    order, before the first segment request), then the segment downloads of the player model;
    the first frame shows ``decode_s`` after playback starts. All are 0 by default, which makes
    a discrete-event player identical to the fast engine.

    Args:
        dns_s: DNS lookup (streaming services see about 10-50 ms).
        connect_s: TCP connection and TLS setup (about 50-200 ms).
        manifest_s: manifest fetch.
        decode_s: decoding the first frame (about 50-100 ms): delays the whole playout.
        rtt_s: each request's time to first byte, drawn per request; None: the player model's
            (the trace's latency, or ``request_latency_s``).
        reuse_connections: keep the connection for all requests; False pays ``connect_s``
            (drawn again) in every segment request's time to first byte.
    """

    dns_s: Duration = _ZERO
    connect_s: Duration = _ZERO
    manifest_s: Duration = _ZERO
    decode_s: Duration = _ZERO
    rtt_s: Duration | None = None
    reuse_connections: bool = True


@dataclass(frozen=True)
class Arrivals:
    """When a group's players arrive, seconds of simulation time.

    Args:
        process: ``schedule`` (the times in ``times_s``), ``periodic`` (from ``start_s`` every
            ``interval_s``; 0: all at once) or ``poisson`` (from ``start_s`` at ``rate_per_s``).
        times_s: the arrival times of a schedule.
        start_s: first arrival (periodic) or start of the process (poisson).
        interval_s: spacing of periodic arrivals.
        rate_per_s: rate of Poisson arrivals (where the diurnal multiplier is 1).
        diurnal: optional rate multipliers over one ``diurnal_period_s`` (e.g. 24 hourly values,
            >= 0, not all 0), piecewise constant, phased from simulation time 0; Poisson arrivals
            then follow ``rate_per_s * m(t)``, drawn by thinning (Lewis and Shedler, 1979).
        diurnal_period_s: the period the multipliers span, seconds (default one day).

    Raises:
        ValueError: if a value is out of range.
    """

    process: str = "periodic"
    times_s: tuple[float, ...] = ()
    start_s: float = 0.0
    interval_s: float = 0.0
    rate_per_s: float = 1.0
    diurnal: tuple[float, ...] = ()
    diurnal_period_s: float = 86_400.0

    def __post_init__(self) -> None:
        if self.process not in ARRIVAL_PROCESSES:
            raise ValueError(f'"process" must be one of {", ".join(ARRIVAL_PROCESSES)}, got {self.process!r}')
        object.__setattr__(self, "times_s", tuple(float(t) for t in self.times_s))
        # Times within MAX_MODEL_TIME_S (and a mean gap no longer): a simulation of years of
        # empty links is a typo's work, not a scenario's.
        for name in ("start_s", "interval_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= MAX_MODEL_TIME_S):
                raise ValueError(f'"{name}" must be in [0, {MAX_MODEL_TIME_S:g}] s, got {value!r}')
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s >= 1.0 / MAX_MODEL_TIME_S):
            raise ValueError(f'"rate_per_s" must be finite and >= {1.0 / MAX_MODEL_TIME_S:g}, '
                             f"got {self.rate_per_s!r}")
        if any(not (math.isfinite(t) and 0.0 <= t <= MAX_MODEL_TIME_S) for t in self.times_s):
            raise ValueError(f'"times_s" must be in [0, {MAX_MODEL_TIME_S:g}] s, got {self.times_s!r}')
        object.__setattr__(self, "diurnal", tuple(float(m) for m in self.diurnal))
        if self.diurnal and (any(not (math.isfinite(m) and m >= 0.0) for m in self.diurnal)
                             or max(self.diurnal) <= 0.0):
            raise ValueError(f'"diurnal" must be multipliers >= 0, not all 0, got {self.diurnal!r}')
        if not (math.isfinite(self.diurnal_period_s) and self.diurnal_period_s > 0.0):
            raise ValueError(f'"diurnal_period_s" must be finite and > 0, got {self.diurnal_period_s!r}')

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` arrival times, sorted."""
        if self.process == "schedule":
            return np.sort(np.array(self.times_s[:count], dtype=np.float64))
        if self.process == "periodic":
            return self.start_s + self.interval_s * np.arange(count, dtype=np.float64)
        if not self.diurnal:
            return self.start_s + np.cumsum(rng.exponential(1.0 / self.rate_per_s, count))
        # Thinning: candidates at the peak rate, each kept with probability m(t) / max(m).
        multipliers = np.array(self.diurnal)
        peak = float(multipliers.max())
        times = np.empty(count)
        time_s = self.start_s
        kept = 0
        while kept < count:
            time_s += float(rng.exponential(1.0 / (self.rate_per_s * peak)))
            part = int((time_s % self.diurnal_period_s) / self.diurnal_period_s * multipliers.size)
            if float(rng.random()) * peak < multipliers[min(part, multipliers.size - 1)]:
                times[kept] = time_s
                kept += 1
        return times


@dataclass(frozen=True)
class Abandonment:
    """Viewers who give up waiting for the first frame.

    A viewer whose first frame has not shown ``startup_threshold_s`` after arriving leaves then
    with probability ``probability`` (drawn once per viewer).

    Raises:
        ValueError: if a value is out of range.
    """

    startup_threshold_s: float = 3.0
    probability: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.startup_threshold_s) and self.startup_threshold_s >= 0.0):
            raise ValueError(f'"startup_threshold_s" must be finite and >= 0, '
                             f"got {self.startup_threshold_s!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f'"probability" must be in [0, 1], got {self.probability!r}')


@dataclass(frozen=True)
class Bottleneck:
    """The shared link between every player's access link and the server."""

    trace: Trace


@dataclass(frozen=True, eq=False)
class PlayerGroup:
    """Players that share an algorithm, a ladder, a model, an access trace and an arrival process.

    Args:
        name: label of the group; players are named ``<group>/<index>``.
        count: number of players.
        policy: the ABR algorithm with its parameters.
        ladder: the title they watch.
        model: their player model.
        arrivals: when they arrive.
        access: their access links' trace, or None for access links that never limit (then the
            scenario needs a bottleneck).
        trace_offset_s: where in the access trace each player starts (drawn per player).
        watch_s: how much of the title each viewer watches (drawn per player, rounded up to whole
            segments); None: all of it.
        setup: the steps before the first frame.
    """

    name: str
    count: int
    policy: KernelPolicy | PythonPolicy
    ladder: Ladder
    model: PlayerModel
    arrivals: Arrivals = field(default_factory=Arrivals)
    access: Trace | None = None
    trace_offset_s: Duration = _ZERO
    watch_s: Duration | None = None
    setup: SessionSetup = field(default_factory=SessionSetup)


#: Kinds of a :class:`CdnFault`.
FAULT_KINDS = ("down", "latency")


@dataclass(frozen=True)
class CdnFault:
    """A scheduled fault of one CDN tier: down, or slower, for a time window and a share of clients.

    Args:
        tier: the tier's name.
        start_s: start of the window, simulation seconds.
        end_s: end of the window (exclusive), > ``start_s``.
        kind: ``down`` (requests skip the tier) or ``latency`` (the tier adds ``extra_rtt_s``).
        fraction: share of the players affected, in (0, 1]; each player draws once whether it is.
        extra_rtt_s: added round trip of a ``latency`` fault, seconds.
    """

    tier: str
    start_s: float
    end_s: float
    kind: str = "down"
    fraction: float = 1.0
    extra_rtt_s: float = 0.0


@dataclass(frozen=True, eq=False)
class CdnConfig:
    """The CDN between the players and the origin (see ``docs/cdn.md``).

    Args:
        chain: the tiers; its client groups are the scenario's player groups.
        titles: titles per ladder in the catalog; each player watches one.
        alpha: Zipf exponent of title popularity, > 0.
        faults: scheduled outages and latency faults.
        bin_s: width of the time bins of the per-tier series, seconds.
        sweep_tier: tier whose capacity ``sweep_capacities_bytes`` sweeps (None: no sweep).
        sweep_capacities_bytes: the capacities of a cache-size sweep.
        fills: proactive fills: pushes of the most popular titles into a tier's cache during a
            window, at a rate limit (objects land in the cache as the fill delivers them).
    """

    chain: TierChain
    titles: int = 100
    alpha: float = 0.8
    faults: tuple[CdnFault, ...] = ()
    bin_s: float = 60.0
    sweep_tier: str | None = None
    sweep_capacities_bytes: tuple[float, ...] = ()
    fills: tuple[ProactiveFill, ...] = ()

    def with_capacity(self, tier: str, capacity_bytes: float) -> CdnConfig:
        """The same CDN with ``tier``'s cache capacity replaced."""
        tiers = tuple(dataclasses.replace(t, capacity_bytes=capacity_bytes) if t.name == tier else t
                      for t in self.chain.tiers)
        return dataclasses.replace(self, chain=TierChain(tiers, dict(self.chain.groups or {})))


@dataclass(frozen=True, eq=False)
class Scenario:
    """A discrete-event scenario: player groups, their links, the shared bottleneck and a seed."""

    name: str
    groups: tuple[PlayerGroup, ...]
    bottleneck: Bottleneck | None = None
    abandonment: Abandonment = field(default_factory=Abandonment)
    seed: int = 0
    description: str = ""
    source: Path | None = None
    cdn: CdnConfig | None = None

    @property
    def players(self) -> int:
        """Number of players in all groups."""
        return sum(group.count for group in self.groups)


# ---------------------------------------------------------------------------------------------
# Reading TOML
# ---------------------------------------------------------------------------------------------

_TOP_KEYS = ("name", "description", "seed", "ladder", "model", "traces", "bottleneck", "setup",
             "abandonment", "players", "cdn")
_CDN_KEYS = ("titles", "alpha", "bin_s", "groups", "tiers", "outages", "fills", "sweep")
_FILL_KEYS = ("tier", "start_s", "duration_s", "rate_bps", "rungs")
_TIER_KEYS = ("name", "capacity_bytes", "rtt_s", "serving_bandwidth_bps", "upstream_bandwidth_bps", "policy",
              "admit_after", "next")
_OUTAGE_KEYS = ("tier", "start_s", "end_s", "kind", "fraction", "extra_rtt_s")
_TRACE_KEYS = ("path", "builtin", "bandwidth_bps", "duration_s", "format", "scale")
_SETUP_KEYS = ("dns_s", "connect_s", "manifest_s", "decode_s", "rtt_s", "reuse_connections")
_GROUP_KEYS = ("name", "count", "abr", "policy", "params", "ladder", "model", "access_trace", "arrivals",
               "trace_offset_s", "watch_s", "setup")
_MODEL_KEYS = ("preset", "fields")


class _Reader(TomlReader):
    """:class:`abrsim._toml.TomlReader` plus the scenario's duration values."""

    def duration(self, value: Any, key: str) -> Duration:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0 <= value <= MAX_MODEL_TIME_S:  # (false for NaN, and no float() of a 400-digit integer)
                raise self.error(f"got {value!r}; expected a number of seconds in [0, {MAX_MODEL_TIME_S:g}] "
                                 "or a distribution table", key)
            return Duration.constant(float(value))
        if not isinstance(value, dict):
            raise self.error(f"got {value!r}; expected a number of seconds or a table such as "
                             '{ dist = "uniform", low_s = 0.01, high_s = 0.05 }', key)
        kind = self.get(value, "dist", (str,), f"{key}.dist")
        if kind not in DISTRIBUTIONS:
            raise self.error(f"got {kind!r}; expected one of {', '.join(DISTRIBUTIONS)}", f"{key}.dist")
        names = DISTRIBUTIONS[kind]
        self.keys(value, ("dist", *names), key)
        values = tuple(self.number(value, name, f"{key}.{name}") for name in names)
        try:
            return Duration(kind, values)
        except ValueError as exc:
            raise self.error(str(exc), key) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Relative trace and ladder paths start at the file's folder.

    Raises:
        InputError: naming the file and the key (or line), if the file cannot be read or is invalid.
    """
    source = Path(path)
    limits.check_file_size("input_bytes", source)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file: {exc}", source=source) from None
    return parse_scenario(text, source=source)


def parse_scenario(text: str, source: str | Path | None = None) -> Scenario:
    """Validate a scenario given as TOML text (relative paths start at ``source``'s folder).

    Raises:
        InputError: naming the file (``<scenario>`` without one) and the key.
    """
    path = None if source is None else Path(source)
    read = _Reader(path if path is not None else "<scenario>", _TOP_KEYS)
    doc = read.parse(text)
    read.keys(doc, _TOP_KEYS, "")
    base_dir = path.parent if path is not None else Path(".")
    name = read.name(doc, "name", None)
    description = read.get(doc, "description", (str,), "description", "")
    seed = read.get(doc, "seed", (int,), "seed", 0)
    if seed < 0:
        raise read.error(f"got {seed}; expected an integer >= 0", "seed")
    traces = _read_traces(read, doc, base_dir)
    bottleneck = _read_bottleneck(read, doc, traces)
    default_ladder = _read_ladder(read, doc.get("ladder", "hls"), "ladder", base_dir)
    default_model = _read_model(read, doc.get("model", "abrsim"), "model")
    setup_table = read.get(doc, "setup", (dict,), "setup", {})
    default_setup = _read_setup(read, setup_table, "setup", SessionSetup())
    table = read.get(doc, "abandonment", (dict,), "abandonment", {})
    read.keys(table, ("startup_threshold_s", "probability"), "abandonment")
    threshold_s = read.number(table, "startup_threshold_s", "abandonment.startup_threshold_s", 3.0)
    probability = read.number(table, "probability", "abandonment.probability", 0.0)
    if probability > 1.0:
        raise read.error(f"got {probability!r}; expected a probability in [0, 1]", "abandonment.probability")
    abandonment = Abandonment(threshold_s, probability)
    groups = _read_groups(read, doc, traces, base_dir, default_ladder, default_model, default_setup,
                          bottleneck is not None)
    cdn = _read_cdn(read, doc, groups)
    return Scenario(name=name, groups=groups, bottleneck=bottleneck, abandonment=abandonment, seed=seed,
                    description=description, source=path, cdn=cdn)


def _read_traces(read: _Reader, doc: Mapping[str, Any], base_dir: Path) -> dict[str, Trace]:
    from abrsim._data import data_dir

    traces: dict[str, Trace] = {}
    for trace_name, entry in read.get(doc, "traces", (dict,), "traces", {}).items():
        key = f"traces.{trace_name}"
        if not NAME_PATTERN.match(trace_name):
            raise read.error("expected a name of letters, digits and _ . + -", key)
        if not isinstance(entry, dict):
            raise read.error(f"got {entry!r}; expected a table with path, builtin or bandwidth_bps", key)
        read.keys(entry, _TRACE_KEYS, key)
        kinds = [k for k in ("path", "builtin", "bandwidth_bps") if k in entry]
        if len(kinds) != 1:
            raise read.error("expected exactly one of path, builtin or bandwidth_bps", key)
        kind = kinds[0]
        if kind != "bandwidth_bps" and "duration_s" in entry:
            raise read.error("applies to bandwidth_bps traces only", f"{key}.duration_s")
        if kind != "path" and "format" in entry:
            raise read.error("applies to path traces only", f"{key}.format")
        if kind == "bandwidth_bps":
            bandwidth_bps = read.number(entry, "bandwidth_bps", f"{key}.bandwidth_bps", strict=True,
                                        maximum=MAX_BANDWIDTH_BPS)
            duration_s = read.number(entry, "duration_s", f"{key}.duration_s", 1.0, strict=True)
            trace = Trace([0.0], [bandwidth_bps], duration_s, name=trace_name)
        else:
            value = read.get(entry, kind, (str,), f"{key}.{kind}")
            fmt = read.get(entry, "format", (str,), f"{key}.format")
            if fmt is not None and fmt not in TRACE_FORMATS:
                raise read.error(f"got {fmt!r}; expected one of {', '.join(TRACE_FORMATS)}", f"{key}.format")
            file = data_dir("traces") / f"{value}.csv" if kind == "builtin" else base_dir / value
            if unusable_path(file):
                raise read.error(f"found {unusable_path(file)}; expected a file name", f"{key}.{kind}")
            if kind == "builtin":
                if not file.is_file():
                    names = sorted(p.stem for p in data_dir("traces").glob("*.csv"))
                    raise read.error(f"unknown built-in trace {value!r}; expected one of {', '.join(names)}",
                                     f"{key}.builtin")
            else:
                if not file.is_file():
                    raise read.error(f"{file} is not a file (relative paths start at {base_dir})",
                                     f"{key}.path")
            trace = load_trace(file, fmt)  # its own errors name the trace file and line
        scale = read.number(entry, "scale", f"{key}.scale", 1.0, strict=True)
        try:
            trace = Trace(trace.start_s, trace.bandwidth_bps * scale, trace.duration_s, trace.latency_s,
                          name=trace_name)
        except ValueError as exc:
            raise read.error(f"the scaled trace does not fit: {exc}", f"{key}.scale") from None
        traces[trace_name] = trace
    return traces


def _trace_ref(read: _Reader, value: Any, key: str, traces: Mapping[str, Trace]) -> Trace:
    if not isinstance(value, str):
        raise read.error(f"got {value!r}; expected the name of a [traces.NAME] table", key)
    if value not in traces:
        known = ", ".join(traces) if traces else "none defined"
        raise read.error(f"no trace named {value!r}; expected one of the [traces] tables ({known})", key)
    return traces[value]


def _read_bottleneck(read: _Reader, doc: Mapping[str, Any], traces: Mapping[str, Trace]) -> Bottleneck | None:
    table = read.get(doc, "bottleneck", (dict,), "bottleneck")
    if table is None:
        return None
    read.keys(table, ("trace", "bandwidth_bps"), "bottleneck")
    if ("trace" in table) == ("bandwidth_bps" in table):
        raise read.error("expected exactly one of trace or bandwidth_bps", "bottleneck")
    if "trace" in table:
        return Bottleneck(_trace_ref(read, table["trace"], "bottleneck.trace", traces))
    bandwidth_bps = read.number(table, "bandwidth_bps", "bottleneck.bandwidth_bps", strict=True,
                                maximum=MAX_BANDWIDTH_BPS)
    return Bottleneck(Trace([0.0], [bandwidth_bps], 1.0, name="bottleneck"))


def _read_ladder(read: _Reader, value: Any, key: str, base_dir: Path) -> Ladder:
    segment_duration_s = None
    if isinstance(value, dict):
        read.keys(value, ("path", "segment_duration_s"), key)
        target = read.get(value, "path", (str,), f"{key}.path")
        if target is None:
            raise read.error("missing key", f"{key}.path")
        if "segment_duration_s" in value:
            segment_duration_s = read.number(value, "segment_duration_s", f"{key}.segment_duration_s",
                                             strict=True)
    elif isinstance(value, str):
        target = value
    else:
        raise read.error(f"got {value!r}; expected a ladder name, a path or a table", key)
    known = target in available_ladders() or Path(target).suffix.lower() not in (".toml", ".json", ".csv")
    path = base_dir / target
    if not known and unusable_path(path) is None and not path.is_file():
        raise read.error(f"found no file {str(path)!r}; expected a ladder file (a relative path starts at "
                         "the scenario's folder) or a built-in ladder name", key)
    try:
        return load_ladder(target if known else path, segment_duration_s=segment_duration_s)
    except UnknownNameError as exc:
        raise read.error(str(exc), key) from None


def _read_model(read: _Reader, value: Any, key: str) -> PlayerModel:
    table, model = read.preset(value, key, _MODEL_KEYS)
    fields = read.get(table, "fields", (dict,), f"{key}.fields", {})
    return read.model_fields(model, fields, f"{key}.fields")


def _read_setup(read: _Reader, table: Any, key: str, base: SessionSetup) -> SessionSetup:
    if not isinstance(table, dict):
        raise read.error(f"got {table!r}; expected a table", key)
    read.keys(table, _SETUP_KEYS, key)
    changes: dict[str, Any] = {}
    for name in ("dns_s", "connect_s", "manifest_s", "decode_s", "rtt_s"):
        if name in table:
            changes[name] = read.duration(table[name], f"{key}.{name}")
    if "reuse_connections" in table:
        changes["reuse_connections"] = read.get(table, "reuse_connections", (bool,),
                                                f"{key}.reuse_connections")
    return dataclasses.replace(base, **changes)


def _read_arrivals(read: _Reader, table: Any, key: str, count: int | None) -> tuple[Arrivals, int]:
    try:
        return _read_arrivals_unchecked(read, table, key, count)
    except ValueError as exc:  # (InputError is one too, and already names the key)
        if isinstance(exc, InputError):
            raise
        raise read.error(str(exc), key) from None


def _read_arrivals_unchecked(read: _Reader, table: Any, key: str, count: int | None) -> tuple[Arrivals, int]:
    if not isinstance(table, dict):
        raise read.error(f"got {table!r}; expected a table such as "
                         '{ process = "poisson", rate_per_s = 1 }', key)
    process = read.get(table, "process", (str,), f"{key}.process", "periodic")
    if process not in ARRIVAL_PROCESSES:
        raise read.error(f"got {process!r}; expected one of {', '.join(ARRIVAL_PROCESSES)}", f"{key}.process")
    read.keys(table, ("process", *ARRIVAL_PROCESSES[process]), key)
    if process == "schedule":
        times = read.get(table, "times_s", (list,), f"{key}.times_s")
        if not times or not all(isinstance(t, (int, float)) and not isinstance(t, bool)
                                and math.isfinite(t) and t >= 0 for t in times):
            raise read.error(f"got {times!r}; expected a non-empty array of times >= 0", f"{key}.times_s")
        if count is not None and count != len(times):
            raise read.error(f"count is {count} but times_s has {len(times)} times", f"{key}.times_s")
        return Arrivals("schedule", times_s=tuple(times)), len(times)
    if count is None:
        count = 1
    start_s = read.number(table, "start_s", f"{key}.start_s", 0.0)
    if process == "periodic":
        return Arrivals("periodic", start_s=start_s,
                        interval_s=read.number(table, "interval_s", f"{key}.interval_s", 0.0)), count
    rate = read.number(table, "rate_per_s", f"{key}.rate_per_s", strict=True)
    diurnal = read.get(table, "diurnal", (list,), f"{key}.diurnal", [])
    if diurnal and not (all(isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m)
                            and m >= 0 for m in diurnal) and max(diurnal) > 0):
        raise read.error(f"got {diurnal!r}; expected rate multipliers >= 0, not all 0", f"{key}.diurnal")
    period_s = read.number(table, "diurnal_period_s", f"{key}.diurnal_period_s", 86_400.0, strict=True)
    return Arrivals("poisson", start_s=start_s, rate_per_s=rate, diurnal=tuple(diurnal),
                    diurnal_period_s=period_s), count


def _read_policy(read: _Reader, reference: str, key: str, base_dir: Path) -> PythonPolicy:
    """A ``policy = "FILE.py:CLASS"`` entry; FILE is relative to the scenario file's folder."""
    from abrsim.abr import load_policy
    from abrsim.abr._python import PolicyError

    file_part, sep, name = reference.rpartition(":")
    path = Path(file_part)
    if sep and file_part and not path.is_absolute():
        reference = f"{base_dir / path}:{name}"
    try:
        return load_policy(reference)
    except PolicyError as exc:
        raise read.error(str(exc), key) from None


def _read_groups(read: _Reader, doc: Mapping[str, Any], traces: Mapping[str, Trace], base_dir: Path,
                 default_ladder: Ladder, default_model: PlayerModel, default_setup: SessionSetup,
                 has_bottleneck: bool) -> tuple[PlayerGroup, ...]:
    entries = read.get(doc, "players", (list,), "players")
    if not entries:
        raise read.error("missing key; expected one or more [[players]] tables", "players")
    groups: list[PlayerGroup] = []
    for index, entry in enumerate(entries):
        key = f"players[{index}]"
        if not isinstance(entry, dict):
            raise read.error(f"got {entry!r}; expected a table", key)
        read.keys(entry, _GROUP_KEYS, key)
        abr = read.get(entry, "abr", (str,), f"{key}.abr")
        reference = read.get(entry, "policy", (str,), f"{key}.policy")
        if (abr is None) == (reference is None):
            raise read.error("expected exactly one of abr (a registered algorithm) and policy "
                             "(FILE.py:CLASS, a Python policy)", f"{key}.abr")
        python_policy = None
        if reference is not None:
            python_policy = _read_policy(read, reference, f"{key}.policy", base_dir)
            abr = python_policy.name
        name = read.name(entry, f"{key}.name", abr)
        if any(group.name == name for group in groups):
            raise read.error(f"duplicate group name {name!r}; give each [[players]] table its own name",
                             f"{key}.name")
        count = read.get(entry, "count", (int,), f"{key}.count")
        if count is not None and count < 1:
            raise read.error(f"got {count}; expected an integer >= 1", f"{key}.count")
        arrivals, count = _read_arrivals(read, entry.get("arrivals", {}), f"{key}.arrivals", count)
        limits.check("players", count + sum(g.count for g in groups), "players in the scenario",
                     source=read.source, field=f"{key}.count")
        ladder = _read_ladder(read, entry["ladder"], f"{key}.ladder", base_dir) if "ladder" in entry \
            else default_ladder
        model = _read_model(read, entry["model"], f"{key}.model") if "model" in entry else default_model
        params = read.get(entry, "params", (dict,), f"{key}.params", {})
        if python_policy is not None and params:
            raise read.error("a Python policy takes no params (give its class defaults instead)",
                             f"{key}.params")
        try:
            policy = python_policy or make(abr, **params).resolved(model)
            policy.check(ladder)
        except UnknownNameError as exc:
            where = f"{key}.abr" if exc.kind == "algorithm" else f"{key}.params"
            raise read.error(str(exc), where) from None
        except InputError as exc:
            param = (exc.field or "").rpartition(".")[2]
            raise read.error(exc.detail, f"{key}.params.{param}" if param else f"{key}.params") from None
        try:
            model.check(ladder)
        except InputError as exc:
            raise read.error(f"{exc.field}: {exc.detail}", f"{key}.model") from None
        access = None
        if "access_trace" in entry:
            access = _trace_ref(read, entry["access_trace"], f"{key}.access_trace", traces)
        elif not has_bottleneck:
            raise read.error("a player needs an access_trace or a [bottleneck] link, or its downloads "
                             "would take no time", f"{key}.access_trace")
        setup = default_setup
        if "setup" in entry:
            setup = _read_setup(read, entry["setup"], f"{key}.setup", default_setup)
        offset = read.duration(entry.get("trace_offset_s", 0.0), f"{key}.trace_offset_s")
        if not offset.is_zero and access is None:
            raise read.error("applies to players with an access_trace only", f"{key}.trace_offset_s")
        watch = read.duration(entry["watch_s"], f"{key}.watch_s") if "watch_s" in entry else None
        groups.append(PlayerGroup(name=name, count=count, policy=policy, ladder=ladder, model=model,
                                  arrivals=arrivals, access=access, trace_offset_s=offset, watch_s=watch,
                                  setup=setup))
    return tuple(groups)


def _read_cdn(read: _Reader, doc: Mapping[str, Any], groups: Sequence[PlayerGroup]) -> CdnConfig | None:
    table = read.get(doc, "cdn", (dict,), "cdn")
    if table is None:
        return None
    read.keys(table, _CDN_KEYS, "cdn")
    titles = read.get(table, "titles", (int,), "cdn.titles", 100)
    if titles < 1:
        raise read.error(f"got {titles}; expected an integer >= 1", "cdn.titles")
    limits.check("titles", titles, "titles", source=read.source, field="cdn.titles")
    alpha = read.number(table, "alpha", "cdn.alpha", 0.8, strict=True)
    bin_s = read.number(table, "bin_s", "cdn.bin_s", 60.0, strict=True)
    entries = read.get(table, "tiers", (list,), "cdn.tiers")
    if not entries:
        raise read.error("missing key; expected one or more [[cdn.tiers]] tables, the origin last",
                         "cdn.tiers")
    tiers: list[Tier] = []
    position: dict[str, int] = {}
    linked = any(isinstance(entry, dict) and "next" in entry for entry in entries)
    for index, entry in enumerate(entries):
        key = f"cdn.tiers[{index}]"
        if not isinstance(entry, dict):
            raise read.error(f"got {entry!r}; expected a table", key)
        read.keys(entry, _TIER_KEYS, key)
        name = read.name(entry, f"{key}.name", None)
        values: dict[str, Any] = {"name": name}
        for item in ("capacity_bytes", "rtt_s", "serving_bandwidth_bps", "upstream_bandwidth_bps"):
            if item in entry:
                values[item] = float(read.get(entry, item, (int, float), f"{key}.{item}"))
                if item.endswith("_bandwidth_bps") and values[item] > MAX_BANDWIDTH_BPS:
                    raise read.error(f"got {values[item]!r}; expected at most {MAX_BANDWIDTH_BPS:g} "
                                     "(1 Tbit/s)", f"{key}.{item}")
        if "policy" in entry:
            values["policy"] = read.get(entry, "policy", (str,), f"{key}.policy")
        if "admit_after" in entry:
            values["admit_after"] = read.get(entry, "admit_after", (int,), f"{key}.admit_after")
        if linked:
            values["next"] = read.get(entry, "next", (str,), f"{key}.next")
        elif index + 1 < len(entries) and isinstance(entries[index + 1], dict):
            following = entries[index + 1].get("name")
            values["next"] = following if isinstance(following, str) else None
        values.setdefault("capacity_bytes", None)
        try:
            tiers.append(Tier(**values))
        except InputError as exc:
            raise read.error(exc.detail, f"{key}.{exc.field}") from None
        position.setdefault(name, index)
    group_names = [group.name for group in groups]
    entry_of = read.get(table, "groups", (dict,), "cdn.groups")
    chain_groups: dict[str, str] | None = None
    if entry_of is not None:
        for group_name, tier_name in entry_of.items():
            if group_name not in group_names:
                raise read.error(f"no player group {group_name!r} (known: {', '.join(group_names)})",
                                 f"cdn.groups.{group_name}")
            if not isinstance(tier_name, str):
                raise read.error(f"got {tier_name!r}; expected a tier name", f"cdn.groups.{group_name}")
        missing = [name for name in group_names if name not in entry_of]
        if missing:
            raise read.error(f"player group {missing[0]!r} has no entry tier", "cdn.groups")
        chain_groups = {name: entry_of[name] for name in group_names}
    try:
        chain = TierChain(tuple(tiers), chain_groups)
    except InputError as exc:
        tier_name = (exc.source or "").removeprefix("tier ").strip("'\"")
        if tier_name in position:
            where = f"cdn.tiers[{position[tier_name]}].{exc.field}"
        else:
            where = f"cdn.{exc.field or 'tiers'}"
        raise read.error(exc.detail, where) from None
    faults: list[CdnFault] = []
    for index, entry in enumerate(read.get(table, "outages", (list,), "cdn.outages", [])):
        key = f"cdn.outages[{index}]"
        if not isinstance(entry, dict):
            raise read.error(f"got {entry!r}; expected a table", key)
        read.keys(entry, _OUTAGE_KEYS, key)
        tier_name = read.get(entry, "tier", (str,), f"{key}.tier")
        if tier_name is None:
            raise read.error("missing key", f"{key}.tier")
        if tier_name not in chain.names:
            raise read.error(f"no tier {tier_name!r} (known: {', '.join(chain.names)})", f"{key}.tier")
        start_s = read.number(entry, "start_s", f"{key}.start_s")
        end_s = read.number(entry, "end_s", f"{key}.end_s")
        if end_s <= start_s:
            raise read.error(f"got {end_s!r}; expected an end after start_s ({start_s!r})", f"{key}.end_s")
        kind = read.get(entry, "kind", (str,), f"{key}.kind", "down")
        if kind not in FAULT_KINDS:
            raise read.error(f"got {kind!r}; expected one of {', '.join(FAULT_KINDS)}", f"{key}.kind")
        fraction = read.number(entry, "fraction", f"{key}.fraction", 1.0, strict=True)
        if fraction > 1.0:
            raise read.error(f"got {fraction!r}; expected a share in (0, 1]", f"{key}.fraction")
        extra_rtt_s = read.number(entry, "extra_rtt_s", f"{key}.extra_rtt_s", 0.0)
        if kind == "down" and extra_rtt_s > 0.0:
            raise read.error('applies to kind = "latency" faults only', f"{key}.extra_rtt_s")
        faults.append(CdnFault(tier_name, start_s, end_s, kind, fraction, extra_rtt_s))
    fills: list[ProactiveFill] = []
    for index, entry in enumerate(read.get(table, "fills", (list,), "cdn.fills", [])):
        key = f"cdn.fills[{index}]"
        if not isinstance(entry, dict):
            raise read.error(f"got {entry!r}; expected a table", key)
        read.keys(entry, _FILL_KEYS, key)
        tier_name = read.get(entry, "tier", (str,), f"{key}.tier")
        if (tier_name is None or tier_name not in chain.names
                or chain.tiers[chain.index(tier_name)].is_origin):
            raise read.error(f"got {tier_name!r}; expected a cache tier of the chain "
                             f"({', '.join(chain.names)})", f"{key}.tier")
        rungs = read.get(entry, "rungs", (list,), f"{key}.rungs")
        # A window may start before the simulation (negative start_s): an off-peak fill before the peak.
        start_s = float(read.get(entry, "start_s", (int, float), f"{key}.start_s", 0.0))
        duration_s = read.number(entry, "duration_s", f"{key}.duration_s")
        rate_bps = read.number(entry, "rate_bps", f"{key}.rate_bps", strict=True)
        try:
            fills.append(ProactiveFill(tier_name, start_s, duration_s, rate_bps,
                                       None if rungs is None else tuple(rungs)))
        except (InputError, TypeError, ValueError) as exc:
            field = getattr(exc, "field", None) or "rungs"
            raise read.error(getattr(exc, "detail", str(exc)), f"{key}.{field}") from None
    sweep = read.get(table, "sweep", (dict,), "cdn.sweep")
    sweep_tier = None
    capacities: tuple[float, ...] = ()
    if sweep is not None:
        read.keys(sweep, ("tier", "capacity_bytes"), "cdn.sweep")
        sweep_tier = read.get(sweep, "tier", (str,), "cdn.sweep.tier")
        if (sweep_tier is None or sweep_tier not in chain.names
                or chain.tiers[chain.index(sweep_tier)].is_origin):
            raise read.error(f"got {sweep_tier!r}; expected a cache tier of the chain", "cdn.sweep.tier")
        values_list = read.get(sweep, "capacity_bytes", (list,), "cdn.sweep.capacity_bytes")
        if not values_list or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                                      for v in values_list):
            raise read.error(f"got {values_list!r}; expected a non-empty array of capacities >= 0",
                             "cdn.sweep.capacity_bytes")
        capacities = tuple(float(v) for v in values_list)
    return CdnConfig(chain=chain, titles=titles, alpha=alpha, faults=tuple(faults), bin_s=bin_s,
                     sweep_tier=sweep_tier, sweep_capacities_bytes=capacities, fills=tuple(fills))
