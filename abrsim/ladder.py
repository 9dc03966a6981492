"""Encoding ladders: the renditions a player chooses between, segment by segment."""

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

from abrsim._data import data_dir
from abrsim.errors import InputError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Ladder",
    "Rung",
    "available_ladders",
    "load_ladder",
    "read_ladder_toml",
    "read_sabre_movie",
    "read_size_csv",
]


@dataclass(frozen=True)
class Rung:
    """One rendition of a title.

    Args:
        bitrate_bps: nominal (advertised) bitrate, bit/s; > 0.
        width: picture width in pixels, if known.
        height: picture height in pixels, if known.
        codec: codec name, e.g. ``"h264"`` or ``"hevc"``.
    """

    bitrate_bps: float
    width: int | None = None
    height: int | None = None
    codec: str = "h264"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.bitrate_bps) and self.bitrate_bps > 0):
            raise ValueError(f'"bitrate_bps" must be finite and > 0, got {self.bitrate_bps!r}')

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
        segment_duration_s: duration of every segment, seconds; > 0.
        size_bits: ``size_bits[segment, rung]``, bits; finite and > 0.
        quality: optional ``quality[segment, rung]`` (VMAF-like, higher is better).
        name: a label for results tables.
        description: a free-text note on where the ladder comes from.

    Raises:
        ValueError: if bitrates are not strictly increasing or the size table
            does not match the rungs (the message names the offending value).
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
        if not (np.isfinite(self.segment_duration_s) and self.segment_duration_s > 0):
            raise ValueError(f'"segment_duration_s" must be finite and > 0, got {self.segment_duration_s!r}')
        size_bits = _frozen_table(self.size_bits, "size_bits")
        if size_bits.ndim != 2 or size_bits.shape[1] != len(rungs) or size_bits.shape[0] == 0:
            raise ValueError(
                f'"size_bits" must have shape (segments >= 1, {len(rungs)}), got {size_bits.shape}'
            )
        bad_cells = np.argwhere(~(np.isfinite(size_bits) & (size_bits > 0)))
        if bad_cells.size:
            seg, rung = (int(v) for v in bad_cells[0])
            raise ValueError(
                f'"size_bits" must be finite and > 0, segment {seg} rung {rung} '
                f"is {float(size_bits[seg, rung])!r}"
            )
        object.__setattr__(self, "size_bits", size_bits)
        if self.quality is not None:
            quality = _frozen_table(self.quality, "quality")
            if quality.shape != size_bits.shape:
                raise ValueError(f'"quality" must have shape {size_bits.shape}, got {quality.shape}')
            if not np.all(np.isfinite(quality)):
                raise ValueError('"quality" must be finite')
            object.__setattr__(self, "quality", quality)
        bitrates.flags.writeable = False
        object.__setattr__(self, "_bitrates_bps", bitrates)

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
        "quality": (str,),
        "rungs": (list,),
    }
)
_RUNG_KEYS: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {"bitrate_bps": _NUMBER, "width": (int,), "height": (int,), "codec": (str,)}
)
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
    value: str | float, source: Path, *, field: str, line: int | None = None, positive: bool = True
) -> float:
    """Parse a CSV cell (or check a TOML/JSON number): finite and, if ``positive``, > 0."""
    number: float | None
    try:
        number = float(value)
    except ValueError:
        number = None
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


def _read_table(path: Path, *, positive: bool) -> tuple[list[float], np.ndarray]:
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
                    _number(cell, path, field=name, line=reader.line_num, positive=positive)
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
    quality_kbps, quality = _read_table(path, positive=False)
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
    with _as_input_error(path, "segment_duration_s"):
        return Ladder(
            tuple(Rung(value * 1000.0) for value in kbps),
            segment_duration_s,
            size_bytes * 8.0,
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
        with _as_input_error(path, where):
            rungs.append(
                Rung(bitrate_bps, table.get("width"), table.get("height"), table.get("codec", "h264"))
            )
    if not rungs:
        raise InputError("expected at least one [[rungs]] table", source=path, field="rungs")
    _check_increasing(
        [r.bitrate_bps for r in rungs], path, [f"rungs[{k}].bitrate_bps" for k in range(len(rungs))]
    )
    return rungs


def read_ladder_toml(path: str | Path) -> Ladder:
    """Read a ladder from a TOML file (format: ``ladders/README.md``).

    Without a ``sizes`` table the ladder is constant-bitrate with
    ``segment_count`` segments (default 150). With ``sizes`` (a CSV in bytes or a
    Sabre JSON, relative to the TOML file) the sizes and segment count come from
    the table, whose bitrates must equal the rungs'; ``[[rungs]]`` may then be
    left out to take the rungs from the table.

    Raises:
        InputError: if a file is missing, empty or malformed, a key is unknown,
            missing or of the wrong type, or the rungs and size table disagree
            (the message names the file and the key or line).
    """
    path = Path(path)
    text = _read_text(path)
    try:
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
        size_bits = np.tile([r.bitrate_bps * duration_s for r in rungs], (segment_count, 1))
    quality = None
    if "quality" in doc:
        kbps = [r.bitrate_bps / 1000 for r in rungs]
        quality = _read_quality(_relative_file(doc, "quality", path), kbps, size_bits.shape[0])
    with _as_input_error(path):
        return Ladder(
            tuple(rungs),
            duration_s,
            size_bits,
            quality=quality,
            name=doc.get("name", path.stem),
            description=doc.get("description", ""),
        )


def _relative_file(doc: dict[str, Any], key: str, path: Path) -> Path:
    target = path.parent / doc[key]
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
    if isinstance(name_or_path, str) and name_or_path in available_ladders():
        path = data_dir("ladders") / f"{name_or_path}.toml"
    else:
        path = Path(name_or_path)
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
                "a CSV size table needs the segment duration; give segment_duration_s",
                source=path,
                field="segment_duration_s",
            )
        return read_size_csv(path, segment_duration_s)
    if segment_duration_s is not None:
        raise InputError(
            "segment_duration_s applies to CSV size tables only; this file sets its own",
            source=path,
            field="segment_duration_s",
        )
    return read_ladder_toml(path) if suffix == ".toml" else read_sabre_movie(path)
