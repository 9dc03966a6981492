"""Sweeps: an experiment spec (TOML) → a grid of sessions → a results table on disk.

A spec crosses trace sets (folders, globs, generator profiles), ladders, algorithms
with parameter grids, player models and seeds (format: ``docs/sweeps.md``).
:func:`plan_sweep` turns it into chunks, each one ``(seed, ladder, model, policy)``
over up to ``chunk_sessions`` traces of one set, i.e. one :func:`~abrsim.engine.fast.run_batch`
call on traces packed once. :func:`run_sweep` runs the chunks on a local process
pool or a Dask cluster, writes every finished chunk atomically under
``OUT/chunks/`` (so a killed sweep resumes where it stopped), and finally assembles
``OUT/results.csv`` (and ``OUT/results.parquet`` with pyarrow) in session order.
A chunk's rows depend only on the spec and its inputs, so the results are
identical whatever the executor, the number of jobs or the order chunks finish in.

>>> spec = parse_spec('name = "demo"\\n[[traces]]\\nprofile = "constant"\\n'
...                   'params = { bandwidth_bps = 3e6, duration_s = 60.0 }\\n')
>>> plan_sweep(spec).sessions == len(available())
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import glob as globbing
import hashlib
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

from abrsim import __version__, limits, tracegen
from abrsim._toml import TomlReader, unusable_path
from abrsim.abr import available, load_policy, make
from abrsim.engine.fast import PackedTraces, pack_traces, run_batch
from abrsim.errors import AbrsimError, InputError, UnknownNameError
from abrsim.failures import DEFAULT_STATEMENTS, FailureStatement, evaluate, statements_from_config
from abrsim.ladder import Ladder, available_ladders, load_ladder
from abrsim.model import PlayerModel
from abrsim.results import RESULT_FIELDS, Row, format_rows, rows_from_batch
from abrsim.trace import TRACE_FORMATS, Trace, _is_trace_file, load_traces

__all__ = [
    "DEFAULT_CHUNK_SESSIONS",
    "EXECUTORS",
    "GENERATORS",
    "AlgorithmConfig",
    "Chunk",
    "SweepPlan",
    "SweepReport",
    "SweepSpec",
    "TraceGenerator",
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
    """

    name: str
    generate: Callable[[np.random.Generator, Mapping[str, Any], str], list[Trace]]
    doc: str


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
    "markov": TraceGenerator("markov", _markov, "tracegen.markov(rng, **params): Markov-modulated"),
    "constant": TraceGenerator("constant", _constant, "tracegen.constant(**params): one bandwidth"),
    "step": TraceGenerator("step", _step, "tracegen.step(**params): a staircase"),
    "default_corpus": TraceGenerator(
        "default_corpus", _default_corpus,
        "tracegen.default_corpus(seed, **params): the six built-in traces, Markov ones redrawn"),
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
                              f"tracegen.synthesize({name!r}, rng, **params): fitted profile")
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
    limits.check("sessions", len(seeds) * per_seed, "sessions in the sweep (at least)", source=read.source)
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
    limits.check("sessions", replications * sessions_per_seed, "sessions in the sweep (at least)",
                 source=read.source, field="replications")
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
                get_generator(value)
            except UnknownNameError as exc:
                raise read.error(str(exc), f"{key}.profile") from None
            profile = value
            count = read.integer(entry, "count", f"{key}.count", 1, 1)
            limits.check("sessions", count, "traces to generate", source=read.source, field=f"{key}.count")
            params = dict(read.get(entry, "params", (dict,), f"{key}.params", {}))
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
class SweepPlan:
    """Every chunk of a sweep, with the packed traces they read.

    Args:
        spec: the spec.
        chunks: the chunks, in session order.
        groups: packed trace groups; chunks of different policies share a group.
        sha256: a digest of everything the rows depend on (spec grid, ladders, models,
            trace data, result fields); a sweep folder resumes only under the same digest.
    """

    spec: SweepSpec
    chunks: tuple[Chunk, ...]
    groups: tuple[PackedTraces, ...]
    sha256: str

    @property
    def sessions(self) -> int:
        """Total number of sessions (result rows)."""
        return sum(chunk.sessions for chunk in self.chunks)


