"""Sweeps: an experiment spec (TOML) → a grid of sessions → a results table on disk.

A spec crosses trace sets (folders, globs, generator profiles), ladders, algorithms
with parameter grids, player models and seeds (format: ``docs/sweeps.md``).
:func:`plan_sweep` turns it into chunks, each one ``(seed, ladder, model, policy)``
over up to ``chunk_sessions`` traces of one set, i.e. one :func:`~abrsim.engine.fast.run_batch`
call on traces packed once (file traces) or drawn by the worker that runs it (generated
traces, from their seeds). :func:`run_sweep` runs the chunks on a local process pool or
a Dask cluster, the chunks of one trace group as one task; every finished chunk's metrics
go atomically to a columnar file under ``OUT/chunks/`` (so a killed sweep resumes where it
stopped), and finally the main process merges them, one chunk at a time, into
``OUT/results.parquet`` (with pyarrow) and ``OUT/results.csv`` in session order, then
deletes them. A chunk's rows depend only on the spec and its inputs, so the results are
identical whatever the executor, the number of jobs or the order chunks finish in.

>>> spec = parse_spec('name = "demo"\\n[[traces]]\\nprofile = "constant"\\n'
...                   'params = { bandwidth_bps = 3e6, duration_s = 60.0 }\\n')
>>> plan_sweep(spec).sessions == len(available())
True
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import glob as globbing
import hashlib
import inspect
import io
import itertools
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from abrsim import __version__, _ahead, limits, tracegen
from abrsim._cli_util import write_atomic
from abrsim._toml import TomlReader, unusable_path
from abrsim.abr import available, load_policy, make
from abrsim.engine.fast import PackedTraces, pack_traces, run_batch
from abrsim.errors import AbrsimError, InputError, UnknownNameError
from abrsim.failures import DEFAULT_STATEMENTS, FailureStatement, statements_from_config
from abrsim.ladder import Ladder, available_ladders, load_ladder
from abrsim.model import PlayerModel
from abrsim.qoe import METRICS
from abrsim.results import INTEGER_METRICS, RESULT_FIELDS, Row, rows_from_batch
from abrsim.trace import TRACE_FORMATS, Trace, _is_trace_file, load_traces

__all__ = [
    "CSV_AUTO_SESSIONS",
    "DEFAULT_CHUNK_SESSIONS",
    "EXECUTORS",
    "GENERATORS",
    "AlgorithmConfig",
    "Chunk",
    "SweepPlan",
    "SweepReport",
    "SweepSpec",
    "TraceGenerator",
    "TraceGroup",
    "TraceSet",
    "available_generators",
    "get_generator",
    "load_spec",
    "parse_spec",
    "plan_sweep",
    "run_chunk",
    "run_sweep",
]

#: Ways to run the chunks of a sweep.
EXECUTORS = ("local", "dask")

#: Default number of sessions per chunk (one compiled call; the unit of resumption).
DEFAULT_CHUNK_SESSIONS = 64

_PARQUET_ROW_GROUP_ROWS = 65_536


# --------------------------------------------------------------------------------------------
# Generator profiles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceGenerator:
    """A named way to generate traces with :mod:`abrsim.tracegen`.

    Args:
        name: the name a spec uses (``profile = "markov"``).
        generate: ``generate(rng, params, name)`` returns the traces of one draw; ``rng``
            is the draw's own Generator, ``params`` the spec's ``params`` table and ``name``
            the draw's name.
        doc: one line for the documentation.
        function: the :mod:`abrsim.tracegen` function whose keyword arguments ``params`` are,
            which a spec is checked against; None: not checked.
    """

    name: str
    generate: Callable[[np.random.Generator, Mapping[str, Any], str], list[Trace]]
    doc: str
    function: Callable[..., Any] | None = None

    def check_params(self, params: Mapping[str, Any]) -> str | None:
        """What is wrong with ``params`` for :attr:`function` (a key it does not take, a required one
        missing), or None."""
        if self.function is None:
            return None
        given = {"rng", "name", "seed", "profile"}  # what generate passes itself
        keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        accepted = {name: parameter for name, parameter in inspect.signature(self.function).parameters.items()
                    if name not in given and parameter.kind in keywords}
        expected = ", ".join(sorted(accepted)) or "none"
        for key in params:
            if key not in accepted:
                return f"unknown parameter {key!r} of {self.name}; expected one of: {expected}"
        missing = [name for name, parameter in accepted.items()
                   if parameter.default is inspect.Parameter.empty and name not in params]
        if missing:
            return f"{self.name} needs {', '.join(missing)}; expected them in params"
        return None


def _markov(rng: np.random.Generator, params: Mapping[str, Any], name: str) -> list[Trace]:
    return [tracegen.markov(rng, **params, name=name)]


def _constant(rng: np.random.Generator, params: Mapping[str, Any], name: str) -> list[Trace]:
    del rng
    return [tracegen.constant(**params, name=name)]


def _step(rng: np.random.Generator, params: Mapping[str, Any], name: str) -> list[Trace]:
    del rng
    return [tracegen.step(**params, name=name)]


def _default_corpus(rng: np.random.Generator, params: Mapping[str, Any], name: str) -> list[Trace]:
    seed = int(rng.integers(2**31))
    return [dataclasses.replace(t, name=f"{name}_{t.name}") for t in tracegen.default_corpus(seed, **params)]


def _fitted(profile: str, rng: np.random.Generator, params: Mapping[str, Any], name: str) -> list[Trace]:
    return [tracegen.synthesize(profile, rng, **params, name=name)]


#: Trace generators by the name a spec's ``profile`` gives, each a function of
#: :mod:`abrsim.tracegen`. Besides these, every fitted profile of
#: :func:`abrsim.tracegen.available_profiles` (``3g``, ``4g``, ...) is a generator that calls
#: ``tracegen.synthesize(profile, rng, **params)``. A new generator joins with one entry here.
GENERATORS: Mapping[str, TraceGenerator] = MappingProxyType({
    "markov": TraceGenerator("markov", _markov, "tracegen.markov(rng, **params): Markov-modulated",
                             tracegen.markov),
    "constant": TraceGenerator("constant", _constant, "tracegen.constant(**params): one bandwidth",
                               tracegen.constant),
    "step": TraceGenerator("step", _step, "tracegen.step(**params): a staircase", tracegen.step),
    "default_corpus": TraceGenerator(
        "default_corpus", _default_corpus,
        "tracegen.default_corpus(seed, **params): the six built-in traces, Markov ones redrawn",
        tracegen.default_corpus),
})


def available_generators() -> list[str]:
    """Names a spec's ``profile`` accepts: :data:`GENERATORS` and the fitted profiles, sorted."""
    return sorted({*GENERATORS, *tracegen.available_profiles()})


def get_generator(name: str) -> TraceGenerator:
    """The generator a spec's ``profile = name`` uses.

    Raises:
        UnknownNameError: if there is none of that name.
    """
    if name in GENERATORS:
        return GENERATORS[name]
    if name in tracegen.available_profiles():
        return TraceGenerator(name, functools.partial(_fitted, name),
                              f"tracegen.synthesize({name!r}, rng, **params): fitted profile",
                              tracegen.synthesize)
    raise UnknownNameError("trace profile", name, available_generators())


# --------------------------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceSet:
    """One entry of a spec's ``[[traces]]``: a folder or file, a glob, or a generator profile.

    Args:
        name: the set's name; result rows name a trace ``<set name>/<trace name>``.
        path: a trace file or folder (resolved), for a file set.
        glob: a glob pattern (resolved, ``**`` allowed), for a glob set.
        profile: a generator name (:func:`available_generators`), for a generated set.
        count: draws of the profile per seed.
        params: keyword arguments of the profile's function.
        format: trace file format (default: detected), for file and glob sets.
        limit: keep only the first ``limit`` traces (in name order), for file and glob sets.
    """

    name: str
    path: Path | None = None
    glob: str | None = None
    profile: str | None = None
    count: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    format: str | None = None
    limit: int | None = None

    @property
    def generated(self) -> bool:
        """Whether the traces are drawn per seed (a profile) rather than read from files."""
        return self.profile is not None


