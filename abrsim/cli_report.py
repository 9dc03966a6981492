"""Command-line commands for figures and reports (`abrsim report`, and `abrsim run --plot`).

matplotlib is imported only inside the commands, so that ``import abrsim.cli`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from abrsim._cli_util import abrsim_command

if TYPE_CHECKING:
    from abrsim.ladder import Ladder
    from abrsim.model import PlayerModel
    from abrsim.trace import Trace

__all__ = ["check_plot_path", "plot_run", "register"]

#: Figure formats ``--plot`` writes, by file suffix.
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_plot_path(path: Path) -> None:
    """Fail early (before simulating) on a ``--plot`` file matplotlib will not write.

    Makes its folder, as ``--out`` does.

    Raises:
        InputError: if the suffix is not .png, .svg or .pdf, or the file cannot be written there.
    """
    from abrsim._cli_util import prepare_output
    from abrsim.errors import InputError

    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(f"got {path.suffix or 'no suffix'!r}; expected {', '.join(PLOT_SUFFIXES)}",
                         source=path, field="--plot")
    prepare_output(path)


def plot_run(
    path: Path,
    trace: Trace,
    ladder: Ladder,
    algorithms: Sequence[str],
    model: PlayerModel,
    params: Mapping[str, Any],
    seed: int = 0,
    policies: Sequence[Any] = (),
) -> Path:
    """Replay one trace with each algorithm (and Python policy) and draw the sessions' timeline into ``path``.

    The algorithms, parameters and model are resolved exactly as ``abrsim run`` resolves
    them (:func:`abrsim.runner.resolve_params`), so the plot shows the sessions of the table.

    Raises:
        AbrsimError: on an unknown algorithm or parameter, or a bad ``path``.
    """
    from abrsim.abr import make
    from abrsim.engine.fast import run_batch
    from abrsim.report import save_figure, session_timeline_figure
    from abrsim.runner import resolve_params

    names = list(dict.fromkeys(algorithms))
    per_algorithm, model = resolve_params(params, names, model)
    runs = [make(name, **per_algorithm[name]) for name in names] + list(policies)
    logs = [run_batch([trace], ladder, policy, model, seed).session_log(0) for policy in runs]
    figure = session_timeline_figure(logs, trace, ladder, max_buffer_s=model.max_buffer_s)
    return save_figure(figure, path)


@click.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for index.html and figures/ (created if needed).")
@click.option("--compare", "compare_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="`abrsim compare --format json` output to include. Default: the sweep folder's "
                   "compare.json, if any.")
@click.option("--select", "selector", default="", metavar="SELECTOR",
              help="Only the rows matching this selector (as in `abrsim compare`), e.g. "
                   "ladder=hls,model=abrsim or policy!=throughput.")
@click.option("--title", default=None, help="Page title. Default: names the results.")
@abrsim_command
def report(results: Path, out_dir: Path, compare_path: Path | None, selector: str, title: str | None) -> None:
    """Write a static HTML report with figures from a results table.

    RESULTS is a .csv or .json file from `abrsim run --format csv|json --out`, a .parquet
    file, or a sweep folder (results.parquet or results.csv, with spec.toml and meta.json).
    Open OUT/index.html in a browser; no server is needed.
    """
    from abrsim._cli_util import prepare_output
    from abrsim.report import load_results, write_report

    prepare_output(out_dir / "index.html")  # before reading and drawing, not after
    data = load_results(results, compare=compare_path)
    index = write_report(data.select(selector) if selector else data, out_dir, title=title)
    figures = len(list((index.parent / "figures").glob("*.png")))
    click.echo(f"abrsim: wrote {index} ({figures} figures, each as PNG and SVG)", err=True)


def register(group: click.Group) -> None:
    """Add this module's commands to the ``abrsim`` group."""
    group.add_command(report)
