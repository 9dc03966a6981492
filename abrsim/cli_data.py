"""Command-line commands for data tools: `abrsim ladders ...` and `abrsim traces synth|stats|convert`.

Each command is a thin wrapper over :mod:`abrsim.manifest`, :mod:`abrsim.ladder`,
:mod:`abrsim.trace` and :mod:`abrsim.tracegen`; the heavy modules are imported
inside the commands so that ``import abrsim.cli`` stays cheap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from abrsim._cli_util import WorkBar, abrsim_command, prepare_output, write_atomic, write_output
from abrsim.errors import InputError

if TYPE_CHECKING:
    from abrsim.ladder import Ladder
    from abrsim.trace import Trace, TraceStats

__all__ = ["register"]

TRACE_FORMAT_CHOICES = ("abrsim", "pensieve", "sabre", "mahimahi")
_SUFFIX = {"abrsim": ".csv", "pensieve": "", "sabre": ".json", "mahimahi": ""}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A plain aligned text table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]) + "\n"


def _kbps(value_bps: float) -> str:
    return f"{value_bps / 1000:,.0f}"


def _mbps(value_bps: float) -> str:
    return f"{value_bps / 1e6:.3f}"


# ------------------------------------------------------------------------------------------
# ladders


def _ladder_summary(ladder: Ladder) -> list[str]:
    cbr = bool((ladder.size_bits == ladder.size_bits[0]).all())
    scores = ladder.quality
    quality = "none" if scores is None else f"{scores.min():.1f} to {scores.max():.1f}"
    return [
        ladder.name,
        str(ladder.rung_count),
        f"{_kbps(ladder.bitrates_bps[0])} to {_kbps(ladder.bitrates_bps[-1])}",
        f"{ladder.segment_duration_s:g}",
        str(ladder.segment_count),
        f"{ladder.duration_s:g}",
        "CBR" if cbr else "VBR",
        quality,
    ]


_SUMMARY_HEADER = ("ladder", "rungs", "kbit/s", "segment_s", "segments", "duration_s", "sizes", "quality")


def _count(number: int, noun: str) -> str:
    """``1 rung``, ``2 rungs``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _ladder_details(ladder: Ladder) -> str:
    import numpy as np

    mean_bps = ladder.size_bits.mean(axis=0) / ladder.segment_duration_s
    spread = ladder.size_bits.std(axis=0) / ladder.size_bits.mean(axis=0)
    rows = []
    for index, rung in enumerate(ladder.rungs):
        resolution = f"{rung.width or '?'}x{rung.height}" if rung.height else "-"
        fps = f"{rung.frame_rate_hz:.5g}" if rung.frame_rate_hz else "-"
        quality = "-" if ladder.quality is None else f"{float(np.mean(ladder.quality[:, index])):.1f}"
        rows.append([
            str(index), _kbps(rung.bitrate_bps), resolution, rung.codec, fps, _kbps(float(mean_bps[index])),
            f"{float(spread[index]):.3f}", quality,
        ])
    header = ("rung", "kbit/s", "resolution", "codec", "fps", "mean kbit/s", "size CV", "quality")
    text = f"{ladder.name}: {ladder.description}\n" if ladder.description else f"{ladder.name}\n"
    text += (
        f"{_count(ladder.rung_count, 'rung')}, {_count(ladder.segment_count, 'segment')} of "
        f"{ladder.segment_duration_s:g} s ({ladder.duration_s:g} s)\n\n"
    )
    return text + _table(header, rows, (True, True, False, False, True, True, True, True))


@click.group("ladders")
def ladders() -> None:
    """Import, list, inspect and design encoding ladders."""


@ladders.command("list")
@abrsim_command
def ladders_list() -> None:
    """List the built-in ladders."""
    from abrsim.ladder import available_ladders, load_ladder

    rows = [_ladder_summary(load_ladder(name)) for name in available_ladders()]
    click.echo(_table(_SUMMARY_HEADER, rows, (False, True, True, True, True, True, False, False)), nl=False)


@ladders.command("show")
@click.argument("ladder")
@click.option("--segment-duration-s", type=float, default=None,
              help="Segment duration for a size .csv ladder.")