@dataclass(frozen=True)
class AlgorithmConfig:
    """One point of an algorithm's parameter grid.

    Args:
        name: a registered algorithm (:func:`abrsim.abr.available`), or a Python policy's name.
        params: the parameters that differ from the algorithm's defaults.
        policy: for a Python policy, its ``FILE.py:CLASS`` reference (FILE absolute).
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    policy: str = ""

    def make(self) -> Any:
        """The policy this configuration runs."""
        return load_policy(self.policy) if self.policy else make(self.name, **self.params)

    @property
    def label(self) -> str:
        """The algorithm and its non-default parameters, e.g. ``bola(gamma_p=3)``."""
        return _label(self.name, self.params)


def _label(name: str, params: Mapping[str, Any]) -> str:
    return name + ("(" + ",".join(f"{k}={_value_text(v)}" for k, v in params.items()) + ")" if params else "")


@dataclass(frozen=True, eq=False)
class SweepSpec:
    """A validated experiment spec (see :func:`parse_spec` and ``docs/sweeps.md``).

    Args:
        name: the scenario name written on every row.
        text: the spec's TOML text (copied next to the results and hashed).
        source: the spec file, if any.
        traces: the trace sets.
        ladders: the ladders, loaded.
        algorithms: every algorithm configuration (grids expanded).
        models: every player model (grids expanded), each with a distinct name.
        seeds: the seeds; each is the ``seed`` of its sessions.
        chunk_sessions: most sessions in one chunk.
        failures: the failure statements of this study.
        traces_root: the folder relative trace paths were resolved against.
    """

    name: str
    text: str
    source: Path | None
    traces: tuple[TraceSet, ...]
    ladders: tuple[Ladder, ...]
    algorithms: tuple[AlgorithmConfig, ...]
    models: tuple[PlayerModel, ...]
    seeds: tuple[int, ...]
    chunk_sessions: int
    failures: tuple[FailureStatement, ...]
    traces_root: Path

    @property
    def sha256(self) -> str:
        """SHA-256 of the spec's text."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


_TOP_KEYS = ("name", "description", "seed", "replications", "seeds", "traces_root", "chunk_sessions",
             "traces", "ladders", "algorithms", "models", "failures")
_SET_KEYS = ("name", "path", "glob", "profile", "count", "params", "format", "limit")
_ALGORITHM_KEYS = ("name", "params", "grid", "policy")
_MODEL_KEYS = ("preset", "name", "fields", "grid")


def load_spec(path: str | Path, traces_root: str | Path | None = None) -> SweepSpec:
    """Read and validate a sweep spec file.

    Args:
        path: the ``.toml`` file.
        traces_root: overrides the spec's ``traces_root`` (relative to the working directory).

    Raises:
        InputError: naming the file and the key (or the line, for TOML syntax), if the spec
            cannot be read or is invalid.
    """
    source = Path(path)
    limits.check_file_size("input_bytes", source)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file: {exc}", source=source) from None
    return parse_spec(text, source=source, traces_root=traces_root)


def parse_spec(
    text: str, source: str | Path | None = None, traces_root: str | Path | None = None
) -> SweepSpec:
    """Validate a spec given as TOML text.

    Relative ladder paths resolve against the spec file's folder (the working directory
    without a file); relative trace paths and globs against ``traces_root``: the argument
    if given, else the spec's ``traces_root`` key (relative to the spec's folder), else the
    spec's folder.

    Raises:
        InputError: naming the file and the key, if the spec is invalid.
    """
    source = None if source is None else Path(source)
    read = TomlReader(source or "<spec>", _TOP_KEYS)
    doc = read.parse(text)
    read.keys(doc, _TOP_KEYS, "")
    base_dir = source.parent if source is not None else Path(".")
    name = read.name(doc, "name", None)
    read.get(doc, "description", (str,), "description")
    if traces_root is not None:
        root = Path(traces_root)
    else:
        root = base_dir / read.get(doc, "traces_root", (str,), "traces_root", ".")
    ladders = _read_ladders(read, doc, base_dir)
    models = _read_models(read, doc)
    algorithms = _read_algorithms(read, doc, base_dir)
    for ladder in ladders:
        for index, config in enumerate(algorithms):
            try:
                config.make().check(ladder)
            except InputError as exc:
                raise read.error(f"{exc.detail} (ladder {ladder.name!r})", f"algorithms[{index}]") from None
        for key, model in models:
            try:
                model.check(ladder)
            except InputError as exc:
                raise read.error(f"model {model.name!r}: {exc.field} {exc.detail}", key) from None
    failures = read.get(doc, "failures", (dict,), "failures", {})
    trace_sets = _read_trace_sets(read, doc, root)
    # Before any trace is read or drawn: generated sets count as drawn, file sets as one trace each.
    traces_estimate = sum(s.count if s.generated else 1 for s in trace_sets)
    per_seed = traces_estimate * len(ladders) * len(models) * len(algorithms)
    seeds = _read_seeds(read, doc, per_seed)
    limits.check("sessions", len(seeds) * per_seed,
                 f"sessions in the sweep (at least: {len(seeds):,} seeds x {per_seed:,} per seed, traces x "
                 "ladders x models x algorithms)", source=read.source)
    return SweepSpec(
        name=name,
        text=text,
        source=source,
        traces=trace_sets,
        ladders=ladders,
        algorithms=algorithms,
        models=tuple(model for _, model in models),
        seeds=seeds,
        chunk_sessions=read.integer(doc, "chunk_sessions", "chunk_sessions", DEFAULT_CHUNK_SESSIONS, 1),
        failures=statements_from_config(failures, DEFAULT_STATEMENTS, source=source or "<spec>"),
        traces_root=root,
    )


def _read_seeds(read: TomlReader, doc: Mapping[str, Any], sessions_per_seed: int) -> tuple[int, ...]:
    if "seeds" in doc:
        for other in ("seed", "replications"):
            if other in doc:
                raise read.error("give either seeds (a list) or seed and replications, not both", other)
        seeds = read.get(doc, "seeds", (list,), "seeds")
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise read.error(f"got {seeds!r}; expected a non-empty array of integers >= 0", "seeds")
        if len(set(seeds)) != len(seeds):
            raise read.error(f"got {seeds!r}; expected distinct seeds", "seeds")
        return tuple(seeds)
    base = read.integer(doc, "seed", "seed", 0, 0)
    replications = read.integer(doc, "replications", "replications", 1, 1)
    limits.check("sessions", replications, "replications", source=read.source, field="replications")
    # before spawning the seeds, which alone takes a minute for a few million
    limits.check("sessions", replications * sessions_per_seed,
                 f"sessions in the sweep (at least: {replications:,} replications x {sessions_per_seed:,} "
                 "per seed, traces x ladders x models x algorithms)", source=read.source)
    children = np.random.SeedSequence(base).spawn(replications)
    seeds = tuple(int(child.generate_state(1, dtype=np.uint32)[0]) for child in children)
    if len(set(seeds)) != len(seeds):  # two 32-bit draws collided: astronomically rare
        raise read.error(f"seed {base} derives a repeated seed; choose another", "seed")
    return seeds


