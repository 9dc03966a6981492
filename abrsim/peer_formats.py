"""Inputs in the peers' own formats that have no better home: Pensieve's ``video_size_*`` files.

Traces in the peers' formats (Pensieve cooked text, Sabre network JSON) are read by
:mod:`abrsim.trace`; Sabre's movie JSON by :mod:`abrsim.ladder`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abrsim.errors import InputError
from abrsim.ladder import Ladder, Rung

__all__ = ["PENSIEVE_BITRATES_KBPS", "is_pensieve_video", "read_pensieve_video"]

#: Pensieve's ladder (``VIDEO_BIT_RATE`` in its code): the envivio title's six renditions, kbit/s.
PENSIEVE_BITRATES_KBPS = (300, 750, 1200, 1850, 2850, 4300)


def _prefix(path: str | Path) -> Path:
    path = Path(path)
    return path / "video_size_" if path.is_dir() else path


def is_pensieve_video(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding ``video_size_0`` or a ``.../video_size_`` prefix."""
    prefix = _prefix(path)
    return Path(f"{prefix}0").is_file()


def read_pensieve_video(
    path: str | Path,
    bitrates_kbps: tuple[float, ...] = PENSIEVE_BITRATES_KBPS,
    segment_duration_s: float = 4.0,
) -> Ladder:
    """Read Pensieve's chunk-size files ``video_size_0`` ... (bytes, one chunk per line).

    Args:
        path: the folder holding the files, or the common prefix (``.../video_size_``).
        bitrates_kbps: nominal bitrate of rung ``q`` (file ``video_size_<q>``), kbit/s.
        segment_duration_s: chunk duration, seconds (Pensieve: 4).

    Raises:
        InputError: naming the file and line of a missing file, a non-integer or non-positive
            size, or files with different chunk counts.
    """
    prefix = _prefix(path)
    columns = []
    for rung in range(len(bitrates_kbps)):
        source = Path(f"{prefix}{rung}")
        try:
            lines = source.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read it ({exc.strerror}); expected Pensieve's video_size_{rung}",
                             source=source) from None
        sizes = []
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            cell = text.split()[0]
            try:
                if "_" in cell:  # Python's int() takes 1_000
                    raise ValueError(cell)
                size_bytes = int(cell)
            except ValueError:
                raise InputError(f"found {cell!r}; expected a chunk size in bytes (an integer)",
                                 source=source, line=number) from None
            if size_bytes <= 0:
                raise InputError(f"found {size_bytes}; expected a size > 0", source=source, line=number)
            sizes.append(size_bytes * 8.0)
        if not sizes:
            raise InputError("found an empty file; expected one chunk size per line", source=source)
        if columns and len(sizes) != len(columns[0]):
            raise InputError(f"found {len(sizes)} chunks; expected {len(columns[0])} like video_size_0",
                             source=source)
        columns.append(sizes)
    rungs = tuple(Rung(kbps * 1000.0) for kbps in bitrates_kbps)
    return Ladder(rungs, segment_duration_s, np.array(columns).T, name=Path(prefix).name.rstrip("_"))
