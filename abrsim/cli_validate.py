"""``abrsim validate real-player``: dash.js in Chromium through the emulated link, against abrsim."""

from __future__ import annotations

from pathlib import Path

import click

from abrsim._cli_util import abrsim_command
from abrsim.errors import InputError


@click.group("validate")
def validate() -> None:
    """Check abrsim against real players and networks."""


@validate.command("real-player")
@click.option("--traces", "trace_paths", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path),
              help="Trace file or folder (repeatable; any format abrsim reads). Each trace is cut to the "
                   "asset's length.")
@click.option("--repeats", type=click.IntRange(min=1), default=2, show_default=True,
              help="Real runs per trace.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for index.html, results.csv, comparison.csv, figures/ and runs/.")
@click.option("--model", "model_name", default="dashjs", show_default=True,
              help="Player model preset abrsim runs with (its fields also set dash.js's).")
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE",
              help="A dashjs rule-set parameter or player-model field, e.g. abandonment=false "
                   "(repeatable).")
@click.option("--fast-switching/--no-fast-switching", default=False, show_default=True,
              help="dash.js's fast switching (segment replacement; abrsim does not model it).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N traces.")
@click.option("--rtt-ms", type=click.IntRange(min=0), default=40, show_default=True,
              help="The emulated path's base round trip (even: mm-delay's delay each way is half).")
@click.option("--start-offset-s", type=click.FloatRange(min=5.0), default=6.0, show_default=True,
              help="The player starts at this link time (a cold Chromium takes about 3.5 s).")
@abrsim_command
def validate_real_player(trace_paths: tuple[Path, ...], repeats: int, out: Path, model_name: str,
                         param_items: tuple[str, ...], fast_switching: bool, limit: int | None,
                         rtt_ms: int, start_offset_s: float) -> None:
    """Play every trace with dash.js in headless Chromium (N runs) and with abrsim (one run).

    Needs root and `tools/emulation/emulation.sh up` (Mahimahi, ffmpeg, npm, chromium). See
    docs/real_player.md.
    """
    from abrsim.emulation.asset import AssetSpec
    from abrsim.emulation.player import player_unavailable
    from abrsim.emulation.realplayer import cut_traces, validate_real_player
    from abrsim.model import get_preset
    from abrsim.runner import parse_params, resolve_params

    reason = player_unavailable()
    if reason:
        raise click.ClickException(f"the real player cannot run here: {reason}")
    if rtt_ms % 2:
        raise InputError(f"got {rtt_ms}; expected an even number of ms", field="--rtt-ms")
    per_algorithm, model = resolve_params(parse_params(param_items), ["dashjs"], get_preset(model_name))
    spec = AssetSpec()
    traces = cut_traces(list(trace_paths), spec.duration_s)[:limit]
    _, summary = validate_real_player(
        traces, out, repeats=repeats, model=model, params=per_algorithm["dashjs"],
        fast_switching=fast_switching, asset_spec=spec, one_way_delay_s=rtt_ms / 2000,
        start_offset_s=start_offset_s, progress=lambda line: click.echo(line, err=True))
    for key, value in summary.items():
        click.echo(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    click.echo(f"abrsim: wrote {out / 'index.html'}", err=True)


def register(group: click.Group) -> None:
    """Add this module's commands to the ``abrsim`` group."""
    group.add_command(validate)