@abrsim_command
def ladders_show(ladder: str, segment_duration_s: float | None) -> None:
    """Show a ladder's rungs: a built-in name or a .toml / Sabre .json / size .csv file."""
    from abrsim.ladder import load_ladder

    click.echo(_ladder_details(load_ladder(ladder, segment_duration_s=segment_duration_s)), nl=False)


def _check_ladder_out(out: Path) -> None:
    """Before any work: ``out`` must be a .toml file whose folder can be made and written."""
    if out.suffix.lower() != ".toml":
        raise InputError(f"found suffix {out.suffix!r}; expected a .toml file", field="--out")
    prepare_output(out)


def _write_ladder(ladder: Ladder, out: Path, **keys: Any) -> None:
    from abrsim.ladder import write_ladder_toml

    _check_ladder_out(out)
    for path in write_ladder_toml(ladder, out, **keys):
        click.echo(f"abrsim: wrote {path}", err=True)


_size_model_option = click.option(
    "--size-model", type=click.Choice(["cbr", "vbr"]), default="cbr", show_default=True,
    help="Segment sizes when the source has none: constant bitrate or the seeded VBR model.",
)
_seed_option = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                            help="Seed of the VBR sizes.")
_quality_model_option = click.option(
    "--quality-model", type=click.Choice(["none", "vmaf"]), default="none", show_default=True,
    help="Add per-rung quality from the rate-quality model (needs resolutions).",
)
_complexity_option = click.option("--title-complexity", type=float, default=1.0, show_default=True,
                                  help="Title complexity for the quality model (1: like the envivio title).")


@ladders.command("import")
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The ladder .toml to write (per-segment sizes go to <name>.sizes.csv beside it).")
@click.option("--format", "fmt", type=click.Choice(["dash", "hls"]), default=None,
              help="Manifest format (default: from the suffix, else the content).")
@click.option("--codec", default=None,
              help="Keep only renditions of this codec family (h264, hevc, av1, ...).")
@click.option("--segment-duration-s", type=float, default=None,
              help="Segment duration when the manifest has none (HLS master without media playlists).")
@click.option("--duration-s", type=float, default=None, help="Title length when the manifest has none.")
@_size_model_option
@_seed_option
@_quality_model_option
@_complexity_option
@click.option("--name", default=None, help="Ladder name (default: the output file's stem).")
@abrsim_command
def ladders_import(manifest: Path, out: Path, fmt: str | None, codec: str | None,
                   segment_duration_s: float | None, duration_s: float | None, size_model: str, seed: int,
                   quality_model: str, title_complexity: float, name: str | None) -> None:
    """Import a DASH MPD or HLS master playlist as a ladder (files only; nothing is fetched)."""
    import dataclasses

    from abrsim.ladder import model_quality
    from abrsim.manifest import read_manifest

    _check_complexity(title_complexity)
    _check_name(name)
    _check_ladder_out(out)
    result = read_manifest(manifest, fmt, codec=codec, segment_duration_s=segment_duration_s,
                           duration_s=duration_s, size_model=size_model, seed=seed,
                           name=out.stem if name is None else name)
    ladder = result.ladder
    keys: dict[str, Any] = {}
    if result.sizes_from == "vbr":
        keys.update(size_model="vbr", size_seed=seed)
    if quality_model == "vmaf":
        try:
            quality = model_quality(ladder.rungs, ladder.segment_count, title_complexity=title_complexity)
        except ValueError as exc:
            raise InputError(str(exc), source=manifest, field="--quality-model") from None
        ladder = dataclasses.replace(ladder, quality=quality)
        keys.update(quality_model="vmaf", title_complexity=title_complexity)
    for note in result.notes:
        click.echo(f"abrsim: note: {note}", err=True)
    _write_ladder(ladder, out, **keys)
    click.echo(_ladder_details(ladder), nl=False)


def _check_name(name: str | None) -> None:
    """Before any work: a ``--name`` is a plain name, as a sweep's names are (no path, no leading dot)."""
    from abrsim._toml import name_problem

    problem = None if name is None else name_problem(name)
    if problem:
        raise InputError(problem, field="--name")


