"""Run a discrete-event scenario under both network models and print what changes.

    python tools/des_network_models.py experiments/des_shared_bottleneck.toml [more scenarios]

Every player group's model is switched to ``network = "throughput"`` and then ``"tcp"`` (same
seed); prints the mean startup, bitrate, rebuffering and QoE_lin over players, the bottleneck's
busy utilisation and the wall time (the table in docs/des.md).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import numpy as np

from abrsim.engine.des import simulate
from abrsim.scenario import load_scenario


def main(paths: list[str]) -> None:
    lines = ["| scenario | network | startup_s | mean bitrate | rebuffer_s | QoE_lin | "
             "bottleneck busy utilisation | wall_s |"]
    for path in paths:
        base = load_scenario(path)
        for network in ("throughput", "tcp"):
            groups = tuple(dataclasses.replace(group, model=group.model.replace(network=network))
                           for group in base.groups)
            start = time.perf_counter()
            run = simulate(dataclasses.replace(base, groups=groups))
            wall_s = time.perf_counter() - start
            rows = run.rows()

            def mean(key: str, rows=rows) -> float:
                return float(np.nanmean([row[key] for row in rows]))

            busy = run.metrics().get("link_busy_utilisation", float("nan"))
            lines.append(f"| `{base.name}` | {network} | {mean('startup_s'):.3f} | "
                         f"{mean('mean_bitrate_bps') / 1e6:.3f} Mbit/s | {mean('rebuffer_s'):.2f} | "
                         f"{mean('qoe_lin'):.1f} | {busy:.3f} | {wall_s:.1f} |")
            sys.stdout.write("\n".join(lines) + "\n")
            lines = []


if __name__ == "__main__":
    main(sys.argv[1:] or ["experiments/des_shared_bottleneck.toml"])