def _read_trace_sets(read: TomlReader, doc: Mapping[str, Any], root: Path) -> tuple[TraceSet, ...]:
    entries = read.get(doc, "traces", (list,), "traces")
    if not entries:
        raise read.error("missing key; expected one or more [[traces]] tables", "traces")
    sets: list[TraceSet] = []
    for index, entry in enumerate(entries):
        key = f"traces[{index}]"
        if not isinstance(entry, dict):
            raise read.error(f"got {entry!r}; expected a table", key)
        read.keys(entry, _SET_KEYS, key)
        kinds = [k for k in ("path", "glob", "profile") if k in entry]
        if len(kinds) != 1:
            raise read.error("expected exactly one of path, glob or profile", key)
        kind = kinds[0]
        value = read.get(entry, kind, (str,), f"{key}.{kind}")
        fmt = read.get(entry, "format", (str,), f"{key}.format")
        if fmt is not None and fmt not in TRACE_FORMATS:
            raise read.error(f"got {fmt!r}; expected one of {', '.join(TRACE_FORMATS)}", f"{key}.format")
        limit = read.get(entry, "limit", (int,), f"{key}.limit")
        if limit is not None and limit < 1:
            raise read.error(f"got {limit}; expected an integer >= 1", f"{key}.limit")
        path = pattern = profile = None
        count = 1
        params: dict[str, Any] = {}
        if kind == "profile":
            for misplaced in ("format", "limit"):
                if misplaced in entry:
                    raise read.error("applies to path and glob sets only", f"{key}.{misplaced}")
            try:
                generator = get_generator(value)
            except UnknownNameError as exc:
                raise read.error(str(exc), f"{key}.profile") from None
            profile = value
            count = read.integer(entry, "count", f"{key}.count", 1, 1)
            limits.check("sessions", count, "traces to generate", source=read.source, field=f"{key}.count")
            params = dict(read.get(entry, "params", (dict,), f"{key}.params", {}))
            problem = generator.check_params(params)
            if problem:
                raise read.error(problem, f"{key}.params")
            default_name = value
        else:
            for misplaced in ("count", "params"):
                if misplaced in entry:
                    raise read.error("applies to profile sets only", f"{key}.{misplaced}")
            if kind == "path":
                path = root / value
                if unusable_path(path):
                    raise read.error(f"found {unusable_path(path)}; expected a file or folder name",
                                     f"{key}.path")
                if not path.exists():
                    raise read.error(f"{path} does not exist (relative paths start at {root})",
                                     f"{key}.path")
                default_name = path.name if path.is_dir() else path.stem
            else:
                pattern = os.path.join(root, value)
                parent = Path(value).parent.name
                default_name = parent if parent and not globbing.has_magic(parent) else None
        name = read.name(entry, key + ".name", default_name)
        if any(name == other.name for other in sets):
            raise read.error(f"duplicate trace set name {name!r}; give each set its own name",
                             f"{key}.name")
        sets.append(TraceSet(name, path, pattern, profile, count, params, fmt, limit))
    return tuple(sets)


def _read_ladders(read: TomlReader, doc: Mapping[str, Any], base_dir: Path) -> tuple[Ladder, ...]:
    entries = read.get(doc, "ladders", (list,), "ladders", ["hls"])
    if not entries:
        raise read.error("expected at least one ladder", "ladders")
    ladders: list[Ladder] = []
    for index, entry in enumerate(entries):
        key = f"ladders[{index}]"
        segment_duration_s = None
        if isinstance(entry, dict):
            read.keys(entry, ("path", "segment_duration_s"), key)
            target = read.get(entry, "path", (str,), f"{key}.path")
            if target is None:
                raise read.error("missing key", f"{key}.path")
            segment_duration_s = read.get(entry, "segment_duration_s", (int, float),
                                          f"{key}.segment_duration_s")
        elif isinstance(entry, str):
            target = entry
        else:
            raise read.error(f"got {entry!r}; expected a ladder name, a path or a table", key)
        known = target in available_ladders() or Path(target).suffix.lower() not in (".toml", ".json", ".csv")
        where: str | Path = target if known else base_dir / target  # a name, or a file
        try:
            ladder = load_ladder(where, segment_duration_s=segment_duration_s)
        except UnknownNameError as exc:
            raise read.error(str(exc), key) from None
        if any(ladder.name == other.name for other in ladders):
            raise read.error(f"duplicate ladder name {ladder.name!r}", key)
        ladders.append(ladder)
    return tuple(ladders)


