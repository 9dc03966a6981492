"""The ``abrsim`` command line: thin wrappers over the Python API."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from abrsim import __version__
from abrsim._cli_util import (
    EXIT_INTERRUPTED,
    WorkBar,
    abrsim_command,
    prepare_output,
    say_compiling,
    write_output,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="abrsim")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """abrsim: adaptive-bitrate video streaming simulator."""


@cli.command()
@click.option("--trace", "trace_paths", multiple=True, type=click.Path(path_type=Path),
              help="Trace file or folder (repeatable). Default: the built-in corpus.")
@click.option("--trace-format", type=click.Choice(["abrsim", "pensieve", "sabre", "mahimahi"]),
              default=None, help="Trace format (default: detect from the file).")
@click.option("--ladder", default="hls", show_default=True,
              help="Built-in ladder name, a .toml / Sabre movie .json / size .csv file, or a folder "
                   "of Pensieve video_size_* files.")
@click.option("--segment-duration-s", type=float, default=None,
              help="Segment duration for a size .csv ladder.")
@click.option("--abr", "algorithms", multiple=True,
              help="Algorithm (repeatable). Default: bola and throughput. See `abrsim algorithms`.")
@click.option("--policy", "policy_refs", multiple=True, metavar="FILE.py:NAME",
              help="Your own policy: a class or function NAME in FILE.py, or a compiled policy the "
                   "file registers as NAME (repeatable; with no --abr, only the policies run). "
                   "See docs/policies.md.")
@click.option("--model", "model_name", default="abrsim", show_default=True,
              help="Player model preset: abrsim, sabre, pensieve or dashjs (see `abrsim models`).")
@click.option("--param", "param_items", multiple=True, metavar="KEY=VALUE",
              help="Algorithm parameter or player-model field, e.g. gamma_p=4, bola.guard=o, "
                   "max_buffer_s=30 (repeatable).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed recorded on every row (and given to Python policies' reset).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the output to this file instead of stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the first trace's session of each algorithm (bandwidth, bitrate, buffer, "
                   "stalls) into this .png, .svg or .pdf file.")
@abrsim_command
def run(trace_paths: tuple[Path, ...], trace_format: str | None, ladder: str,
        segment_duration_s: float | None, algorithms: tuple[str, ...], policy_refs: tuple[str, ...],
        model_name: str, param_items: tuple[str, ...], seed: int, fmt: str, out: Path | None,
        plot: Path | None) -> None:
    """Replay traces with ABR algorithms and report QoE per session.

    With no options, runs the default scenario: the built-in trace corpus, the
    `hls` ladder, BOLA and the throughput rule.
    """
    from abrsim._data import data_dir
    from abrsim.abr import PythonPolicy, load_policy
    from abrsim.model import get_preset
    from abrsim.results import format_rows, summarize_rows
    from abrsim.runner import DEFAULT_ALGORITHMS, load_any_ladder, parse_params
    from abrsim.runner import run as run_traces
    from abrsim.trace import load_traces

    if plot is not None:
        from abrsim.cli_report import check_plot_path, plot_run

        check_plot_path(plot)
    prepare_output(out)  # before the run, not after it
    default = not (trace_paths or algorithms or param_items or policy_refs) and ladder == "hls"
    loaded = [load_policy(ref) for ref in policy_refs]
    # A file that registers a compiled policy adds a named algorithm (its --param apply as usual).
    policies = [p for p in loaded if isinstance(p, PythonPolicy)]
    compiled = tuple(p.name for p in loaded if not isinstance(p, PythonPolicy))
    names = tuple(dict.fromkeys((*algorithms, *compiled))) or (() if policies else DEFAULT_ALGORITHMS)
    traces = load_traces(list(trace_paths) or [data_dir("traces")], format=trace_format)
    encoding = load_any_ladder(ladder, segment_duration_s=segment_duration_s)
    params = parse_params(param_items)
    model = get_preset(model_name)
    if "oracle" in names and model.network != "throughput" and "network" not in params:
        # The offline optimum plans with the throughput network: the whole run uses it, so that the
        # bound and the algorithms it bounds share one model.
        params["network"] = "throughput"
        click.echo("abrsim: --abr oracle plans with the throughput network; this run uses "
                   "network=throughput for every algorithm", err=True)
    with WorkBar("simulating", "segments") as bar:
        rows = run_traces(
            traces,
            encoding,
            names,
            model=model,
            params=params,
            seed=seed,
            scenario="default" if default else "run",
            progress=bar,
            policies=policies,
            on_compile=say_compiling,  # the package's first run, or an algorithm's
        )
    write_output(format_rows(rows, fmt, summarize_rows(rows) if len(rows) > 1 else ()), out)
    if plot is not None:
        plot_run(plot, traces[0], encoding, names, model, params, seed, policies)
        click.echo(f"abrsim: wrote {plot} (trace {traces[0].name!r})", err=True)


@cli.command()
@abrsim_command
def algorithms() -> None:
    """List the ABR algorithms with their parameters and defaults."""
    from abrsim.abr import ALGORITHMS, available

    for spec in (ALGORITHMS[name] for name in available()):
        click.echo(f"{spec.name}: {spec.summary}")
        click.echo(f"  cites: {spec.citation}")
        for param in spec.params:
            extra = f" (one of: {', '.join(param.choices)})" if param.choices else ""
            if param.maximum is not None:
                extra += f" (at most {param.maximum:g})"
            click.echo(f"  {param.name} = {param.default!r}: {param.doc}{extra}")
        click.echo("")
    from abrsim.runner import ORACLE_PARAMS

    click.echo("oracle: the offline optimum: the rung sequence with the highest QoE_lin for the whole trace, "
               "found by a dominance-pruned search over exact partial sessions (abrsim.oracle); it knows the "
               "future, so it is a bound, not a policy. Usable with `abrsim run --abr oracle`.")
    for name, doc in ORACLE_PARAMS.items():
        click.echo(f"  {name} = 0.0: {doc}; set with --param oracle.{name}=VALUE")


@cli.command()
@abrsim_command
def models() -> None:
    """List the player-model presets: abrsim's own model in full, the others where they differ.

    Values are written as `--param NAME=VALUE` takes them.
    """
    import dataclasses

    from abrsim.model import PRESETS, PlayerModel

    base = PlayerModel()
    for name, model in PRESETS.items():
        own = name == base.name
        click.echo(f"{name}: abrsim's own model (every field)" if own else
                   f"{name}: where it differs from abrsim's own model")
        for field in dataclasses.fields(model):
            value = getattr(model, field.name)
            same = value == getattr(base, field.name)
            if field.name in ("name", "algorithm_defaults") or (same and not own):
                continue
            note = "" if own else f"  (abrsim: {_param_text(getattr(base, field.name))})"
            click.echo(f"  {field.name} = {_param_text(value)}{note}")
        if model.algorithm_defaults:
            click.echo("  algorithm parameter defaults (explicit --param values still win):")
            for key, value in model.algorithm_defaults:
                click.echo(f"    {key} = {_param_text(value)}")
        click.echo("")


def _param_text(value: object) -> str:
    """A value as ``--param NAME=VALUE`` takes it: true/false, comma-separated lists, plain text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.15g}"
    if isinstance(value, tuple):
        return ",".join(_param_text(v) for v in value) if value else "(none)"
    return str(value)


