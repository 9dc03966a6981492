"""Encoding ladders: the renditions a player chooses between, segment by segment.

A :class:`Ladder` holds its rungs, ``size_bits[segment, rung]`` and optionally
``quality[segment, rung]`` (VMAF-like, 0 to 100). Ladders are read from TOML
(:func:`read_ladder_toml`), Sabre movie JSON and per-segment size CSVs, and from
DASH/HLS manifests (:mod:`abrsim.manifest`); written with :func:`write_ladder_toml`.
Sizes may come from a table or a model (CBR, seeded VBR), quality from a table,
per-rung values or the rate-quality model (:mod:`abrsim.encoding`).
:func:`pertitle_ladder` builds a ladder on the convex hull of a title's
rate-quality curves.
"""

from __future__ import annotations

import csv
import io
import json
import re
import reprlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from abrsim import limits
from abrsim._data import data_dir
from abrsim._toml import unusable_path
from abrsim.encoding import (
    RateQualityModel,
    VbrModel,
    cbr_size_bits,
    codec_family,
    select_rungs,
    upper_convex_hull,
    vbr_size_bits,
)
from abrsim.errors import InputError, UnknownNameError, nesting_limit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "MAX_BITRATE_BPS",
    "MAX_SEGMENT_DURATION_S",
    "QUALITY_CURVE_COLUMNS",
    "Ladder",
    "Rung",
    "available_ladders",
    "check_segment_duration_s",
    "load_ladder",
    "model_quality",
    "pertitle_ladder",
    "read_ladder_toml",
    "read_quality_curves",
    "read_sabre_movie",
    "read_size_csv",
    "write_ladder_toml",
]


#: The highest rung bitrate, bit/s (the fastest trace, :data:`abrsim.trace.MAX_BANDWIDTH_BPS`): higher
#: ones are typos, refused before segment sizes overflow.
MAX_BITRATE_BPS = 1e12

#: The longest segment, seconds (10^6 s, about 11.6 days, the cap on every duration of the player
#: model): longer ones are typos (a duration in ms, or in the wrong field), refused before any work.
MAX_SEGMENT_DURATION_S = 1e6
_SEGMENT_DURATION_RANGE = f"seconds > 0 and at most {MAX_SEGMENT_DURATION_S:g} (about 11.6 days)"


def check_segment_duration_s(value: float, field: str, source: str | Path | None = None) -> None:
    """Refuse a segment duration a user gave (``field`` of ``source``) outside (0, 10^6] seconds.

    Raises:
        InputError: naming the field, if it is out of range or not a number.
    """
    if not 0 < value <= MAX_SEGMENT_DURATION_S:
        raise InputError(f"found {value:g}; expected {_SEGMENT_DURATION_RANGE}", source=source, field=field)