def _grid_points(read: TomlReader, entry: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The points of an entry's ``grid`` table (each key crossed with the others, in order)."""
    grid = read.get(entry, "grid", (dict,), f"{key}.grid", {})
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise read.error(f"got {values!r}; expected a non-empty array of values", f"{key}.grid.{name}")
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def _read_python_policy(read: TomlReader, entry: Mapping[str, Any], key: str,
                        base_dir: Path) -> AlgorithmConfig:
    """An ``{policy = "FILE.py:CLASS"}`` entry (FILE relative to the spec's folder)."""
    from abrsim.abr._python import PolicyError

    reference = read.get(entry, "policy", (str,), f"{key}.policy")
    if set(entry) - {"policy"}:
        raise read.error("a Python policy entry takes only the policy key", key)
    file_part, sep, class_name = reference.rpartition(":")
    if sep and file_part and not Path(file_part).is_absolute():
        reference = f"{(base_dir / file_part).resolve()}:{class_name}"
    try:
        policy = load_policy(reference)
    except PolicyError as exc:
        raise read.error(str(exc), f"{key}.policy") from None
    if policy.name in available():
        raise read.error(f"the policy's name {policy.name!r} is a registered algorithm's; give the class "
                         "a name attribute of its own", f"{key}.policy")
    return AlgorithmConfig(policy.name, {}, policy.reference)


def _read_algorithms(read: TomlReader, doc: Mapping[str, Any], base_dir: Path) -> tuple[AlgorithmConfig, ...]:
    entries = doc.get("algorithms", "all")
    if entries == "all":
        entries = available()
    if not isinstance(entries, list) or not entries:
        raise read.error(f"got {entries!r}; expected \"all\" or a non-empty array of names and tables",
                         "algorithms")
    configs: list[AlgorithmConfig] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        key = f"algorithms[{index}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise read.error(f"got {entry!r}; expected an algorithm name or a table", key)
        read.keys(entry, _ALGORITHM_KEYS, key)
        if "policy" in entry:
            config = _read_python_policy(read, entry, key, base_dir)
            identity = (config.name, config.policy)
            if identity in seen or any(c.name == config.name for c in configs):
                raise read.error(f"repeats the name {config.name!r}; give each policy its own name", key)
            seen[identity] = index
            configs.append(config)
            continue
        name = read.get(entry, "name", (str,), f"{key}.name")
        if name is None:
            raise read.error("missing key", f"{key}.name")
        if name not in available():
            raise read.error(str(UnknownNameError("algorithm", name, available())), f"{key}.name")
        fixed = dict(read.get(entry, "params", (dict,), f"{key}.params", {}))
        points = _grid_points(read, entry, key)
        spec = make(name).spec
        for point in points:
            params = {**fixed, **point}
            for param, value in params.items():
                table = "grid" if param in point else "params"
                try:
                    params[param] = spec.param(param).coerce(value, name)
                except UnknownNameError as exc:
                    raise read.error(str(exc), f"{key}.{table}.{param}") from None
                except InputError as exc:
                    raise read.error(exc.detail, f"{key}.{table}.{param}") from None
            identity = (name, make(name, **params).params_json)
            if identity in seen:
                raise read.error(f"repeats the configuration of algorithms[{seen[identity]}] "
                                 f"({name} {identity[1]})", key)
            seen[identity] = index
            configs.append(AlgorithmConfig(name, params))
    return tuple(configs)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ";".join(_value_text(v) for v in value)
    return str(value)


def _read_models(read: TomlReader, doc: Mapping[str, Any]) -> list[tuple[str, PlayerModel]]:
    """The models (grids expanded), each with the key of the entry it came from."""
    entries = read.get(doc, "models", (list,), "models", ["abrsim"])
    if not entries:
        raise read.error("expected at least one model", "models")
    models: list[tuple[str, PlayerModel]] = []
    for index, entry in enumerate(entries):
        key = f"models[{index}]"
        entry, preset = read.preset(entry, key, _MODEL_KEYS)
        preset_name = preset.name
        given_name = read.name(entry, f"{key}.name", preset_name) if "name" in entry else None
        fixed = dict(read.get(entry, "fields", (dict,), f"{key}.fields", {}))
        points = _grid_points(read, entry, key)
        if "name" in fixed or "name" in points[0]:
            raise read.error("set the model's name with the entry's name key", key)
        for point in points:
            changes = {**fixed, **point}
            shown = point if given_name else changes
            label = given_name or preset_name
            if shown:
                label += "(" + ",".join(f"{k}={_value_text(v)}" for k, v in shown.items()) + ")"
            where = {name: f"{key}.{'grid' if name in point else 'fields'}.{name}" for name in changes}
            model = read.model_fields(preset, changes, key, where, name=label)
            if any(model.name == other.name for _, other in models):
                raise read.error(f"duplicate model name {model.name!r}; give the entry its own name", key)
            models.append((key, model))
    return models


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Chunk:
    """One unit of work: a policy on a ladder and a model, over one group of traces.

    Args:
        index: the chunk's position; rows of chunk ``i`` precede those of chunk ``i + 1``.
        scenario: the spec's name, written on every row.
        ladder: the ladder.
        algorithm: the registered algorithm (or the Python policy's name).
        params: its parameters (as :class:`AlgorithmConfig`).
        model: the player model.
        seed: the seed written on every row.
        group: index of the chunk's traces in :attr:`SweepPlan.groups`.
        sessions: number of traces, hence rows.
        policy: a Python policy's ``FILE.py:CLASS`` reference, or "".
    """

    index: int
    scenario: str
    ladder: Ladder
    algorithm: str
    params: Mapping[str, Any]
    model: PlayerModel
    seed: int
    group: int
    sessions: int
    policy: str = ""

    def make(self) -> Any:
        """The policy this chunk runs."""
        return AlgorithmConfig(self.algorithm, self.params, self.policy).make()


@dataclass(frozen=True, eq=False)
class TraceGroup:
    """The traces of one chunk's sessions: read once (a file set) or drawn where they are used.

    A file set's group holds its traces, packed. A generated set's group holds only what
    draws them: its traces are the set's traces ``first`` to ``stop - 1`` (in draw order, each
    draw giving ``len(suffixes)`` traces) for ``seed``, drawn by :meth:`pack` in the process that
    runs the group's chunks, so that neither the plan nor the parent ever holds them.

    Args:
        packed: the traces, for a file set.
        trace_set: the generated set.
        set_index: its position in the spec's ``traces``.
        seed: the seed the traces are drawn for.
        first: the group's first trace in the set.
        stop: one past its last.
        suffixes: what follows a draw's number in the names of its traces (``("",)`` for one trace
            per draw named by its number).
        width: digits of the draw numbers.
        source: the spec file, named in errors.
    """

    packed: PackedTraces | None = None
    trace_set: TraceSet | None = None
    set_index: int = 0
    seed: int = 0
    first: int = 0
    stop: int = 0
    suffixes: tuple[str, ...] = ("",)
    width: int = 1
    source: str = "<spec>"

    def __len__(self) -> int:
        return len(self.packed) if self.packed is not None else self.stop - self.first

    @property
    def names(self) -> tuple[str, ...]:
        """The traces' names, ``<set name>/<trace name>``."""
        if self.packed is not None:
            return self.packed.names
        assert self.trace_set is not None
        per_draw = len(self.suffixes)
        prefix = self.trace_set.name + "/"
        return tuple(f"{prefix}{i // per_draw:0{self.width}d}{self.suffixes[i % per_draw]}"
                     for i in range(self.first, self.stop))

    def pack(self) -> PackedTraces:
        """The traces, packed (drawn first, for a generated set).

        Raises:
            InputError: if the generator fails.
        """
        if self.packed is not None:
            return self.packed
        assert self.trace_set is not None
        per_draw = len(self.suffixes)
        traces: list[Trace] = []
        for draw in range(self.first // per_draw, (self.stop - 1) // per_draw + 1):
            traces += _draw(self.trace_set, self.set_index, self.seed, draw, self.width, self.source)
        skip = self.first - (self.first // per_draw) * per_draw
        traces = traces[skip:skip + len(self)]
        if tuple(t.name for t in traces) != self.names:
            raise AbrsimError(f"trace set {self.trace_set.name!r}: profile {self.trace_set.profile!r} named "
                              "its traces differently from one draw to another")
        return pack_traces(traces)


@dataclass(frozen=True, eq=False)
class SweepPlan:
    """Every chunk of a sweep, with the trace groups they read.

    Args:
        spec: the spec.
        chunks: the chunks, in session order.
        groups: trace groups; chunks of different policies share a group.
        sha256: a digest of everything the rows depend on (spec grid, ladders, models,
            trace data or what draws it, result fields); a sweep folder resumes only under
            the same digest.
    """

    spec: SweepSpec
    chunks: tuple[Chunk, ...]
    groups: tuple[TraceGroup, ...]
    sha256: str

    @property
    def sessions(self) -> int:
        """Total number of sessions (result rows)."""
        return sum(chunk.sessions for chunk in self.chunks)


def _set_key(name: str) -> int:
    """A stable integer for a trace set's name, part of its sessions' SeedSequence spawn key."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")


def _draw(trace_set: TraceSet, set_index: int, seed: int, draw: int, width: int, source: str) -> list[Trace]:
    """The traces of one draw of a generated set for ``seed``, named ``set/trace``.

    Raises:
        InputError: naming the spec and the set, if the generator refuses its parameters.
    """
    profile = get_generator(str(trace_set.profile))
    sequence = np.random.SeedSequence(seed, spawn_key=(_set_key(trace_set.name), draw))
    try:  # named set/draw at birth: renaming a trace would check its samples again
        return profile.generate(np.random.default_rng(sequence), trace_set.params,
                                f"{trace_set.name}/{draw:0{width}d}")
    except (TypeError, ValueError) as exc:
        raise InputError(f"{profile.name}: {exc}", source=source,
                         field=f"traces[{set_index}].params") from None


def _load_set(spec: SweepSpec, index: int, trace_set: TraceSet) -> list[Trace]:
    """The traces of a file or glob set, named ``set/trace``."""
    key = f"traces[{index}]"
    where = spec.source or "<spec>"
    if trace_set.path is not None:
        traces = load_traces(trace_set.path, format=trace_set.format)
    else:
        files = sorted(Path(p) for p in globbing.glob(str(trace_set.glob), recursive=True))
        files = [p for p in files if _is_trace_file(p)]
        if not files:
            raise InputError(f"{trace_set.glob} matches no trace files", source=where, field=f"{key}.glob")
        traces = load_traces(files, format=trace_set.format)
    if trace_set.limit is not None:
        traces = traces[: trace_set.limit]
    names = [t.name for t in traces]
    repeated = next((n for n in names if names.count(n) > 1), None)
    if repeated is not None:
        raise InputError(f"two traces are named {repeated!r}; split the set", source=where, field=key)
    return [dataclasses.replace(t, name=f"{trace_set.name}/{t.name}") for t in traces]


def _probe(spec: SweepSpec, index: int, trace_set: TraceSet) -> tuple[tuple[str, ...], int, list[Trace]]:
    """Draw a generated set's first trace(s) for the first seed: the name suffixes of a draw's traces,
    the draw numbers' width, and the traces (their data enters the plan's digest)."""
    where = str(spec.source or "<spec>")
    width = len(str(trace_set.count - 1))
    traces = _draw(trace_set, index, spec.seeds[0], 0, width, where)
    prefix = f"{trace_set.name}/{0:0{width}d}"
    suffixes = tuple(t.name[len(prefix):] for t in traces)
    named = all(t.name.startswith(prefix) for t in traces) and len(set(suffixes)) == len(suffixes)
    if not traces or not named:
        raise InputError(f"{trace_set.profile}: a draw must give one or more distinctly named traces",
                         source=where, field=f"traces[{index}].profile")
    return suffixes, width, traces


def _digest_arrays(hasher: Any, *arrays: np.ndarray | None) -> None:
    for array in arrays:
        if array is not None:
            hasher.update(np.ascontiguousarray(array).tobytes())


def _digest_traces(hasher: Any, packed: PackedTraces) -> None:
    hasher.update(json.dumps(packed.names).encode())
    _digest_arrays(hasher, packed.offsets, packed.start_s, packed.bandwidth_bps, packed.latency_s,
                   packed.has_latency, packed.duration_s)


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Load the file traces, pack them once per group, and list the chunks.

    Generated traces are not drawn here (but for one draw per set, which checks the generator's
    parameters): each group of them is drawn where its chunks run (:meth:`TraceGroup.pack`).
    Sessions are ordered by seed, ladder, model, algorithm configuration, trace set, then
    trace; a generated set draws each trace from
    ``SeedSequence(seed, spawn_key=(key of the set's name, draw))``.

    Raises:
        InputError: if a trace cannot be read or generated.
    """
    hasher = hashlib.sha256()
    hasher.update(json.dumps([spec.name, list(RESULT_FIELDS)]).encode())
    groups: list[TraceGroup] = []
    # indices into groups per (seed, set): a generated set per seed, a file set once for all seeds
    group_ids: dict[tuple[int, int], list[int]] = {}
    probes: dict[int, tuple[tuple[str, ...], int]] = {}
    size = spec.chunk_sessions
    for set_index, trace_set in enumerate(spec.traces):
        if trace_set.generated:
            suffixes, width, traces = _probe(spec, set_index, trace_set)
            probes[set_index] = suffixes, width
            hasher.update(json.dumps([trace_set.name, trace_set.profile, trace_set.count, suffixes,
                                      repr(sorted(trace_set.params.items()))]).encode())
            _digest_traces(hasher, pack_traces(traces))
    for seed in spec.seeds:
        for set_index, trace_set in enumerate(spec.traces):
            if not trace_set.generated and seed != spec.seeds[0]:
                group_ids[seed, set_index] = group_ids[spec.seeds[0], set_index]
                continue
            first_id = len(groups)
            if trace_set.generated:
                suffixes, width = probes[set_index]
                total = trace_set.count * len(suffixes)
                groups.extend(
                    TraceGroup(trace_set=trace_set, set_index=set_index, seed=seed, first=first,
                               stop=min(first + size, total), suffixes=suffixes, width=width,
                               source=str(spec.source or "<spec>"))
                    for first in range(0, total, size))
                hasher.update(json.dumps([set_index, seed, total]).encode())
            else:
                traces = _load_set(spec, set_index, trace_set)
                for i in range(0, len(traces), size):
                    groups.append(TraceGroup(packed=pack_traces(traces[i:i + size])))
                    _digest_traces(hasher, groups[-1].packed)
            group_ids[seed, set_index] = list(range(first_id, len(groups)))
    for ladder in spec.ladders:
        hasher.update(json.dumps([ladder.name, ladder.segment_duration_s]).encode())
        _digest_arrays(hasher, ladder.bitrates_bps, ladder.size_bits, ladder.quality)
    chunks: list[Chunk] = []
    for seed, ladder, model, config in itertools.product(spec.seeds, spec.ladders, spec.models,
                                                         spec.algorithms):
        params_json = config.make().params_json
        if config.policy:  # a Python policy: its file's content, so that an edit starts afresh
            params_json = hashlib.sha256(Path(config.policy.rpartition(":")[0]).read_bytes()).hexdigest()
        first_chunk = len(chunks)
        for set_index in range(len(spec.traces)):
            for group in group_ids[seed, set_index]:
                chunks.append(Chunk(len(chunks), spec.name, ladder, config.name, config.params, model,
                                    seed, group, len(groups[group]), config.policy))
        hasher.update(json.dumps([
            first_chunk, len(chunks), ladder.name, config.name, params_json,
            repr(sorted(model.fields().items())), seed,
            [(chunk.group, chunk.sessions) for chunk in chunks[first_chunk:]],
        ]).encode())
    return SweepPlan(spec, tuple(chunks), tuple(groups), hasher.hexdigest())


def run_chunk(chunk: Chunk, traces: TraceGroup | PackedTraces) -> list[list[Any]]:
    """Run one chunk: one compiled batch; rows as lists in :data:`RESULT_FIELDS` order."""
    packed = traces.pack() if isinstance(traces, TraceGroup) else traces
    batch = run_batch(packed, chunk.ladder, chunk.make(), chunk.model, chunk.seed)
    rows = rows_from_batch(batch, chunk.scenario)
    return [[row[name] for name in RESULT_FIELDS] for row in rows]


def _chunk_metrics(chunk: Chunk, packed: PackedTraces) -> np.ndarray:
    """Run one chunk: its sessions' metrics, one row each, columns as :data:`abrsim.qoe.METRICS`."""
    return run_batch(packed, chunk.ladder, chunk.make(), chunk.model, chunk.seed).metrics()


#: Most sessions in one task (one worker call: a trace group drawn or unpacked once, then the
#: chunks that read it).
TASK_SESSIONS = 8192


@dataclass(frozen=True, eq=False)
class _Task:
    """Chunks that read one trace group, run one after the other by one worker."""

    group: int
    chunks: tuple[Chunk, ...]

    @property
    def sessions(self) -> int:
        return sum(chunk.sessions for chunk in self.chunks)


def _tasks(plan: SweepPlan, chunks: Sequence[Chunk]) -> list[_Task]:
    """``chunks`` gathered by trace group, in the order of each group's first chunk: all the chunks of
    a generated group in one task (its traces are drawn once), those of a file group in tasks of at
    most :data:`TASK_SESSIONS` sessions."""
    by_group: dict[int, list[Chunk]] = {}
    for chunk in chunks:
        by_group.setdefault(chunk.group, []).append(chunk)
    tasks = []
    for group, members in by_group.items():
        per_task = len(members)
        if plan.groups[group].packed is not None:
            per_task = max(1, TASK_SESSIONS // max(1, len(plan.groups[group])))
        tasks.extend(_Task(group, tuple(members[i:i + per_task])) for i in range(0, len(members), per_task))
    return tasks


def run_task(task: _Task, group: TraceGroup, out: str | None, plan_sha256: str) -> list[np.ndarray] | None:
    """Run a task's chunks on its trace group (drawn here, once): with ``out``, write each chunk's
    file into that sweep folder and return None; without, return the chunks' metrics."""
    packed = group.pack()
    results = []
    for chunk in task.chunks:
        metrics = _chunk_metrics(chunk, packed)
        if out is None:
            results.append(metrics)
        else:
            _write_chunk(Path(out), chunk.index, plan_sha256, metrics)
    return None if out is not None else results


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------


def _run_local(
    plan: SweepPlan, tasks: Sequence[_Task], jobs: int, out: Path, lock_fd: int | None = None
) -> Iterator[_Task]:
    """Run the tasks here (one job) or on a process pool whose workers write their chunk files;
    yield each task when its files are written."""
    if jobs <= 1 or sum(len(task.chunks) for task in tasks) <= 2:
        for task in tasks:
            run_task(task, plan.groups[task.group], str(out), plan.sha256)
            yield task
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # One session of the first chunk runs here first: it loads the compiled kernels (and the
    # modules drawing traces needs), which forked workers then inherit; on a cold cache, the
    # other loops too, with a helper (see _compile_jobs).
    _ahead.from_both_ends(_compile_jobs(plan, tasks), close_fds=() if lock_fd is None else (lock_fd,))
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=_init_worker,
                               initargs=(os.getpid(), lock_fd))
    try:
        # A few tasks per worker in flight: the workers never wait, the parent holds few.
        for task, future in _windowed(tasks, lambda: 4 * jobs, lambda task: pool.submit(
                run_task, task, plan.groups[task.group], str(out), plan.sha256), FIRST_COMPLETED, wait):
            future.result()
            yield task
    except BaseException:
        # Interrupted (Ctrl-C), or the consumer stopped: the workers' chunks are not wanted, and
        # waiting for a long one would keep the user waiting.
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _compile_jobs(plan: SweepPlan, tasks: Sequence[_Task]) -> list[tuple[str, Callable[[], None]]]:
    """What the parent does before it forks the workers, which inherit what it compiled or loaded:
    one session of the first chunk (its errors are the sweep's, as its workers would meet them);
    and where compiling ahead helps (:mod:`abrsim._ahead`: a cold cache, a spare CPU), every other
    compiled loop the tasks run, which this process compiles from the first and a helper from the
    last. (Else each worker compiles a loop when it meets it, and the workers, taking chunks in
    order, all meet the same one at the same time.)"""
    from abrsim._ahead import enabled, loop_job
    from abrsim._jit import is_cached
    from abrsim.abr import KernelPolicy
    from abrsim.engine.fast import compiled_loop

    first = tasks[0].chunks[0]
    jobs: list[tuple[str, Callable[[], None]]] = [
        ("first session", functools.partial(_warm_up, first, plan.groups[tasks[0].group]))]
    if not enabled():
        return jobs
    seen: set[tuple[Any, ...]] = set()
    loops: set[int] = set()
    for chunk in (chunk for task in tasks for chunk in task.chunks):
        if chunk.policy:  # a policy from a file: loading it runs the user's file, left to the workers
            continue
        key = (chunk.algorithm, repr(sorted(chunk.params.items())), id(chunk.ladder), id(chunk.model))
        if key in seen:
            continue
        seen.add(key)
        policy = chunk.make()
        if not isinstance(policy, KernelPolicy):
            continue
        loop = compiled_loop(policy, chunk.ladder, chunk.model)
        if chunk is not first and id(loop) not in loops and not is_cached(loop):
            jobs.append((f"loop {len(jobs)}",
                         _ahead.quietly(functools.partial(loop_job, policy, chunk.ladder, chunk.model))))
        loops.add(id(loop))
    return jobs


def _warm_up(chunk: Chunk, group: TraceGroup) -> None:
    """Run the first session of ``chunk`` and drop its result."""
    if group.packed is not None:
        packed, end = group.packed, int(group.packed.offsets[1])
        one = PackedTraces(packed.names[:1], packed.offsets[:2], packed.start_s[:end],
                           packed.bandwidth_bps[:end], packed.latency_s[:end], packed.has_latency[:1],
                           packed.duration_s[:1], packed.capacity[:1])
    else:
        one = dataclasses.replace(group, stop=group.first + 1).pack()
    _chunk_metrics(chunk, one)


def _windowed(tasks: Sequence[_Task], window: Callable[[], int], submit: Callable[[_Task], Any],
              first_completed: Any, wait: Callable[..., Any]) -> Iterator[tuple[_Task, Any]]:
    """Submit ``tasks`` with at most ``window()`` pending (asked again as they finish, so that a
    cluster that grows gets more); yield ``(task, future)`` as they finish."""
    pending: dict[Any, _Task] = {}
    queue = iter(tasks)
    while True:
        for task in itertools.islice(queue, max(0, window() - len(pending))):
            pending[submit(task)] = task
        if not pending:
            return
        done, _ = wait(list(pending), return_when=first_completed)
        for future in done:
            yield pending.pop(future), future


def _init_worker(parent_pid: int, lock_fd: int | None) -> None:
    """Set up a pool worker: it must not outlive its parent, nor hold the folder's lock or take Ctrl-C.

    A forked worker shares the parent's open files, the lock among them: closing its copy
    leaves the lock to the parent alone, so a parent killed with SIGKILL frees the folder. The
    worker asks the kernel for SIGKILL when its parent dies (Linux), else a thread watches the
    parent. Ctrl-C reaches the whole process group; the parent alone handles it and stops
    the workers.
    """
    if lock_fd is not None:
        with contextlib.suppress(OSError):
            os.close(lock_fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _die_with_parent():
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(1)


def _die_with_parent() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        return libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def _stop_workers(pool: Any) -> None:
    """Terminate a process pool's workers now (they run chunks whose rows are not wanted)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.terminate()


def _run_dask(
    plan: SweepPlan, tasks: Sequence[_Task], jobs: int, scheduler: str | None
) -> Iterator[tuple[_Task, list[np.ndarray]]]:
    """Run the tasks on a Dask cluster; yield each task with its chunks' metrics (the parent writes
    the files, so that the workers need no file system shared with it)."""
    from distributed import Client, LocalCluster, wait

    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except (OSError, TimeoutError) as exc:
                raise AbrsimError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            cluster = stack.enter_context(LocalCluster(
                n_workers=max(jobs, 1), threads_per_worker=1, dashboard_address=None,
                silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))

        def window() -> int:  # 4 tasks per worker thread, as many as the cluster has now
            threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
            return 4 * max(1, threads)

        scattered: dict[int, Any] = {}

        def submit(task: _Task) -> Any:
            group = plan.groups[task.group]
            if group.packed is not None:  # file traces: sent to the cluster once
                if task.group not in scattered:
                    scattered[task.group] = client.scatter(group, hash=False)
                group = scattered[task.group]
            return client.submit(run_task, task, group, None, plan.sha256, pure=False)

        futures: list[Any] = []

        def tracked(task: _Task) -> Any:
            futures.append(submit(task))
            return futures[-1]

        try:
            for task, future in _windowed(tasks, window, tracked, "FIRST_COMPLETED", wait):
                yield task, future.result()
                futures.remove(future)
        finally:
            client.cancel(futures)


# --------------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    """What :func:`run_sweep` did.

    Args:
        out_dir: the sweep folder.
        sessions: sessions in the sweep.
        chunks: chunks in the sweep.
        sessions_run: sessions run by this call (fewer when resuming).
        chunks_run: chunks run by this call.
        elapsed_s: wall time of this call, seconds.
        files: the result files written.
        summary: per configuration: ``algorithm`` (with its non-default parameters, e.g.
            ``bola(gamma_p=3)``), ``ladder``, ``model``, ``sessions`` and the number of
            sessions failing each of the spec's failure statements (keyed by name).
    """

    out_dir: Path
    sessions: int
    chunks: int
    sessions_run: int
    chunks_run: int
    elapsed_s: float
    files: tuple[Path, ...]
    summary: tuple[Row, ...]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_atomic(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` whole (:func:`abrsim._cli_util.write_atomic`)."""
    write_atomic(path, lambda tmp: tmp.write_text(data, encoding="utf-8", newline="\n"))


#: First bytes of a chunk file, then the plan's digest and a newline, then the chunk's metrics.
_CHUNK_MAGIC = b"abrsim-chunk-1 "


def _chunk_path(out: Path, index: int) -> Path:
    return out / "chunks" / f"chunk-{index:06d}.f64"


def _write_chunk(out: Path, index: int, plan_sha256: str, metrics: np.ndarray) -> None:
    """Write a chunk's metrics (sessions x METRICS, float64) to its file: a header naming the plan,
    then the numbers as they are in memory (little-endian), written to a temporary file and renamed."""
    def write(tmp: Path) -> None:
        with tmp.open("wb") as file:
            file.write(_CHUNK_MAGIC + plan_sha256.encode() + b"\n")
            file.write(np.ascontiguousarray(metrics, dtype="<f8").tobytes())

    write_atomic(_chunk_path(out, index), write)


_CHUNK_HEADER_BYTES = len(_CHUNK_MAGIC) + 64 + 1


def _chunk_bytes(chunk: Chunk) -> int:
    return _CHUNK_HEADER_BYTES + chunk.sessions * len(METRICS) * 8


def _header_fits(head: bytes, path: Path, plan: SweepPlan) -> bool:
    """Whether a chunk file's first bytes are a chunk header (a foreign one is an error)."""
    if not head.startswith(_CHUNK_MAGIC) or len(head) < _CHUNK_HEADER_BYTES:
        return False
    if head[len(_CHUNK_MAGIC):_CHUNK_HEADER_BYTES - 1] != plan.sha256.encode():
        raise InputError("holds a chunk of a different sweep; use a new --out folder", source=path)
    return True


def _read_chunk(out: Path, chunk: Chunk, plan: SweepPlan) -> np.ndarray | None:
    """A finished chunk's metrics (sessions x METRICS), or None if the chunk has not finished."""
    path = _chunk_path(out, chunk.index)
    try:
        data = path.read_bytes()
    except OSError:
        return None  # missing or unreadable: run the chunk again
    if not _header_fits(data, path, plan) or len(data) != _chunk_bytes(chunk):
        return None  # cut short: run the chunk again
    return np.frombuffer(data, dtype="<f8", offset=_CHUNK_HEADER_BYTES).reshape(chunk.sessions, len(METRICS))


def _chunk_done(out: Path, chunk: Chunk, plan: SweepPlan) -> bool:
    """Whether a chunk's file is there and whole (reading its header only)."""
    path = _chunk_path(out, chunk.index)
    try:
        with path.open("rb") as file:
            head = file.read(_CHUNK_HEADER_BYTES)
            size = os.fstat(file.fileno()).st_size
    except OSError:
        return False
    return _header_fits(head, path, plan) and size == _chunk_bytes(chunk)


def _meta(plan: SweepPlan, started: str, finished: str | None, executor: str, jobs: int,
          files: Sequence[Path] = (), summary: Sequence[Row] = ()) -> str:
    spec = plan.spec
    return json.dumps({
        "scenario": spec.name,
        "spec_sha256": spec.sha256,
        "plan_sha256": plan.sha256,
        "abrsim_version": __version__,
        "sessions": plan.sessions,
        "chunks": len(plan.chunks),
        "fields": list(RESULT_FIELDS),
        "spec_source": None if spec.source is None else str(spec.source),
        "traces_root": str(spec.traces_root),
        "executor": executor,
        "jobs": jobs,
        "started": started,
        "finished": finished,
        "status": "complete" if finished else "running",
        "files": [f.name for f in files],
        "summary": list(summary),
    }, indent=2) + "\n"


def _prepare(out: Path, plan: SweepPlan, resume: bool) -> tuple[str, Mapping[str, Any]]:
    """Check or create the sweep folder; return the sweep's start time and, when resuming, the
    folder's meta.json (else an empty mapping)."""
    meta_path = out / "meta.json"
    for leftover in [*out.glob("*.tmp"), *out.glob("chunks/*.tmp")]:  # writes cut short by a kill
        leftover.unlink()
    if meta_path.exists() and resume:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read it to resume: {exc}", source=meta_path) from None
        if meta.get("spec_sha256") != plan.spec.sha256:
            raise InputError("was written for a different spec (its spec_sha256 differs); "
                             "rerun without --resume into a new --out folder", source=meta_path)
        if meta.get("plan_sha256") != plan.sha256:
            raise InputError("was written for different inputs (traces, ladders, a Python policy's "
                             "file or abrsim's result fields changed; plan_sha256 differs); use a new "
                             "--out folder",
                             source=meta_path)
        return str(meta.get("started") or _now()), meta
    if not resume and (any((out / "chunks").glob("chunk-*")) or (out / "results.csv").exists()
                       or (out / "results.parquet").exists()):
        raise InputError("holds a sweep already; pass --resume to continue it or choose another --out",
                         source=out)
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "spec.toml", plan.spec.text)
    return _now(), {}


#: The lock file of a sweep folder: flock'ed by the sweep writing to it, and naming that sweep.
LOCK_NAME = ".lock"


def _process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), or ``""`` where unknown.

    Together with the pid it names one process: a pid reused later has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]  # field 22; the command name may hold spaces


