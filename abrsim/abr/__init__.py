"""ABR algorithms: a registry of numba-backed policies with documented parameters.

>>> from abrsim.abr import available, make
>>> available()
['bola', 'throughput']
>>> make("bola", gamma_p=4.0).params["gamma_p"]
4.0
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from abrsim.abr import _kernels
from abrsim.errors import InputError, UnknownNameError
from abrsim.ladder import Ladder
from abrsim.model import PlayerModel

__all__ = [
    "ALGORITHMS",
    "AbrPolicy",
    "AlgorithmSpec",
    "KernelPolicy",
    "Observation",
    "ParamSpec",
    "available",
    "estimator_arrays",
    "make",
]


@dataclass(frozen=True)
class Observation:
    """What a policy sees before choosing a segment's rung; never the simulator itself.

    Args:
        segment_index: index of the segment about to be requested.
        buffer_s: media in the buffer, seconds.
        last_rung: rung of the previous segment, or -1 for the first.
        throughput_bps: the player's throughput estimate, bit/s (0 before any download).
        latency_s: the player's request-latency estimate, seconds (0 before any download).
    """

    segment_index: int
    buffer_s: float
    last_rung: int
    throughput_bps: float
    latency_s: float


class AbrPolicy(Protocol):
    """What every policy implements (the shape follows Gymnasium's ``Env``)."""

    name: str

    def reset(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> None:
        """Start a new session on ``ladder``."""

    def choose(self, obs: Observation) -> tuple[int, float]:
        """Return the rung of the next segment and a pause (s) before requesting it."""


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter of an algorithm.

    Args:
        name: parameter name, with its unit.
        default: default value (its type is the parameter's type).
        doc: one line saying what it does.
        choices: for a text parameter, the accepted values (encoded as their index).
        minimum: smallest accepted value for a number (inclusive), if any.
    """

    name: str
    default: float | int | bool | str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def coerce(self, value: Any, algorithm: str) -> float | int | bool | str:
        """Convert ``value`` (possibly text from the CLI) to this parameter's type and check it.

        Raises:
            InputError: if the value has the wrong type or is out of range.
        """
        where = f"{algorithm}.{self.name}"
        try:
            if isinstance(self.default, bool):
                if isinstance(value, str):
                    value = {"true": True, "false": False, "1": True, "0": False}[value.lower()]
                value = bool(value)
            elif isinstance(self.default, str):
                value = str(value)
                if value not in self.choices:
                    raise InputError(f"got {value!r}, expected one of: {', '.join(self.choices)}",
                                     field=where)
            else:
                value = type(self.default)(value)
                if not np.isfinite(value) or (self.minimum is not None and value < self.minimum):
                    bound = "" if self.minimum is None else f" and >= {self.minimum:g}"
                    raise InputError(f"got {value!r}, expected a finite number{bound}", field=where)
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f"got {value!r}, expected a {type(self.default).__name__}", field=where
            ) from None
        return value

    def encode(self, value: float | int | bool | str) -> float:
        """The value as the float the kernel reads."""
        if isinstance(value, str):
            return float(self.choices.index(value))
        return float(value)


@dataclass(frozen=True)
class AlgorithmSpec:
    """A registered algorithm: its kernel id, parameters and documentation."""

    name: str
    algo_id: int
    summary: str
    citation: str
    params: tuple[ParamSpec, ...] = field(default_factory=tuple)
    check_ladder: Callable[[Mapping[str, Any], Ladder], None] | None = None

    def param(self, name: str) -> ParamSpec:
        """The parameter ``name``.

        Raises:
            UnknownNameError: if the algorithm has no such parameter.
        """
        for spec in self.params:
            if spec.name == name:
                return spec
        raise UnknownNameError(f"parameter of {self.name}", name, [p.name for p in self.params])


def _check_bola(params: Mapping[str, Any], ladder: Ladder) -> None:
    if float(params["buffer_target_s"]) <= ladder.segment_duration_s:
        raise InputError(
            f"got {params['buffer_target_s']!r}, expected more than one segment "
            f"({ladder.segment_duration_s:g} s) of ladder {ladder.name!r}",
            field="bola.buffer_target_s",
        )


ALGORITHMS: Mapping[str, AlgorithmSpec] = MappingProxyType({
    "bola": AlgorithmSpec(
        name="bola",
        algo_id=_kernels.ALGO_BOLA,
        summary="Buffer-based Lyapunov optimisation with utility ln(b/b0); BOLA-U guard by default.",
        citation="Spiteri, Urgaonkar, Sitaraman, BOLA, IEEE INFOCOM 2016 (Alg. 1); "
                 "Spiteri, Sitaraman, Sparacio, ACM MMSys 2018 (BOLA-U/BOLA-O)",
        params=(
            ParamSpec("buffer_target_s", 25.0, "buffer level BOLA aims to fill; sets V", minimum=0.0),
            ParamSpec("gamma_p", 5.0, "utility offset gamma*p: larger favours avoiding rebuffering",
                      minimum=0.0),
            ParamSpec("guard", "u", "oscillation guard when moving up: u (BOLA-U), o (BOLA-O, "
                      "may pause), none (basic BOLA)", choices=("none", "u", "o")),
            ParamSpec("scale_v", True, "shrink V near the title's start and end"),
        ),
        check_ladder=_check_bola,
    ),
    "throughput": AlgorithmSpec(
        name="throughput",
        algo_id=_kernels.ALGO_THROUGHPUT,
        summary="Highest rung whose bitrate fits the discounted throughput estimate, "
                "allowing for one request latency per segment.",
        citation="Rate-based adaptation, e.g. Jiang, Sekar, Zhang, FESTIVE, ACM CoNEXT 2012",
        params=(
            ParamSpec("safety_factor", 0.9, "share of the throughput estimate the rule may use",
                      minimum=0.0),
        ),
    ),
})


def available() -> list[str]:
    """Names of the registered algorithms, sorted."""
    return sorted(ALGORITHMS)


def make(name: str, **params: Any) -> KernelPolicy:
    """Build the registered algorithm ``name`` with some parameters changed from their defaults.

    Raises:
        UnknownNameError: if the algorithm or a parameter is unknown.
        InputError: if a parameter value is invalid.
    """
    try:
        spec = ALGORITHMS[name]
    except KeyError:
        raise UnknownNameError("algorithm", name, available()) from None
    return KernelPolicy(spec, **params)


class KernelPolicy:
    """A registered algorithm with its parameters: the object users see.

    The fast engine reads :attr:`spec` and :meth:`param_array` and runs the kernel itself;
    :meth:`reset` and :meth:`choose` run the same kernel one decision at a time.
    """

    def __init__(self, spec: AlgorithmSpec, **params: Any) -> None:
        self.spec = spec
        self.name = spec.name
        values = {p.name: p.default for p in spec.params}
        for key, value in params.items():
            values[key] = spec.param(key).coerce(value, spec.name)
        self.params: dict[str, float | int | bool | str] = values

    def __repr__(self) -> str:
        return f"make({self.name!r}, **{self.params!r})"

    @property
    def params_json(self) -> str:
        """The parameters as canonical JSON (sorted keys), for results tables."""
        return json.dumps(self.params, sort_keys=True, separators=(",", ":"))

    def param_array(self) -> np.ndarray:
        """Parameters in the order the kernel reads them."""
        return np.array([p.encode(self.params[p.name]) for p in self.spec.params], dtype=np.float64)

    def check(self, ladder: Ladder) -> None:
        """Validate the parameters against a ladder (scikit-learn style: at first use).

        Raises:
            InputError: if a parameter cannot work with this ladder.
        """
        if self.spec.check_ladder is not None:
            self.spec.check_ladder(self.params, ladder)

    def state_array(self, ladder: Ladder) -> np.ndarray:
        """A zeroed per-session state array sized for ``ladder``."""
        return np.zeros(_kernels.ABR_STATE_SCALARS + ladder.rung_count, dtype=np.float64)

    def reset(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> None:
        """Start a session: validate, then let the kernel fill the state arrays."""
        del rng  # the built-in algorithms are deterministic
        self.check(ladder)
        self.ladder_ = ladder
        self.params_ = self.param_array()
        self.state_ = self.state_array(ladder)
        _kernels.abr_reset(self.spec.algo_id, self.params_, self.state_, ladder.bitrates_bps,
                           ladder.segment_duration_s)

    def choose(self, obs: Observation) -> tuple[int, float]:
        """Run one decision of the kernel."""
        ladder = self.ladder_
        rung, pause_s = _kernels.abr_choose(
            self.spec.algo_id, self.params_, self.state_, obs.segment_index, ladder.segment_count,
            obs.buffer_s, obs.last_rung, obs.throughput_bps, obs.latency_s, ladder.bitrates_bps,
            ladder.segment_duration_s,
        )
        return int(rung), float(pause_s)


def estimator_arrays(model: PlayerModel, segment_duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's parameter array and a zeroed state array, as the kernels read them."""
    values = model.ewma_half_lives_s if model.estimator == "ewma" else model.sliding_window_sizes
    est_params = np.zeros(11, dtype=np.float64)
    est_params[0] = _kernels.EST_EWMA if model.estimator == "ewma" else _kernels.EST_SLIDING
    est_params[1] = len(values)
    est_params[2:2 + len(values)] = values
    est_params[10] = segment_duration_s
    return est_params, np.zeros(_kernels.EST_STATE_SIZE, dtype=np.float64)
