"""The discrete-event engine: many players on shared links, with request latency broken down.

Each player is a simpy process (:class:`~abrsim.engine.player.Player`) that runs the fast
engine's session loop one step at a time, calling the same numba decision kernels with the same
:class:`~abrsim.model.PlayerModel`. Each player has its own access link (a trace, or unlimited)
behind an optional shared bottleneck (:class:`~abrsim.engine.link.Link`, max-min fair processor
sharing). A player alone on its access link reproduces :func:`abrsim.engine.fast.run_session`
exactly; :func:`run_session` is that single-player case.

:func:`simulate` runs a :class:`~abrsim.scenario.Scenario`: players arrive on their groups'
schedules, spend the setup steps (DNS, connection, manifest), stream, and may give up waiting for
the first frame. :meth:`DesRun.rows` gives one results row per player, in the schema of
``abrsim run`` (metrics from :func:`abrsim.qoe.metrics_table`) plus the startup breakdown;
:meth:`DesRun.metrics` gives the scenario's link utilisation, fairness and stall share.

With a ``[cdn]`` (:class:`~abrsim.scenario.CdnConfig`), every segment request goes through the
CDN tiers (:class:`~abrsim.engine.link.CdnNetwork`: round trips, caches, serving and upstream
links, outages and failover); rows add :data:`CDN_FIELDS`, :meth:`DesRun.cdn_requests` and
:meth:`DesRun.tier_series` give the per-request log and per-tier hit ratios over time, and
:func:`compare_fault` runs a scenario with and without its faults. See ``docs/des.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from abrsim import __version__
from abrsim.abr import KernelPolicy, PythonPolicy, make
from abrsim.engine.link import AccessLink, CdnNetwork, Link
from abrsim.engine.player import Player, PlayerSession
from abrsim.errors import InputError
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import PlayerModel
from abrsim.qoe import METRICS, metrics_table
from abrsim.results import RESULT_FIELDS
from abrsim.scenario import Arrivals, Duration, PlayerGroup, Scenario, SessionSetup
from abrsim.trace import Trace

__all__ = [
    "CDN_FIELDS",
    "CDN_REQUEST_FIELDS",
    "DES_EXTRA_FIELDS",
    "DES_FIELDS",
    "SCENARIO_METRICS",
    "DesRun",
    "compare_fault",
    "jain_index",
    "run_session",
    "simulate",
]

#: Columns a discrete-event results row has beyond :data:`abrsim.results.RESULT_FIELDS`.
DES_EXTRA_FIELDS = ("player", "group", "bottleneck", "arrival_s", "dns_s", "connect_s", "manifest_s",
                    "first_segment_s", "decode_s", "left_s")
#: All columns of a discrete-event results row.
DES_FIELDS = RESULT_FIELDS + DES_EXTRA_FIELDS
#: Keys of :meth:`DesRun.metrics`.
SCENARIO_METRICS = ("players", "abandoned_players", "abandoned_share", "failed_players", "failed_share",
                    "stall_share", "fairness_jain_bitrate",
                    "mean_startup_s", "p95_startup_s", "link_utilisation", "link_busy_utilisation",
                    "link_delivered_bits", "simulated_s", "segments", "wall_s")
#: Columns a results row has beyond :data:`DES_FIELDS` when the scenario has a CDN.
CDN_FIELDS = ("edge_hit_ratio", "origin_bits", "tier_of_first_segment", "playback_failed")
#: Columns of the per-request CDN log (:meth:`DesRun.cdn_requests`).
CDN_REQUEST_FIELDS = ("time_s", "player", "segment", "object_id", "tier", "bytes", "visited")
_INTEGER_METRICS = frozenset({"rebuffer_count", "switch_count", "abandoned", "abandoned_downloads"})


def jain_index(values: Sequence[float] | np.ndarray) -> float:
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)``: 1 when all equal, 1/n when one has all.

    NaNs are ignored; NaN if nothing is left or all values are 0 (Jain, Chiu, Hawe, DEC-TR-301, 1984).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    total_sq = float(np.sum(x * x))
    if x.size == 0 or total_sq == 0.0:
        return math.nan
    return float(np.sum(x) ** 2 / (x.size * total_sq))


@dataclass(frozen=True, eq=False)
class DesRun:
    """The outcome of :func:`simulate`: one session per player, and the shared link's totals.

    Args:
        scenario: the scenario's name.
        seed: the seed used.
        sessions: the players' sessions, in arrival order.
        bottleneck: the shared link's :meth:`~abrsim.engine.link.Link.stats`, or None.
        simulated_s: simulation time when the last viewer finished watching (or left).
        wall_s: wall-clock time the simulation took (not counting what :func:`simulate` compiled
            before it started, when it compiled ahead on a cold cache).
        cdn: the run's CDN (caches, links, per-request log), or None.
        bin_s: width of the time bins of :meth:`tier_series`, seconds.
        faults: the CDN faults of the run (:class:`abrsim.scenario.CdnFault`).
    """

    scenario: str
    seed: int
    sessions: tuple[PlayerSession, ...]
    bottleneck: dict[str, Any] | None
    simulated_s: float
    wall_s: float
    cdn: CdnNetwork | None = None
    bin_s: float = 60.0
    faults: tuple[Any, ...] = ()

    def __len__(self) -> int:
        return len(self.sessions)

    def rows(self) -> list[dict[str, Any]]:
        """One results row per player: :data:`DES_FIELDS`, metrics from :func:`abrsim.qoe.metrics_table`.

        ``trace`` is the player's access trace (``unlimited`` without one), ``bottleneck`` the
        shared link's trace (empty without one). A viewer who left before the first frame has
        ``abandoned`` 1 and NaN metrics (nothing was played). With a CDN, rows add
        :data:`CDN_FIELDS`: the share of the player's requests its entry tier served, the bits
        origins served it, the tier that served its first segment, and whether playback failed
        (a request found no healthy tier; the session's QoE metrics are then NaN).
        """
        values = _metrics(self.sessions)
        bottleneck = self.bottleneck["link"] if self.bottleneck else ""
        rows = []
        for session, metrics in zip(self.sessions, values, strict=True):
            row: dict[str, Any] = {
                "scenario": self.scenario,
                "trace": session.log.trace,
                "ladder": session.ladder.name,
                "model": session.model.name,
                "policy": session.policy.name,
                "params": session.policy.params_json,
                "seed": self.seed,
                "abrsim_version": __version__,
            }
            for name, value in zip(METRICS, metrics, strict=True):
                row[name] = int(value) if name in _INTEGER_METRICS and not math.isnan(value) else float(value)
            row["abandoned"] = int(session.abandoned)
            row.update(player=session.player, group=session.group, bottleneck=bottleneck,
                       arrival_s=session.arrival_s, dns_s=session.dns_s, connect_s=session.connect_s,
                       manifest_s=session.manifest_s, first_segment_s=session.first_segment_s,
                       decode_s=session.decode_s, left_s=session.left_s)
            if self.cdn is not None:
                row.update(self._cdn_columns(session))
                rows.append({key: row[key] for key in DES_FIELDS + CDN_FIELDS})
            else:
                rows.append({key: row[key] for key in DES_FIELDS})
        return rows

    def _cdn_columns(self, session: PlayerSession) -> dict[str, Any]:
        cdn = self.cdn
        assert cdn is not None
        served = [item for item in session.cdn_served if item[0] >= 0]
        entry = cdn.entry[session.group]
        return {
            "edge_hit_ratio": (sum(tier == entry for tier, _ in served) / len(served) if served
                               else math.nan),
            "origin_bits": float(sum(bits for tier, bits in served if cdn.tiers[tier].is_origin)),
            "tier_of_first_segment": cdn.names[served[0][0]] if served else "",
            "playback_failed": int(session.failed),
        }

    def cdn_requests(self) -> list[dict[str, Any]]:
        """The per-request CDN log (:data:`CDN_REQUEST_FIELDS`): request time (simulation seconds),
        player, segment, object id, serving tier (empty if none was healthy), bytes delivered and
        the tiers looked up (``edge>exchange``)."""
        if self.cdn is None:
            return []
        names = self.cdn.names
        return [{"time_s": time_s, "player": player, "segment": segment, "object_id": object_id,
                 "tier": names[tier] if tier >= 0 else "", "bytes": bits / 8.0,
                 "visited": ">".join(names[k] for k in visited)}
                for time_s, player, object_id, tier, bits, visited, segment in sorted(
                    self.cdn.requests, key=lambda r: (r[0], r[1], r[6]))]

    def tier_series(self) -> list[dict[str, Any]]:
        """Per time bin (by request time) and tier: requests that reached the tier, its hits, hit ratio
        and byte hit ratio (NaN without requests). A request reaches every tier it looked up; the
        last one served it."""
        if self.cdn is None:
            return []
        counts: dict[tuple[int, int], list[float]] = {}
        for time_s, _, _, tier, bits, visited, _ in self.cdn.requests:
            time_bin = int(time_s // self.bin_s)
            for k in visited:
                cell = counts.setdefault((time_bin, k), [0, 0, 0.0, 0.0])
                cell[0] += 1
                cell[2] += bits
                if k == tier:
                    cell[1] += 1
                    cell[3] += bits
        if not counts:
            return []
        # Every bin from the first to the last, for every tier: a tier that saw no request in a
        # bin (down, say) has NaN ratios there, which a plot shows as a gap.
        first, last = min(b for b, _ in counts), max(b for b, _ in counts)
        rows = []
        for time_bin in range(first, last + 1):
            for k, name in enumerate(self.cdn.names):
                c = counts.get((time_bin, k), [0, 0, 0.0, 0.0])
                rows.append({"time_s": time_bin * self.bin_s, "tier": name, "requests": int(c[0]),
                             "hits": int(c[1]), "hit_ratio": c[1] / c[0] if c[0] else math.nan,
                             "byte_hit_ratio": c[3] / c[2] if c[2] > 0 else math.nan})
        return rows

    def cdn_metrics(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """CDN totals: failure rate, origin offload, and per tier hit ratio, byte hit ratio, served
        and upstream bits and the most bytes its cache held."""
        cdn = self.cdn
        if cdn is None:
            return {}
        requests = cdn.requests
        failed = sum(r["playback_failed"] for r in rows)
        total_bits = float(np.sum(cdn.served_bits))
        origin_bits = float(sum(cdn.served_bits[k] for k, t in enumerate(cdn.tiers) if t.is_origin))
        out: dict[str, Any] = {
            "failure_rate": failed / len(rows) if rows else math.nan,
            "cdn_requests": len(requests),
            "origin_offload": 1.0 - origin_bits / total_bits if total_bits > 0 else math.nan,
        }
        for k, name in enumerate(cdn.names):
            reached = [r for r in requests if k in r[5]]
            hits = [r for r in reached if r[3] == k]
            reached_bits = sum(r[4] for r in reached)
            out[f"tier_{name}_hit_ratio"] = len(hits) / len(reached) if reached else math.nan
            out[f"tier_{name}_byte_hit_ratio"] = (sum(r[4] for r in hits) / reached_bits if reached_bits > 0
                                            else math.nan)
            out[f"tier_{name}_served_bits"] = float(cdn.served_bits[k])
            if not cdn.tiers[k].is_origin:
                out[f"tier_{name}_upstream_bits"] = float(cdn.upstream_bits[k])
                out[f"tier_{name}_max_used_bytes"] = int(cdn.max_used_bytes[k])
        return out

    def metrics(self, rows: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Scenario metrics (:data:`SCENARIO_METRICS`).

        ``stall_share`` is the share of players who started playback and stalled at least once;
        ``fairness_jain_bitrate`` is :func:`jain_index` of those players' mean bitrates;
        ``abandoned_players`` and ``abandoned_share`` count the players who left before the first
        frame, ``failed_players`` and ``failed_share`` those whose playback failed (``playback_failed``,
        e.g. no healthy CDN tier); neither is counted as the other. The link
        figures are the bottleneck's (NaN without one): delivered bits over its capacity from
        time 0 until its last flow ended, and over the time some flow was active.
        """
        rows = self.rows() if rows is None else rows
        watched = [r for r in rows if not r["abandoned"] and not r.get("playback_failed", 0)]
        startup = np.array([r["startup_s"] for r in watched], dtype=np.float64)
        link = self.bottleneck or {}
        return {
            **self._scenario_metrics(rows, watched, startup, link),
            **self.cdn_metrics(rows),
        }

    def _scenario_metrics(self, rows: Sequence[dict[str, Any]], watched: list[dict[str, Any]],
                          startup: np.ndarray, link: dict[str, Any]) -> dict[str, Any]:
        # A viewer who left and one whose playback failed are told apart, as their rows do:
        # `watched` excludes both, so it cannot count either.
        abandoned = sum(int(r["abandoned"]) for r in rows)
        failed = sum(int(r.get("playback_failed", 0)) for r in rows)
        return {
            "players": len(rows),
            "abandoned_players": abandoned,
            "abandoned_share": abandoned / len(rows) if rows else math.nan,
            "failed_players": failed,
            "failed_share": failed / len(rows) if rows else math.nan,
            "stall_share": (float(np.mean([r["rebuffer_count"] > 0 for r in watched])) if watched
                            else math.nan),
            "fairness_jain_bitrate": jain_index([r["mean_bitrate_bps"] for r in watched]),
            "mean_startup_s": float(np.mean(startup)) if startup.size else math.nan,
            "p95_startup_s": float(np.percentile(startup, 95)) if startup.size else math.nan,
            "link_utilisation": link.get("utilisation", math.nan),
            "link_busy_utilisation": link.get("busy_utilisation", math.nan),
            "link_delivered_bits": link.get("delivered_bits", math.nan),
            "simulated_s": self.simulated_s,
            "segments": int(sum(s.log.download_count for s in self.sessions)),
            "wall_s": self.wall_s,
        }


def _metrics(sessions: Sequence[PlayerSession]) -> np.ndarray:
    """QoE metrics of each session (NaN rows for viewers who played nothing), via metrics_table."""
    out = np.full((len(sessions), len(METRICS)), np.nan)
    by_ladder: dict[int, list[int]] = {}
    for index, session in enumerate(sessions):
        if not session.abandoned and not session.failed and session.log.completed.any():
            by_ladder.setdefault(id(session.ladder), []).append(index)
    for members in by_ladder.values():
        logs = [sessions[i].log for i in members]
        ladder = sessions[members[0]].ladder
        records = np.array([log.download_count for log in logs], dtype=np.int64)
        first = np.concatenate(([0], np.cumsum(records)[:-1]))
        out[members] = metrics_table(
            np.concatenate([log.rung for log in logs]),
            np.concatenate([log.stall_s for log in logs]),
            np.concatenate([log.size_bits for log in logs]),
            np.concatenate([log.downloaded_bits for log in logs]),
            np.concatenate([log.abandoned.astype(np.float64) for log in logs]),
            first,
            records,
            np.array([log.startup_s for log in logs]),
            np.array([log.rebuffer_count for log in logs]),
            ladder.bitrates_bps,
            ladder.quality,
            ladder.segment_duration_s,
            np.array([sessions[i].timed_out for i in members]),
        )
    return out


def run_session(
    trace: Trace,
    ladder: Ladder,
    policy: KernelPolicy | PythonPolicy | str,
    model: PlayerModel | None = None,
    setup: SessionSetup | None = None,
    seed: int = 0,
) -> SessionLog:
    """One player alone on its own link (``trace``): the discrete-event twin of the fast engine.

    With the default ``setup`` (no DNS, connection, manifest or decode time) the log equals
    :func:`abrsim.engine.fast.run_session`'s.

    Raises:
        InputError: if a parameter does not fit the ladder or the model.
    """
    model = PlayerModel() if model is None else model
    policy = (make(policy) if isinstance(policy, str) else policy).resolved(model)
    policy.check(ladder)
    model.check(ladder)
    env = simpy.Environment()
    access = AccessLink(model.link_trace(trace), model.payload_factor)
    player = Player(env, "player", policy, ladder, model, access,
                    rng=np.random.default_rng(seed), setup=setup)
    player.start()
    env.run()
    return player.result().log


#: Wall-clock seconds between two calls of :func:`simulate`'s ``progress``.
PROGRESS_INTERVAL_S = 0.25


def _run(env: simpy.Environment, players: Sequence[Player],
         progress: Callable[[float, int, int], None] | None) -> None:
    """``env.run()``, calling ``progress(simulated_s, players_done, players)`` now and then.

    It steps the same events in the same order as ``env.run()``; only the clock is read between
    events (every 1,024 of them), so results do not depend on whether progress is shown.
    """
    if progress is None:
        env.run()
        return
    next_s = time.monotonic() + PROGRESS_INTERVAL_S
    steps = 0
    step = env.step
    try:
        while True:
            step()
            steps += 1
            if not steps & 1023 and time.monotonic() >= next_s:
                done = sum(p.process is not None and not p.process.is_alive for p in players)
                progress(float(env.now), done, len(players))
                next_s = time.monotonic() + PROGRESS_INTERVAL_S
    except simpy.core.EmptySchedule:
        pass
    progress(float(env.now), len(players), len(players))


@contextlib.contextmanager
def _no_full_collections() -> Iterator[None]:
    """Run without full (oldest-generation) garbage collections; restore the collector after.

    Python's cyclic collector traverses every tracked object at each full collection, and a
    run's live objects (players, their processes, links, logs) grow with the players: with
    full collections the cost per event doubled from 1,000 to 100,000 concurrent players,
    without them it is flat (``benchmarks/des_engine.py``). Young collections still run;
    objects that exist before the run are frozen out of the count, and cycles that reach the
    oldest generation during the run wait until it ends.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def simulate(scenario: Scenario, seed: int | None = None,
             progress: Callable[[float, int, int], None] | None = None) -> DesRun:
    """Run a scenario: every player of every group, on their links, until the last one is done.

    Randomness (arrivals, watch times, trace offsets, setup steps, per-request draws, patience)
    comes from ``np.random.SeedSequence(seed)``: one child per group, and within a group one for
    the arrivals and one per player, so a player's draws do not depend on the others.

    With a CDN (``scenario.cdn``), one more child seeds the CDN draws: for every player, in group
    order, its title (Zipf over the titles of its ladder) and its share against the faults'
    ``fraction``; the players' own draws are unchanged, so a run with and without a CDN, or with
    and without faults, sees the same arrivals, setup steps and request draws.

    Args:
        scenario: the scenario.
        seed: overrides the scenario's seed.
        progress: called as ``progress(simulated_s, players_done, players)`` about every
            :data:`PROGRESS_INTERVAL_S` of wall time and at the end (``abrsim simulate`` shows it).
    """
    from abrsim import _ahead

    _ahead.from_both_ends(_compile_jobs(scenario))
    return _simulate(scenario, seed, progress)


def _simulate(scenario: Scenario, seed: int | None = None,
              progress: Callable[[float, int, int], None] | None = None) -> DesRun:
    """:func:`simulate`, without compiling ahead."""
    seed = scenario.seed if seed is None else int(seed)
    started = time.perf_counter()
    env = simpy.Environment()
    link = Link(env, scenario.bottleneck.trace) if scenario.bottleneck is not None else None
    players: list[tuple[float, int, Player, bool]] = []
    group_seqs = np.random.SeedSequence(seed).spawn(len(scenario.groups) + 1)
    for group, group_seq in zip(scenario.groups, group_seqs, strict=False):
        players += _make_players(env, group, group_seq, link, scenario, len(players))
    cdn = _attach_cdn(env, scenario, [p for _, _, p, _ in players], group_seqs[-1])
    players.sort(key=lambda item: (item[0], item[1]))
    abandonment = scenario.abandonment

    def arrive() -> Any:
        for arrival_s, _, player, impatient in players:
            if arrival_s > env.now:
                yield env.timeout(arrival_s - env.now)
            player.start()
            if impatient:
                patience_s = max(0.0, abandonment.startup_threshold_s - player.decode_s)
                env.timeout(patience_s).callbacks.append(player.lose_patience)

    env.process(arrive())
    try:
        with _no_full_collections():
            _run(env, [player for _, _, player, _ in players], progress)
    except ZeroDivisionError:
        raise InputError(f"a download in scenario {scenario.name!r} took less time than the simulation clock "
                         "can resolve; expected larger segments or slower links", field="ladder") from None
    sessions = tuple(player.result() for _, _, player, _ in players)
    finished_s = max((s.arrival_s + (s.left_s if s.abandoned else s.log.end_s) for s in sessions),
                     default=0.0)
    return DesRun(scenario.name, seed, sessions, link.stats() if link is not None else None, finished_s,
                  time.perf_counter() - started, cdn,
                  scenario.cdn.bin_s if scenario.cdn is not None else 60.0,
                  scenario.cdn.faults if scenario.cdn is not None else ())


def _compile_jobs(scenario: Scenario) -> list[tuple[str, Callable[[], None]]]:
    """What a cold numba cache has :func:`simulate` compile, as jobs for
    :func:`abrsim._ahead.from_both_ends` (this process from the first, a helper from the last):
    a run of one viewer of the first group with a compiled algorithm, for three segments (the
    player's rules, the links, the CDN, that algorithm), each other compiled algorithm's calls,
    the QoE kernel. No jobs when compiling ahead is off or numba's cache has them all. What they
    miss (another group's model may call other rules) the run compiles as it goes, as it would
    have anyway; their errors are left to the run, which meets the same ones.

    A Python policy is never run by a job: its code (and whatever state it keeps) runs only in
    the real run, so that results do not depend on whether anything was compiled ahead.
    """
    from abrsim._ahead import decider_job, metrics_job, quietly
    from abrsim._ahead import enabled as ahead_enabled
    from abrsim._jit import is_cached
    from abrsim.engine.step import reset_player
    from abrsim.qoe import _metrics_batch

    compiled = [group for group in scenario.groups if isinstance(group.policy, KernelPolicy)]
    if not compiled or not ahead_enabled():
        return []
    first = compiled[0]
    first_spec = first.policy.resolved(first.model).spec
    seen = {first_spec.name}
    jobs: list[tuple[str, Callable[[], None]]] = []
    for group in compiled[1:]:
        spec = group.policy.resolved(group.model).spec
        if spec.name not in seen and not is_cached(spec.choose):
            seen.add(spec.name)
            jobs.append((f"policy {spec.name}",
                         quietly(functools.partial(decider_job, group.policy, group.ladder, group.model))))
    if not is_cached(_metrics_batch):
        jobs.append(("metrics", quietly(functools.partial(metrics_job, first.ladder))))
    if jobs or not is_cached(reset_player) or not is_cached(first_spec.choose):
        jobs.insert(0, ("first viewer", quietly(functools.partial(_one_viewer, scenario, first))))
    return jobs


def _one_viewer(scenario: Scenario, group: PlayerGroup) -> None:
    """The scenario with one viewer of ``group`` alone, arriving at once and watching three segments."""
    watch = Duration.constant(3.0 * group.ladder.segment_duration_s)
    alone = dataclasses.replace(group, count=1, arrivals=Arrivals(), watch_s=watch)
    _simulate(dataclasses.replace(scenario, groups=(alone,))).rows()


#: Figures :func:`compare_fault` compares.
FAULT_COMPARISON = ("starts_per_s", "fault_window_starts_per_s", "mean_startup_s", "mean_rebuffer_s",
                    "mean_rebuffer_ratio", "fault_window_mean_startup_s", "fault_window_mean_rebuffer_s",
                    "failure_rate")


def _fault_figures(run: DesRun, rows: Sequence[dict[str, Any]], span_s: float,
                   windows: Sequence[tuple[float, float]]) -> dict[str, float]:
    watched = [r for r in rows if not r["abandoned"] and not r.get("playback_failed", 0)]
    first_frames = [s.arrival_s + s.log.startup_s for s in run.sessions if math.isfinite(s.log.startup_s)]
    window_s = sum(end - start for start, end in windows)
    in_window = sum(any(start <= t < end for start, end in windows) for t in first_frames)

    def mean(name: str, only_window: bool = False) -> float:
        values = [r[name] for r in watched if not math.isnan(r[name])
                  and (not only_window or any(start <= r["arrival_s"] < end for start, end in windows))]
        return float(np.mean(values)) if values else math.nan

    return {
        "starts_per_s": len(first_frames) / span_s if span_s > 0 else math.nan,
        "fault_window_starts_per_s": in_window / window_s if window_s > 0 else math.nan,
        "mean_startup_s": mean("startup_s"),
        "mean_rebuffer_s": mean("rebuffer_s"),
        "mean_rebuffer_ratio": mean("rebuffer_ratio"),
        "fault_window_mean_startup_s": mean("startup_s", True),
        "fault_window_mean_rebuffer_s": mean("rebuffer_s", True),
        "failure_rate": (sum(r.get("playback_failed", 0) for r in rows) / len(rows)) if rows else math.nan,
    }


def compare_fault(scenario: Scenario, seed: int | None = None) -> dict[str, Any]:
    """Control versus fault: the scenario with and without its CDN faults, on the same seed.

    Both runs see the same arrivals, titles, setup steps and request draws (see :func:`simulate`).
    A stream start is a first frame shown; ``starts_per_s`` counts them over the control run's
    duration, ``fault_window_starts_per_s`` those whose first frame fell inside a fault window
    over the windows' total length. Startup and rebuffering are means over the viewers who
    watched (not abandoned, not failed); the ``fault_window_`` means over those who arrived
    inside a fault window.

    Returns:
        ``{"control": {...}, "fault": {...}, "delta": {...}}`` over :data:`FAULT_COMPARISON`
        (delta = fault - control), plus the two runs (``control_run``, ``fault_run``).

    Raises:
        InputError: if the scenario has no CDN faults.
    """
    from abrsim.errors import InputError

    if scenario.cdn is None or not scenario.cdn.faults:
        raise InputError("the scenario has no [[cdn.outages]] to compare against", source=scenario.source,
                         field="cdn.outages")
    control_scenario = dataclasses.replace(scenario, cdn=dataclasses.replace(scenario.cdn, faults=()))
    control = simulate(control_scenario, seed)
    fault = simulate(scenario, seed)
    span_s = control.simulated_s
    windows = sorted({(f.start_s, f.end_s) for f in scenario.cdn.faults})
    control_figures = _fault_figures(control, control.rows(), span_s, windows)
    fault_figures = _fault_figures(fault, fault.rows(), span_s, windows)
    return {
        "control": control_figures,
        "fault": fault_figures,
        "delta": {k: fault_figures[k] - control_figures[k] for k in FAULT_COMPARISON},
        "control_run": control,
        "fault_run": fault,
    }


def _attach_cdn(env: simpy.Environment, scenario: Scenario, players: list[Player],
                seq: np.random.SeedSequence) -> CdnNetwork | None:
    """Build the scenario's CDN and give every player (in creation order) a title and a fault share."""
    config = scenario.cdn
    if config is None:
        return None
    from abrsim.cdn import Catalog, plan_proactive_fill, zipf_popularity

    ladders: dict[int, Ladder] = {}
    for group in scenario.groups:
        ladders.setdefault(id(group.ladder), group.ladder)
    block = {key: k * config.titles for k, key in enumerate(ladders)}
    catalog = Catalog(tuple(ladder for ladder in ladders.values() for _ in range(config.titles)))
    groups = config.chain.groups or {}
    entry = {group.name: config.chain.index(groups.get(group.name, groups.get("default", "")))
             for group in scenario.groups}
    cdn = CdnNetwork(env, config.chain, catalog.sizes_bytes, entry, config.faults)
    title_popularity = np.tile(zipf_popularity(config.titles, config.alpha), len(ladders))
    for fill in config.fills:
        tier_index = config.chain.index(fill.tier)
        cache = cdn.caches[tier_index]
        capacity_bytes = config.chain.tiers[tier_index].capacity_bytes
        plan = plan_proactive_fill(fill, catalog, title_popularity, capacity_bytes)
        env.process(_push_fill(env, cache, plan.time_s.tolist(), plan.object_id.tolist()))
    popularity = np.cumsum(zipf_popularity(config.titles, config.alpha))
    rng = np.random.default_rng(seq)
    draws = rng.random((len(players), 2))
    for player, (title_draw, share) in zip(players, draws.tolist(), strict=True):
        title = int(np.searchsorted(popularity, title_draw * popularity[-1], side="right"))
        title = min(title, config.titles - 1)
        player.cdn = cdn
        player.first_object = int(catalog.first_object[block[id(player.ladder)] + title])
        player.cdn_share = share
    return cdn


def _push_fill(env: simpy.Environment, cache: Any, times_s: list[float], object_ids: list[int]) -> Any:
    """A proactive fill: each object lands in the cache when the rate-limited push has delivered it."""
    for time_s, object_id in zip(times_s, object_ids, strict=True):
        if time_s > env.now:  # objects due before the simulation starts are in place at time 0
            yield env.timeout(time_s - env.now)
        cache.push(object_id)


def _make_players(env: simpy.Environment, group: PlayerGroup, seq: np.random.SeedSequence,
                  link: Link | None, scenario: Scenario, first: int) -> list[tuple[float, int, Player, bool]]:
    arrival_seq, *player_seqs = seq.spawn(group.count + 1)
    arrivals = group.arrivals.draw(group.count, np.random.default_rng(arrival_seq))
    probability = scenario.abandonment.probability
    width = len(str(group.count - 1))
    players = []
    for index, (arrival_s, player_seq) in enumerate(zip(arrivals.tolist(), player_seqs, strict=True)):
        rng = np.random.default_rng(player_seq)
        # Draws in a fixed order: patience, offset, watch time, then the player's own (setup, requests).
        impatient = probability > 0.0 and float(rng.random()) < probability
        offset_s = group.trace_offset_s.draw(rng)
        segments = None
        if group.watch_s is not None:
            segments = max(1, math.ceil(group.watch_s.draw(rng) / group.ladder.segment_duration_s))
        access = AccessLink(group.model.link_trace(group.access), group.model.payload_factor, offset_s,
                            origin_s=arrival_s)
        player = Player(env, f"{group.name}/{index:0{width}d}", group.policy, group.ladder, group.model,
                        access, link, rng, group.setup, segments, group.name)
        players.append((arrival_s, first + index, player, impatient))
    return players