def _alive(holder: Mapping[str, Any]) -> bool:
    """Whether the process a lock record names still runs (True when it cannot tell)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to someone else
        return True
    started = holder.get("process_start")
    return not started or _process_start(pid) in ("", started)


@contextlib.contextmanager
def _locked(out: Path, notice: Callable[[str], None] | None = None) -> Iterator[int | None]:
    """Hold an exclusive lock on the folder, so that two sweeps never write to it at once.

    The lock is an ``flock`` on ``OUT/.lock``, which records the holder (host, pid, process start
    time). If the lock is held but its recorded holder is gone, whatever holds it is not a sweep
    that writes (only a sweep's own process writes to its folder; a worker process left behind
    by an older abrsim may still hold it): the lock is taken over and ``notice`` is told.
    Yields the lock's file descriptor (None without ``flock``), which forked workers close.
    """
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield None
        return
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:
                holder = {}
            holder = holder if isinstance(holder, dict) else {}
            if not holder or _alive(holder):
                who = (f" (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"
                       if holder else "")
                raise InputError(f"another sweep{who} is writing to this folder", source=out) from None
            if notice is not None:
                notice(f"{out}: taking over the lock of sweep pid {holder.get('pid')} (since "
                       f"{holder.get('since')}), which is gone")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "process_start": _process_start(os.getpid()), "since": _now()}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        yield fd
    finally:
        os.close(fd)  # releases the lock


#: Sweeps of more sessions than this write no results.csv unless asked to (results.parquet
#: holds the same rows in a tenth of the space and is written ten times faster).
CSV_AUTO_SESSIONS = 200_000

_INTEGER_COLUMNS = tuple(i for i, name in enumerate(METRICS) if name in INTEGER_METRICS)


def _identity(chunk: Chunk) -> tuple[str, ...]:
    """A chunk's identity cells but the trace, in :data:`RESULT_FIELDS` order (as
    :func:`~abrsim.results.rows_from_batch` writes them)."""
    policy = chunk.make().resolved(chunk.model)
    return (chunk.scenario, chunk.ladder.name, chunk.model.name, policy.name, policy.params_json)


def _csv_cell(text: str) -> str:
    """A text cell as the csv module writes it (quoted where it must be)."""
    if text and text.isprintable() and "," not in text and '"' not in text:
        return text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([text, ""])
    return buffer.getvalue()[:-2]


def _csv_lines(identity: tuple[str, ...], seed: int, names: Sequence[str], metrics: np.ndarray) -> str:
    """One chunk's CSV lines, byte for byte as :func:`~abrsim.results.format_rows` writes rows: text
    quoted where needed, floats by ``repr``, counts as integers."""
    scenario, ladder, model, policy, params = (_csv_cell(v) for v in identity)
    middle = f",{ladder},{model},{policy},{params},{seed},{_csv_cell(__version__)},"
    columns: list[list[Any]] = [metrics[:, j].tolist() for j in range(metrics.shape[1])]
    for j in _INTEGER_COLUMNS:
        columns[j] = [int(v) for v in columns[j]]
    return "".join(f"{scenario},{_csv_cell(name)}{middle}{','.join(map(repr, values))}\n"
                   for name, values in zip(names, zip(*columns, strict=True), strict=True))


class _ParquetSink:
    """results.parquet written in row groups of about :data:`_PARQUET_ROW_GROUP_ROWS` rows from
    chunks' columns (the schema of :data:`RESULT_FIELDS`: text, int64 seed and counts, float64)."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        types = {name: pa.string() for name in RESULT_FIELDS}
        types["seed"] = pa.int64()
        for name in METRICS:
            types[name] = pa.int64() if name in INTEGER_METRICS else pa.float64()
        self.schema = pa.schema([(name, types[name]) for name in RESULT_FIELDS])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.pending: list[tuple[tuple[str, ...], int, Sequence[str], np.ndarray]] = []
        self.rows = 0

    def add(self, identity: tuple[str, ...], seed: int, names: Sequence[str], metrics: np.ndarray) -> None:
        self.pending.append((identity, seed, names, metrics))
        self.rows += len(names)
        if self.rows >= _PARQUET_ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        pa = self.pa
        counts = [len(names) for _, _, names, _ in self.pending]

        def repeated(values: list[Any], kind: Any) -> Any:
            return pa.array([v for v, n in zip(values, counts, strict=True) for _ in range(n)], type=kind)

        identities = list(zip(*(identity for identity, _, _, _ in self.pending), strict=True))
        scenario, ladder, model, policy, params = (
            repeated(list(column), pa.string()) for column in identities)
        metrics = np.concatenate([m for _, _, _, m in self.pending])
        columns = {
            "scenario": scenario, "ladder": ladder, "model": model, "policy": policy, "params": params,
            "trace": pa.array([name for _, _, names, _ in self.pending for name in names], type=pa.string()),
            "seed": repeated([seed for _, seed, _, _ in self.pending], pa.int64()),
            "abrsim_version": repeated([__version__] * len(counts), pa.string()),
        }
        for j, name in enumerate(METRICS):
            column = metrics[:, j]
            columns[name] = pa.array(column.astype(np.int64) if j in _INTEGER_COLUMNS else column)
        self.writer.write_table(pa.Table.from_arrays([columns[name] for name in RESULT_FIELDS],
                                                     schema=self.schema))
        self.pending.clear()
        self.rows = 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _assemble(out: Path, plan: SweepPlan, parquet: bool,
              write_csv: bool) -> tuple[tuple[Path, ...], tuple[Row, ...]]:
    """Write results.parquet (if ``parquet``: pyarrow is there) and results.csv (if ``write_csv``) from
    the chunk files, in chunk order, one chunk in memory at a time; return the files and the
    per-configuration summary."""
    csv_path, parquet_path = out / "results.csv", out / "results.parquet"
    csv_tmp, parquet_tmp = csv_path.with_name(csv_path.name + ".tmp"), parquet_path.with_name(
        parquet_path.name + ".tmp")
    sink = None
    summary: dict[tuple[str, str, str], Row] = {}
    statements = plan.spec.failures
    column = {name: j for j, name in enumerate(METRICS)}
    identities: dict[tuple[Any, ...], tuple[str, ...]] = {}
    try:
        with contextlib.ExitStack() as stack:
            csv_file = (stack.enter_context(csv_tmp.open("w", encoding="utf-8", newline="\n"))
                        if write_csv else None)
            if csv_file is not None:
                csv_file.write(",".join(RESULT_FIELDS) + "\n")
            sink = _ParquetSink(parquet_tmp) if parquet else None
            for chunk in plan.chunks:
                metrics = _read_chunk(out, chunk, plan)
                if metrics is None:
                    raise AbrsimError(f"chunk {chunk.index} of the sweep in {out} is missing")
                key = (chunk.ladder.name, chunk.model.name, chunk.algorithm, chunk.policy,
                       repr(sorted(chunk.params.items())))
                identity = identities.get(key) or identities.setdefault(key, _identity(chunk))
                names = plan.groups[chunk.group].names
                if csv_file is not None:
                    csv_file.write(_csv_lines(identity, chunk.seed, names, metrics))
                if sink is not None:
                    sink.add(identity, chunk.seed, names, metrics)
                label = (_label(chunk.algorithm, chunk.params), chunk.ladder.name, chunk.model.name)
                entry = summary.setdefault(label, {"algorithm": label[0], "ladder": label[1],
                                                   "model": label[2], "sessions": 0,
                                                   **{s.name: 0 for s in statements}})
                entry["sessions"] += chunk.sessions
                for statement in statements:
                    if statement.metric not in column:
                        raise InputError("results rows have no such column", field=statement.metric)
                    failed = statement.holds_for(metrics[:, column[statement.metric]],
                                                 metrics[:, column["played_s"]])
                    entry[statement.name] += int(failed.sum())
            if sink is not None:
                sink.close()
        files = []
        if sink is not None:
            os.replace(parquet_tmp, parquet_path)
            files.append(parquet_path)
        elif parquet_path.exists():  # from an earlier run with pyarrow: it would not be rewritten
            parquet_path.unlink()
        if write_csv:
            os.replace(csv_tmp, csv_path)
            files.append(csv_path)
        elif csv_path.exists():
            csv_path.unlink()
    except BaseException:  # e.g. Ctrl-C: leave no half-written file behind
        if sink is not None:
            with contextlib.suppress(Exception):
                sink.writer.close()
        csv_tmp.unlink(missing_ok=True)
        parquet_tmp.unlink(missing_ok=True)
        raise
    return tuple(sorted(files, key=lambda f: f.suffix != ".csv")), tuple(summary.values())


