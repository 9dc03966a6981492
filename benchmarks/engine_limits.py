"""The compiled engine against what it could be (issue 18): abandonment, run_batch's overhead, RobustMPC.

    python benchmarks/engine_limits.py [--repeat N]

- Sabre's model (the ``sabre`` preset: abandonment checked every 12 kbit / 50 ms, Sabre's
  millisecond replay for its residue stalls) on Sabre's 86 HSDPA 3G logs and its movie, for
  Sabre's algorithms; also without the replay (``_noresidue``) and without abandonment
  (``_noabandon``), the limits abandonment is measured against;
- BOLA through ``run_batch`` (abrsim's model, 142 HSDPA traces, the 10-rung bbb ladder, traces
  packed once) against a bare compiled loop over the same traces: BOLA's rule, the same trace
  walk and buffer, no logs, no observation, no estimator. Two BOLAs: the default (BOLA-U, whose
  guard reads the throughput and latency estimates, so the estimator runs) and the bare loop's
  own rule (``guard="none"``, ``scale_v=False``: basic BOLA with a fixed V, which reads no
  estimate, so run_batch skips the estimator), like for like;
- RobustMPC on Pensieve's inputs (``pensieve`` preset, 48 chunks), milliseconds per session.

Each figure is the best of N runs in CPU time (compilation excluded). The last line is one JSON object.

Where the compiled time goes (issue 18; copies of the session loop with one part removed, timed
in one process, so only the ratios mean something):

- BOLA-U through run_batch, throughput network: the estimator is about half of it (without
  reading the estimates 68-69 %, without the latency estimate alone 87-89 %, without the
  estimator at all 49-53 %); the log rows 2-5 %; fill_request/fill_download nothing
  measurable; Python around the compiled loop about 7 % (0.2 of 2.8 ms). BOLA-U's guard reads
  both estimates (about 55 % of its decisions move up), so only policies that read none skip it.
- ``sabre`` preset, bola, without the ms replay: per segment 5.9 walked abandonment steps (2.7
  of them crossing a trace sample), 3.7 skips replaying 49 steps as float additions, 5
  ``abandon`` and 5 ``abandon_after`` calls. Skipping the policy calls where the trace's rate
  changes too (a bound valid at any rate: 2.2 ``abandon`` calls per segment) changed the time
  by -3 % to +8 %, so it is not done; the walk and the replayed additions are the cost. The
  ms replay is about 30 % of the preset's time.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from numba import njit

from abrsim.abr._kernels import bola_best_rung
from abrsim.engine.step import transfer

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "reference"
SABRE_FAMILY = ("bola", "bolae", "throughput", "dynamic", "dynamicdash")


def best_s(run, repeat: int) -> float:
    run()  # compile or load the cache
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()  # CPU time: on a shared machine, less of the others' load
        run()
        best = min(best, time.process_time() - start)
    return best


@njit(cache=True)
def bare_bola(offsets, start_s, bandwidth_bps, duration_s, size_bits, bitrates_bps, segment_duration_s,
              max_buffer_s, latency_s, v_s, gamma_p):
    """BOLA's decision over each trace, with the engine's trace walk and buffer, and nothing else."""
    utilities = np.log(bitrates_bps / bitrates_bps[0])
    total = 0
    for session in range(offsets.shape[0] - 1):
        first = offsets[session]
        last = offsets[session + 1]
        time_s = 0.0
        buffer_s = 0.0
        sample = np.int64(0)
        loop_start_s = 0.0
        for index in range(size_bits.shape[0]):
            excess_s = buffer_s + segment_duration_s - max_buffer_s
            if excess_s > 0.0:
                time_s += excess_s
                buffer_s -= excess_s
            rung = bola_best_rung(buffer_s, utilities, bitrates_bps, v_s, gamma_p) if index > 0 else 0
            done_s, _, sample, loop_start_s = transfer(
                start_s[first:last], bandwidth_bps[first:last], duration_s[session], 1.0, time_s + latency_s,
                size_bits[index, rung], 0.0, 0.0, sample, loop_start_s, np.inf)
            buffer_s = max(0.0, buffer_s - (done_s - time_s)) + segment_duration_s
            time_s = done_s
            total += rung
    return total


def sabre_figures(repeat: int) -> dict[str, float]:
    from abrsim.engine.fast import pack_traces, run_batch
    from abrsim.ladder import load_ladder
    from abrsim.model import SABRE
    from abrsim.trace import load_trace

    logs = sorted((REFERENCE / "sabre" / "inputs" / "3g").glob("*.json"))
    traces = pack_traces([load_trace(p) for p in logs])
    movie = load_ladder(str(REFERENCE / "sabre" / "inputs" / "bbb.json"))
    models = {"": SABRE, "_noresidue": SABRE.replace(compat_sabre_residue_stalls=False),
              "_noabandon": SABRE.replace(abandonment=False)}
    out: dict[str, float] = {}
    for name in SABRE_FAMILY:
        for suffix, model in models.items():
            batch = run_batch(traces, movie, name, model)
            segments = float(batch.session[:, 5].sum())
            seconds = best_s(lambda name=name, model=model: run_batch(traces, movie, name, model), repeat)
            out[f"sabre_{name}{suffix}_segments_per_s"] = segments / seconds
    return out


def bola_figures(repeat: int) -> dict[str, float]:
    from abrsim.abr import make
    from abrsim.engine.fast import pack_traces, run_batch
    from abrsim.ladder import load_ladder
    from abrsim.model import PlayerModel
    from abrsim.trace import load_traces

    traces = load_traces([SHARED / "traces" / "hsdpa_norway_3g"])
    packed = pack_traces(traces)
    ladder = load_ladder(str(SHARED / "videos" / "bbb_sabre" / "chunk_sizes.csv"), segment_duration_s=3.0)
    # The bare loop downloads with the throughput network: the like-for-like run_batch figure uses
    # it too; abrsim's default (tcp) is printed beside it.
    model = PlayerModel(network="throughput")
    default = PlayerModel()
    segments = len(traces) * ladder.segment_count
    run_s = best_s(lambda: run_batch(packed, ladder, "bola", model), repeat)
    basic = make("bola", guard="none", scale_v=False)
    basic_s = best_s(lambda: run_batch(packed, ladder, basic, model), repeat)
    default_s = best_s(lambda: run_batch(packed, ladder, "bola", default), repeat)
    params = make("bola").param_array(ladder)
    top = float(np.log(ladder.bitrates_bps[-1] / ladder.bitrates_bps[0]))
    v_s = (params[0] - ladder.segment_duration_s) / (top + params[1])
    bare_s = best_s(lambda: bare_bola(packed.offsets, packed.start_s, packed.bandwidth_bps, packed.duration_s,
                                      ladder.size_bits, ladder.bitrates_bps, ladder.segment_duration_s,
                                      model.max_buffer_s, model.request_latency_s, v_s, params[1]), repeat)
    return {"bola_run_batch_segments_per_s": segments / run_s,
            "bola_basic_run_batch_segments_per_s": segments / basic_s,
            "bola_run_batch_tcp_segments_per_s": segments / default_s,
            "bola_bare_loop_segments_per_s": segments / bare_s, "bola_run_batch_over_bare": bare_s / run_s}


def mpc_figures(repeat: int) -> dict[str, float]:
    from abrsim.engine.fast import pack_traces, run_batch
    from abrsim.model import PENSIEVE
    from abrsim.peer_formats import read_pensieve_video
    from abrsim.trace import load_trace

    cooked = sorted((REFERENCE / "pensieve" / "inputs" / "cooked" / "hsdpa_norway_3g").iterdir())
    traces = pack_traces([load_trace(p, format="pensieve") for p in cooked])
    video = read_pensieve_video(REFERENCE / "pensieve" / "inputs")
    seconds = best_s(lambda: run_batch(traces, video, "robustmpc", PENSIEVE), repeat)
    return {"robustmpc_ms_per_session": seconds / len(traces) * 1000.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed repetitions per figure")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    result: dict[str, float] = {"load_1min": load}
    result.update(sabre_figures(args.repeat))
    for name in SABRE_FAMILY:
        full = result[f"sabre_{name}_segments_per_s"]
        print(f"sabre preset, {name:>11}: {full:>12,.0f} segments/s with abandonment; "
              f"{result[f'sabre_{name}_noresidue_segments_per_s']:>12,.0f} without the ms replay; "
              f"{result[f'sabre_{name}_noabandon_segments_per_s']:>12,.0f} without abandonment")
    result.update(bola_figures(args.repeat))
    print(f"bola through run_batch: {result['bola_run_batch_segments_per_s']:,.0f} segments/s; bare loop "
          f"{result['bola_bare_loop_segments_per_s']:,.0f} segments/s (run_batch at "
          f"{result['bola_run_batch_over_bare']:.2f} of the bare loop's speed; both on the throughput "
          "network); "
          f"with abrsim's default tcp network {result['bola_run_batch_tcp_segments_per_s']:,.0f} segments/s")
    print(f"basic bola (no guard, fixed V: the bare loop's rule) through run_batch: "
          f"{result['bola_basic_run_batch_segments_per_s']:,.0f} segments/s")
    result.update(mpc_figures(args.repeat))
    print(f"robustmpc: {result['robustmpc_ms_per_session']:.3f} ms per 48-chunk session")
    print(f"load average (1 min) at the start: {load:.2f}")
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))


if __name__ == "__main__":
    main()