def _set_key(name: str) -> int:
    """A stable integer for a trace set's name, part of its sessions' SeedSequence spawn key."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")


def _load_set(spec: SweepSpec, index: int, trace_set: TraceSet, seed: int) -> list[Trace]:
    """The traces of one set (for a generated set, those of ``seed``), named ``set/trace``."""
    key = f"traces[{index}]"
    where = spec.source or "<spec>"
    if trace_set.generated:
        profile = get_generator(str(trace_set.profile))
        width = len(str(trace_set.count - 1))
        traces = []
        for draw in range(trace_set.count):
            sequence = np.random.SeedSequence(seed, spawn_key=(_set_key(trace_set.name), draw))
            try:
                traces += profile.generate(np.random.default_rng(sequence), trace_set.params,
                                           f"{draw:0{width}d}")
            except (TypeError, ValueError) as exc:
                raise InputError(f"{profile.name}: {exc}", source=where, field=f"{key}.params") from None
    elif trace_set.path is not None:
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


def _digest_arrays(hasher: Any, *arrays: np.ndarray | None) -> None:
    for array in arrays:
        if array is not None:
            hasher.update(np.ascontiguousarray(array).tobytes())


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Load and generate the traces, pack them once per group, and list the chunks.

    Sessions are ordered by seed, ladder, model, algorithm configuration, trace set, then
    trace; a generated set draws each trace from
    ``SeedSequence(seed, spawn_key=(key of the set's name, draw))``.

    Raises:
        InputError: if a trace cannot be read or generated.
    """
    groups: list[PackedTraces] = []
    # indices into groups per (seed, set): a generated set per seed, a file set once for all seeds
    group_ids: dict[tuple[int, int], list[int]] = {}
    for seed in spec.seeds:
        for set_index, trace_set in enumerate(spec.traces):
            if not trace_set.generated and seed != spec.seeds[0]:
                group_ids[seed, set_index] = group_ids[spec.seeds[0], set_index]
                continue
            traces = _load_set(spec, set_index, trace_set, seed)
            parts = [traces[i:i + spec.chunk_sessions] for i in range(0, len(traces), spec.chunk_sessions)]
            group_ids[seed, set_index] = list(range(len(groups), len(groups) + len(parts)))
            groups.extend(pack_traces(part) for part in parts)
    hasher = hashlib.sha256()
    hasher.update(json.dumps([spec.name, list(RESULT_FIELDS)]).encode())
    for group in groups:
        hasher.update(json.dumps(group.names).encode())
        _digest_arrays(hasher, group.offsets, group.start_s, group.bandwidth_bps, group.latency_s,
                       group.has_latency, group.duration_s)
    for ladder in spec.ladders:
        hasher.update(json.dumps([ladder.name, ladder.segment_duration_s]).encode())
        _digest_arrays(hasher, ladder.bitrates_bps, ladder.size_bits, ladder.quality)
    chunks: list[Chunk] = []
    for seed, ladder, model, config in itertools.product(spec.seeds, spec.ladders, spec.models,
                                                         spec.algorithms):
        for set_index in range(len(spec.traces)):
            for group in group_ids[seed, set_index]:
                chunks.append(Chunk(len(chunks), spec.name, ladder, config.name, config.params, model,
                                    seed, group, len(groups[group]), config.policy))
    for chunk in chunks:
        params_json = chunk.make().params_json
        if chunk.policy:  # a Python policy: its file's content, so that an edit starts afresh
            params_json = hashlib.sha256(Path(chunk.policy.rpartition(":")[0]).read_bytes()).hexdigest()
        hasher.update(json.dumps([
            chunk.index, chunk.ladder.name, chunk.algorithm, params_json,
            repr(sorted(chunk.model.fields().items())), chunk.seed, chunk.group,
        ]).encode())
    return SweepPlan(spec, tuple(chunks), tuple(groups), hasher.hexdigest())


def run_chunk(chunk: Chunk, traces: PackedTraces) -> list[list[Any]]:
    """Run one chunk: one compiled batch; rows as lists in :data:`RESULT_FIELDS` order."""
    batch = run_batch(traces, chunk.ladder, chunk.make(), chunk.model, chunk.seed)
    rows = rows_from_batch(batch, chunk.scenario)
    return [[row[name] for name in RESULT_FIELDS] for row in rows]


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------


