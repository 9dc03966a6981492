"""``abrsim policies``: try a user's Python policy before a long run."""

from __future__ import annotations

from pathlib import Path

import click

from abrsim._cli_util import abrsim_command


@click.group()
def policies() -> None:
    """Check your own ABR policies (see docs/policies.md)."""


@policies.command("check")
@click.argument("reference", metavar="FILE.py:CLASS")
@click.option("--ladder", default="hls", show_default=True, help="Ladder to try it on (name or file).")
@click.option("--trace", "trace_paths", multiple=True, type=click.Path(path_type=Path),
              help="Trace file or folder to try it on (repeatable). Default: the built-in corpus.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@abrsim_command
def check(reference: str, ladder: str, trace_paths: tuple[Path, ...], seed: int) -> None:
    """Run the policy CLASS from FILE.py through whole sessions, twice, and say what is wrong.

    Checks that it loads and answers every decision with a rung in range, does not change
    what it is given, and makes the same sessions for the same seed. On a problem: the
    policy's own traceback, one line naming the file and the problem, and exit code 2.
    """
    from abrsim._data import data_dir
    from abrsim.abr import check_policy
    from abrsim.abr._python import PolicyError
    from abrsim.runner import load_any_ladder
    from abrsim.trace import load_traces

    traces = load_traces(list(trace_paths) or [data_dir("traces")])
    try:
        lines = check_policy(reference, load_any_ladder(ladder), traces, seed=seed)
    except PolicyError as exc:
        if exc.details:
            click.echo(exc.details.rstrip(), err=True)
        raise
    for line in lines:
        click.echo(f"ok: {line}")


def register(group: click.Group) -> None:
    """Add this module's commands to the ``abrsim`` group."""
    group.add_command(policies)