def run_sweep(
    spec: SweepSpec | str | Path,
    out_dir: str | Path,
    *,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    resume: bool = False,
    write_csv: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> SweepReport:
    """Run a sweep into ``out_dir``.

    The folder receives ``spec.toml`` (the spec's text), ``meta.json`` (spec and plan
    digests, abrsim version, session count, start and finish times), ``chunks/`` while the
    sweep runs (one file per finished chunk, written by the worker that ran it to a temporary
    file and renamed), then ``results.parquet`` (when pyarrow is installed) and
    ``results.csv``: one row per session in :data:`~abrsim.results.RESULT_FIELDS` order, in
    session order. Once they are written the chunk files are deleted.

    Args:
        spec: a spec, or the path of a spec file.
        out_dir: the sweep folder; created if missing.
        jobs: worker processes (local) or workers of the LocalCluster (dask); 1 runs the
            local executor in this process.
        executor: ``"local"`` (a process pool) or ``"dask"`` (Dask distributed).
        scheduler: a Dask scheduler address; without one, ``"dask"`` starts a LocalCluster.
        resume: continue a sweep in ``out_dir``: keep its finished chunks, run the others.
        write_csv: write ``results.csv``; default (None): when pyarrow is missing or the sweep
            has at most :data:`CSV_AUTO_SESSIONS` sessions. Without pyarrow it is always written.
        progress: called as ``progress(sessions_done, sessions_total)`` at the start and
            after every task (a few chunks that read the same traces).
        notice: called with a one-line message when the sweep takes over a stale lock.

    Raises:
        InputError: if the spec is invalid, ``out_dir`` holds another sweep (or this one,
            without ``resume``), or another process is writing to it.
        UnknownNameError: if ``executor`` is unknown.
        AbrsimError: if Dask is needed but missing, or its scheduler is unreachable.
    """
    if executor not in EXECUTORS:
        raise UnknownNameError("executor", executor, EXECUTORS)
    if jobs < 1:
        raise InputError(f"got {jobs}; expected an integer >= 1", field="jobs")
    if executor == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise AbrsimError("--executor dask needs Dask distributed: pip install 'abrsim[dask]'") from None
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    clock = time.perf_counter()
    plan = plan_sweep(spec)
    out = Path(out_dir)
    parquet = _have_pyarrow()
    csv_wanted = (plan.sessions <= CSV_AUTO_SESSIONS if write_csv is None else write_csv) or not parquet
    with _locked(out, notice) as lock_fd:
        started, previous = _prepare(out, plan, resume)
        wanted = ["results.parquet"] * parquet + ["results.csv"] * csv_wanted
        if previous.get("status") == "complete" and all((out / name).is_file() for name in wanted):
            _remove_chunks(out)  # (a sweep killed while it deleted them)
            if progress is not None:
                progress(plan.sessions, plan.sessions)
            return SweepReport(out, plan.sessions, len(plan.chunks), 0, 0, time.perf_counter() - clock,
                               tuple(out / name for name in previous.get("files", wanted)),
                               tuple(previous.get("summary", ())))
        (out / "chunks").mkdir(exist_ok=True)
        _write_atomic(out / "meta.json", _meta(plan, started, None, executor, jobs))
        todo = [chunk for chunk in plan.chunks if not _chunk_done(out, chunk, plan)]
        tasks = _tasks(plan, todo)
        done = plan.sessions - sum(chunk.sessions for chunk in todo)
        if progress is not None:
            progress(done, plan.sessions)
        try:
            if executor == "local":
                for task in _run_local(plan, tasks, jobs, out, lock_fd) if tasks else ():
                    done += task.sessions
                    if progress is not None:
                        progress(done, plan.sessions)
            else:
                for task, results in _run_dask(plan, tasks, jobs, scheduler) if tasks else ():
                    for chunk, metrics in zip(task.chunks, results, strict=True):
                        _write_chunk(out, chunk.index, plan.sha256, metrics)
                    done += task.sessions
                    if progress is not None:
                        progress(done, plan.sessions)
        except BaseException:  # e.g. Ctrl-C: the workers are stopped; no half-written chunk stays
            for leftover in (out / "chunks").glob("*.tmp"):
                leftover.unlink(missing_ok=True)
            raise
        files, summary = _assemble(out, plan, parquet, csv_wanted)
        _write_atomic(out / "meta.json", _meta(plan, started, _now(), executor, jobs, files, summary))
        _remove_chunks(out)
    return SweepReport(
        out_dir=out,
        sessions=plan.sessions,
        chunks=len(plan.chunks),
        sessions_run=sum(chunk.sessions for chunk in todo),
        chunks_run=len(todo),
        elapsed_s=time.perf_counter() - clock,
        files=files,
        summary=summary,
    )


def _have_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _remove_chunks(out: Path) -> None:
    """Delete the chunk files of a finished sweep (results.parquet and results.csv hold their rows)."""
    folder = out / "chunks"
    for path in folder.glob("chunk-*"):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
