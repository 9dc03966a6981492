"""Draw docs/figures/network_models.png from a sweep of experiments/network_models.toml.

    abrsim sweep experiments/network_models.toml --out results/network_models
    python tools/network_models_figure.py results/network_models/results.csv docs/figures/network_models.png

Prints the Markdown table of docs/real_network.md (mean QoE_lin with its rank, rebuffering).
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

MODELS = ("throughput", "tcp_bbr", "tcp_cubic")


def main(results: Path, figure: Path) -> None:
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with open(results, newline="") as file:
        for row in csv.DictReader(file):
            groups[row["model"], row["policy"]].append(row)
    policies = sorted({policy for _, policy in groups})

    def mean(model: str, policy: str, key: str) -> float:
        return statistics.fmean(float(r[key]) for r in groups[model, policy])

    rank = {}
    for model in MODELS:
        for place, policy in enumerate(sorted(policies, key=lambda p: -mean(model, p, "qoe_lin")), 1):
            rank[model, policy] = place
    order = sorted(policies, key=lambda p: rank["throughput", p])
    lines = ["| algorithm | " + " | ".join(f"QoE_lin (rank), {m}" for m in MODELS)
             + " | " + " | ".join(f"rebuffer %, {m}" for m in MODELS) + " |",
             "|---|" + "---:|" * (2 * len(MODELS))]
    for policy in order:
        cells = [f"{mean(m, policy, 'qoe_lin'):.1f} ({rank[m, policy]})" for m in MODELS]
        cells += [f"{100 * mean(m, policy, 'rebuffer_ratio'):.2f}" for m in MODELS]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    sys.stdout.write("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / len(MODELS)
    for k, model in enumerate(MODELS):
        xs = [i + (k - 1) * width for i in range(len(order))]
        axes[0].bar(xs, [mean(model, p, "qoe_lin") for p in order], width, label=model)
        axes[1].bar(xs, [100 * mean(model, p, "rebuffer_ratio") for p in order], width, label=model)
    titles = ("mean QoE_lin per session", "mean rebuffering, % of watch time")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(bottom=min(0.0, min(mean(m, p, "qoe_lin") for m in MODELS for p in order)) * 1.05)
    axes[1].legend(title="network model")
    fig.suptitle("All algorithms on four real trace families (hls ladder): throughput vs tcp network models")
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
