"""What a policy sees: :class:`Observation`, a read-only view of the player's observation array."""

from __future__ import annotations

import numpy as np

from abrsim.abr import protocol

__all__ = ["Observation"]

_EMPTY = np.zeros(0)
_EMPTY.flags.writeable = False


def _read_only(array: np.ndarray | None) -> np.ndarray | None:
    if array is None:
        return None
    view = array.view()
    view.flags.writeable = False
    return view


class Observation:
    """What the player knows when a policy decides (``choose``) or checks a download (``abandon``).

    The engines hand a policy one ``Observation`` that stays valid only during the call: it reads
    the player's live observation, so keep the values, not the object. Nothing in it can be
    changed (its arrays are read-only).

    Built directly (as the tests and the compiled policies' ``choose`` do) it holds the five
    values given and no ladder.

    Attributes (all read-only properties):
        segment_index: the segment about to be requested (or, at a checkpoint, in flight).
        segments: segments in the session.
        buffer_s: media in the buffer, seconds (at a checkpoint: as playback has drained it
            since the request, never below 0).
        last_rung: rung of the last completed download, -1 before the first.
        throughput_bps: the player's throughput estimate, bit/s (0 before any download).
        latency_s: the player's request-latency estimate, seconds (0 before any download).
        segment_duration_s: media per segment, seconds.
        time_s: session time now, seconds; rebuffer_s: stall time so far, seconds.
        download_rung, download_size_bits, downloaded_bits, download_s, download_latency_s: the
            last download (at a decision; abandoned or not) or the one in flight (at a
            checkpoint): its rung, full size, bits received, time since its request (latency
            included) and latency. Zero before the first download.
        bitrates_bps: the ladder's bitrate per rung; quality: its per-segment quality table
            (segments x rungs) or None; size_bits: its size table (segments x rungs).
    """

    __slots__ = ("_bitrates_bps", "_quality", "_size_bits", "_v")

    def __init__(self, segment_index: int = 0, buffer_s: float = 0.0, last_rung: int = -1,
                 throughput_bps: float = 0.0, latency_s: float = 0.0) -> None:
        values = np.zeros(protocol.OBS_SIZE)
        values[protocol.OBS_SEGMENT] = segment_index
        values[protocol.OBS_BUFFER_S] = buffer_s
        values[protocol.OBS_LAST_RUNG] = last_rung
        values[protocol.OBS_THROUGHPUT_BPS] = throughput_bps
        values[protocol.OBS_LATENCY_S] = latency_s
        self._v = values
        self._bitrates_bps = _EMPTY
        self._size_bits = _EMPTY.reshape(0, 0)
        self._quality = None

    @classmethod
    def over(cls, values: np.ndarray, bitrates_bps: np.ndarray, size_bits: np.ndarray,
             quality: np.ndarray | None) -> Observation:
        """A view of the engine's live observation array ``values`` (``OBS_*``) and a ladder's tables."""
        view = cls.__new__(cls)
        view._v = _read_only(values)
        view._bitrates_bps = _read_only(bitrates_bps)
        view._size_bits = _read_only(size_bits)
        view._quality = _read_only(quality)
        return view

    def as_array(self, segments: int, segment_duration_s: float) -> np.ndarray:
        """The observation as the compiled policies read it (a copy)."""
        values = np.array(self._v, dtype=np.float64)
        values[protocol.OBS_SEGMENTS] = segments
        values[protocol.OBS_SEGMENT_DURATION_S] = segment_duration_s
        return values

    def __repr__(self) -> str:
        return (f"Observation(segment_index={self.segment_index}, buffer_s={self.buffer_s:g}, "
                f"last_rung={self.last_rung}, throughput_bps={self.throughput_bps:g}, "
                f"latency_s={self.latency_s:g})")

    @property
    def segment_index(self) -> int:
        return int(self._v[protocol.OBS_SEGMENT])

    @property
    def segments(self) -> int:
        return int(self._v[protocol.OBS_SEGMENTS])

    @property
    def buffer_s(self) -> float:
        return float(self._v[protocol.OBS_BUFFER_S])

    @property
    def last_rung(self) -> int:
        return int(self._v[protocol.OBS_LAST_RUNG])

    @property
    def throughput_bps(self) -> float:
        return float(self._v[protocol.OBS_THROUGHPUT_BPS])

    @property
    def latency_s(self) -> float:
        return float(self._v[protocol.OBS_LATENCY_S])

    @property
    def segment_duration_s(self) -> float:
        return float(self._v[protocol.OBS_SEGMENT_DURATION_S])

    @property
    def time_s(self) -> float:
        return float(self._v[protocol.OBS_TIME_S])

    @property
    def rebuffer_s(self) -> float:
        return float(self._v[protocol.OBS_REBUFFER_S])

    @property
    def download_rung(self) -> int:
        return int(self._v[protocol.OBS_RUNG])

    @property
    def download_size_bits(self) -> float:
        return float(self._v[protocol.OBS_SIZE_BITS])

    @property
    def downloaded_bits(self) -> float:
        return float(self._v[protocol.OBS_DOWNLOADED_BITS])

    @property
    def download_s(self) -> float:
        return float(self._v[protocol.OBS_ELAPSED_S])

    @property
    def download_latency_s(self) -> float:
        return float(self._v[protocol.OBS_TTFB_S])

    @property
    def bitrates_bps(self) -> np.ndarray:
        return self._bitrates_bps

    @property
    def quality(self) -> np.ndarray | None:
        return self._quality

    @property
    def size_bits(self) -> np.ndarray:
        return self._size_bits

    def next_sizes_bits(self, count: int = 5) -> np.ndarray:
        """Sizes of the next ``count`` segments (from this one on) at every rung: ``count x rungs``,
        fewer rows near the end of the title."""
        index = int(self._v[protocol.OBS_SEGMENT])
        return self._size_bits[index:index + count]
