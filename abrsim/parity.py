"""Parity with the peers: run abrsim on a reference folder and compare, session by session.

A reference folder is laid out like ``shared/reference/sabre`` or ``shared/reference/pensieve``:
``summary_*.csv`` files with one row per original session (trace file, movie or video, algorithm,
configuration, the original's metrics) and an ``inputs/`` folder holding the traces and videos
the rows name. Rows with a ``movie`` column are Sabre sessions; rows with ``n_chunks`` are
Pensieve sessions, whose per-chunk logs (``chunks_<algorithm>.csv.gz``) are compared too when
present. Any folder of that layout works, not only the ones shipped with the project.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abrsim.engine.fast import run_batch
from abrsim.errors import InputError
from abrsim.ladder import Ladder, load_ladder
from abrsim.model import PENSIEVE, SABRE
from abrsim.peer_formats import read_pensieve_video
from abrsim.trace import Trace, load_trace

__all__ = ["ParityRow", "check_reference", "summarize"]

#: Pensieve's algorithm names → abrsim's.
PENSIEVE_ALGORITHMS = {"bb": "bb", "mpc": "robustmpc", "robustmpc": "robustmpc", "fastmpc": "fastmpc"}


@dataclass(frozen=True)
class ParityRow:
    """The comparison of one reference session with abrsim's.

    Args:
        kind: ``"sabre"`` or ``"pensieve"``.
        dataset: the reference row's dataset (or summary file) name.
        trace: the trace file named by the row.
        algorithm: the reference's algorithm name.
        config: the reference's configuration name (e.g. ``noa``, ``default``).
        passed: whether every compared value is within tolerance.
        failure: the first value out of tolerance, as ``name: abrsim X vs reference Y``.
    """

    kind: str
    dataset: str
    trace: str
    algorithm: str
    config: str
    passed: bool
    failure: str = ""


def _close(name: str, got: float, want: float, rel: float, abs_: float = 0.0) -> str:
    if math.isclose(got, want, rel_tol=rel, abs_tol=abs_):
        return ""
    return f"{name}: abrsim {got:.9g} vs reference {want:.9g}"


class _Inputs:
    """Files under a reference folder's ``inputs/``, found by name."""

    def __init__(self, folder: Path) -> None:
        self.root = folder / "inputs"
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                self.by_name[path.name].append(path)
                self.by_name[path.stem].append(path)

    def find(self, name: str, hint: str = "") -> Path:
        candidates = self.by_name.get(name) or self.by_name.get(Path(name).stem) or []
        if not candidates:
            raise InputError(f"found no file named {name!r} under {self.root}", field="trace")
        for path in candidates:
            if hint and hint in path.parts:
                return path
        return candidates[0]


