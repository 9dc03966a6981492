"""Work limits: absurd inputs are refused before anything is allocated or run.

A typo (``r="1000000000"`` in an MPD, ``replications = 1e9`` in a sweep, a trace file of
gigabytes) should cost one line of error, not gigabytes of memory or a run that never ends. Each
reader estimates the size of the work from its input before doing it and calls :func:`check`;
over the limit it raises :class:`abrsim.errors.InputError` naming the input, the estimate, the
limit and the environment variable that raises it. The limits are far above what the shipped
data and experiments need (see ``docs/limits.md``, which lists them all).

Time is bounded separately: a session ends, timed out, once its clock passes
``PlayerModel.session_time_limit_factor`` times its media duration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from abrsim.errors import InputError

__all__ = ["LIMITS", "Limit", "check", "limit"]


@dataclass(frozen=True)
class Limit:
    """One documented limit: its environment variable, default, unit and what it bounds."""

    variable: str
    default: int
    unit: str
    bounds: str


#: Every limit, by key. The defaults leave room for far larger work than the shipped experiments
#: (a ten-million-session sweep, a day of 1-second segments, a million players) and stop before
#: the machine runs out of memory (24 GiB here). The segment limit also bounds how long one
#: compiled session runs without a break for Ctrl-C (100,000 segments of RobustMPC: about 1 s).
LIMITS = {
    "segments": Limit("ABRSIM_MAX_SEGMENTS", 100_000, "segments", "segments in one ladder"),
    "trace_samples": Limit("ABRSIM_MAX_TRACE_SAMPLES", 20_000_000, "samples", "samples in one trace"),
    "synth_samples": Limit("ABRSIM_MAX_SYNTH_SAMPLES", 20_000_000, "samples",
                           "samples drawn by one traces synth (count x samples per trace)"),
    "mahimahi_packets": Limit("ABRSIM_MAX_MAHIMAHI_PACKETS", 20_000_000, "packets",
                              "packets (lines) in one Mahimahi trace written"),
    "trace_bytes": Limit("ABRSIM_MAX_TRACE_BYTES", 256 * 2**20, "bytes", "size of one trace file"),
    "input_bytes": Limit("ABRSIM_MAX_INPUT_BYTES", 64 * 2**20, "bytes",
                         "size of one manifest, scenario or sweep spec file"),
    "sessions": Limit("ABRSIM_MAX_SESSIONS", 10_000_000, "sessions", "sessions in one run or sweep"),
    "log_rows": Limit("ABRSIM_MAX_LOG_ROWS", 100_000_000, "download rows",
                      "per-download log rows held in memory at once (about 100 bytes each)"),
    "players": Limit("ABRSIM_MAX_PLAYERS", 1_000_000, "players", "players in one discrete-event scenario"),
    "titles": Limit("ABRSIM_MAX_TITLES", 100_000, "titles", "titles in one scenario or catalogue"),
}


def limit(key: str) -> int:
    """The limit ``key`` in force: its environment variable if set, else its default.

    Raises:
        InputError: if the environment variable is set to something other than an integer >= 0.
    """
    spec = LIMITS[key]
    text = os.environ.get(spec.variable)
    if text is None or not text.strip():
        return spec.default
    try:
        value = int(float(text)) if text.strip().lower() not in ("inf", "infinity") else 2**62
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(f"{spec.variable}={text!r}: expected an integer >= 0 (or inf)")
    return value


def check(key: str, estimate: float, what: str, source: str | Path | None = None,
          field: str | None = None, line: int | None = None) -> None:
    """Refuse work whose estimated size ``estimate`` is over the limit ``key``.

    ``what`` says what was counted ("segments in the timeline", "sessions in the sweep"); the
    message names the input (``source`` and ``field``), the estimate, the limit and its variable.

    Raises:
        InputError: if ``estimate`` is over the limit (or not a number).
    """
    spec = LIMITS[key]
    allowed = limit(key)
    if estimate == estimate and estimate <= allowed:  # (NaN fails both)
        return
    shown = f"{estimate:,.0f}" if estimate == estimate and estimate < 1e18 else f"{estimate:.3g}"
    raise InputError(
        f"{what}: {shown} {spec.unit}, over the limit of {allowed:,} ({spec.bounds}); "
        f"if you mean it, set {spec.variable} higher", source=source, field=field, line=line)


def check_file_size(key: str, path: str | Path) -> None:
    """Refuse a file larger than the limit ``key`` before reading it (missing files pass: the reader
    reports those)."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return
    check(key, size, "file size", source=path)
