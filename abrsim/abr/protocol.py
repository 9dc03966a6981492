"""The compiled-policy protocol's constants, for policies written with numba (see docs/policies.md).

A compiled policy's functions read the player's observation array ``obs`` by these indices:

========================== =========================================================================
``OBS_SEGMENT``            index of the segment being chosen (or, at a checkpoint, downloaded)
``OBS_SEGMENTS``           segments in the session
``OBS_BUFFER_S``           buffer level (at a checkpoint: at the request minus the time elapsed, >= 0)
``OBS_LAST_RUNG``          rung of the last completed download, -1 before the first
``OBS_THROUGHPUT_BPS``     the player's throughput estimate (0 before the first download; always 0
                           in the fast engine for a policy whose ``reads_estimates`` is false)
``OBS_LATENCY_S``          the player's latency estimate (the same)
``OBS_SEGMENT_DURATION_S`` media per segment
``OBS_RUNG``               rung of the download in flight, or of the last one
``OBS_SIZE_BITS``          its full size
``OBS_DOWNLOADED_BITS``    bits received so far (or in all)
``OBS_ELAPSED_S``          time since its request, latency included
``OBS_TTFB_S``             its request latency
``OBS_WAIT_S``             length of the full-buffer wait just reported (``EVENT_WAIT``)
``OBS_ABANDON_TO``         rung an abandoned download asked for (``EVENT_ABANDONED``)
``OBS_TIME_S``             session time at the decision
``OBS_REBUFFER_S``         stall time so far
========================== =========================================================================

``event`` receives ``EVENT_WAIT``, ``EVENT_DONE`` or ``EVENT_ABANDONED``; ``abandon`` returns a rung
or ``NO_RUNG`` (-1) to go on.
"""

from __future__ import annotations

from abrsim.abr._kernels import (
    EVENT_ABANDONED,
    EVENT_DONE,
    EVENT_WAIT,
    NO_RUNG,
    OBS_ABANDON_TO,
    OBS_BUFFER_S,
    OBS_DOWNLOADED_BITS,
    OBS_ELAPSED_S,
    OBS_LAST_RUNG,
    OBS_LATENCY_S,
    OBS_REBUFFER_S,
    OBS_RUNG,
    OBS_SEGMENT,
    OBS_SEGMENT_DURATION_S,
    OBS_SEGMENTS,
    OBS_SIZE,
    OBS_SIZE_BITS,
    OBS_THROUGHPUT_BPS,
    OBS_TIME_S,
    OBS_TTFB_S,
    OBS_WAIT_S,
)

__all__ = [
    "EVENT_ABANDONED", "EVENT_DONE", "EVENT_WAIT", "NO_RUNG", "OBS_ABANDON_TO", "OBS_BUFFER_S",
    "OBS_DOWNLOADED_BITS", "OBS_ELAPSED_S", "OBS_LAST_RUNG", "OBS_LATENCY_S", "OBS_REBUFFER_S", "OBS_RUNG",
    "OBS_SEGMENT", "OBS_SEGMENTS", "OBS_SEGMENT_DURATION_S", "OBS_SIZE", "OBS_SIZE_BITS",
    "OBS_THROUGHPUT_BPS",
    "OBS_TIME_S", "OBS_TTFB_S", "OBS_WAIT_S",
]