def _sabre_rows(folder: Path, rows: list[dict[str, str]], inputs: _Inputs,
                progress: Callable[[Iterable[Any], str], Iterable[Any]]) -> list[ParityRow]:
    groups: dict[tuple[str, str, str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[(row["movie"], row["algorithm"], row["config"], row.get("abandonment", ""))].append(row)
    results = []
    for (movie, algorithm, config, abandonment), members in progress(list(groups.items()), "sabre"):
        ladder = load_ladder(str(inputs.find(movie)))
        hint = members[0]["dataset"].rpartition("_")[2]
        traces = [load_trace(inputs.find(r["trace"], hint)) for r in members]
        model = SABRE.replace(abandonment=(abandonment != "off" and config != "noa"))
        batch = run_batch(traces, ladder, algorithm, model)
        for index, row in enumerate(members):
            log = batch.session_log(index)
            played_kbps = ladder.bitrates_bps[log.rung[log.completed]] / 1000.0
            play_s = log.end_s
            events = row["total_rebuffer_events"]
            checks = [
                _close("time_average_played_bitrate",
                       played_kbps.sum() * ladder.segment_duration_s / play_s,
                       float(row["time_average_played_bitrate"]), 0.005),
                _close("total_rebuffer", float(log.stall_s.sum()), float(row["total_rebuffer"]),
                       0.005, 0.010),
                "" if log.rebuffer_count == round(float(events)) else
                f"total_rebuffer_events: abrsim {log.rebuffer_count} vs reference {events}",
                _close("startup_s", log.startup_s, float(row["startup_s"]), 0.0, 0.001),
                _close("total_bitrate_change", float(np.abs(np.diff(played_kbps)).sum()),
                       float(row["total_bitrate_change"]), 0.005, 1e-9),
            ]
            failures = [c for c in checks if c]
            results.append(ParityRow("sabre", row["dataset"], row["trace"], algorithm, config, not failures,
                                     failures[0] if failures else ""))
    return results


def _pensieve_chunks(folder: Path, algorithm: str) -> dict[tuple[str, str], list[dict[str, str]]]:
    path = folder / f"chunks_{algorithm}.csv.gz"
    chunks: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    if path.is_file():
        with gzip.open(path, "rt", newline="") as file:
            for row in csv.DictReader(file):
                chunks[(row["dataset"], row["trace"])].append(row)
    return chunks


def _pensieve_rows(folder: Path, rows: list[dict[str, str]], inputs: _Inputs,
                   progress: Callable[[Iterable[Any], str], Iterable[Any]]) -> list[ParityRow]:
    ladder: Ladder = read_pensieve_video(inputs.root)
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["algorithm"])].append(row)
    results = []
    chunk_logs: dict[str, dict[tuple[str, str], list[dict[str, str]]]] = {}
    for (dataset, algorithm), members in progress(list(groups.items()), "pensieve"):
        if algorithm not in chunk_logs:
            chunk_logs[algorithm] = _pensieve_chunks(folder, algorithm)
        traces: list[Trace] = [load_trace(inputs.find(r["trace"], dataset), format="pensieve")
                               for r in members]
        name = PENSIEVE_ALGORITHMS.get(algorithm, algorithm)
        batch = run_batch(traces, ladder, name, PENSIEVE)
        for index, row in enumerate(members):
            log = batch.session_log(index)
            kbps = ladder.bitrates_bps[log.rung] / 1000.0
            delay_ms = (log.done_s - log.request_s) * 1000.0
            rebuf_s = log.stall_s.copy()
            rebuf_s[0] = log.startup_s  # Pensieve counts the first chunk's delay as rebuffering
            qoe = kbps[1:].sum() / 1000.0 - 4.3 * rebuf_s[1:].sum() - np.abs(np.diff(kbps)).sum() / 1000.0
            checks = [_close("qoe_lin", float(qoe), float(row["qoe_lin"]), 1e-6, 1e-9)]
            for chunk in chunk_logs[algorithm].get((dataset, row["trace"]), []):
                k = int(chunk["chunk_index"])
                if k >= len(log.rung) or log.rung[k] != int(chunk["quality"]):
                    got = log.rung[k] if k < len(log.rung) else None
                    checks.append(f"chunk {k} quality: abrsim {got} vs reference {chunk['quality']}")
                    break
                checks.append(_close(f"chunk {k} delay_ms", float(delay_ms[k]), float(chunk["delay_ms"]),
                                     1e-6))
                checks.append(_close(f"chunk {k} rebuf_s", float(rebuf_s[k]), float(chunk["rebuf_s"]),
                                     1e-6, 1e-9))
            failure = next((c for c in checks if c), "")
            results.append(ParityRow("pensieve", dataset, row["trace"], algorithm, row.get("config", ""),
                                     not failure, failure))
    return results


def _identity(items: Iterable[Any], label: str) -> Iterable[Any]:
    del label
    return items


def check_reference(
    folder: str | Path, progress: Callable[[Iterable[Any], str], Iterable[Any]] = _identity
) -> list[ParityRow]:
    """Run abrsim on every session of a reference folder and compare with the original's numbers.

    Tolerances: Sabre, per row: time-average played bitrate and total bitrate change within
    0.5 %, total rebuffer within 0.5 % or 10 ms, rebuffer events equal, startup within 1 ms.
    Pensieve, per trace: identical rung per chunk, per-chunk delay and rebuffer within 1e-6
    relative, QoE_lin (chunks 1..47) within 1e-6 relative.

    Raises:
        InputError: if the folder has no ``summary_*.csv`` or a row names a missing input.
    """
    folder = Path(folder)
    summaries = sorted(folder.glob("summary_*.csv"))
    sabre: list[dict[str, str]] = []
    pensieve: list[dict[str, str]] = []
    for path in summaries:
        with open(path, newline="") as file:
            for row in csv.DictReader(file):
                if "movie" in row:
                    sabre.append(row)
                elif "n_chunks" in row:
                    pensieve.append(row)
    if not sabre and not pensieve:
        raise InputError("found no summary_*.csv with session rows; expected a reference folder "
                         "laid out like shared/reference/sabre or shared/reference/pensieve", source=folder)
    inputs = _Inputs(folder)
    results = _sabre_rows(folder, sabre, inputs, progress) if sabre else []
    if pensieve:
        results += _pensieve_rows(folder, pensieve, inputs, progress)
    return results


def summarize(results: list[ParityRow]) -> dict[str, float | None]:
    """Headline pass rates (None where there are no such rows).

    ``sabre_noa_pass_rate``, ``sabre_default_pass_rate`` and ``pensieve_pass_rate`` count a
    session as passing only if every value is within tolerance.
    """
    def rate(rows: list[ParityRow]) -> float | None:
        return sum(r.passed for r in rows) / len(rows) if rows else None

    sabre = [r for r in results if r.kind == "sabre"]
    return {
        "sabre_noa_pass_rate": rate([r for r in sabre if r.config == "noa"]),
        "sabre_default_pass_rate": rate([r for r in sabre if r.config != "noa"]),
        "pensieve_pass_rate": rate([r for r in results if r.kind == "pensieve"]),
    }
