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
    """What happened in one session, one array entry per downloaded segment.

    Args:
        trace: name of the trace replayed.
        policy: name of the ABR algorithm.
        rung: rung of each segment.
        size_bits: bits downloaded for each segment.
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
    rung: np.ndarray
    size_bits: np.ndarray
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
    def segment_count(self) -> int:
        """Number of downloaded segments."""
        return int(self.rung.shape[0])

    def to_rows(self) -> list[dict[str, float | int]]:
        """The log as one dict per segment, keys as in :data:`LOG_FIELDS`."""
        columns = [getattr(self, name) for name in LOG_FIELDS[1:]]
        return [
            dict(zip(LOG_FIELDS, (index, *(col[index].item() for col in columns)), strict=True))
            for index in range(self.segment_count)
        ]