def _check_complexity(title_complexity: float) -> None:
    """Before any work: the title complexity is a finite number > 0."""
    if not (math.isfinite(title_complexity) and title_complexity > 0):
        raise InputError(f"found {title_complexity:g}; expected a finite number > 0 (1: like the envivio "
                         "title)", field="--title-complexity")


def _resolutions(text: str | None) -> list[tuple[int, int]] | None:
    if text is None:
        return None
    pairs = []
    for item in text.split(","):
        width, sep, height = item.strip().lower().partition("x")
        if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
            raise InputError(f"found {item.strip()!r}; expected WIDTHxHEIGHT, e.g. 1280x720",
                             field="--resolutions")
        pairs.append((int(width), int(height)))
    return pairs


@ladders.command("pertitle")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The ladder .toml to write.")
@click.option("--curves", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The title's measured rate-quality points: CSV with width,height,bitrate_kbps,quality"
                   "[,codec][,frame_rate_hz]. Default: the rate-quality model's curves.")
@click.option("--rungs", "rung_count", type=click.IntRange(min=1), default=None,
              help="Number of rungs (log-even bitrates along the hull).")
@click.option("--quality-step", type=float, default=None,
              help="Quality gap between consecutive rungs, e.g. 6 (VMAF points).")
@click.option("--min-bitrate-kbps", type=float, default=100.0, show_default=True)
@click.option("--max-bitrate-kbps", type=float, default=20000.0, show_default=True)
@click.option("--max-quality", type=float, default=95.0, show_default=True,
              help="Top the ladder at the first hull point this good (100: no cap).")
@click.option("--resolutions", default=None,
              help="Model candidates, e.g. 1920x1080,1280x720,640x360 (default: 234p to 1080p).")
@click.option("--codec", default="h264", show_default=True, help="Codec of the model's candidates.")
@click.option("--frame-rate-hz", type=float, default=30.0, show_default=True)
@_complexity_option
@click.option("--segment-duration-s", type=float, default=4.0, show_default=True)
@click.option("--duration-s", type=float, default=600.0, show_default=True, help="Title length.")
@_size_model_option
@_seed_option
@click.option("--name", default=None, help="Ladder name (default: the output file's stem).")
@abrsim_command
def ladders_pertitle(out: Path, curves: Path | None, rung_count: int | None, quality_step: float | None,
                     min_bitrate_kbps: float, max_bitrate_kbps: float, max_quality: float,
                     resolutions: str | None, codec: str, frame_rate_hz: float, title_complexity: float,
                     segment_duration_s: float, duration_s: float, size_model: str, seed: int,
                     name: str | None) -> None:
    """Build a per-title ladder on the convex hull of a title's rate-quality curves."""

    from abrsim.ladder import (
        DEFAULT_RESOLUTIONS,
        check_segment_duration_s,
        pertitle_ladder,
        read_quality_curves,
    )

    if (rung_count is None) == (quality_step is None):
        raise InputError("give exactly one of --rungs and --quality-step", field="--rungs")
    _check_complexity(title_complexity)
    _check_name(name)
    if not (math.isfinite(duration_s) and duration_s > 0 and segment_duration_s > 0):
        raise InputError(f"expected durations > 0, found {duration_s!r} and {segment_duration_s!r}",
                         field="--duration-s")
    check_segment_duration_s(segment_duration_s, "--segment-duration-s")
    _check_ladder_out(out)  # (which makes its folder: after the checks that need none)
    ladder = pertitle_ladder(
        None if curves is None else read_quality_curves(curves),
        rung_count=rung_count,
        quality_step=quality_step,
        min_bitrate_bps=min_bitrate_kbps * 1000,
        max_bitrate_bps=max_bitrate_kbps * 1000,
        max_quality=None if max_quality >= 100 else max_quality,
        resolutions=_resolutions(resolutions) or DEFAULT_RESOLUTIONS,
        codec=codec,
        frame_rate_hz=frame_rate_hz,
        title_complexity=title_complexity,
        segment_duration_s=segment_duration_s,
        segment_count=max(1, math.ceil(duration_s / segment_duration_s - 1e-9)),
        size_model=size_model,
        size_seed=seed,
        name=out.stem if name is None else name,
    )
    _write_ladder(ladder, out, **({"size_model": "vbr", "size_seed": seed} if size_model == "vbr" else {}))
    click.echo(_ladder_details(ladder), nl=False)


