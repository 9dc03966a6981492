"""Encoding ladders: the renditions a player chooses between, segment by segment."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Ladder", "Rung"]


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

    Raises:
        ValueError: if bitrates are not strictly increasing or the size table
            does not match the rungs (the message names the offending value).
    """

    rungs: tuple[Rung, ...]
    segment_duration_s: float
    size_bits: np.ndarray
    quality: np.ndarray | None = None
    name: str = field(default="")

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
                f'"size_bits" must be finite and > 0, segment {seg} rung {rung} is {size_bits[seg, rung]!r}'
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
        """A constant-bitrate ladder: every segment is bitrate × duration bits.

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