def _run_local(
    plan: SweepPlan, chunks: Sequence[Chunk], jobs: int, lock_fd: int | None = None
) -> Iterator[tuple[Chunk, list]]:
    if jobs <= 1 or len(chunks) <= 2:
        for chunk in chunks:
            yield chunk, run_chunk(chunk, plan.groups[chunk.group])
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # The first chunk runs here: it loads the compiled kernels, which forked workers then inherit.
    yield chunks[0], run_chunk(chunks[0], plan.groups[chunks[0].group])
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(chunks) - 1), initializer=_init_worker,
                               initargs=(os.getpid(), lock_fd))
    try:
        futures = {pool.submit(run_chunk, chunk, plan.groups[chunk.group]): chunk for chunk in chunks[1:]}
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:
        # Interrupted (Ctrl-C), or the consumer stopped: the workers' chunks are not wanted, and
        # waiting for a long one would keep the user waiting. Only the parent writes files.
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
    plan: SweepPlan, chunks: Sequence[Chunk], jobs: int, scheduler: str | None
) -> Iterator[tuple[Chunk, list]]:
    from distributed import Client, LocalCluster, as_completed

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
        scattered = {}
        for index in dict.fromkeys(chunk.group for chunk in chunks):
            scattered[index] = client.scatter(plan.groups[index], hash=False)
        futures = {client.submit(run_chunk, chunk, scattered[chunk.group], pure=False): chunk
                   for chunk in chunks}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            client.cancel(list(futures))


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
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(data, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    except BaseException:  # e.g. Ctrl-C: leave no half-written file behind
        tmp.unlink(missing_ok=True)
        raise


def _chunk_path(out: Path, index: int) -> Path:
    return out / "chunks" / f"chunk-{index:06d}.json"


def _read_chunk(out: Path, chunk: Chunk, plan: SweepPlan) -> list[list[Any]] | None:
    """A finished chunk's rows, or None if the chunk has not finished."""
    try:
        doc = json.loads(_chunk_path(out, chunk.index).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable: run the chunk again
    if doc.get("plan_sha256") != plan.sha256 or doc.get("fields") != list(RESULT_FIELDS):
        raise InputError("holds a chunk of a different sweep; use a new --out folder",
                         source=_chunk_path(out, chunk.index))
    rows = doc.get("rows")
    return rows if isinstance(rows, list) and len(rows) == chunk.sessions else None


def _meta(plan: SweepPlan, started: str, finished: str | None, executor: str, jobs: int) -> str:
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
    }, indent=2) + "\n"


def _prepare(out: Path, plan: SweepPlan, resume: bool) -> str:
    """Check or create the sweep folder; return the sweep's start time."""
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
        return str(meta.get("started") or _now())
    if not resume and (any((out / "chunks").glob("chunk-*")) or (out / "results.csv").exists()):
        raise InputError("holds a sweep already; pass --resume to continue it or choose another --out",
                         source=out)
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "spec.toml", plan.spec.text)
    return _now()


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


def _parquet_type(value: Any) -> Any:
    import pyarrow as pa

    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


