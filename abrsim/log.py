"""Per-segment session logs, as both engines produce them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LOG_FIELDS", "SessionLog"]

#: Per-segment fields of a :class:`SessionLog`, in the order of ``to_rows``.
LOG_FIELDS = (
    "segment",
    "rung",
    "size_bits",
    "downloaded_bits",
    "abandoned",
    "request_s",
    "first_byte_s",
    "done_s",
    "buffer_before_s",
    "buffer_after_s",
    "stall_s",
    "wait_s",
)


@dataclass(frozen=True, eq=False)
class SessionLog:
    """What happened in one session, one array entry per download attempt.

    Args:
        trace: name of the trace replayed.
        policy: name of the ABR algorithm.
        segment: index of the segment each download was for.
        rung: rung of each download.
        size_bits: full size of the segment at that rung, bits.
        downloaded_bits: bits received (less than ``size_bits`` when abandoned).
        abandoned: whether the download was abandoned (its bits are thrown away).
        request_s: when the request was sent (after any wait), seconds from session start.
        first_byte_s: when the first byte arrived (request plus latency), seconds.
        done_s: when the last byte arrived, seconds.
        buffer_before_s: buffer level when the request was sent, seconds.
        buffer_after_s: buffer level once the segment was added, seconds.
        stall_s: stall time between the previous download's end and this one's, seconds.
        wait_s: time waiting for buffer room or in an ABR pause before the request, seconds.
        startup_s: when playback started, seconds.
        end_s: when playback ended, seconds (session wall time).
        rebuffer_count: number of stalls.
    """

    trace: str
    policy: str
    segment: np.ndarray
    rung: np.ndarray
    size_bits: np.ndarray
    downloaded_bits: np.ndarray
    abandoned: np.ndarray
    request_s: np.ndarray
    first_byte_s: np.ndarray
    done_s: np.ndarray
    buffer_before_s: np.ndarray
    buffer_after_s: np.ndarray
    stall_s: np.ndarray
    wait_s: np.ndarray
    startup_s: float
    end_s: float
    rebuffer_count: int

    @property
    def download_count(self) -> int:
        """Number of download attempts, abandoned ones included."""
        return int(self.rung.shape[0])

    @property
    def completed(self) -> np.ndarray:
        """Boolean mask of the downloads that completed (one per played segment, in order)."""
        return ~self.abandoned

    def to_rows(self) -> list[dict[str, float | int | bool]]:
        """The log as one dict per download, keys as in :data:`LOG_FIELDS`."""
        columns = [getattr(self, name) for name in LOG_FIELDS]
        return [dict(zip(LOG_FIELDS, (col[index].item() for col in columns), strict=True))
                for index in range(self.download_count)]
