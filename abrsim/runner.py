"""Trace replay over many traces and algorithms: what ``abrsim run`` does, as a function."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from abrsim._ahead import Job, compile_ahead
from abrsim._ahead import enabled as ahead_enabled
from abrsim.abr import KernelPolicy, PythonPolicy, make
from abrsim.abr import available as available_algorithms
from abrsim.engine.fast import compiled_loop, pack_traces, run_batch
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import Ladder
from abrsim.model import PlayerModel
from abrsim.qoe import METRICS
from abrsim.results import INTEGER_METRICS, RESULT_FIELDS, Row, rows_from_batch
from abrsim.trace import Trace

__all__ = [
    "DEFAULT_ALGORITHMS",
    "ORACLE",
    "ORACLE_PARAMS",
    "load_any_ladder",
    "oracle_rows",
    "parse_params",
    "resolve_params",
    "run",
]

#: Algorithms ``abrsim run`` compares when none is named.
DEFAULT_ALGORITHMS = ("bola", "throughput")
#: The offline optimum (:mod:`abrsim.oracle`): not an online policy, it knows the whole trace.
ORACLE = "oracle"
#: The oracle's parameters (``--param oracle.NAME=VALUE``): its search's quantisation steps.
ORACLE_PARAMS = {
    "time_step_s": "compare partial sessions by request time in steps of this many seconds (0: exact)",
    "buffer_step_s": "compare partial sessions by playback deadline in steps of this many seconds (0: exact)",
}

#: A progress callback: ``progress(done, total)``, in segments simulated (see :func:`run`).
Progress = Callable[[int, int], None]


def load_any_ladder(spec: str, segment_duration_s: float | None = None) -> Ladder:
    """A ladder by built-in name or path, including a folder of Pensieve ``video_size_*`` files.

    Raises:
        AbrsimError: if the name or file cannot be read as a ladder.
    """
    from abrsim.ladder import load_ladder
    from abrsim.peer_formats import is_pensieve_video, read_pensieve_video

    if is_pensieve_video(spec):
        return read_pensieve_video(spec, segment_duration_s=segment_duration_s or 4.0)
    return load_ladder(spec, segment_duration_s=segment_duration_s)


def parse_params(items: Iterable[str]) -> dict[str, str]:
    """Turn ``KEY=VALUE`` strings into a dict.

    Raises:
        InputError: if an item has no ``=`` or an empty key, or a key comes twice (which value was
            meant cannot be told; ``bola.gamma_p=4 gamma_p=6`` is fine: see :func:`resolve_params`).
    """
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"got {item!r}, expected KEY=VALUE (e.g. gamma_p=5 or bola.gamma_p=5)",
                             field="--param")
        key = key.strip()
        if key in params:
            raise InputError(f"given twice ({params[key]!r}, then {value.strip()!r}); expected one value",
                             field=f"--param {key}")
        params[key] = value.strip()
    return params


def resolve_params(
    params: Mapping[str, Any], algorithms: Sequence[str], model: PlayerModel
) -> tuple[dict[str, dict[str, Any]], PlayerModel]:
    """Route each parameter to the algorithms that have it, or to the player model.

    A key ``ALGO.NAME`` sets one algorithm's parameter, ``model.NAME`` a model field, and a
    bare ``NAME`` every listed algorithm that has it, or else the model field of that name.
    ``ALGO.NAME`` wins over ``NAME`` for that algorithm, whatever their order. The model's
    ``name`` and ``algorithm_defaults`` are not parameters.

    Raises:
        UnknownNameError: if a key matches no algorithm parameter and no model field.
    """
    per_algorithm: dict[str, dict[str, Any]] = {name: {} for name in algorithms}
    model_changes: dict[str, Any] = {}
    model_fields = [name for name in model.fields() if name not in ("name", "algorithm_defaults")]
    for key, value in sorted(params.items(), key=lambda item: "." in item[0]):  # bare keys first
        scope, dot, name = key.rpartition(".")
        if dot and scope == "model":
            if name not in model_fields:
                raise UnknownNameError("player model field", name, sorted(model_fields))
            model_changes[name] = value
        elif dot:
            if scope not in per_algorithm:
                if scope in available_algorithms():
                    running = ", ".join(algorithms) or "none"
                    raise InputError(f"{scope!r} is not among the algorithms this run uses ({running}); "
                                     f"expected one of them, or add --abr {scope}", field=f"--param {key}")
                raise UnknownNameError("algorithm in --param", scope, [*algorithms, "model"])
            make(scope).spec.param(name)  # raises if unknown
            per_algorithm[scope][name] = value
        else:
            owners = [a for a in algorithms if any(p.name == name for p in make(a).spec.params)]
            if owners:
                for owner in owners:
                    per_algorithm[owner][name] = value
            elif name in model_fields:
                model_changes[name] = value
            else:
                names = {p.name for a in algorithms for p in make(a).spec.params}
                choices = sorted(names | set(model_fields))
                raise UnknownNameError("parameter", key, choices)
    return per_algorithm, model.replace(**model_changes)


def run(
    traces: Sequence[Trace],
    ladder: Ladder,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    model: PlayerModel | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    scenario: str = "run",
    progress: Progress | None = None,
    policies: Sequence[PythonPolicy] = (),
    on_compile: Callable[[], None] | None = None,
) -> list[Row]:
    """Replay every trace with every algorithm; return one results row per session.

    Args:
        traces: the traces to replay.
        ladder: the title's ladder.
        algorithms: registered algorithm names.
        model: the player model (default: abrsim's own).
        params: parameter overrides, as :func:`resolve_params` routes them; ``oracle.NAME``
            sets one of the oracle's :data:`ORACLE_PARAMS`.
        seed: recorded on every row.
        scenario: label recorded on every row.
        progress: called as ``progress(done, total)`` while the run goes on, counting segments:
            each online algorithm's batch adds its sessions' segments when it ends, and the
            oracle, which is slower by orders of magnitude, adds one per segment it searches.
        policies: Python policies (:func:`abrsim.abr.load_policy`) to run after the algorithms.
        on_compile: called once, before the work, if numba's cache lacks the QoE kernel, an
            algorithm's compiled loop or the loop that drives Python policies (the first run of
            the package, or of that algorithm): compiling then takes seconds (``abrsim run``
            says so).

    Raises:
        AbrsimError: on an unknown algorithm or parameter, or a value that does not fit.
    """
    model = PlayerModel() if model is None else model
    choices = [*available_algorithms(), ORACLE]
    for name in algorithms:
        if name not in choices:
            raise UnknownNameError("algorithm", name, choices)
    online = [name for name in dict.fromkeys(algorithms) if name != ORACLE]
    params = dict(params or {})
    oracle_steps = _oracle_params(params, ORACLE in algorithms)
    per_algorithm, model = resolve_params(params, online, model)
    runs: list[KernelPolicy | PythonPolicy] = [make(name, **per_algorithm[name]) for name in online]
    runs += policies
    uncached = _uncached(runs, ladder, model)
    if on_compile is not None and uncached:
        on_compile()
    packed = pack_traces(traces)
    per_session = model.segments_played(ladder)
    total = per_session * len(traces) * (len(runs) + (ORACLE in algorithms))
    done = 0
    report = progress or (lambda done, total: None)
    report(done, total)
    rows: list[Row] = []
    with compile_ahead(_compile_jobs(runs, ladder, model, uncached)) as ahead:
        for index, policy in enumerate(runs):
            ahead.wait(f"loop {index}")
            batch = run_batch(packed, ladder, policy, model, seed)
            ahead.wait("metrics")
            rows += rows_from_batch(batch, scenario)
            done += per_session * len(traces)
            report(done, total)
    if ORACLE in algorithms:
        rows += oracle_rows(traces, ladder, model, seed, scenario,
                            lambda oracle_done, _: report(done + oracle_done, total), **oracle_steps)
    return rows


def _uncached(runs: Sequence[KernelPolicy | PythonPolicy], ladder: Ladder, model: PlayerModel) -> set[str]:
    """What a run of ``runs`` compiles, by numba's cache: ``loop INDEX`` for each compiled
    algorithm whose loop is not cached, ``metrics`` for the QoE kernel, ``driver`` for the loop
    that drives Python policies (with one among ``runs``)."""
    from abrsim._jit import is_cached
    from abrsim.engine._session import advance
    from abrsim.qoe import _metrics_batch

    keys = {f"loop {index}" for index, policy in enumerate(runs)
            if isinstance(policy, KernelPolicy) and not is_cached(compiled_loop(policy, ladder, model))}
    if not is_cached(_metrics_batch):
        keys.add("metrics")
    if any(isinstance(policy, PythonPolicy) for policy in runs) and not is_cached(advance):
        keys.add("driver")
    return keys


def _compile_jobs(runs: Sequence[KernelPolicy | PythonPolicy], ladder: Ladder, model: PlayerModel,
                  uncached: set[str]) -> list[Job]:
    """What a helper process can compile while this one compiles the first loop (:mod:`abrsim._ahead`),
    of what numba's cache does not have yet (``uncached``, from :func:`_uncached`): the first
    loop's kernels (this process does not wait for them), the QoE kernel, the other compiled
    algorithms' loops."""
    if not ahead_enabled():
        return []
    from abrsim import _ahead

    jobs: list[Job] = []
    for index, policy in enumerate(runs):
        if f"loop {index}" in uncached:
            job = _ahead.engine_job if index == 0 else _ahead.loop_job
            jobs.append(("rules" if index == 0 else f"loop {index}", partial(job, policy, ladder, model)))
    if "metrics" in uncached:  # after the first loop's kernels: needed after them
        first = 1 if jobs and jobs[0][0] == "rules" else 0
        jobs.insert(first, ("metrics", partial(_ahead.metrics_job, ladder)))
    return jobs


