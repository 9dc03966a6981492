"""The real player against abrsim, trace by trace (``abrsim validate real-player``, issue 16).

For every trace of a folder (cut to the asset's length), :func:`validate_real_player` plays the
asset ``repeats`` times with dash.js in Chromium through the emulated link
(:func:`~abrsim.emulation.player.run_player`) and once with abrsim (the ``dashjs`` rule set under a
player model, by default the ``dashjs`` preset), on the same trace, ladder and segment sizes, and
compares them:

* **rung agreement**: the share of segments played at the same rung by abrsim and a real run
  (a segment's rung is its last completed download), averaged over the real runs;
* **startup**: first request of a media segment to the first ``playing`` event (abrsim: its
  session's startup). The MPD and the init segment, which abrsim does not model, come before:
  the simulated session starts where the real runs' first media request did (their mean,
  ``preroll_s``), on the trace from that point;
* **stall time** after startup (``waiting`` to ``playing``);
* **time-average bitrate** of the played segments.

The real runs' spread (the same figures between repeats) says how repeatable the real player is.
Everything is written to ``OUT``: ``results.csv`` (the results schema plus ``source`` = ``real`` or
``abrsim`` and ``repeat``), ``comparison.csv`` (one row per trace), ``runs/`` (each real run's
event log), ``figures/`` and ``index.html``.
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abrsim import __version__
from abrsim.abr import make
from abrsim.emulation.asset import Asset, AssetSpec, ladder_of, make_asset
from abrsim.emulation.harness import EmulationError
from abrsim.emulation.linktrace import trace_stretch
from abrsim.emulation.player import (
    DASHJS_VERSION,
    PlayerRun,
    dashjs_settings,
    fetch_dashjs,
    load_run,
    run_player,
)
from abrsim.engine.fast import run_batch
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import DASHJS, PlayerModel
from abrsim.qoe import METRICS, metrics_table
from abrsim.report import buffer_curve, stall_intervals
from abrsim.results import INTEGER_METRICS, RESULT_FIELDS, format_rows
from abrsim.trace import Trace, load_traces

__all__ = [
    "COMPARISON_FIELDS",
    "TraceComparison",
    "cut_traces",
    "simulate",
    "summarize",
    "validate_real_player",
]

#: Columns of ``comparison.csv``.
COMPARISON_FIELDS = (
    "trace", "repeats", "preroll_s", "rung_agreement", "real_rung_agreement",
    "startup_real_s", "startup_real_spread_s", "startup_abrsim_s", "startup_abs_error_s", "startup_ok",
    "stall_real_s", "stall_real_min_s", "stall_real_max_s", "stall_abrsim_s", "stall_abs_error_s",
    "stall_ok", "bitrate_real_bps", "bitrate_abrsim_bps", "bitrate_rel_error",
    "abandoned_real", "unplayed_real", "abandoned_abrsim", "drops_real", "load1",
)


def cut_traces(paths: str | Path | Sequence[str | Path], duration_s: float) -> list[Trace]:
    """The traces of ``paths`` (files or folders, any format abrsim reads), each cut to its first
    ``duration_s`` seconds (a shorter one loops; whole milliseconds for Mahimahi's loop)."""
    duration_s = round(float(duration_s), 3)
    return [Trace(cut.start_s, cut.bandwidth_bps, cut.duration_s, name=trace.name, measures=trace.measures)
            for trace in load_traces(paths) for cut in [trace_stretch(trace, 0.0, duration_s)]]


def simulate(trace: Trace, ladder: Ladder, model: PlayerModel, params: Mapping[str, Any],
             preroll_s: float = 0.0) -> tuple[SessionLog, np.ndarray]:
    """abrsim's session on ``trace`` from ``preroll_s`` on: its log and its metrics row."""
    stretch = trace_stretch(trace, preroll_s, trace.duration_s) if preroll_s > 0 else trace
    stretch = Trace(stretch.start_s, stretch.bandwidth_bps, stretch.duration_s, name=trace.name,
                    measures=trace.measures)
    batch = run_batch([stretch], ladder, make("dashjs", **params), model)
    return batch.session_log(0), batch.metrics()[0]


def _real_metrics(run: PlayerRun, ladder: Ladder) -> np.ndarray:
    """The results metrics of a real run (startup from its first media request)."""
    downloads = [d for d in run.downloads if 0 <= d["segment"] < ladder.segment_count]
    if not downloads:
        return np.full(len(METRICS), np.nan)
    # A segment downloaded twice (fast switching's replacement): the copy that did not play is wasted.
    played = [p for d, p in zip(run.downloads, run.played(ladder.segment_duration_s), strict=True)
              if 0 <= d["segment"] < ladder.segment_count]
    rungs = np.array([d["rung"] for d in downloads], dtype=np.int64)
    sizes = np.array([ladder.size_bits[d["segment"], d["rung"]] for d in downloads])
    wasted = ~np.array(played, dtype=bool)
    got = np.where(wasted, np.array([d["bytes"] * 8.0 for d in downloads]), sizes)
    stall = np.zeros(len(downloads))
    done = np.array([d["done_s"] for d in downloads])
    for begin, end in run.stalls:
        stall[min(int(np.searchsorted(done, begin)), len(downloads) - 1)] += end - begin
    startup = run.startup_s - run.first_media_request_s
    return metrics_table(rungs, stall, sizes, got, wasted.astype(np.float64), np.array([0]),
                         np.array([len(downloads)]), np.array([startup]), np.array([len(run.stalls)]),
                         ladder.bitrates_bps, ladder.quality, ladder.segment_duration_s)[0]


def _played_rungs(log: SessionLog, segment_count: int) -> np.ndarray:
    rungs = np.full(segment_count, -1, dtype=np.int64)
    for segment, rung, abandoned in zip(log.segment, log.rung, log.abandoned, strict=True):
        if not abandoned and segment < segment_count:
            rungs[int(segment)] = int(rung)
    return rungs


@dataclass(frozen=True, eq=False)
class TraceComparison:
    """One trace: its real runs, abrsim's session and the figures comparing them."""

    trace: Trace
    runs: list[PlayerRun]
    log: SessionLog
    real_metrics: list[np.ndarray]
    abrsim_metrics: np.ndarray
    preroll_s: float
    figures: dict[str, Any]


def _compare(trace: Trace, runs: list[PlayerRun], ladder: Ladder, model: PlayerModel,
             params: Mapping[str, Any], load1: float) -> TraceComparison:
    preroll = float(np.mean([r.first_media_request_s for r in runs]))
    log, sim = simulate(trace, ladder, model, params, preroll)
    real = [_real_metrics(r, ladder) for r in runs]
    n = ladder.segment_count
    sim_rungs = _played_rungs(log, n)
    real_rungs = [r.played_rungs(n, ladder.segment_duration_s) for r in runs]
    agreement = float(np.mean([np.mean(rr == sim_rungs) for rr in real_rungs]))
    pairs = [np.mean(a == b) for i, a in enumerate(real_rungs) for b in real_rungs[i + 1:]]
    col = METRICS.index
    startups = np.array([m[col("startup_s")] for m in real])
    stalls = np.array([m[col("rebuffer_s")] for m in real])
    bitrates = np.array([m[col("mean_bitrate_bps")] for m in real])
    sim_stall, real_stall = float(sim[col("rebuffer_s")]), float(np.mean(stalls))
    sim_startup, real_startup = float(sim[col("startup_s")]), float(np.mean(startups))
    sim_bitrate, real_bitrate = float(sim[col("mean_bitrate_bps")]), float(np.mean(bitrates))
    stall_error = abs(sim_stall - real_stall)
    figures = {
        "trace": trace.name, "repeats": len(runs), "preroll_s": preroll,
        "rung_agreement": agreement, "real_rung_agreement": float(np.mean(pairs)) if pairs else math.nan,
        "startup_real_s": real_startup, "startup_real_spread_s": float(np.ptp(startups)),
        "startup_abrsim_s": sim_startup,
        "startup_abs_error_s": abs(sim_startup - real_startup),
        "startup_ok": bool(abs(sim_startup - real_startup) <= 0.3
                           or np.min(startups) - 1e-9 <= sim_startup <= np.max(startups) + 1e-9),
        "stall_real_s": real_stall, "stall_real_min_s": float(np.min(stalls)),
        "stall_real_max_s": float(np.max(stalls)), "stall_abrsim_s": sim_stall,
        "stall_abs_error_s": stall_error,
        "stall_ok": bool(stall_error <= 0.5 or np.min(stalls) - 1e-9 <= sim_stall <= np.max(stalls) + 1e-9),
        "bitrate_real_bps": real_bitrate,
        "bitrate_abrsim_bps": sim_bitrate,
        "bitrate_rel_error": abs(sim_bitrate / real_bitrate - 1),
        "abandoned_real": float(np.mean([sum(d["abandoned"] for d in r.downloads) for r in runs])),
        "unplayed_real": float(np.mean([m[col("abandoned_downloads")] for m in real])),
        "abandoned_abrsim": float(sim[col("abandoned_downloads")]),
        "drops_real": float(np.mean([r.drops for r in runs])), "load1": load1,
    }
    return TraceComparison(trace, runs, log, real, sim, preroll, figures)


def summarize(figures: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The benchmark's figures over traces: means of the per-trace errors, with their worst."""
    def values(name: str) -> np.ndarray:
        return np.array([float(f[name]) for f in figures])

    return {
        "rung_agreement": float(np.mean(values("rung_agreement"))),
        "real_rung_agreement": (float(np.nanmean(values("real_rung_agreement")))
                                if np.isfinite(values("real_rung_agreement")).any() else math.nan),
        "startup_abs_error_s": float(np.mean(values("startup_abs_error_s"))),
        "startup_abs_error_max_s": float(np.max(values("startup_abs_error_s"))),
        "startup_abs_error_median_s": float(np.median(values("startup_abs_error_s"))),
        "startup_ok_share": float(np.mean(values("startup_ok"))) if "startup_ok" in figures[0] else math.nan,
        "stall_abs_error_s": float(np.mean(values("stall_abs_error_s"))),
        "stall_abs_error_max_s": float(np.max(values("stall_abs_error_s"))),
        "stall_ok_share": float(np.mean(values("stall_ok"))),
        "bitrate_rel_error": float(np.mean(values("bitrate_rel_error"))),
        "bitrate_rel_error_max": float(np.max(values("bitrate_rel_error"))),
        "traces": len(figures),
        "repeats": int(min(values("repeats"))) if len(figures) else 0,
    }


def _rows(comparison: TraceComparison, ladder: Ladder, model: PlayerModel, params_json: str) -> list[dict]:
    identity = {"scenario": "real-player", "trace": comparison.trace.name, "ladder": ladder.name,
                "model": model.name, "policy": "dashjs", "params": params_json,
                "abrsim_version": __version__}
    rows = []
    for repeat, (source, values) in enumerate(
            [("abrsim", comparison.abrsim_metrics)] + [("real", m) for m in comparison.real_metrics]):
        row: dict[str, Any] = {**identity, "seed": max(repeat - 1, 0)}
        for name, value in zip(METRICS, values, strict=True):
            row[name] = int(value) if name in INTEGER_METRICS and np.isfinite(value) else float(value)
        row = {key: row[key] for key in RESULT_FIELDS}
        row["source"] = source
        row["repeat"] = repeat - 1 if source == "real" else ""
        rows.append(row)
    return rows


def _figure(comparison: TraceComparison, ladder: Ladder, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (bandwidth, rung, buffer) = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True)
    trace = comparison.trace
    edges = np.append(trace.start_s, trace.duration_s)
    bandwidth.step(edges, np.append(trace.bandwidth_bps, trace.bandwidth_bps[-1]) / 1e6, where="post",
                   color="grey")
    bandwidth.set_ylabel("trace, Mbit/s")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, run in enumerate(comparison.runs):
        color = colors[(k + 1) % len(colors)]
        done = [d for d in run.downloads if not d["abandoned"]]
        rung.step([d["request_s"] for d in done], [d["rung"] for d in done], where="post", color=color,
                  label=f"real run {k + 1}")
        aborted = [d for d in run.downloads if d["abandoned"]]
        rung.plot([d["done_s"] for d in aborted], [d["rung"] for d in aborted], "x", color=color)
        if run.buffer.size:
            buffer.plot(run.buffer[:, 0], run.buffer[:, 1], color=color, lw=1, label=f"real run {k + 1}")
        for begin, end in run.stalls:
            buffer.axvspan(begin, end, color=color, alpha=0.25)
        buffer.axvline(run.startup_s, color=color, ls=":", lw=1)
    log, shift = comparison.log, comparison.preroll_s
    completed = ~log.abandoned
    rung.step(log.request_s[completed] + shift, log.rung[completed], where="post", color=colors[0], lw=2,
              label="abrsim")
    times, levels = buffer_curve(log, ladder.segment_duration_s)  # the session's exact buffer level
    buffer.plot(times + shift, levels, color=colors[0], lw=2, label="abrsim")
    buffer.axvline(log.startup_s + shift, color=colors[0], ls=":", lw=1)
    for begin, end in stall_intervals(log) + shift:
        buffer.axvspan(begin, end, color=colors[0], alpha=0.25)
    rung.set_ylabel("rung")
    rung.set_yticks(range(ladder.rung_count))
    rung.legend(loc="lower right", fontsize=7)
    buffer.set_ylabel("buffer, s")
    buffer.set_xlabel("seconds from the player's start")
    figure.suptitle(trace.name, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _write_html(out: Path, comparisons: Sequence[TraceComparison], summary: Mapping[str, Any],
                info: Mapping[str, Any]) -> None:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return html.escape(str(value))

    shown = ("trace", "rung_agreement", "real_rung_agreement", "startup_real_s", "startup_abrsim_s",
             "startup_real_spread_s", "startup_ok", "stall_real_s", "stall_real_min_s", "stall_real_max_s",
             "stall_abrsim_s", "stall_ok", "bitrate_real_bps", "bitrate_abrsim_bps", "bitrate_rel_error",
             "abandoned_real", "unplayed_real", "abandoned_abrsim", "drops_real", "load1")
    header = "".join(f"<th>{html.escape(n)}</th>" for n in shown)
    body = "".join("<tr>" + "".join(f"<td>{cell(c.figures[n])}</td>" for n in shown) + "</tr>"
                   for c in comparisons)
    figures = "".join(
        f'<h3>{html.escape(c.trace.name)}</h3>'
        f'<img src="figures/{k:03d}.png" alt="{html.escape(c.trace.name)}">'
        for k, c in enumerate(comparisons))
    summary_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>"
                           for k, v in summary.items())
    info_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{cell(v)}</td></tr>" for k, v in info.items())
    text = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>abrsim: real player against abrsim</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto}}table{{border-collapse:collapse;
font-size:12px}}td,th{{border:1px solid #ccc;padding:2px 5px;text-align:right}}img{{max-width:100%}}</style>
</head><body>
<h1>dash.js in Chromium through the emulated link, against abrsim</h1>
<p>Per trace: the real runs (thin lines; stalls shaded, startup dotted) and abrsim's session (thick, blue),
rung and buffer on one time axis from the player's start. abrsim's session begins at the real runs' mean
first media request (the MPD and the init segment come before it). Rung agreement: share of segments played
at the same rung; the real runs' own agreement and spread show how repeatable they are.</p>
<h2>Summary</h2><table>{summary_rows}</table>
<h2>Set-up</h2><table>{info_rows}</table>
<h2>Per trace</h2><table><tr>{header}</tr>{body}</table>
<h2>Timelines</h2>{figures}
</body></html>
"""
    (out / "index.html").write_text(text)


def validate_real_player(
    traces: Sequence[Trace],
    out: str | Path,
    *,
    repeats: int = 2,
    model: PlayerModel = DASHJS,
    params: Mapping[str, Any] | None = None,
    fast_switching: bool = False,
    asset_spec: AssetSpec | None = None,
    one_way_delay_s: float = 0.02,
    queue_packets: int = 100,
    start_offset_s: float = 6.0,
    progress: Callable[[str], None] | None = None,
    reuse: bool = False,
) -> tuple[list[TraceComparison], dict[str, Any]]:
    """Real runs and abrsim's session on every trace; write the report to ``out``.

    Args:
        traces: the traces (cut to the asset's length: :func:`cut_traces`).
        out: the output folder (created).
        repeats: real runs per trace (>= 1).
        model: the player model abrsim runs with; its fields also set dash.js's (see
            :func:`~abrsim.emulation.player.dashjs_settings`).
        params: the ``dashjs`` rule set's parameters (defaults for the rest).
        fast_switching: dash.js's fast switching (segment replacement; abrsim does not model it).
        asset_spec: the asset to encode (or reuse from the cache).
        one_way_delay_s, queue_packets, start_offset_s: the emulated path and the player's start.
        progress: called with one line per run.
        reuse: take the real runs already kept in ``out/runs`` (same traces, same order) instead
            of running them, and compare again; nothing is measured (a run not kept counts as
            failed).

    Returns:
        The comparisons and the summary (:func:`summarize`).

    Raises:
        EmulationError: if the machine cannot run the real player, or no real run succeeded.
        ValueError: if ``repeats`` < 1 or no trace is given.

    A real run that fails (times out, or its browser dies) is reported and left out; a trace with
    no successful run is left out of the comparison.
    """
    if int(repeats) < 1:
        raise ValueError(f'"repeats" must be >= 1, got {repeats!r}')
    if not traces:
        raise ValueError("no traces given")
    say = progress or (lambda line: None)
    policy = make("dashjs", **dict(params or {}))
    resolved = policy.resolved(model).params
    asset: Asset = make_asset(asset_spec)
    ladder = ladder_of(asset)
    script = fetch_dashjs()
    settings = dashjs_settings(model, resolved, fast_switching=fast_switching)
    params_json = json.dumps({**resolved, "fast_switching": fast_switching}, sort_keys=True,
                             separators=(",", ":"))
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    comparisons, rows, failures = [], [], []
    started = time.monotonic()
    for index, trace in enumerate(traces):
        runs = []
        load = os.getloadavg()[0]
        for repeat in range(int(repeats)):
            keep = out / "runs" / f"{index:03d}-{repeat}"
            if reuse:
                if (keep / "events.json").exists():
                    runs.append(load_run(keep))
                else:
                    failures.append(f"{trace.name} run {repeat + 1}: not kept in {keep}")
                continue
            try:
                run = run_player(trace, asset, settings, model=model, one_way_delay_s=one_way_delay_s,
                                 queue_packets=queue_packets, start_offset_s=start_offset_s,
                                 dashjs_script=script, keep_dir=keep)
            except EmulationError as exc:
                failures.append(f"{trace.name} run {repeat + 1}: {exc}")
                say(f"{trace.name}: real run {repeat + 1}/{repeats} failed: {exc}")
                continue
            runs.append(run)
            say(f"{trace.name}: real run {repeat + 1}/{repeats}: startup {run.startup_s:.2f} s, "
                f"stall {run.stall_s:.2f} s, {len(run.downloads)} downloads "
                f"({time.monotonic() - started:.0f} s, load {os.getloadavg()[0]:.1f})")
        if not runs:
            continue
        comparison = _compare(trace, runs, ladder, model, resolved, max(load, os.getloadavg()[0]))
        comparisons.append(comparison)
        rows += _rows(comparison, ladder, model, params_json)
        _figure(comparison, ladder, out / "figures" / f"{index:03d}.png")
        f = comparison.figures
        say(f"{trace.name}: rung agreement {f['rung_agreement']:.2f} "
            f"(real-real {f['real_rung_agreement']:.2f}), startup {f['startup_real_s']:.2f}/"
            f"{f['startup_abrsim_s']:.2f} s, stall {f['stall_real_s']:.2f}/{f['stall_abrsim_s']:.2f} s, "
            f"bitrate error {f['bitrate_rel_error']:.3f}")
    if not comparisons:
        raise EmulationError(f"no real run succeeded: {failures[0]}")
    summary = summarize([c.figures for c in comparisons])
    summary["failed_runs"] = len(failures)
    info = {"dashjs_version": comparisons[0].runs[0].dashjs_version or DASHJS_VERSION,
            "model": model.name, "model_fields": model.describe().replace("\n", "; "),
            "fast_switching": fast_switching, "abandonment": bool(model.abandonment and resolved["abandon"]),
            "asset": f"{asset.folder.name}: {asset.spec.bitrates_kbps} kbit/s, {asset.spec.width}x"
                     f"{asset.spec.height}, {asset.spec.duration_s} s in {asset.spec.segment_duration_s} s "
                     f"segments ({asset.ffmpeg_version})",
            "path": f"RTT {2 * one_way_delay_s * 1000:g} ms, drop-tail queue {queue_packets} packets",
            "start_offset_s": start_offset_s, "abrsim_version": __version__,
            "failed_runs": "; ".join(failures) or "none"}
    (out / "results.csv").write_text(format_rows(rows, "csv", fields=(*RESULT_FIELDS, "source", "repeat")))
    (out / "comparison.csv").write_text(format_rows([c.figures for c in comparisons], "csv",
                                                    fields=COMPARISON_FIELDS))
    (out / "summary.json").write_text(json.dumps({"summary": summary, "info": info}, indent=1))
    _write_html(out, comparisons, summary, info)
    return comparisons, summary