@dataclass(frozen=True)
class Rung:
    """One rendition of a title.

    Args:
        bitrate_bps: nominal (advertised) bitrate, bit/s; > 0.
        width: picture width in pixels, if known.
        height: picture height in pixels, if known.
        codec: codec name, e.g. ``"h264"`` or ``"hevc"``.
        frame_rate_hz: frames per second, if known; > 0.
    """

    bitrate_bps: float
    width: int | None = None
    height: int | None = None
    codec: str = "h264"
    frame_rate_hz: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.bitrate_bps <= MAX_BITRATE_BPS:
            raise ValueError(f'"bitrate_bps" must be > 0 and at most {MAX_BITRATE_BPS:g} (1 Tbit/s, the '
                             f"fastest trace), got {self.bitrate_bps!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, np.integer)) and value > 0):
                raise ValueError(f'"{name}" must be an integer > 0 or None, got {value!r}')
        fps = self.frame_rate_hz
        if fps is not None and not (np.isfinite(fps) and fps > 0):
            raise ValueError(f'"frame_rate_hz" must be finite and > 0 or None, got {self.frame_rate_hz!r}')

    @property
    def label(self) -> str:
        """A short human label such as ``1080p h264 15000k``."""
        res = f"{self.height}p " if self.height else ""
        return f"{res}{self.codec} {self.bitrate_bps / 1000:g}k"


def _frozen_table(values: np.ndarray, name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Ladder:
    """An encoding ladder with its per-segment sizes.

    Args:
        rungs: renditions in strictly increasing bitrate order.
        segment_duration_s: duration of every segment, seconds; > 0 and at most
            :data:`MAX_SEGMENT_DURATION_S`.
        size_bits: ``size_bits[segment, rung]``, bits; finite and >= 1.
        quality: optional ``quality[segment, rung]`` (VMAF-like, 0 to 100, higher is better).
        name: a label for results tables.
        description: a free-text note on where the ladder comes from.

    Raises:
        ValueError: if bitrates are not strictly increasing, the size table does
            not match the rungs, or a quality is outside 0 to 100 (the message
            names the offending value).
    """

    rungs: tuple[Rung, ...]
    segment_duration_s: float
    size_bits: np.ndarray
    quality: np.ndarray | None = None
    name: str = field(default="")
    description: str = field(default="")

    def __post_init__(self) -> None:
        rungs = tuple(self.rungs)
        object.__setattr__(self, "rungs", rungs)
        object.__setattr__(self, "segment_duration_s", float(self.segment_duration_s))
        if not rungs:
            raise ValueError("a ladder needs at least one rung")
        bitrates = np.array([r.bitrate_bps for r in rungs])
        bad = np.flatnonzero(~(np.diff(bitrates) > 0))
        if bad.size:
            k = int(bad[0]) + 1
            raise ValueError(
                f"rung bitrates must be strictly increasing: rung {k} has {bitrates[k]:g} bit/s "
                f"after {bitrates[k - 1]:g}"
            )
        if not 0 < self.segment_duration_s <= MAX_SEGMENT_DURATION_S:
            raise ValueError(f'"segment_duration_s" must be {_SEGMENT_DURATION_RANGE}, '
                             f"got {self.segment_duration_s!r}")
        size_bits = _frozen_table(self.size_bits, "size_bits")
        if size_bits.ndim != 2 or size_bits.shape[1] != len(rungs) or size_bits.shape[0] == 0:
            raise ValueError(
                f'"size_bits" must have shape (segments >= 1, {len(rungs)}), got {size_bits.shape}'
            )
        bad_cells = np.argwhere(~(np.isfinite(size_bits) & (size_bits >= 1)))
        if bad_cells.size:
            seg, rung = (int(v) for v in bad_cells[0])
            raise ValueError(
                f'"size_bits" must be finite and >= 1 (one bit), segment {seg} rung {rung} '
                f"is {float(size_bits[seg, rung])!r}"
            )
        object.__setattr__(self, "size_bits", size_bits)
        if self.quality is not None:
            quality = _frozen_table(self.quality, "quality")
            if quality.shape != size_bits.shape:
                raise ValueError(f'"quality" must have shape {size_bits.shape}, got {quality.shape}')
            if not np.all(np.isfinite(quality)):
                raise ValueError('"quality" must be finite')
            bad_cells = np.argwhere(~((quality >= 0) & (quality <= 100)))
            if bad_cells.size:
                seg, rung = (int(v) for v in bad_cells[0])
                raise ValueError(
                    f'"quality" must be within 0 to 100, segment {seg} rung {rung} '
                    f"is {float(quality[seg, rung])!r}"
                )
            object.__setattr__(self, "quality", quality)
        bitrates.flags.writeable = False
        object.__setattr__(self, "_bitrates_bps", bitrates)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled through the constructor, so that a copy's tables are read-only too (and checked)."""
        return (Ladder, (self.rungs, self.segment_duration_s, self.size_bits, self.quality, self.name,
                         self.description))

    @property
    def bitrates_bps(self) -> np.ndarray:
        """Nominal bitrate of each rung, bit/s (read-only array)."""
        return self._bitrates_bps  # type: ignore[attr-defined,no-any-return]

    @property
    def rung_count(self) -> int:
        """Number of rungs."""
        return len(self.rungs)

    @property
    def segment_count(self) -> int:
        """Number of segments of the title."""
        return int(self.size_bits.shape[0])

    @property
    def duration_s(self) -> float:
        """Playback duration of the whole title, seconds."""
        return self.segment_count * self.segment_duration_s

    @classmethod
    def cbr(
        cls,
        rungs: tuple[Rung, ...] | list[Rung],
        segment_duration_s: float,
        segment_count: int,
        name: str = "",
    ) -> Ladder:
        """A constant-bitrate ladder: every segment is bitrate * duration bits.

        Raises:
            ValueError: if ``segment_count`` < 1 or a rung is invalid.
        """
        if int(segment_count) < 1:
            raise ValueError(f'"segment_count" must be >= 1, got {segment_count!r}')
        limits.check("segments", segment_count, "segment_count", field="segment_count")
        bitrates = np.array([r.bitrate_bps for r in rungs], dtype=np.float64)
        sizes = np.tile(bitrates * float(segment_duration_s), (int(segment_count), 1))
        return cls(tuple(rungs), segment_duration_s, sizes, name=name)

    def __repr__(self) -> str:
        kbps = ", ".join(f"{b / 1000:g}" for b in self.bitrates_bps)
        return (
            f"Ladder(name={self.name!r}, kbps=[{kbps}], segments={self.segment_count}, "
            f"segment_duration_s={self.segment_duration_s:g})"
        )


# ---------------------------------------------------------------------------
# Readers. Every problem with a file becomes one InputError naming the file,
# the line or key, what was found and what was expected.

_DEFAULT_SEGMENT_COUNT = 150
_NUMBER = (int, float)
# TOML key -> accepted Python types, for the top level and for each [[rungs]] table.
_LADDER_KEYS: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "name": (str,),
        "description": (str,),
        "segment_duration_s": _NUMBER,
        "segment_count": (int,),
        "sizes": (str,),
        "size_model": (str,),
        "size_seed": (int,),
        "size_variation": _NUMBER,
        "quality": (str,),
        "quality_model": (str,),
        "title_complexity": _NUMBER,
        "rungs": (list,),
    }
)
_RUNG_KEYS: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "bitrate_bps": _NUMBER,
        "width": (int,),
        "height": (int,),
        "codec": (str,),
        "frame_rate_hz": _NUMBER,
        "quality": _NUMBER,
    }
)
SIZE_MODELS = ("cbr", "vbr")
QUALITY_MODELS = ("vmaf",)
_SABRE_KEYS = ("segment_duration_ms", "bitrates_kbps", "segment_sizes_bits")
_CSV_HEADER_HINT = "'chunk_index,kbps_<kbit/s>,...'"