def _oracle_params(params: dict[str, Any], wanted: bool) -> dict[str, float]:
    """Take the ``oracle.NAME`` entries out of ``params`` (they must be ORACLE_PARAMS)."""
    steps: dict[str, float] = {}
    for key in [k for k in params if k.startswith(ORACLE + ".")]:
        name = key.partition(".")[2]
        if name not in ORACLE_PARAMS:
            raise UnknownNameError("oracle parameter", name, sorted(ORACLE_PARAMS))
        if not wanted:
            raise InputError("the oracle's parameters need the oracle among the algorithms (--abr oracle)",
                             field=key)
        value = params.pop(key)
        try:
            steps[name] = float(value)
        except (TypeError, ValueError):
            raise InputError(f"got {value!r}, expected a number of seconds", field=key) from None
    return steps


def oracle_rows(
    traces: Sequence[Trace],
    ladder: Ladder,
    model: PlayerModel,
    seed: int = 0,
    scenario: str = "run",
    progress: Progress | None = None,
    time_step_s: float = 0.0,
    buffer_step_s: float = 0.0,
) -> list[Row]:
    """Results rows of the offline optimum (highest QoE_lin) on each trace, replayed exactly.

    ``time_step_s`` and ``buffer_step_s`` are the search's quantisation steps
    (:func:`abrsim.oracle.optimal_session`); nonzero steps are recorded in the rows' ``params``.
    ``progress(done, total)`` counts the segments searched, over all traces.
    """
    import json

    from abrsim import __version__
    from abrsim.oracle import optimal_session, replay_rungs

    steps = {name: value for name, value in (("time_step_s", time_step_s), ("buffer_step_s", buffer_step_s))
             if value}
    rows: list[Row] = []
    per_session = model.segments_played(ladder)
    report = progress or (lambda done, total: None)
    for number, trace in enumerate(traces):
        before = number * per_session
        best = optimal_session(
            trace, ladder, model, time_step_s=time_step_s, buffer_step_s=buffer_step_s,
            on_segment=lambda searched, before=before: report(before + searched, per_session * len(traces)))
        replay = replay_rungs(trace, ladder, model, best.rungs)
        row: Row = {"scenario": scenario, "trace": trace.name, "ladder": ladder.name, "model": model.name,
                    "policy": ORACLE, "params": json.dumps(steps, sort_keys=True, separators=(",", ":")),
                    "seed": int(seed), "abrsim_version": __version__}
        for name in METRICS:
            value = replay.metrics[name]
            row[name] = int(value) if name in INTEGER_METRICS else float(value)
        rows.append({key: row[key] for key in RESULT_FIELDS})
    return rows
