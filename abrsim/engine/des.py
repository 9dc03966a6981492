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
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from abrsim import __version__
from abrsim.abr import KernelPolicy, make
from abrsim.engine.fast import model_array
from abrsim.engine.link import AccessLink, Link
from abrsim.engine.player import Player, PlayerSession
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import PlayerModel
from abrsim.qoe import METRICS, metrics_table
from abrsim.results import RESULT_FIELDS
from abrsim.scenario import PlayerGroup, Scenario, SessionSetup
from abrsim.trace import Trace

__all__ = [
    "DES_EXTRA_FIELDS",
    "DES_FIELDS",
    "SCENARIO_METRICS",
    "DesRun",
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
SCENARIO_METRICS = ("players", "abandoned_players", "abandoned_share", "stall_share", "fairness_jain_bitrate",
                    "mean_startup_s", "p95_startup_s", "link_utilisation", "link_busy_utilisation",
                    "link_delivered_bits", "simulated_s", "segments", "wall_s")
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
        wall_s: wall-clock time the simulation took.
    """

    scenario: str
    seed: int
    sessions: tuple[PlayerSession, ...]
    bottleneck: dict[str, Any] | None
    simulated_s: float
    wall_s: float

    def __len__(self) -> int:
        return len(self.sessions)

    def rows(self) -> list[dict[str, Any]]:
        """One results row per player: :data:`DES_FIELDS`, metrics from :func:`abrsim.qoe.metrics_table`.

        ``trace`` is the player's access trace (``unlimited`` without one), ``bottleneck`` the
        shared link's trace (empty without one). A viewer who left before the first frame has
        ``abandoned`` 1 and NaN metrics (nothing was played).
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
            rows.append({key: row[key] for key in DES_FIELDS})
        return rows

    def metrics(self, rows: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Scenario metrics (:data:`SCENARIO_METRICS`).

        ``stall_share`` is the share of players who started playback and stalled at least once;
        ``fairness_jain_bitrate`` is :func:`jain_index` of those players' mean bitrates;
        ``abandoned_share`` the share of players who left before the first frame. The link
        figures are the bottleneck's (NaN without one): delivered bits over its capacity from
        time 0 until its last flow ended, and over the time some flow was active.
        """
        rows = self.rows() if rows is None else rows
        watched = [r for r in rows if not r["abandoned"]]
        startup = np.array([r["startup_s"] for r in watched], dtype=np.float64)
        link = self.bottleneck or {}
        return {
            "players": len(rows),
            "abandoned_players": len(rows) - len(watched),
            "abandoned_share": (len(rows) - len(watched)) / len(rows) if rows else math.nan,
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
        if not session.abandoned and session.log.completed.any():
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
        )
    return out


def run_session(
    trace: Trace,
    ladder: Ladder,
    policy: KernelPolicy | str,
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
    model_array(model, ladder)  # validates the model against the ladder
    env = simpy.Environment()
    player = Player(env, "player", policy, ladder, model, AccessLink(trace, model.goodput_factor),
                    rng=np.random.default_rng(seed), setup=setup)
    player.start()
    env.run()
    return player.result().log


def simulate(scenario: Scenario, seed: int | None = None) -> DesRun:
    """Run a scenario: every player of every group, on their links, until the last one is done.

    Randomness (arrivals, watch times, trace offsets, setup steps, per-request draws, patience)
    comes from ``np.random.SeedSequence(seed)``: one child per group, and within a group one for
    the arrivals and one per player, so a player's draws do not depend on the others.

    Args:
        scenario: the scenario.
        seed: overrides the scenario's seed.
    """
    seed = scenario.seed if seed is None else int(seed)
    started = time.perf_counter()
    env = simpy.Environment()
    link = Link(env, scenario.bottleneck.trace) if scenario.bottleneck is not None else None
    players: list[tuple[float, int, Player, bool]] = []
    for group, group_seq in zip(scenario.groups, np.random.SeedSequence(seed).spawn(len(scenario.groups)),
                                strict=True):
        players += _make_players(env, group, group_seq, link, scenario, len(players))
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
    env.run()
    sessions = tuple(player.result() for _, _, player, _ in players)
    finished_s = max((s.arrival_s + (s.left_s if s.abandoned else s.log.end_s) for s in sessions),
                     default=0.0)
    return DesRun(scenario.name, seed, sessions, link.stats() if link is not None else None, finished_s,
                  time.perf_counter() - started)


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
        access = AccessLink(group.access, group.model.goodput_factor, offset_s, origin_s=arrival_s)
        player = Player(env, f"{group.name}/{index:0{width}d}", group.policy, group.ladder, group.model,
                        access, link, rng, group.setup, segments, group.name)
        players.append((arrival_s, first + index, player, impatient))
    return players
