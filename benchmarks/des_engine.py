"""Speed of the discrete-event engine, through the public Python API.

1. One player alone on its own link (the equivalence case): BOLA over real 3G traces
   (../shared/traces/hsdpa_norway_3g, else the built-in corpus) with a 10-rung, 199-segment
   ladder (../shared/videos/bbb_sabre, else the built-in `hls`); segments per second.
2. 10, 100 and 1,000 concurrent players (BOLA and the throughput rule, half each) sharing one
   constant link of 3 Mbit/s per player, arriving as a Poisson process over the first 10 s and
   watching a 10-minute title (the `hls` ladder: 100 segments of 6 s); wall time of
   :func:`abrsim.engine.des.simulate` and its cost per segment.

3. Cost per event from 1,000 to 100,000 concurrent players: all arrive at time 0 on one
   constant link of 3 Mbit/s per player, half of them behind an access link that alternates
   between 2 and 5 Mbit/s every second (so flows keep crossing the fair share, and both of the
   link's heaps work); a short title (3 segments of 6 s) keeps the 100,000-player run short.
   Events are the simpy events processed (counted by wrapping ``Environment.step``). The wall
   time per event should stay flat: the shared link costs O(log n) per event. What grows with
   the players in an overloaded scenario (``des_shared_bottleneck.toml`` scaled up) is the
   number of events per segment, i.e. the simulated work: see ``docs/des.md``.

The last line is one JSON object.

    python benchmarks/des_engine.py [--repeat N] [--concurrent 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def single_player(repeat: int) -> dict[str, float]:
    from abrsim._data import data_dir
    from abrsim.engine.des import run_session
    from abrsim.ladder import load_ladder
    from abrsim.trace import load_traces

    folder = SHARED / "traces" / "hsdpa_norway_3g"
    video = SHARED / "videos" / "bbb_sabre" / "chunk_sizes.csv"
    traces = load_traces([folder])[:40] if folder.is_dir() else load_traces([data_dir("traces")])
    ladder = load_ladder(str(video), segment_duration_s=3.0) if video.is_file() else load_ladder("hls")
    print(f"single player: {len(traces)} traces, ladder {ladder}")
    run_session(traces[0], ladder, "bola")  # load the kernels
    best_s = float("inf")
    segments = 0
    for _ in range(repeat):
        start = time.perf_counter()
        segments = sum(run_session(trace, ladder, "bola").download_count for trace in traces)
        best_s = min(best_s, time.perf_counter() - start)
    rate = segments / best_s
    print(f"  bola: {segments} segments in {best_s * 1e3:.1f} ms -> {rate:,.0f} segments/s "
          f"({len(traces) / best_s:,.0f} sessions/s)")
    return {"single_player_segments_per_s": rate}


def shared_link(players: int, seed: int = 1) -> tuple[float, int]:
    from abrsim.abr import make
    from abrsim.engine.des import simulate
    from abrsim.ladder import load_ladder
    from abrsim.model import PlayerModel
    from abrsim.scenario import Arrivals, Bottleneck, PlayerGroup, Scenario
    from abrsim.trace import Trace

    ladder = load_ladder("hls")
    model = PlayerModel()
    arrivals = Arrivals("poisson", rate_per_s=players / 10.0)
    groups = tuple(PlayerGroup(name=name, count=players // 2, policy=make(name), ladder=ladder, model=model,
                               arrivals=arrivals) for name in ("bola", "throughput"))
    link = Bottleneck(Trace([0.0], [3e6 * players], 1.0, name="link"))
    scenario = Scenario(name=f"bench{players}", groups=groups, bottleneck=link, seed=seed)
    start = time.perf_counter()
    run = simulate(scenario)
    wall_s = time.perf_counter() - start
    segments = sum(s.log.download_count for s in run.sessions)
    return wall_s, segments


def concurrent_players(players: int, segments: int = 3, seed: int = 1) -> tuple[float, int, int]:
    """Wall time, simpy events and segments of ``players`` players arriving at once (see 3. above)."""
    import simpy

    from abrsim.abr import make
    from abrsim.engine.des import simulate
    from abrsim.ladder import Ladder, load_ladder
    from abrsim.model import PlayerModel
    from abrsim.scenario import Arrivals, Bottleneck, PlayerGroup, Scenario
    from abrsim.trace import Trace

    hls = load_ladder("hls")
    ladder = Ladder(hls.rungs, hls.segment_duration_s, hls.size_bits[:segments],
                    None if hls.quality is None else hls.quality[:segments], name=f"hls_{segments}")
    model = PlayerModel()
    at_once = Arrivals("periodic", interval_s=0.0)
    access = Trace([0.0, 1.0], [2e6, 5e6], 2.0, name="alternating")
    groups = (PlayerGroup(name="fixed", count=players // 2, policy=make("bola"), ladder=ladder, model=model,
                          arrivals=at_once),
              PlayerGroup(name="mobile", count=players - players // 2, policy=make("throughput"),
                          ladder=ladder, model=model, arrivals=at_once, access=access))
    link = Bottleneck(Trace([0.0], [3e6 * players], 1.0, name="link"))
    scenario = Scenario(name=f"concurrent{players}", groups=groups, bottleneck=link, seed=seed)
    events = 0
    step = simpy.Environment.step

    def counted_step(env: simpy.Environment) -> None:
        nonlocal events
        events += 1
        step(env)

    simpy.Environment.step = counted_step  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        run = simulate(scenario)
        wall_s = time.perf_counter() - start
    finally:
        simpy.Environment.step = step  # type: ignore[method-assign]
    return wall_s, events, sum(s.log.download_count for s in run.sessions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions of the single-player run")
    parser.add_argument("--concurrent", default="1000,10000,100000",
                        help="comma-separated numbers of concurrent players for the per-event cost")
    args = parser.parse_args()
    result = single_player(args.repeat)
    shared_link(10)  # warm-up: imports and kernel loading
    print("players sharing one link (10-minute title):")
    for players in (10, 100, 1000):
        wall_s, segments = shared_link(players)
        per_segment_us = wall_s / segments * 1e6
        print(f"  {players:>5} players: {segments:>7} segments in {wall_s:6.2f} s "
              f"-> {per_segment_us:6.1f} us/segment, {segments / wall_s:,.0f} segments/s")
        result[f"wall_s_{players}"] = wall_s
        result[f"per_segment_us_{players}"] = per_segment_us
    result["per_segment_ratio_1000_to_10"] = result["per_segment_us_1000"] / result["per_segment_us_10"]
    print("concurrent players, all on one link at once (3 segments each):")
    concurrent_players(100)  # warm-up
    sizes = [int(n) for n in args.concurrent.split(",")]
    for players in sizes:
        wall_s, events, segments = concurrent_players(players)
        per_event_us = wall_s / events * 1e6
        print(f"  {players:>7,} players: {events:>9,} events ({events / segments:4.1f} per segment) in "
              f"{wall_s:7.2f} s -> {per_event_us:5.1f} us/event")
        result[f"per_event_us_{players}"] = per_event_us
    result[f"per_event_ratio_{sizes[-1]}_to_{sizes[0]}"] = (result[f"per_event_us_{sizes[-1]}"]
                                                            / result[f"per_event_us_{sizes[0]}"])
    print(f"  per-event cost, {sizes[-1]:,} vs {sizes[0]:,} players: "
          f"x{result[f'per_event_ratio_{sizes[-1]}_to_{sizes[0]}']:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