def _assemble(out: Path, plan: SweepPlan) -> tuple[tuple[Path, ...], tuple[Row, ...]]:
    """Write results.csv (and results.parquet) from the chunk files, in chunk order."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pa = pq = None
    csv_path, parquet_path = out / "results.csv", out / "results.parquet"
    csv_tmp, parquet_tmp = csv_path.with_name(csv_path.name + ".tmp"), parquet_path.with_name(
        parquet_path.name + ".tmp")
    writer = None
    pending: list[list[Any]] = []
    summary: dict[tuple[str, str, str], Row] = {}
    statements = plan.spec.failures

    def flush() -> None:
        nonlocal writer
        if pa is None or not pending:
            return
        columns = list(zip(*pending, strict=True))
        if writer is None:
            schema = pa.schema([(name, _parquet_type(column[0]))
                                for name, column in zip(RESULT_FIELDS, columns, strict=True)])
            writer = pq.ParquetWriter(parquet_tmp, schema)
        table = pa.Table.from_arrays([pa.array(c, type=writer.schema.field(i).type)
                                      for i, c in enumerate(columns)], schema=writer.schema)
        writer.write_table(table)
        pending.clear()

    try:
        with csv_tmp.open("w", encoding="utf-8", newline="\n") as csv_file:
            for chunk in plan.chunks:
                values = _read_chunk(out, chunk, plan)
                if values is None:
                    raise AbrsimError(f"chunk {chunk.index} of the sweep in {out} is missing")
                rows = [dict(zip(RESULT_FIELDS, row, strict=True)) for row in values]
                text = format_rows(rows, "csv")
                csv_file.write(text if chunk.index == 0 else text.split("\n", 1)[1])
                pending.extend(values)
                if len(pending) >= _PARQUET_ROW_GROUP_ROWS:
                    flush()
                key = (_label(chunk.algorithm, chunk.params), chunk.ladder.name, chunk.model.name)
                entry = summary.setdefault(key, {"algorithm": key[0], "ladder": key[1], "model": key[2],
                                                 "sessions": 0, **{s.name: 0 for s in statements}})
                entry["sessions"] += len(rows)
                for name, failed in evaluate(rows, statements).items():
                    entry[name] += int(failed.sum())
        flush()
        files = [csv_path]
        if writer is not None:
            writer.close()
            os.replace(parquet_tmp, parquet_path)
            files.append(parquet_path)
        elif parquet_path.exists():  # from an earlier run with pyarrow: it would not be rewritten
            parquet_path.unlink()
        os.replace(csv_tmp, csv_path)
    except BaseException:  # e.g. Ctrl-C: leave no half-written file behind
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        csv_tmp.unlink(missing_ok=True)
        parquet_tmp.unlink(missing_ok=True)
        raise
    return tuple(files), tuple(summary.values())


def run_sweep(
    spec: SweepSpec | str | Path,
    out_dir: str | Path,
    *,
    jobs: int = 1,
    executor: str = "local",
    scheduler: str | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> SweepReport:
    """Run a sweep into ``out_dir``.

    The folder receives ``spec.toml`` (the spec's text), ``meta.json`` (spec and plan
    digests, abrsim version, session count, start and finish times), ``chunks/`` (one
    file per finished chunk, each written to a temporary file and renamed), then
    ``results.csv`` and, when pyarrow is installed, ``results.parquet``: one row per
    session in :data:`~abrsim.results.RESULT_FIELDS` order, in session order.

    Args:
        spec: a spec, or the path of a spec file.
        out_dir: the sweep folder; created if missing.
        jobs: worker processes (local) or workers of the LocalCluster (dask); 1 runs the
            local executor in this process.
        executor: ``"local"`` (a process pool) or ``"dask"`` (Dask distributed).
        scheduler: a Dask scheduler address; without one, ``"dask"`` starts a LocalCluster.
        resume: continue a sweep in ``out_dir``: keep its finished chunks, run the others.
        progress: called as ``progress(sessions_done, sessions_total)`` at the start and
            after every chunk.
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
    with _locked(out, notice) as lock_fd:
        started = _prepare(out, plan, resume)
        _write_atomic(out / "meta.json", _meta(plan, started, None, executor, jobs))
        todo = [chunk for chunk in plan.chunks if _read_chunk(out, chunk, plan) is None]
        done = plan.sessions - sum(chunk.sessions for chunk in todo)
        if progress is not None:
            progress(done, plan.sessions)
        results = (_run_local(plan, todo, jobs, lock_fd) if executor == "local"
                   else _run_dask(plan, todo, jobs, scheduler)) if todo else iter(())
        for chunk, rows in results:
            _write_atomic(_chunk_path(out, chunk.index), json.dumps({
                "chunk": chunk.index, "plan_sha256": plan.sha256, "fields": list(RESULT_FIELDS),
                "rows": rows}, separators=(",", ":")))
            done += chunk.sessions
            if progress is not None:
                progress(done, plan.sessions)
        files, summary = _assemble(out, plan)
        _write_atomic(out / "meta.json", _meta(plan, started, _now(), executor, jobs))
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
