"""Speed of the discrete-event engine, through the public Python API.

1. One player alone on its own link (the equivalence case): BOLA over real 3G traces
   (../shared/traces/hsdpa_norway_3g, else the built-in corpus) with a 10-rung, 199-segment
   ladder (../shared/videos/bbb_sabre, else the built-in `hls`); segments per second.
2. 10, 100 and 1,000 concurrent players (BOLA and the throughput rule, half each) sharing one
   constant link of 3 Mbit/s per player, arriving as a Poisson process over the first 10 s and
   watching a 10-minute title (the `hls` ladder: 100 segments of 6 s); wall time of
   :func:`abrsim.engine.des.simulate` and its cost per segment.

The last line is one JSON object.

    python benchmarks/des_engine.py [--repeat N]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions of the single-player run")
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
    print(json.dumps(result))


if __name__ == "__main__":
    main()
