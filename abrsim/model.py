"""The player and network model: one frozen dataclass, presets are instances.

Both engines read the same :class:`PlayerModel`; no engine has a code path per
preset. The model covers how a request is served (latency, then transfer over
the trace's piecewise-constant bandwidth), how the buffer fills and drains,
when playback starts and resumes, and how the player estimates throughput.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from abrsim.errors import InputError, UnknownNameError

__all__ = ["ESTIMATORS", "PRESETS", "PlayerModel", "get_preset"]

#: Throughput estimators a player can use, by name.
ESTIMATORS = ("ewma", "sliding")


@dataclass(frozen=True)
class PlayerModel:
    """Parameters of the simulated player and its network path.

    Args:
        name: preset name, written to results.
        request_latency_s: time from sending a request to its first byte, seconds, used when
            the trace has no per-sample latency. No data moves during it; playback goes on.
        goodput_factor: share of the trace's bandwidth a download achieves, in (0, 1].
        max_buffer_s: the player requests a segment only when it fits: buffer + one
            segment <= max_buffer_s; otherwise it waits (playback continues). Must hold at
            least one segment of the ladder it is used with.
        startup_threshold_s: buffered media needed before playback starts, seconds; 0 means
            the first segment. Playback also starts when the next segment would not fit.
        resume_threshold_s: buffered media needed to resume after a stall, seconds; 0 means
            one segment. Playback also resumes when the next segment would not fit.
        first_rung: rung of the first segment; -1 lets the algorithm choose it.
        estimator: ``"ewma"`` (time-weighted, bias-corrected, minimum over half-lives) or
            ``"sliding"`` (mean of the last N samples, minimum over window sizes).
        ewma_half_lives_s: half-lives of the EWMA estimator, seconds of download time.
        sliding_window_sizes: window sizes of the sliding estimator, in samples (<= 20).

    Raises:
        ValueError: on construction, if a value is out of range (the message names it).
    """

    name: str = "abrsim"
    request_latency_s: float = 0.04
    goodput_factor: float = 1.0
    max_buffer_s: float = 25.0
    startup_threshold_s: float = 0.0
    resume_threshold_s: float = 0.0
    first_rung: int = 0
    estimator: str = "ewma"
    ewma_half_lives_s: tuple[float, ...] = (3.0, 8.0)
    sliding_window_sizes: tuple[int, ...] = (3,)

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, expected: str) -> None:
            if not ok:
                raise ValueError(f'"{field}" must be {expected}, got {getattr(self, field)!r}')

        object.__setattr__(self, "ewma_half_lives_s", tuple(float(v) for v in self.ewma_half_lives_s))
        object.__setattr__(self, "sliding_window_sizes", tuple(int(v) for v in self.sliding_window_sizes))
        check(np.isfinite(self.request_latency_s) and self.request_latency_s >= 0, "request_latency_s",
              "finite and >= 0")
        check(0 < self.goodput_factor <= 1, "goodput_factor", "in (0, 1]")
        check(np.isfinite(self.max_buffer_s) and self.max_buffer_s > 0, "max_buffer_s", "finite and > 0")
        check(0 <= self.startup_threshold_s <= self.max_buffer_s, "startup_threshold_s",
              "in [0, max_buffer_s]")
        check(0 <= self.resume_threshold_s <= self.max_buffer_s, "resume_threshold_s",
              "in [0, max_buffer_s]")
        check(int(self.first_rung) == self.first_rung and self.first_rung >= -1, "first_rung",
              "an integer >= -1")
        check(self.estimator in ESTIMATORS, "estimator", f"one of {', '.join(ESTIMATORS)}")
        check(0 < len(self.ewma_half_lives_s) <= 8 and all(v > 0 for v in self.ewma_half_lives_s),
              "ewma_half_lives_s", "1 to 8 values > 0")
        check(0 < len(self.sliding_window_sizes) <= 8
              and all(1 <= v <= 20 for v in self.sliding_window_sizes),
              "sliding_window_sizes", "1 to 8 integers in [1, 20]")

    def replace(self, **changes: object) -> PlayerModel:
        """Return a copy with some fields changed (validated like the constructor).

        Raises:
            InputError: if a field name is unknown or a value is invalid.
        """
        fields = {f.name: f for f in dataclasses.fields(self)}
        converted: dict[str, object] = {}
        for key, value in changes.items():
            if key not in fields:
                raise UnknownNameError("player model field", key, sorted(fields))
            converted[key] = _coerce(key, value, getattr(self, key))
        try:
            return dataclasses.replace(self, **converted)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(str(exc), field=next(iter(changes))) from None

    def fields(self) -> dict[str, object]:
        """The model's fields as a plain dict (for results and docs)."""
        return dataclasses.asdict(self)


def _coerce(key: str, value: object, current: object) -> object:
    """Convert a value given as text (from the CLI) to the type of the current one."""
    if not isinstance(value, str):
        return value
    try:
        if isinstance(current, bool):
            return {"true": True, "false": False, "1": True, "0": False}[value.lower()]
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            kind = type(current[0]) if current else float
            return tuple(kind(v) for v in value.replace(";", ",").split(",") if v.strip())
    except (KeyError, ValueError):
        raise InputError(
            f"cannot read {value!r} as {type(current).__name__}", field=key
        ) from None
    return value


#: Built-in presets, by name. abrsim's own model; ``sabre`` and ``pensieve`` join it later.
PRESETS: Mapping[str, PlayerModel] = MappingProxyType({"abrsim": PlayerModel()})


def get_preset(name: str) -> PlayerModel:
    """Return the preset ``name``.

    Raises:
        UnknownNameError: if there is no such preset.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError("player model", name, sorted(PRESETS)) from None