@cli.group()
def traces() -> None:
    """Make and inspect bandwidth traces."""


@traces.command("generate")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("traces"),
              show_default=True, help="Folder to write the default corpus into.")
@click.option("--seed", type=click.IntRange(min=0), default=2024, show_default=True)
@abrsim_command
def traces_generate(out: Path, seed: int) -> None:
    """Write the project's default trace corpus (the one `abrsim run` uses)."""
    from abrsim.tracegen import write_default_corpus

    prepare_output(out / "index.csv")
    paths = write_default_corpus(out, seed=seed)
    click.echo(f"wrote {len(paths)} files to {out}")


def _register_commands() -> None:
    """Add the commands that live in their own modules (each has ``register(group)``)."""
    from abrsim import cli_data, cli_des, cli_policies, cli_report, cli_sweep, cli_validate

    for module in (cli_sweep, cli_des, cli_report, cli_data, cli_policies, cli_validate):
        module.register(cli)


_register_commands()


def main() -> None:
    """Console-script entry point (the process's last act: it leaves Ctrl-C ignored)."""
    # The command line owns its process, so it may pick numba's optimisation level: level 2
    # compiles the kernels about a fifth faster than the default 3 and ran them as fast in
    # benchmarks/fast_engine.py. An explicit NUMBA_OPT wins.
    os.environ.setdefault("NUMBA_OPT", "2")
    try:
        cli(prog_name="abrsim")
    except KeyboardInterrupt:
        # Ctrl-C in the moments outside both the command's own handling and click's (which
        # says "Aborted!"): as the command leaves, or as click ends the process.
        click.echo("\nabrsim: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        # The command is over (its outputs written whole, or not at all), so a Ctrl-C while
        # Python shuts down changes nothing and must not turn into a traceback or a signal death.
        _ignore_ctrl_c()


def _ignore_ctrl_c() -> None:
    """Ignore SIGINT from now on (main thread only); a Ctrl-C already pending is dropped too."""
    if threading.current_thread() is not threading.main_thread():
        return
    for _ in range(3):  # signal.signal first delivers a pending signal, then changes the handler
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            continue
