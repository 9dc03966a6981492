"""ABR algorithms: a registry of numba-backed policies with documented parameters.

>>> from abrsim.abr import available, make
>>> available()
['bb', 'bba0', 'bola', 'bolae', 'dashjs', 'dynamic', 'dynamicdash', 'fastmpc', 'robustmpc', 'throughput']
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

from abrsim.abr import _dashjs, _kernels
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
    "quality_utilities",
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
    maximum: float | None = None

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
                low = -np.inf if self.minimum is None else self.minimum
                high = np.inf if self.maximum is None else self.maximum
                if not (np.isfinite(value) and low <= value <= high):
                    bound = "" if self.minimum is None else f" >= {self.minimum:g}"
                    bound += "" if self.maximum is None else f" and <= {self.maximum:g}"
                    raise InputError(f"got {value!r}, expected a finite number{bound}", field=where)
        except InputError:
            raise
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
    _check_buffer_target(params, ladder)
    if params.get("utility") == "quality" and ladder.quality is None:
        raise InputError(f"got 'quality', but ladder {ladder.name!r} has no quality table; expected "
                         "log_bitrate, or a ladder with quality (a table or quality_model)",
                         field="bola.utility")


def _check_buffer_target(params: Mapping[str, Any], ladder: Ladder) -> None:
    if float(params["buffer_target_s"]) <= ladder.segment_duration_s:
        raise InputError(
            f"got {params['buffer_target_s']!r}, expected more than one segment "
            f"({ladder.segment_duration_s:g} s) of ladder {ladder.name!r}",
            field="buffer_target_s",
        )


_SABRE = "as in Sabre (Spiteri et al., ACM MMSys 2018)"
_BOLA_PARAMS = (
    ParamSpec("buffer_target_s", 25.0, "buffer level BOLA aims to fill; sets V", minimum=0.0),
    ParamSpec("gamma_p", 5.0, "utility offset gamma*p: larger favours avoiding rebuffering (> 0)",
              minimum=1e-9),
    ParamSpec("guard", "u", "oscillation guard when moving up: u (BOLA-U), o (BOLA-O, may pause), "
              "none (basic BOLA)", choices=("none", "u", "o")),
    ParamSpec("scale_v", True, "shrink V near the title's start and end"),
    ParamSpec("abandon", True, "abandon a download BOLA's score says to (when the player checks)"),
)
_THROUGHPUT_PARAMS = (
    ParamSpec("safety_factor", 0.9, "share of the throughput estimate the rule may use", minimum=0.0),
    ParamSpec("ibr", True, "insufficient-buffer rule: never request more than the buffer can cover"),
    ParamSpec("abandon", True, "abandon a download that would take over 1.8 segment durations"),
)
_BOLAE_PARAMS = (
    ParamSpec("buffer_target_s", 25.0, "maximum buffer; BOLA-E's buffer is max(10 s + 2 s per rung, "
              "this)", minimum=0.0),
    ParamSpec("gamma_p", 5.0, "utility offset, used only without the insufficient-buffer rule "
              "(BOLA-PL, as gamma_p - 1)", minimum=1.0 + 1e-9),
    ParamSpec("guard", "u", "when moving up past the throughput rung: u adds one rung, o does not",
              choices=("u", "o")),
    ParamSpec("ibr", True, "insufficient-buffer rule; off gives BOLA-PL"),
)


def _prefixed(prefix: str, specs: tuple[ParamSpec, ...]) -> tuple[ParamSpec, ...]:
    return tuple(ParamSpec(f"{prefix}{p.name}", p.default, p.doc, p.choices, p.minimum, p.maximum)
                 for p in specs)


_MPC_PARAMS = (
    ParamSpec("horizon", 5, "segments planned ahead", minimum=1, maximum=_kernels.MPC_MAX_HORIZON),
    ParamSpec("rebuffer_penalty", 4.3, "QoE_lin's rebuffering penalty per second", minimum=0.0),
    ParamSpec("compat_pensieve_lookahead", False, "Pensieve compatibility: plan with the sizes of the "
              "segments after the one being chosen (test/mpc.py's off-by-one)"),
)

ALGORITHMS: Mapping[str, AlgorithmSpec] = MappingProxyType({
    "bola": AlgorithmSpec(
        name="bola",
        algo_id=_kernels.ALGO_BOLA,
        summary=f"BOLA: utility ln(b/b0), BOLA-U guard, V scaled near start and end, abandonment; {_SABRE}.",
        citation="Spiteri, Urgaonkar, Sitaraman, BOLA, IEEE INFOCOM 2016 (Alg. 1); "
                 "Spiteri, Sitaraman, Sparacio, ACM MMSys 2018 (BOLA-U/BOLA-O)",
        params=(*_BOLA_PARAMS,
                ParamSpec("utility", "log_bitrate", "what a rung is worth: log_bitrate (ln(b/b0)) or "
                          "quality (the ladder's mean quality per rung, scaled to the same span)",
                          choices=("log_bitrate", "quality"))),
        check_ladder=_check_bola,
    ),
    "bolae": AlgorithmSpec(
        name="bolae",
        algo_id=_kernels.ALGO_BOLAE,
        summary=f"BOLA-E: placeholder buffer, throughput startup, insufficient-buffer rule; {_SABRE}.",
        citation="Spiteri, Sitaraman, Sparacio, From Theory to Practice, ACM MMSys 2018, Sec. 4",
        params=_BOLAE_PARAMS,
    ),
    "throughput": AlgorithmSpec(
        name="throughput",
        algo_id=_kernels.ALGO_THROUGHPUT,
        summary="Highest rung whose bitrate fits the discounted throughput estimate after one request "
                f"latency, with an insufficient-buffer rule and abandonment; {_SABRE}.",
        citation="Rate-based adaptation, e.g. Jiang, Sekar, Zhang, FESTIVE, ACM CoNEXT 2012; "
                 "Sabre's ThroughputRule",
        params=_THROUGHPUT_PARAMS,
    ),
    "dynamic": AlgorithmSpec(
        name="dynamic",
        algo_id=_kernels.ALGO_DYNAMIC,
        summary="DYNAMIC: BOLA above the switch buffer when it asks for at least the throughput rule's "
                f"rung, the throughput rule otherwise; abandonment from the throughput rule; {_SABRE}.",
        citation="Spiteri, Sitaraman, Sparacio, ACM MMSys 2018, Sec. 5",
        params=(*_prefixed("bola_", _BOLA_PARAMS), *_prefixed("throughput_", _THROUGHPUT_PARAMS),
                ParamSpec("switch_buffer_s", 10.0, "buffer level where BOLA and the throughput rule "
                          "hand over", minimum=0.0)),
    ),
    "dynamicdash": AlgorithmSpec(
        name="dynamicdash",
        algo_id=_kernels.ALGO_DYNAMICDASH,
        summary="BOLA-E above to_bola_s, the throughput rule below to_throughput_s; only the active "
                f"rule decides and abandons; {_SABRE}.",
        citation="Sabre's DynamicDash (Spiteri et al., ACM MMSys 2018)",
        params=(*_prefixed("bolae_", _BOLAE_PARAMS), *_prefixed("throughput_", _THROUGHPUT_PARAMS),
                ParamSpec("to_bola_s", 10.0, "switch to BOLA-E above this buffer", minimum=0.0),
                ParamSpec("to_throughput_s", 5.0, "switch to the throughput rule below this buffer",
                          minimum=0.0)),
    ),
    "bb": AlgorithmSpec(
        name="bb",
        algo_id=_kernels.ALGO_BB,
        summary="Pensieve's buffer-based baseline: rung 0 below the reservoir, the top rung above "
                "reservoir + cushion, linear (rounded down) in between.",
        citation="Huang et al., ACM SIGCOMM 2014, as coded in Pensieve's test/bb.py (Mao et al., "
                 "SIGCOMM 2017)",
        params=(ParamSpec("reservoir_s", 5.0, "buffer below which the lowest rung is used", minimum=0.0),
                ParamSpec("cushion_s", 10.0, "buffer span over which the rung rises to the top",
                          minimum=1e-9)),
    ),
    "bba0": AlgorithmSpec(
        name="bba0",
        algo_id=_kernels.ALGO_BBA0,
        summary="BBA-0: a linear rate map from the reservoir to reservoir + cushion; the rate changes "
                "only when the map passes the next rate up or down.",
        citation="Huang, Johari, McKeown, Trunnell, Watson, A Buffer-Based Approach to Rate "
                 "Adaptation, ACM SIGCOMM 2014, Sec. 4, Algorithm 1",
        params=(ParamSpec("reservoir_s", 5.0, "buffer below which the lowest rung is used", minimum=0.0),
                ParamSpec("cushion_s", 10.0, "buffer span of the rate map", minimum=1e-9)),
    ),
    "robustmpc": AlgorithmSpec(
        name="robustmpc",
        algo_id=_kernels.ALGO_MPC,
        summary="RobustMPC: exhaustive QoE_lin search over the next segments with the harmonic-mean "
                "throughput divided by 1 + the largest of the last five prediction errors.",
        citation="Yin, Jindal, Sekar, Sinopoli, ACM SIGCOMM 2015; as coded in Pensieve's test/mpc.py",
        params=(_MPC_PARAMS[0], ParamSpec("robust", True, "divide the prediction by 1 + max recent "
                                          "error"), *_MPC_PARAMS[1:]),
    ),
    "dashjs": AlgorithmSpec(
        name="dashjs",
        algo_id=_kernels.ALGO_DASHJS,
        summary="dash.js v5.1.1's default rules: DYNAMIC switching between BOLA (BOLA-O, placeholder) "
                "and the throughput rule at 18 s / 9 s of buffer, insufficient-buffer, switch-history "
                "and abandon-requests rules, the minimum of their answers; dash.js's own EWMA 3/8 x 0.9.",
        citation="Dash-Industry-Forum dash.js v5.1.1 (ABRRulesCollection, BolaRule, ThroughputRule, "
                 "InsufficientBufferRule, SwitchHistoryRule, AbandonRequestsRule); Spiteri, Sitaraman, "
                 "Sparacio, ACM MMSys 2018",
        params=tuple(ParamSpec(name, default, doc, minimum=None if isinstance(default, bool) else 0.0)
                     for name, default, doc in _dashjs.DASHJS_PARAMS),
    ),
    "fastmpc": AlgorithmSpec(
        name="fastmpc",
        algo_id=_kernels.ALGO_MPC,
        summary="FastMPC: the same search as RobustMPC with the plain harmonic-mean prediction.",
        citation="Yin, Jindal, Sekar, Sinopoli, ACM SIGCOMM 2015; Pensieve's rl_server/mpc_server.py",
        params=(_MPC_PARAMS[0], ParamSpec("robust", False, "divide the prediction by 1 + max recent "
                                          "error"), *_MPC_PARAMS[1:]),
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
        self.explicit = frozenset(params)

    def __repr__(self) -> str:
        return f"make({self.name!r}, **{self.params!r})"

    def resolved(self, model: PlayerModel | None) -> KernelPolicy:
        """This policy with the model preset's algorithm defaults applied where not set explicitly."""
        if model is None:
            return self
        changes = {}
        for key, value in model.algorithm_defaults:
            algorithm, _, name = key.partition(".")
            if algorithm == self.name and name not in self.explicit:
                changes[name] = value
        if not changes:
            return self
        policy = KernelPolicy(self.spec, **{k: self.params[k] for k in self.explicit}, **changes)
        policy.explicit = self.explicit
        return policy

    @property
    def params_json(self) -> str:
        """The parameters as canonical JSON (sorted keys), for results tables."""
        return json.dumps(self.params, sort_keys=True, separators=(",", ":"))

    def param_array(self, ladder: Ladder | None = None) -> np.ndarray:
        """Parameters in the order the kernel reads them (plus per-rung data some options need).

        Raises:
            InputError: if an option needs the ladder and none is given.
        """
        values = [p.encode(self.params[p.name]) for p in self.spec.params]
        if self.params.get("utility") == "quality":
            if ladder is None or ladder.quality is None:
                raise InputError("BOLA's quality utility needs a ladder with a quality table",
                                 field=f"{self.name}.utility")
            values += quality_utilities(ladder).tolist()
        return np.array(values, dtype=np.float64)

    def check(self, ladder: Ladder) -> None:
        """Validate the parameters against a ladder (scikit-learn style: at first use).

        Raises:
            InputError: if a parameter cannot work with this ladder.
        """
        if self.spec.check_ladder is not None:
            self.spec.check_ladder(self.params, ladder)

    def state_array(self, ladder: Ladder) -> np.ndarray:
        """A zeroed per-session state array sized for ``ladder``."""
        return np.zeros(_kernels.abr_state_size(self.spec.algo_id, ladder.rung_count), dtype=np.float64)

    def reset(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> None:
        """Start a session: validate, then let the kernel fill the state arrays."""
        del rng  # the built-in algorithms are deterministic
        self.check(ladder)
        self.ladder_ = ladder
        self.segments_ = model.segments_played(ladder)
        self.params_ = self.resolved(model).param_array(ladder)
        self.state_ = self.state_array(ladder)
        _kernels.abr_reset(self.spec.algo_id, self.params_, self.state_, ladder.bitrates_bps,
                           ladder.segment_duration_s)

    def choose(self, obs: Observation) -> tuple[int, float]:
        """Run one decision of the kernel."""
        ladder = self.ladder_
        values = np.zeros(_kernels.OBS_SIZE)
        values[_kernels.OBS_SEGMENT] = obs.segment_index
        values[_kernels.OBS_SEGMENTS] = self.segments_
        values[_kernels.OBS_BUFFER_S] = obs.buffer_s
        values[_kernels.OBS_LAST_RUNG] = obs.last_rung
        values[_kernels.OBS_THROUGHPUT_BPS] = obs.throughput_bps
        values[_kernels.OBS_LATENCY_S] = obs.latency_s
        values[_kernels.OBS_SEGMENT_DURATION_S] = ladder.segment_duration_s
        rung, pause_s = _kernels.abr_choose(self.spec.algo_id, self.params_, self.state_, values,
                                            ladder.bitrates_bps, ladder.size_bits)
        return int(rung), float(pause_s)


def quality_utilities(ladder: Ladder) -> np.ndarray:
    """Per-rung utilities from the ladder's quality: mean quality per rung, shifted so rung 0 is 0 and
    scaled to the span of the log-bitrate utilities ``ln(b_top / b_0)``, so ``gamma_p`` keeps its meaning.

    Raises:
        InputError: if the ladder has no quality table or its mean quality does not rise with the rung.
    """
    if ladder.quality is None:
        raise InputError(f"ladder {ladder.name!r} has no quality table", field="quality")
    mean_quality = ladder.quality.mean(axis=0)
    span = mean_quality[-1] - mean_quality[0]
    if ladder.rung_count > 1 and not span > 0:
        raise InputError(f"ladder {ladder.name!r}: mean quality of the top rung ({mean_quality[-1]:g}) "
                         "is not "
                         f"above rung 0's ({mean_quality[0]:g}); expected quality rising with the rung",
                         field="quality")
    if ladder.rung_count == 1:
        return np.zeros(1)
    log_span = float(np.log(ladder.bitrates_bps[-1] / ladder.bitrates_bps[0]))
    return (mean_quality - mean_quality[0]) / span * log_span


def estimator_arrays(model: PlayerModel, segment_duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's parameter array and a zeroed state array, as the kernels read them."""
    values = model.ewma_half_lives_s if model.estimator == "ewma" else model.sliding_window_sizes
    est_params = np.zeros(11, dtype=np.float64)
    est_params[0] = _kernels.EST_EWMA if model.estimator == "ewma" else _kernels.EST_SLIDING
    est_params[1] = len(values)
    est_params[2:2 + len(values)] = values
    est_params[10] = segment_duration_s
    return est_params, np.zeros(_kernels.EST_STATE_SIZE, dtype=np.float64)