@contextmanager
def _as_input_error(source: Path, field: str | None = None) -> Iterator[None]:
    """Turn a ValueError from the Ladder/Rung constructors into an InputError naming ``source``."""
    try:
        yield
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc), source=source, field=field) from None


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("file not found", source=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file: {exc}", source=path) from None
    if not text.strip():
        raise InputError("the file is empty", source=path)
    return text


def _expect(value: Any, types: tuple[type, ...], source: Path, field: str) -> Any:
    """Return ``value`` if it has one of ``types`` (bool is not a number here), else raise InputError."""
    if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
        return value
    names = {int: "an integer", str: "a string", list: "an array", dict: "a table"}
    expected = "a number" if float in types else names[types[0]]
    raise InputError(
        f"expected {expected}, found {type(value).__name__} {reprlib.repr(value)}", source=source, field=field
    )


def _number(
    value: str | float,
    source: Path,
    *,
    field: str,
    line: int | None = None,
    positive: bool = True,
    score: bool = False,
) -> float:
    """Parse a CSV cell (or check a TOML/JSON number).

    It must be finite, > 0 if ``positive`` and within 0 to 100 if ``score``. Text with underscores
    is not a number here, although Python's ``float`` takes ``1_000``.
    """
    number: float | None
    try:
        number = None if isinstance(value, str) and "_" in value else float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer past the float range, e.g. 10**400
        number = None
    if score and number is not None and np.isfinite(number) and not 0 <= number <= 100:
        raise InputError(
            f"expected a quality score within 0 to 100, found {value!r}",
            source=source,
            line=line,
            field=field,
        )
    if number is None or not np.isfinite(number) or (positive and number <= 0):
        expected = "a finite number > 0" if positive else "a finite number"
        raise InputError(f"expected {expected}, found {value!r}", source=source, line=line, field=field)
    return number


def _check_increasing(
    bitrates: Sequence[float], source: Path, fields: Sequence[str], line: int | None = None
) -> None:
    for k in range(1, len(bitrates)):
        if not bitrates[k] > bitrates[k - 1]:
            raise InputError(
                f"bitrates must be strictly increasing, found {bitrates[k]:g} after {bitrates[k - 1]:g}",
                source=source,
                line=line,
                field=fields[k],
            )


def _read_table(path: Path, *, positive: bool, score: bool = False) -> tuple[list[float], np.ndarray]:
    """Read a ``chunk_index,kbps_<kbit/s>,...`` CSV.

    Returns:
        The nominal kbit/s of each column and the cells as ``values[chunk, column]``.
    """
    reader = csv.reader(io.StringIO(_read_text(path)))
    try:
        header = [cell.strip() for cell in next(reader)]
        if len(header) < 2 or header[0] != "chunk_index":
            raise InputError(
                f"bad header {','.join(header)!r}; expected {_CSV_HEADER_HINT}", source=path, line=1
            )
        kbps = []
        for name in header[1:]:
            if not name.startswith("kbps_"):
                raise InputError(
                    f"bad column name {name!r}; expected kbps_<kbit/s>", source=path, line=1, field=name
                )
            kbps.append(_number(name[len("kbps_") :], path, field=name, line=1))
        _check_increasing(kbps, path, header[1:], line=1)
        rows: list[list[float]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # tolerate blank lines, e.g. at the end
            if len(cells) != len(header):
                raise InputError(
                    f"found {len(cells)} cells, expected {len(header)} as in the header",
                    source=path,
                    line=reader.line_num,
                )
            if cells[0].strip() != str(len(rows)):
                raise InputError(
                    f"expected chunk index {len(rows)} (0, 1, 2, ... consecutive), found {cells[0]!r}",
                    source=path,
                    line=reader.line_num,
                    field="chunk_index",
                )
            rows.append(
                [
                    _number(cell, path, field=name, line=reader.line_num, positive=positive, score=score)
                    for cell, name in zip(cells[1:], header[1:], strict=True)
                ]
            )
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", source=path, line=reader.line_num) from None
    if not rows:
        raise InputError("no data rows after the header", source=path, line=1)
    return kbps, np.array(rows, dtype=np.float64)


def _read_quality(path: Path, kbps: Sequence[float], segment_count: int) -> np.ndarray:
    """Read a per-segment quality CSV that must match a size table's columns and length."""
    quality_kbps, quality = _read_table(path, positive=False, score=True)
    if not np.array_equal(quality_kbps, kbps):
        raise InputError(
            f"columns are {_kbps_list(quality_kbps)} kbit/s, "
            f"expected {_kbps_list(kbps)} as in the size table",
            source=path,
            line=1,
        )
    if quality.shape[0] != segment_count:
        raise InputError(f"has {quality.shape[0]} chunks, the size table has {segment_count}", source=path)
    return quality


def _kbps_list(kbps: Sequence[float] | np.ndarray) -> str:
    return "[" + ", ".join(f"{value:g}" for value in kbps) + "]"


def read_size_csv(
    path: str | Path,
    segment_duration_s: float,
    quality_path: str | Path | None = None,
    *,
    name: str | None = None,
) -> Ladder:
    """Read a per-segment size table in bytes, one column per rung.

    The header is ``chunk_index,kbps_<nominal kbit/s>,...`` with bitrates
    increasing left to right; rows carry ``chunk_index`` 0, 1, 2, ... and the
    size of each segment in **bytes** (converted to bits). Rungs get codec
    ``"h264"`` and no resolution.

    Args:
        path: the CSV file.
        segment_duration_s: duration of every segment, seconds; > 0.
        quality_path: optional CSV of the same layout (e.g. per-segment VMAF)
            for :attr:`Ladder.quality`; its columns and chunk count must match.
        name: ladder name; default: the file stem.

    Raises:
        InputError: if a file is missing, empty or malformed (the message names
            the file, the line and the column).
    """
    path = Path(path)
    kbps, size_bytes = _read_table(path, positive=True)
    quality = None if quality_path is None else _read_quality(Path(quality_path), kbps, size_bytes.shape[0])
    with np.errstate(over="ignore"):  # sizes past the float range: refused here, without a warning
        size_bits = size_bytes * 8.0
    if not np.all(np.isfinite(size_bits)):
        segment, rung = (int(k) for k in np.argwhere(~np.isfinite(size_bits))[0])
        raise InputError(f"found a size of {size_bytes[segment, rung]:g} bytes at chunk {segment}; "
                         f"expected at most {np.finfo(np.float64).max / 8:.3g}",
                         source=path, field=f"kbps_{kbps[rung]:g}")
    with _as_input_error(path, "segment_duration_s"):
        return Ladder(
            tuple(Rung(value * 1000.0) for value in kbps),
            segment_duration_s,
            size_bits,
            quality=quality,
            name=path.stem if name is None else name,
        )


def read_sabre_movie(path: str | Path) -> Ladder:
    """Read a Sabre movie description (JSON).

    The file holds ``segment_duration_ms``, ascending ``bitrates_kbps``
    (1 kbit/s = 1000 bit/s) and ``segment_sizes_bits`` (one list of sizes in
    bits per segment, one size per bitrate). Other keys are ignored. Rungs get
    codec ``"h264"`` and no resolution; the name is the file stem.

    Raises:
        InputError: if the file is missing, empty, not JSON, or a key is missing
            or malformed (the message names the file and the key).
    """
    path = Path(path)
    text = _read_text(path)
    try:
        with nesting_limit(path, "a Sabre movie JSON object"):
            doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", source=path, line=exc.lineno) from None
    if not isinstance(doc, dict):
        raise InputError(f"expected a JSON object with keys {', '.join(_SABRE_KEYS)}", source=path, line=1)
    for key in _SABRE_KEYS:
        if key not in doc:
            raise InputError("missing key", source=path, field=key)
    duration_ms = _number(
        _expect(doc["segment_duration_ms"], _NUMBER, path, "segment_duration_ms"),
        path,
        field="segment_duration_ms",
    )
    if duration_ms / 1000.0 > MAX_SEGMENT_DURATION_S:
        raise InputError(f"found {duration_ms:g} ms; expected milliseconds at most "
                         f"{MAX_SEGMENT_DURATION_S * 1000:g} (about 11.6 days)", source=path,
                         field="segment_duration_ms")
    kbps = [
        _number(_expect(value, _NUMBER, path, f"bitrates_kbps[{k}]"), path, field=f"bitrates_kbps[{k}]")
        for k, value in enumerate(_expect(doc["bitrates_kbps"], (list,), path, "bitrates_kbps"))
    ]
    _check_increasing(kbps, path, [f"bitrates_kbps[{k}]" for k in range(len(kbps))])
    rows = []
    for segment, row in enumerate(_expect(doc["segment_sizes_bits"], (list,), path, "segment_sizes_bits")):
        where = f"segment_sizes_bits[{segment}]"
        if len(_expect(row, (list,), path, where)) != len(kbps):
            raise InputError(
                f"found {len(row)} sizes, expected {len(kbps)} (one per bitrate)", source=path, field=where
            )
        rows.append(
            [
                _number(_expect(v, _NUMBER, path, f"{where}[{k}]"), path, field=f"{where}[{k}]")
                for k, v in enumerate(row)
            ]
        )
    if not rows:
        raise InputError("expected at least one segment", source=path, field="segment_sizes_bits")
    with _as_input_error(path):
        return Ladder(
            tuple(Rung(value * 1000.0) for value in kbps),
            duration_ms / 1000.0,
            np.array(rows, dtype=np.float64),
            name=path.stem,
        )


def _check_keys(
    table: dict[str, Any], allowed: Mapping[str, tuple[type, ...]], path: Path, prefix: str
) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise InputError(
                f"unknown key; expected one of: {', '.join(allowed)}", source=path, field=prefix + key
            )
        _expect(value, allowed[key], path, prefix + key)


def _read_toml_rungs(doc: dict[str, Any], path: Path) -> list[Rung]:
    rungs = []
    for index, table in enumerate(doc["rungs"]):
        where = f"rungs[{index}]"
        _check_keys(_expect(table, (dict,), path, where), _RUNG_KEYS, path, where + ".")
        if "bitrate_bps" not in table:
            raise InputError("missing key", source=path, field=f"{where}.bitrate_bps")
        for key in ("width", "height"):
            if key in table and table[key] <= 0:
                raise InputError(
                    f"expected an integer > 0, found {table[key]!r}", source=path, field=f"{where}.{key}"
                )
        bitrate_bps = _number(table["bitrate_bps"], path, field=f"{where}.bitrate_bps")
        frame_rate_hz = table.get("frame_rate_hz")
        if frame_rate_hz is not None:
            frame_rate_hz = _number(frame_rate_hz, path, field=f"{where}.frame_rate_hz")
        if "quality" in table:
            _number(table["quality"], path, field=f"{where}.quality", positive=False, score=True)
        with _as_input_error(path, where):
            rungs.append(
                Rung(
                    bitrate_bps,
                    table.get("width"),
                    table.get("height"),
                    table.get("codec", "h264"),
                    frame_rate_hz,
                )
            )
    if not rungs:
        raise InputError("expected at least one [[rungs]] table", source=path, field="rungs")
    _check_increasing(
        [r.bitrate_bps for r in rungs], path, [f"rungs[{k}].bitrate_bps" for k in range(len(rungs))]
    )
    return rungs


def read_ladder_toml(path: str | Path) -> Ladder:
    """Read a ladder from a TOML file (format: ``ladders/README.md``).

    Without a ``sizes`` table the sizes come from ``size_model``: ``"cbr"``
    (default; constant bitrate) or ``"vbr"`` (:func:`abrsim.encoding.vbr_size_bits`
    seeded with ``size_seed``, with the title variation ``size_variation`` if
    given), for ``segment_count`` segments (default 150). With ``sizes`` (a CSV in
    bytes or a Sabre JSON, relative to the TOML file) the sizes and segment count
    come from the table, whose bitrates must equal the rungs'; ``[[rungs]]`` may
    then be left out to take the rungs from the table. Quality comes from at most
    one of: a ``quality`` CSV, a ``quality`` number on every rung (the same for
    all segments), or ``quality_model = "vmaf"`` (:func:`model_quality`, with
    ``title_complexity``).

    Raises:
        InputError: if a file is missing, empty or malformed, a key is unknown,
            missing or of the wrong type, or the rungs and size table disagree
            (the message names the file and the key or line).
    """
    path = Path(path)
    text = _read_text(path)
    try:
        with nesting_limit(path, "a ladder TOML file"):
            doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise InputError(f"invalid TOML: {exc}", source=path, line=int(match[1]) if match else None) from None
    _check_keys(doc, _LADDER_KEYS, path, "")
    if "segment_duration_s" not in doc:
        raise InputError("missing key", source=path, field="segment_duration_s")
    if "rungs" not in doc and "sizes" not in doc:
        raise InputError(
            "missing key; expected [[rungs]] tables or a sizes table", source=path, field="rungs"
        )
    duration_s = _number(doc["segment_duration_s"], path, field="segment_duration_s")
    check_segment_duration_s(duration_s, "segment_duration_s", path)
    _check_model_keys(doc, path)
    rungs = _read_toml_rungs(doc, path) if "rungs" in doc else None
    if "sizes" in doc:
        table = _read_toml_size_table(doc, path, duration_s)
        if rungs is None:
            rungs = list(table.rungs)
        elif not np.allclose(table.bitrates_bps, [r.bitrate_bps for r in rungs], rtol=1e-9, atol=0):
            raise InputError(
                f"the size table has {_kbps_list(table.bitrates_bps / 1000)} kbit/s, "
                f"the rungs have {_kbps_list([r.bitrate_bps / 1000 for r in rungs])}",
                source=path,
                field="sizes",
            )
        size_bits = table.size_bits
    else:
        assert rungs is not None
        segment_count = doc.get("segment_count", _DEFAULT_SEGMENT_COUNT)
        if segment_count < 1:
            raise InputError(
                f"expected an integer >= 1, found {segment_count!r}", source=path, field="segment_count"
            )
        limits.check("segments", segment_count, "segment_count", source=path, field="segment_count")
        bitrates = [r.bitrate_bps for r in rungs]
        if doc.get("size_model", "cbr") == "vbr":
            model = VbrModel() if "size_variation" not in doc else None
            if model is None:
                variation = _number(doc["size_variation"], path, field="size_variation", positive=False)
                with _as_input_error(path, "size_variation"):
                    model = VbrModel(variation=variation)
            rng = np.random.default_rng(doc.get("size_seed", 0))
            size_bits = vbr_size_bits(bitrates, duration_s, segment_count, rng, model)
        else:
            size_bits = cbr_size_bits(bitrates, duration_s, segment_count)
        _check_model_sizes(doc, path, size_bits, bitrates, duration_s)
    quality = None
    rung_tables = doc.get("rungs", [])
    if "quality" in doc:
        kbps = [r.bitrate_bps / 1000 for r in rungs]
        quality = _read_quality(_relative_file(doc, "quality", path), kbps, size_bits.shape[0])
    elif "quality_model" in doc:
        complexity = _number(doc.get("title_complexity", 1.0), path, field="title_complexity")
        quality = _toml_model_quality(rungs, size_bits.shape[0], complexity, path)
    elif any("quality" in table for table in rung_tables):  # on every rung: _check_model_keys
        quality = np.tile([float(table["quality"]) for table in rung_tables], (size_bits.shape[0], 1))
    with _as_input_error(path):
        return Ladder(
            tuple(rungs),
            duration_s,
            size_bits,
            quality=quality,
            name=doc.get("name", path.stem),
            description=doc.get("description", ""),
        )


def _check_model_sizes(doc: dict[str, Any], path: Path, size_bits: np.ndarray, bitrates: Sequence[float],
                       duration_s: float) -> None:
    """Refuse sizes the TOML keys made smaller than a bit, naming the key to change.

    A constant-bitrate segment is ``bitrate_bps * segment_duration_s`` bits; the VBR model spreads
    sizes around that, the wider the larger ``size_variation``.
    """
    smallest_bits = float(min(bitrates)) * duration_s
    if not smallest_bits >= 1:
        if min(bitrates) < 1000:  # below any real rung (1 kbit/s): the bitrate is the odd one
            rung = int(np.argmin(bitrates))
            raise InputError(
                f"is {bitrates[rung]:g} bit/s, so its segments of {duration_s:g} s hold {smallest_bits:.3g} "
                "bits; expected at least one bit: a higher bitrate_bps", source=path,
                field=f"rungs[{rung}].bitrate_bps")
        raise InputError(
            f"is {duration_s:g} s, so the lowest rung's segments ({min(bitrates):g} bit/s) hold "
            f"{smallest_bits:.3g} bits; expected at least one bit: a longer segment_duration_s",
            source=path, field="segment_duration_s")
    bad = np.argwhere(~(size_bits >= 1))
    if bad.size:
        segment, rung = (int(v) for v in bad[0])
        seed = doc.get("size_seed", 0)
        variation = (f"size_variation = {doc['size_variation']!r}" if "size_variation" in doc
                     else f"no size_variation (so one drawn for the title from size_seed = {seed})")
        raise InputError(
            f"the VBR sizes drawn with {variation} go down to "
            f"{float(size_bits[segment, rung]):.3g} bits (segment {segment}, rung {rung}); expected at "
            "least one bit: a smaller size_variation (real titles: 0.05 to 0.25) or longer or "
            "higher-bitrate segments",
            source=path, field="size_variation")


def _check_model_keys(doc: dict[str, Any], path: Path) -> None:
    """Check that the size and quality sources of a TOML ladder are given once and consistently."""
    if "sizes" in doc and "size_model" in doc:
        raise InputError(
            "give either a sizes table or a size_model, not both", source=path, field="size_model"
        )
    model = doc.get("size_model", "cbr")
    if model not in SIZE_MODELS:
        raise InputError(
            f"unknown size model {model!r}; expected one of: {', '.join(SIZE_MODELS)}",
            source=path,
            field="size_model",
        )
    for key in ("size_seed", "size_variation"):
        if key in doc and model != "vbr":
            raise InputError('applies to size_model = "vbr" only', source=path, field=key)
    if "size_seed" in doc and doc["size_seed"] < 0:
        raise InputError(
            f"expected an integer >= 0, found {doc['size_seed']!r}", source=path, field="size_seed"
        )
    rung_tables = [t for t in doc.get("rungs", []) if isinstance(t, dict)]
    with_quality = [k for k, table in enumerate(rung_tables) if "quality" in table]
    sources = [key for key in ("quality", "quality_model") if key in doc] + (
        [f"rungs[{with_quality[0]}].quality"] if with_quality else []
    )
    if len(sources) > 1:
        raise InputError(
            f"quality is given by both {sources[0]} and {sources[1]}; expected one source",
            source=path,
            field=sources[1],
        )
    if with_quality and len(with_quality) != len(rung_tables):
        missing = next(k for k in range(len(rung_tables)) if k not in with_quality)
        raise InputError(
            "missing key; a per-rung quality must be given on every rung",
            source=path,
            field=f"rungs[{missing}].quality",
        )
    if "quality_model" in doc and doc["quality_model"] not in QUALITY_MODELS:
        raise InputError(
            f"unknown quality model {doc['quality_model']!r}; expected one of: {', '.join(QUALITY_MODELS)}",
            source=path,
            field="quality_model",
        )
    if "title_complexity" in doc and "quality_model" not in doc:
        raise InputError("applies with a quality_model only", source=path, field="title_complexity")


def _toml_model_quality(
    rungs: Sequence[Rung], segment_count: int, complexity: float, path: Path
) -> np.ndarray:
    for index, rung in enumerate(rungs):
        if rung.height is None:
            raise InputError(
                "missing key; the quality model needs every rung's height",
                source=path,
                field=f"rungs[{index}].height",
            )
    try:
        return model_quality(rungs, segment_count, title_complexity=complexity)
    except ValueError as exc:
        raise InputError(str(exc), source=path, field="quality_model") from None


def _relative_file(doc: dict[str, Any], key: str, path: Path) -> Path:
    target = path.parent / doc[key]
    if unusable_path(target):
        raise InputError(f"found {unusable_path(target)}; expected a file name", source=path, field=key)
    if not target.is_file():
        raise InputError(f"file {str(target)!r} not found", source=path, field=key)
    return target


def _read_toml_size_table(doc: dict[str, Any], path: Path, duration_s: float) -> Ladder:
    """Read the ``sizes`` table a TOML ladder points to and check it against the TOML keys."""
    table_path = _relative_file(doc, "sizes", path)
    suffix = table_path.suffix.lower()
    if suffix == ".csv":
        table = read_size_csv(table_path, duration_s)
    elif suffix == ".json":
        table = read_sabre_movie(table_path)
        if not np.isclose(table.segment_duration_s, duration_s, rtol=1e-9, atol=0):
            raise InputError(
                f"is {duration_s:g} s but the Sabre file {doc['sizes']!r} has {table.segment_duration_s:g} s",
                source=path,
                field="segment_duration_s",
            )
    else:
        raise InputError(
            f"unsupported size table {doc['sizes']!r}; expected a .csv or .json file",
            source=path,
            field="sizes",
        )
    if doc.get("segment_count", table.segment_count) != table.segment_count:
        raise InputError(
            f"is {doc['segment_count']} but the size table has {table.segment_count} segments",
            source=path,
            field="segment_count",
        )
    return table


def available_ladders() -> list[str]:
    """Return the sorted names of the built-in ladders.

    Raises:
        AbrsimError: if the installation lacks the built-in ladders folder.
    """
    return sorted(path.stem for path in data_dir("ladders").glob("*.toml"))


def load_ladder(name_or_path: str | Path, segment_duration_s: float | None = None) -> Ladder:
    """Load a built-in ladder by name, or a ladder file by path.

    A ``str`` naming a built-in ladder (see :func:`available_ladders`) wins;
    otherwise the file type decides: ``.toml`` (:func:`read_ladder_toml`),
    ``.json`` (:func:`read_sabre_movie`) or ``.csv`` (:func:`read_size_csv`).

    Args:
        name_or_path: built-in name such as ``"hls"``, or a file path.
        segment_duration_s: segment duration, seconds; required for ``.csv``
            size tables and not accepted otherwise (the other formats carry it).

    Raises:
        UnknownNameError: if ``name_or_path`` is neither a built-in name nor a
            path with a ladder file suffix.
        InputError: if the file is unusable or ``segment_duration_s`` is missing
            or superfluous.

    >>> load_ladder("hls").rung_count
    9
    """
    builtin = isinstance(name_or_path, str) and name_or_path in available_ladders()
    path = data_dir("ladders") / f"{name_or_path}.toml" if builtin else Path(name_or_path)
    if unusable_path(path):
        raise InputError(f"found {unusable_path(path)}; expected a ladder name or file", source=path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ".csv"):
        if path.is_file():
            raise InputError(
                f"unsupported ladder file type {suffix!r}; expected .toml, .json or .csv", source=path
            )
        raise UnknownNameError("ladder", str(name_or_path), available_ladders())
    if suffix == ".csv":
        if segment_duration_s is None:
            raise InputError(
                "a CSV size table does not say how long its segments are; give --segment-duration-s "
                "(segment_duration_s in Python)",
                source=path,
            )
        check_segment_duration_s(segment_duration_s, "--segment-duration-s", path)
        return read_size_csv(path, segment_duration_s)
    if segment_duration_s is not None:
        # Name what the user named: the built-in ladder, not its file inside the installed package.
        what = f"the built-in ladder {name_or_path!r}" if builtin else f"a {suffix} ladder"
        raise InputError(
            f"{what} sets its own segment duration; --segment-duration-s (segment_duration_s in Python) "
            "applies to size .csv ladders only",
            source=None if builtin else path,
            field="--segment-duration-s",
        )
    return read_ladder_toml(path) if suffix == ".toml" else read_sabre_movie(path)


# ---------------------------------------------------------------------------
# Quality from the rate-quality model, the TOML writer, and per-title ladders


def model_quality(
    rungs: Sequence[Rung],
    segment_count: int,
    *,
    title_complexity: float = 1.0,
    segment_complexity: Sequence[float] | np.ndarray | None = None,
    model: RateQualityModel | None = None,
) -> np.ndarray:
    """Per-segment quality of each rung from :class:`~abrsim.encoding.RateQualityModel`.

    Each rung's quality follows from its nominal bitrate, resolution (width
    defaults to 16:9 of the height), frame rate (default 30) and codec. Without
    ``segment_complexity`` every segment of a rung gets the same score.

    Args:
        rungs: the rungs; every one needs a height.
        segment_count: number of segments, >= 1.
        title_complexity: how hard the title is to encode (1: like the calibration title), > 0.
        segment_complexity: optional per-segment factor on ``title_complexity`` (e.g. from
            a complexity analysis), ``segment_count`` values > 0.
        model: the model; default ``RateQualityModel()``.

    Returns:
        ``quality[segment, rung]`` within 0 to 100.

    Raises:
        ValueError: if a rung has no height, its codec is unknown to the model, or a
            value is out of range (the message names the rung).
    """
    rq = RateQualityModel() if model is None else model
    count = int(segment_count)
    if count < 1:
        raise ValueError(f'"segment_count" must be >= 1, got {segment_count!r}')
    if not (np.isfinite(title_complexity) and title_complexity > 0):  # (before it becomes an array)
        raise ValueError(f'"title_complexity" must be finite and > 0, got {title_complexity!r}')
    factor = np.ones(count) if segment_complexity is None else np.asarray(segment_complexity, float)
    if factor.shape != (count,):
        raise ValueError(f'"segment_complexity" must have {count} values, got shape {factor.shape}')
    columns = []
    for index, rung in enumerate(rungs):
        if rung.height is None:
            raise ValueError(f"rung {index} ({rung.label}) has no height; the quality model needs one")
        try:
            columns.append(
                rq.quality(
                    rung.bitrate_bps,
                    rung.width,
                    rung.height,
                    rung.frame_rate_hz,
                    rung.codec,
                    complexity=title_complexity * factor,
                )
            )
        except ValueError as exc:
            raise ValueError(f"rung {index} ({rung.label}): {exc}") from None
    return np.stack(columns, axis=1)


def _toml_value(value: float | int | str) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def _table_csv(kbps: Sequence[float], rows: np.ndarray) -> str:
    header = "chunk_index," + ",".join(f"kbps_{value!r}" for value in kbps)
    lines = (f"{index}," + ",".join(repr(float(v)) for v in row) for index, row in enumerate(rows))
    return header + "\n" + "\n".join(lines) + "\n"


def write_ladder_toml(
    ladder: Ladder,
    path: str | Path,
    *,
    size_model: str | None = None,
    size_seed: int = 0,
    size_variation: float | None = None,
    quality_model: str | None = None,
    title_complexity: float = 1.0,
) -> list[Path]:
    """Write a ladder as TOML (format: ``ladders/README.md``), so that :func:`read_ladder_toml` reads it back.

    Sizes: constant-bitrate sizes become ``segment_count``; other sizes go to a
    ``<stem>.sizes.csv`` table in bytes beside the TOML file, unless ``size_model``
    names the model that made them (then only its keys are written). Quality:
    the same score for every segment of a rung becomes a per-rung ``quality``;
    other tables go to ``<stem>.quality.csv``; ``quality_model`` writes the model's
    keys instead. Numbers are written so that they read back to the same floats.

    Args:
        ladder: the ladder.
        path: the ``.toml`` file to create or overwrite.
        size_model: ``"cbr"`` or ``"vbr"`` to write the size model's keys instead of sizes.
        size_seed: with ``size_model="vbr"``, the seed that made the sizes.
        size_variation: with ``size_model="vbr"``, the title variation, if it was fixed.
        quality_model: ``"vmaf"`` to write the quality model's keys instead of scores.
        title_complexity: with ``quality_model``, the title complexity.

    Returns:
        The files written, the TOML file first.

    Raises:
        ValueError: if ``size_model`` or ``quality_model`` is unknown.
    """
    target = Path(path)
    if size_model is not None and size_model not in SIZE_MODELS:
        raise ValueError(f'"size_model" must be one of {", ".join(SIZE_MODELS)} or None, got {size_model!r}')
    if quality_model is not None and quality_model not in QUALITY_MODELS:
        raise ValueError(
            f'"quality_model" must be one of {", ".join(QUALITY_MODELS)} or None, got {quality_model!r}'
        )
    written = [target]
    kbps = [float(b) / 1000 for b in ladder.bitrates_bps]
    lines = ["# An abrsim encoding ladder (format: ladders/README.md)."]
    if ladder.name:
        lines.append(f"name = {_toml_value(ladder.name)}")
    if ladder.description:
        lines.append(f"description = {_toml_value(ladder.description)}")
    lines.append(f"segment_duration_s = {_toml_value(ladder.segment_duration_s)}")
    cbr = cbr_size_bits(ladder.bitrates_bps, ladder.segment_duration_s, ladder.segment_count)
    if size_model is not None or np.array_equal(ladder.size_bits, cbr):
        lines.append(f"segment_count = {ladder.segment_count}")
        if size_model == "vbr":
            lines.append('size_model = "vbr"')
            lines.append(f"size_seed = {int(size_seed)}")
            if size_variation is not None:
                lines.append(f"size_variation = {_toml_value(size_variation)}")
    else:
        sizes = target.with_name(f"{target.stem}.sizes.csv")
        sizes.write_text(_table_csv(kbps, ladder.size_bits / 8.0), encoding="utf-8", newline="\n")
        written.append(sizes)
        lines.append(f"sizes = {_toml_value(sizes.name)}")
    per_rung: list[float] | None = None
    if quality_model is not None:
        lines.append(f"quality_model = {_toml_value(quality_model)}")
        lines.append(f"title_complexity = {_toml_value(title_complexity)}")
    elif ladder.quality is not None:
        if np.all(ladder.quality == ladder.quality[0]):
            per_rung = [float(v) for v in ladder.quality[0]]
        else:
            scores = target.with_name(f"{target.stem}.quality.csv")
            scores.write_text(_table_csv(kbps, ladder.quality), encoding="utf-8", newline="\n")
            written.append(scores)
            lines.append(f"quality = {_toml_value(scores.name)}")
    for index, rung in enumerate(ladder.rungs):
        lines += ["", "[[rungs]]", f"bitrate_bps = {_toml_value(rung.bitrate_bps)}"]
        for key in ("width", "height", "codec", "frame_rate_hz"):
            value = getattr(rung, key)
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        if per_rung is not None:
            lines.append(f"quality = {_toml_value(per_rung[index])}")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return written


QUALITY_CURVE_COLUMNS = ("width", "height", "bitrate_kbps", "quality")
"""Required columns of a rate-quality curves CSV (optional: ``codec``, ``frame_rate_hz``)."""


@dataclass(frozen=True, eq=False)
class RateQualityPoints:
    """Measured or modelled (bitrate, quality) points of one title's encodes, one per encode.

    Attributes:
        bitrate_bps: bitrate of each encode, bit/s.
        width: picture width, pixels.
        height: picture height, pixels.
        quality: quality score (VMAF-like, 0 to 100).
        codec: codec family of each encode.
        frame_rate_hz: frame rate of each encode (NaN if unknown).
    """

    bitrate_bps: np.ndarray
    width: np.ndarray
    height: np.ndarray
    quality: np.ndarray
    codec: tuple[str, ...]
    frame_rate_hz: np.ndarray


def read_quality_curves(path: str | Path) -> RateQualityPoints:
    """Read a title's rate-quality measurements: a CSV with one encode per row.

    Columns (header required, any order): ``width``, ``height`` (pixels, integers
    > 0), ``bitrate_kbps`` (> 0), ``quality`` (0 to 100, e.g. the encode's mean
    VMAF), optionally ``codec`` (default ``h264``) and ``frame_rate_hz``.

    Raises:
        InputError: naming the file, line and column, if the file is missing,
            empty or malformed.
    """
    source = Path(path)
    reader = csv.DictReader(io.StringIO(_read_text(source)))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in QUALITY_CURVE_COLUMNS if name not in header]
    if missing:
        raise InputError(
            f"missing column {missing[0]!r}; expected a header with {', '.join(QUALITY_CURVE_COLUMNS)} "
            "(and optionally codec, frame_rate_hz)",
            source=source,
            line=1,
        )
    columns: dict[str, list[float]] = {name: [] for name in (*QUALITY_CURVE_COLUMNS, "frame_rate_hz")}
    codecs: list[str] = []
    try:
        for raw in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            line = reader.line_num
            if not any(row.values()):
                continue
            for name in ("width", "height"):
                value = _number(row[name], source, field=name, line=line)
                if not float(value).is_integer():
                    raise InputError(
                        f"expected an integer > 0, found {row[name]!r}", source=source, line=line, field=name
                    )
                columns[name].append(value)
            columns["bitrate_kbps"].append(
                _number(row["bitrate_kbps"], source, field="bitrate_kbps", line=line)
            )
            columns["quality"].append(
                _number(row["quality"], source, field="quality", line=line, positive=False, score=True)
            )
            fps = row.get("frame_rate_hz", "")
            columns["frame_rate_hz"].append(
                _number(fps, source, field="frame_rate_hz", line=line) if fps else float("nan")
            )
            codecs.append(codec_family(row.get("codec", "")) or row.get("codec", "") or "h264")
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", source=source, line=reader.line_num) from None
    if not codecs:
        raise InputError("no data rows after the header", source=source, line=1)
    return RateQualityPoints(
        bitrate_bps=np.array(columns["bitrate_kbps"]) * 1000.0,
        width=np.array(columns["width"]),
        height=np.array(columns["height"]),
        quality=np.array(columns["quality"]),
        codec=tuple(codecs),
        frame_rate_hz=np.array(columns["frame_rate_hz"]),
    )


# (width, height) candidates for a model-based per-title ladder
DEFAULT_RESOLUTIONS: tuple[tuple[int, int], ...] = (
    (416, 234),
    (640, 360),
    (768, 432),
    (960, 540),
    (1280, 720),
    (1920, 1080),
)


def _model_points(
    resolutions: Sequence[tuple[int, int]],
    codec: str,
    frame_rate_hz: float,
    title_complexity: float,
    model: RateQualityModel,
    min_bitrate_bps: float,
    max_bitrate_bps: float,
) -> RateQualityPoints:
    grid_bps = np.unique(np.round(np.geomspace(min_bitrate_bps, max_bitrate_bps, 96), -3))
    rows = [(b, w, h) for w, h in resolutions for b in grid_bps]
    bitrates, widths, heights = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    quality = model.quality(bitrates, widths, heights, frame_rate_hz, codec, complexity=title_complexity)
    return RateQualityPoints(
        bitrate_bps=bitrates,
        width=widths,
        height=heights,
        quality=quality,
        codec=(codec_family(codec) or codec,) * bitrates.size,
        frame_rate_hz=np.full(bitrates.size, float(frame_rate_hz)),
    )


def pertitle_ladder(
    points: RateQualityPoints | None = None,
    *,
    rung_count: int | None = None,
    quality_step: float | None = None,
    min_bitrate_bps: float = 100e3,
    max_bitrate_bps: float = 20e6,
    max_quality: float | None = 95.0,
    resolutions: Sequence[tuple[int, int]] = DEFAULT_RESOLUTIONS,
    codec: str = "h264",
    frame_rate_hz: float = 30.0,
    title_complexity: float = 1.0,
    model: RateQualityModel | None = None,
    segment_duration_s: float = 4.0,
    segment_count: int = 150,
    size_model: str = "cbr",
    size_seed: int = 0,
    name: str = "pertitle",
) -> Ladder:
    """Build a per-title ladder on the upper convex hull of quality against bitrate.

    The candidate encodes are ``points`` (a title's measured rate-quality curves,
    :func:`read_quality_curves`) or, without them, the rate-quality model's curves
    for ``resolutions`` at 96 bitrates between the limits. Candidates outside
    ``[min_bitrate_bps, max_bitrate_bps]`` are dropped; the upper convex hull of
    the rest across all resolutions (:func:`~abrsim.encoding.upper_convex_hull`)
    holds the efficient encodes, each at the resolution that looks best at its
    bitrate. The hull is cut at the first point reaching ``max_quality`` (more
    bits buy little beyond it), then rungs are chosen on it by ``rung_count`` or
    ``quality_step`` (:func:`~abrsim.encoding.select_rungs`). Each rung's quality
    is its hull point's score, the same for every segment.

    Args:
        points: the title's candidate encodes; None: the model's.
        rung_count: number of rungs (log-even bitrates along the hull).
        quality_step: quality gap between consecutive rungs (e.g. 6 VMAF).
        min_bitrate_bps: lowest candidate bitrate, bit/s.
        max_bitrate_bps: highest candidate bitrate, bit/s.
        max_quality: stop the hull at the first point at least this good; None: no cap.
        resolutions: ``(width, height)`` candidates for the model.
        codec: codec of the model's candidates.
        frame_rate_hz: frame rate of the model's candidates.
        title_complexity: the title's complexity for the model (1: like the calibration title).
        model: the rate-quality model; default ``RateQualityModel()``.
        segment_duration_s: segment duration of the ladder, seconds.
        segment_count: number of segments.
        size_model: ``"cbr"`` or ``"vbr"`` segment sizes.
        size_seed: seed of the VBR sizes.
        name: the ladder's name.

    Returns:
        The ladder, with per-rung quality.

    Raises:
        InputError: naming the argument, if the rule is missing or ambiguous, a value
            is out of range, or no candidate is left.
    """
    if not (np.isfinite(min_bitrate_bps) and 0 < min_bitrate_bps < max_bitrate_bps < np.inf):
        raise InputError(
            f"expected 0 < min_bitrate_bps < max_bitrate_bps, found {min_bitrate_bps:g} and "
            f"{max_bitrate_bps:g}",
            field="min_bitrate_bps",
        )
    if max_quality is not None and not 0 < max_quality <= 100:
        raise InputError(f"expected a quality within (0, 100], found {max_quality!r}", field="max_quality")
    if not (np.isfinite(title_complexity) and title_complexity > 0):
        raise InputError(f"expected a finite number > 0, found {title_complexity!r}",
                         field="title_complexity")
    if size_model not in SIZE_MODELS:
        raise UnknownNameError("size model", size_model, SIZE_MODELS)
    rq = RateQualityModel() if model is None else model
    from_model = points is None
    if points is None:
        if not resolutions:
            raise InputError("expected at least one resolution", field="resolutions")
        try:
            points = _model_points(
                resolutions, codec, frame_rate_hz, title_complexity, rq, min_bitrate_bps, max_bitrate_bps
            )
        except ValueError as exc:
            raise InputError(str(exc), field="model") from None
    keep = np.flatnonzero((points.bitrate_bps >= min_bitrate_bps) & (points.bitrate_bps <= max_bitrate_bps))
    if keep.size == 0:
        raise InputError(
            f"no candidate encode between {min_bitrate_bps / 1e3:g} and {max_bitrate_bps / 1e3:g} kbit/s",
            field="bitrate_kbps",
        )
    hull = keep[upper_convex_hull(points.bitrate_bps[keep], points.quality[keep])]
    if max_quality is not None:
        reached = np.flatnonzero(points.quality[hull] >= max_quality)
        if reached.size:
            hull = hull[: reached[0] + 1]
    try:
        chosen = hull[select_rungs(points.bitrate_bps[hull], points.quality[hull],
                                   rung_count=rung_count, quality_step=quality_step)]
    except ValueError as exc:
        raise InputError(str(exc), field="rung_count" if rung_count is not None else "quality_step") from None
    rungs = tuple(
        Rung(
            float(points.bitrate_bps[k]),
            int(points.width[k]),
            int(points.height[k]),
            points.codec[k],
            None if np.isnan(points.frame_rate_hz[k]) else float(points.frame_rate_hz[k]),
        )
        for k in chosen
    )
    bitrates = [r.bitrate_bps for r in rungs]
    if size_model == "vbr":
        sizes = vbr_size_bits(bitrates, segment_duration_s, segment_count, np.random.default_rng(size_seed))
    else:
        sizes = cbr_size_bits(bitrates, segment_duration_s, segment_count)
    source = "from the rate-quality model" if from_model else "from measured curves"
    rule = f"{rung_count} rungs" if rung_count is not None else f"quality step {quality_step:g}"
    with _as_input_error(Path(name), "segment_duration_s"):
        return Ladder(
            rungs,
            segment_duration_s,
            sizes,
            quality=np.tile(points.quality[chosen], (int(segment_count), 1)),
            name=name,
            description=f"Per-title ladder on the convex hull of quality against bitrate, {source}, {rule}",
        )
