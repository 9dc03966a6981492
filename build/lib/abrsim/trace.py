"""Bandwidth traces: the network a session replays.

A :class:`Trace` is piecewise constant: sample ``k`` holds ``bandwidth_bps[k]``
from ``start_s[k]`` until ``start_s[k + 1]`` (the last sample until
``duration_s``). Past ``duration_s`` the trace loops from its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from abrsim.errors import InputError

__all__ = ["Trace"]


def _frozen(values: np.ndarray | list[float], name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64)  # always a private copy
    if array.ndim != 1:
        raise ValueError(f'"{name}" must be one-dimensional, got shape {array.shape}')
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class Trace:
    """An immutable, looping, piecewise-constant bandwidth trace.

    Args:
        start_s: start time of each sample, seconds; begins at 0, strictly increasing.
        bandwidth_bps: bandwidth of each sample, bit/s; finite and >= 0, not all zero.
        duration_s: total length of one pass, seconds; > the last ``start_s``.
        latency_s: optional per-sample request latency (time to first byte), seconds.
        name: a label for results tables (usually the file name).

    Raises:
        ValueError: if the arrays do not satisfy the rules above (the message
            names the first offending sample).
    """

    start_s: np.ndarray
    bandwidth_bps: np.ndarray
    duration_s: float
    latency_s: np.ndarray | None = None
    name: str = field(default="")

    def __post_init__(self) -> None:
        start_s = _frozen(self.start_s, "start_s")
        bandwidth_bps = _frozen(self.bandwidth_bps, "bandwidth_bps")
        object.__setattr__(self, "start_s", start_s)
        object.__setattr__(self, "bandwidth_bps", bandwidth_bps)
        object.__setattr__(self, "duration_s", float(self.duration_s))
        if start_s.size == 0:
            raise ValueError("a trace needs at least one sample")
        if bandwidth_bps.shape != start_s.shape:
            raise ValueError(
                f'"bandwidth_bps" has {bandwidth_bps.size} samples but "start_s" has {start_s.size}'
            )
        if start_s[0] != 0.0:
            raise ValueError(f'"start_s" must begin at 0, got {start_s[0]!r}')
        steps = np.diff(start_s)
        bad = np.flatnonzero(~(steps > 0))
        if bad.size:
            k = int(bad[0]) + 1
            raise ValueError(
                f'"start_s" must be strictly increasing: sample {k} starts at {start_s[k]!r} '
                f"after {start_s[k - 1]!r}"
            )
        bad = np.flatnonzero(~(np.isfinite(bandwidth_bps) & (bandwidth_bps >= 0)))
        if bad.size:
            k = int(bad[0])
            raise ValueError(
                f'"bandwidth_bps" must be finite and >= 0, sample {k} is {bandwidth_bps[k]!r}'
            )
        if not np.isfinite(self.duration_s) or not self.duration_s > start_s[-1]:
            raise ValueError(
                f'"duration_s" must be finite and > the last sample start {start_s[-1]!r}, '
                f"got {self.duration_s!r}"
            )
        if not np.any(bandwidth_bps > 0):
            raise ValueError("a trace must have some sample with bandwidth > 0")
        if self.latency_s is not None:
            latency_s = _frozen(self.latency_s, "latency_s")
            if latency_s.shape != start_s.shape:
                raise ValueError(
                    f'"latency_s" has {latency_s.size} samples but "start_s" has {start_s.size}'
                )
            bad = np.flatnonzero(~(np.isfinite(latency_s) & (latency_s >= 0)))
            if bad.size:
                k = int(bad[0])
                raise ValueError(f'"latency_s" must be finite and >= 0, sample {k} is {latency_s[k]!r}')
            object.__setattr__(self, "latency_s", latency_s)

    @property
    def sample_duration_s(self) -> np.ndarray:
        """Length of each sample, seconds."""
        return np.diff(np.append(self.start_s, self.duration_s))

    @property
    def mean_bandwidth_bps(self) -> float:
        """Time-weighted mean bandwidth of one pass, bit/s."""
        return float(np.dot(self.sample_duration_s, self.bandwidth_bps) / self.duration_s)

    def sample_index(self, time_s: float) -> int:
        """Index of the sample in force at ``time_s`` (looping past the end)."""
        offset_s = float(time_s) % self.duration_s
        return int(np.searchsorted(self.start_s, offset_s, side="right") - 1)

    def bandwidth_at(self, time_s: float) -> float:
        """Bandwidth in force at ``time_s``, bit/s (looping past the end)."""
        return float(self.bandwidth_bps[self.sample_index(time_s)])

    def __repr__(self) -> str:
        return (
            f"Trace(name={self.name!r}, samples={self.start_s.size}, duration_s={self.duration_s:g}, "
            f"mean_bandwidth_bps={self.mean_bandwidth_bps:.6g})"
        )


_ = InputError  # readers below raise it