# ------------------------------------------------------------------------------------------
# traces


def _stats_row(stats: TraceStats) -> list[str]:
    return [
        stats.name, f"{stats.duration_s:g}", str(stats.samples), _mbps(stats.mean_bps), _mbps(stats.p10_bps),
        _mbps(stats.p50_bps), _mbps(stats.p90_bps), _mbps(stats.min_bps), _mbps(stats.max_bps),
        f"{100 * stats.outage_fraction:.2f}", f"{stats.lag1_autocorrelation:.3f}", stats.measures,
    ]


_STATS_HEADER = ("trace", "duration_s", "samples", "mean", "p10", "p50", "p90", "min", "max", "outage_%",
                 "lag1_ac", "measures")


def _write_whole(trace: Trace, path: Path, fmt: str, **options: Any) -> None:
    """Write a trace whole (:func:`~abrsim._cli_util.write_atomic`); an error names ``path``, not the
    temporary file."""
    from abrsim.trace import write_trace

    try:
        write_atomic(path, lambda tmp: write_trace(trace, tmp, fmt, **options))
    except InputError as exc:
        raise InputError(exc.detail, source=path, line=exc.line, field=exc.field) from None
    except OSError as exc:
        raise InputError(f"cannot write the output ({exc.strerror or exc})", source=path) from None


def _synth(profile: str, count: int, duration_s: float | None, seed: int, out: Path, fmt: str) -> None:
    from abrsim import limits
    from abrsim.tracegen import get_profile, network_statistics, synthesize_each

    model = get_profile(profile)
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s >= 1):
        raise InputError(f"found {duration_s!r}; expected seconds >= 1 (the statistics compare 1 s means)",
                         field="--duration-s")
    # all the work, before any of it: samples per trace, then in all
    length_s = model.typical_duration_s if duration_s is None else duration_s
    interval_s = model.sample_interval_s
    limits.check("trace_samples", length_s / interval_s,
                 f"samples of {length_s:g} s at {interval_s:g} s each", field="--duration-s")
    samples = max(1, math.ceil(length_s / interval_s - 1e-9))
    limits.check("synth_samples", count * samples, f"samples in {count:,} traces of {length_s:g} s",
                 field="--count")
    prepare_output(out / "index.csv")  # before drawing the traces, not after
    out.mkdir(parents=True, exist_ok=True)

    def written(bar: WorkBar) -> Iterator[Trace]:
        """Each trace, once it is in its file (only its 1 s means stay in memory, for the statistics)."""
        for done, trace in enumerate(synthesize_each(model, count, duration_s, seed), 1):
            _write_whole(trace, out / f"{trace.name}{_SUFFIX[fmt]}", fmt, latency_s=0.0)
            bar(done, count)
            yield trace

    try:
        with WorkBar("synthesizing", "traces") as bar:
            stats = network_statistics(written(bar))
    except InputError:
        raise
    except ValueError as exc:  # count and seed are checked by their options; what is left is the length
        raise InputError(str(exc), field="--duration-s") from None
    real = model.real_statistics
    click.echo(f"wrote {count} {profile} traces of {length_s:g} s to {out}")
    rows = [
        [key, f"{real[key]:.4g}", f"{getattr(stats, key):.4g}",
         "-" if real[key] == 0 else f"{100 * (getattr(stats, key) - real[key]) / real[key]:+.1f}"]
        for key in real
    ]
    click.echo(_table(("statistic (1 s means)", "real set", "these traces", "diff_%"), rows,
                      (False, True, True, True)), nl=False)


def register(group: click.Group) -> None:
    """Add this module's commands to the ``abrsim`` group: ``ladders`` and ``traces synth|stats|convert``."""
    group.add_command(ladders)
    traces = group.commands["traces"]
    assert isinstance(traces, click.Group)

    @traces.command("synth")
    @click.option("--profile", required=True, help="Network profile: 3g, 4g, 5g or broadband.")
    @click.option("--count", type=click.IntRange(min=1), default=10, show_default=True)
    @click.option("--duration-s", type=float, default=None,
                  help="Length of each trace (default: the real set's median length).")
    @click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
    @click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
                  help="Folder to write the traces into.")
    @click.option("--format", "fmt", type=click.Choice(TRACE_FORMAT_CHOICES), default="abrsim",
                  show_default=True, help="File format (sabre files get 0 ms latency).")
    @abrsim_command
    def traces_synth(
        profile: str, count: int, duration_s: float | None, seed: int, out: Path, fmt: str
    ) -> None:
        """Draw synthetic traces from a network profile fitted to real traces."""
        _synth(profile, count, duration_s, seed, out, fmt)

    @traces.command("stats")
    @click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--trace-format", type=click.Choice(TRACE_FORMAT_CHOICES), default=None,
                  help="Trace format (default: detect from the file).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
                  show_default=True)
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write the output to this file instead of stdout.")
    @abrsim_command
    def traces_stats(paths: tuple[Path, ...], trace_format: str | None, fmt: str, out: Path | None) -> None:
        """Summarise traces: duration, time-weighted mean and percentiles (Mbit/s), outage share.

        Outage: time below 50 kbit/s. lag1_ac: lag-1 autocorrelation of 1 s means. With
        several traces, a last row pools all 1 s means.
        """
        import csv
        import io

        from abrsim.trace import load_traces, trace_stats
        from abrsim.tracegen import network_statistics

        prepare_output(out)
        loaded = load_traces(list(paths), format=trace_format)
        stats = [trace_stats(trace) for trace in loaded]
        if fmt == "json":
            write_output(json.dumps([s.__dict__ for s in stats], indent=1) + "\n", out)
            return
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(stats[0].__dict__), lineterminator="\n")
            writer.writeheader()
            writer.writerows(s.__dict__ for s in stats)
            write_output(buffer.getvalue(), out)
            return
        rows = [_stats_row(s) for s in stats]
        if len(loaded) > 1:
            pooled = network_statistics(loaded)
            rows.append([
                f"all {len(loaded)} (1 s means)", f"{sum(s.duration_s for s in stats):g}",
                str(sum(s.samples for s in stats)), _mbps(pooled.mean_bps), _mbps(pooled.p10_bps), "-",
                _mbps(pooled.p90_bps), "-", "-", f"{100 * pooled.outage_fraction:.2f}",
                f"{pooled.lag1_autocorrelation:.3f}", ",".join(sorted({s.measures for s in stats})),
            ])
        text = _table(_STATS_HEADER, rows, (False, *[True] * (len(_STATS_HEADER) - 1)))
        write_output(text + "bandwidths in Mbit/s\n", out)

    @traces.command("convert")
    @click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="The file to write.")
    @click.option("--to", "to_format", type=click.Choice(TRACE_FORMAT_CHOICES), required=True)
    @click.option("--from", "from_format", type=click.Choice(TRACE_FORMAT_CHOICES), default=None,
                  help="Input format (default: detect from the file).")
    @click.option("--latency-ms", type=float, default=None,
                  help="For --to sabre: the latency to write when the trace has none.")
    @click.option("--drop-latency", is_flag=True,
                  help="For --to pensieve or mahimahi: drop the trace's latencies.")
    @abrsim_command
    def traces_convert(source: Path, out: Path, to_format: str, from_format: str | None,
                       latency_ms: float | None, drop_latency: bool) -> None:
        """Convert a trace between the abrsim, Pensieve, Sabre and Mahimahi formats.

        abrsim, Pensieve and Sabre files convert without loss; Mahimahi keeps the bits
        up to every 100 ms bin edge to within half a packet of 1500 bytes.
        """
        from abrsim.trace import load_trace, write_trace

        if out.resolve() == source.resolve():
            raise InputError("the output is the input file; expected another path", source=out, field="--out")
        prepare_output(out)
        trace = load_trace(source, from_format)
        if latency_ms is not None and not latency_ms >= 0:
            raise InputError(f"expected milliseconds >= 0, found {latency_ms!r}", field="--latency-ms")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_trace(trace, out, to_format, latency_s=None if latency_ms is None else latency_ms / 1000,
                    drop_latency=drop_latency)
        click.echo(f"abrsim: wrote {out} ({to_format}, {trace.start_s.size} samples, {trace.duration_s:g} s)",
                   err=True)
