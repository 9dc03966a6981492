"""Synthetic bandwidth traces, trace profiles fitted to real networks, and the default corpus.

Deterministic shapes (:func:`constant`, :func:`step`) take no randomness; the
random ones (:func:`markov`, :func:`synthesize`) draw everything from the ``rng``
they are given, so the same generator state gives the same trace.

The profiles ``3g``, ``4g``, ``5g`` and ``broadband`` (:func:`get_profile`) are
Markov-modulated models fitted once, by ``tools/fit_trace_profiles.py``, to
public trace sets (HSDPA 3G Norway, LTE Belgium, Lumos5G mmWave, FCC broadband).
Only the fitted numbers ship, in :mod:`abrsim._profiles`; :func:`network_statistics`
gives the five statistics on which synthetic and real sets are compared.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numba import njit

from abrsim import limits
from abrsim.errors import UnknownNameError
from abrsim.trace import OUTAGE_THRESHOLD_BPS, Trace, interval_means_bps, write_abrsim_csv

__all__ = [
    "NetworkStatistics",
    "ProfileRegime",
    "TraceProfile",
    "available_profiles",
    "constant",
    "default_corpus",
    "get_profile",
    "markov",
    "network_statistics",
    "step",
    "synthesize",
    "synthesize_each",
    "synthesize_many",
    "write_default_corpus",
]


def _require_positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f'"{name}" must be finite and > 0, got {value!r}')
    return float(value)


def constant(bandwidth_bps: float, duration_s: float, name: str = "constant") -> Trace:
    """A trace that holds one bandwidth.

    Args:
        bandwidth_bps: the bandwidth, bit/s; > 0.
        duration_s: length of one pass, seconds; > 0.
        name: the trace's name.

    Raises:
        ValueError: if an argument is not finite and > 0.

    Example:
        >>> constant(3e6, 300.0).bandwidth_at(1234.5)
        3000000.0
    """
    bandwidth_bps = _require_positive("bandwidth_bps", bandwidth_bps)
    duration_s = _require_positive("duration_s", duration_s)
    return Trace(np.zeros(1), np.array([bandwidth_bps]), duration_s, name=name)


def step(levels_bps: Sequence[float], step_duration_s: float, name: str = "step") -> Trace:
    """A staircase: one sample per level, each held for ``step_duration_s``.

    Args:
        levels_bps: the bandwidth of each step, bit/s; finite and >= 0, not all 0.
        step_duration_s: length of every step, seconds; > 0.
        name: the trace's name.

    Raises:
        ValueError: if there are no levels, a level is negative or not finite, or
            ``step_duration_s`` is not finite and > 0.

    Example:
        >>> step([6e6, 1.5e6], 120.0).sample_duration_s
        array([120., 120.])
    """
    levels = np.array(levels_bps, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0:
        raise ValueError(f'"levels_bps" must be a non-empty sequence of numbers, got {levels_bps!r}')
    step_duration_s = _require_positive("step_duration_s", step_duration_s)
    return Trace(np.arange(levels.size) * step_duration_s, levels, levels.size * step_duration_s, name=name)


def markov(
    rng: np.random.Generator,
    state_bandwidths_bps: Sequence[float] | np.ndarray,
    mean_dwell_s: float | Sequence[float] | np.ndarray,
    duration_s: float,
    sample_interval_s: float = 1.0,
    noise_cv: float = 0.1,
    name: str = "markov",
) -> Trace:
    """A Markov-modulated bandwidth trace.

    A continuous-time Markov chain stays in state ``i`` for an exponential time
    with mean ``mean_dwell_s[i]``, then jumps to one of the other states chosen
    uniformly. It starts in its stationary distribution (state ``i`` with
    probability proportional to ``mean_dwell_s[i]``), so at every time the
    expected bandwidth is the dwell-weighted mean of the state bandwidths. The
    chain is sampled every ``sample_interval_s`` (the last sample may be shorter);
    each sample's bandwidth is its state's bandwidth times lognormal noise with
    mean 1 and coefficient of variation ``noise_cv``. A state bandwidth of 0 is an
    outage and stays 0. Pensieve's synthetic traces are drawn from a Markov chain
    over bandwidth states in the same spirit (Mao, Netravali & Alizadeh, SIGCOMM 2017).

    Args:
        rng: the source of all randomness.
        state_bandwidths_bps: bandwidth of each state, bit/s; finite and >= 0, not all 0.
        mean_dwell_s: mean time in a state, seconds; > 0; one value, or one per state.
        duration_s: length of one pass, seconds; > 0.
        sample_interval_s: time between samples, seconds; > 0.
        noise_cv: coefficient of variation of the multiplicative noise; >= 0.
        name: the trace's name.

    Raises:
        ValueError: naming the argument, if one is out of range; or if the chain
            happened to sample only outage states.

    Example:
        >>> trace = markov(np.random.default_rng(1), [1e6, 4e6], 10.0, duration_s=60.0)
        >>> trace.start_s.size, trace.duration_s
        (60, 60.0)
    """
    bandwidths_bps = np.array(state_bandwidths_bps, dtype=np.float64)
    if (
        bandwidths_bps.ndim != 1
        or bandwidths_bps.size == 0
        or not np.all(np.isfinite(bandwidths_bps) & (bandwidths_bps >= 0))
        or not np.any(bandwidths_bps > 0)
    ):
        raise ValueError(
            '"state_bandwidths_bps" must be a non-empty sequence of finite values >= 0, not all 0, '
            f"got {state_bandwidths_bps!r}"
        )
    state_count = bandwidths_bps.size
    dwell_s = np.array(mean_dwell_s, dtype=np.float64)
    if dwell_s.ndim == 0:
        dwell_s = np.full(state_count, dwell_s)
    if dwell_s.shape != (state_count,) or not np.all(np.isfinite(dwell_s) & (dwell_s > 0)):
        raise ValueError(
            f'"mean_dwell_s" must be finite and > 0, one value or {state_count} (one per state), '
            f"got {mean_dwell_s!r}"
        )
    duration_s = _require_positive("duration_s", duration_s)
    sample_interval_s = _require_positive("sample_interval_s", sample_interval_s)
    limits.check("trace_samples", duration_s / min(sample_interval_s, float(dwell_s.min())),
                 f"samples (or state changes) of {duration_s:g} s at {sample_interval_s:g} s each",
                 field="duration_s")
    if not (np.isfinite(noise_cv) and noise_cv >= 0):
        raise ValueError(f'"noise_cv" must be finite and >= 0, got {noise_cv!r}')

    state = int(rng.choice(state_count, p=dwell_s / dwell_s.sum()))
    enter_s, states = [0.0], [state]  # the chain enters states[j] at enter_s[j]
    time_s = rng.exponential(dwell_s[state])
    while time_s < duration_s and state_count > 1:
        state = (state + 1 + int(rng.integers(state_count - 1))) % state_count  # any other state
        enter_s.append(time_s)
        states.append(state)
        time_s += rng.exponential(dwell_s[state])
    start_s = np.arange(np.ceil(duration_s / sample_interval_s)) * sample_interval_s
    start_s = start_s[start_s < duration_s]
    sample_states = np.array(states)[np.searchsorted(enter_s, start_s, side="right") - 1]
    sigma_squared = np.log1p(noise_cv**2)  # lognormal with mean 1 and CV noise_cv
    noise = rng.lognormal(-sigma_squared / 2, np.sqrt(sigma_squared), size=start_s.size)
    return Trace(start_s, bandwidths_bps[sample_states] * noise, duration_s, name=name)


# --------------------------------------------------------------------------------------------
# Trace profiles fitted to real networks
# --------------------------------------------------------------------------------------------


def _frozen_array(values: Any, name: str, ndim: int) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.ndim != ndim or not np.all(np.isfinite(array)):
        raise ValueError(f'"{name}" must be a finite {ndim}-d array, got shape {array.shape}')
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class ProfileRegime:
    """One regime of a trace profile: a Markov-modulated bandwidth process for one class of links.

    The process has ``K`` bandwidth states plus an outage state (index ``K``,
    bandwidth 0). It stays in state ``k`` for a geometric number of samples
    (of the profile's ``sample_interval_s``) with mean ``mean_dwell_s[k]``, then
    jumps to state ``j`` with probability ``jump_probabilities[k, j]``. Within
    bandwidth state ``k`` a sample's bandwidth is drawn from that state's
    distribution, given by ``Q`` quantiles
    (``state_quantiles_bps[k]``, at probabilities 0, 1/(Q-1), ..., 1) and
    interpolated log-linearly between them.

    Args:
        weight: probability that a trace belongs to this regime; > 0.
        occupancy: share of time in each state (``K + 1`` values summing to 1);
            a trace starts in a state drawn from it.
        mean_dwell_s: mean dwell time in each state, seconds; > 0 (at least one sample:
            checked by :class:`TraceProfile`).
        jump_probabilities: ``(K + 1, K + 1)``, zero diagonal; each row sums to 1,
            or to 0 for a state that is never entered.
        state_quantiles_bps: ``(K, Q)`` bandwidth quantiles of each state, bit/s;
            > 0 and non-decreasing along each row.

    Raises:
        ValueError: if the arrays have the wrong shapes or values (the message names the field).
    """

    weight: float
    occupancy: np.ndarray
    mean_dwell_s: np.ndarray
    jump_probabilities: np.ndarray
    state_quantiles_bps: np.ndarray

    def __post_init__(self) -> None:
        quantiles = _frozen_array(self.state_quantiles_bps, "state_quantiles_bps", 2)
        states = quantiles.shape[0] + 1
        occupancy = _frozen_array(self.occupancy, "occupancy", 1)
        dwell_s = _frozen_array(self.mean_dwell_s, "mean_dwell_s", 1)
        jumps = _frozen_array(self.jump_probabilities, "jump_probabilities", 2)
        if not (np.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f'"weight" must be finite and > 0, got {self.weight!r}')
        if quantiles.shape[1] < 2 or not np.all(quantiles > 0) or np.any(np.diff(quantiles, axis=1) < 0):
            raise ValueError('"state_quantiles_bps" rows must be >= 2 positive, non-decreasing values')
        if occupancy.shape != (states,) or np.any(occupancy < 0) or not math.isclose(occupancy.sum(), 1.0,
                                                                                     abs_tol=1e-4):
            raise ValueError(f'"occupancy" must be {states} shares >= 0 summing to 1, got {occupancy!r}')
        if dwell_s.shape != (states,) or not np.all(dwell_s > 0):
            raise ValueError(f'"mean_dwell_s" must be {states} values > 0, got {dwell_s!r}')
        row_sums = jumps.sum(axis=1) if jumps.shape == (states, states) else np.array([-1.0])
        if (
            jumps.shape != (states, states)
            or np.any(jumps < 0)
            or np.any(np.diag(jumps) != 0)
            or not np.all(np.isclose(row_sums, 1.0, atol=1e-4) | (row_sums == 0))
            or np.any((row_sums == 0) & (occupancy > 0))
        ):
            raise ValueError(
                f'"jump_probabilities" must be ({states}, {states}) with a zero diagonal and rows summing '
                "to 1 (or 0 for a state never occupied)"
            )
        object.__setattr__(self, "weight", float(self.weight))
        # the fitted numbers are printed to 6 digits: restore exact sums
        occupancy = _frozen_array(occupancy / occupancy.sum(), "occupancy", 1)
        jumps = _frozen_array(jumps / np.where(row_sums > 0, row_sums, 1.0)[:, None], "jump_probabilities", 2)
        for name, value in (
            ("occupancy", occupancy),
            ("mean_dwell_s", dwell_s),
            ("jump_probabilities", jumps),
            ("state_quantiles_bps", quantiles),
        ):
            object.__setattr__(self, name, value)

    @property
    def state_count(self) -> int:
        """Number of bandwidth states (the outage state not counted)."""
        return int(self.state_quantiles_bps.shape[0])

    @functools.cached_property
    def _tables(self) -> tuple[list[float], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What every draw reads, computed once: the occupancy CDF, the jump CDFs, and the log
        quantiles with their grid and slopes (as :func:`numpy.interp` computes them)."""
        log_quantiles = np.log(self.state_quantiles_bps)
        grid = np.linspace(0.0, 1.0, log_quantiles.shape[1])
        slopes = (log_quantiles[:, 1:] - log_quantiles[:, :-1]) / (grid[1:] - grid[:-1])
        return (np.cumsum(self.occupancy).tolist(), np.cumsum(self.jump_probabilities, axis=1),
                log_quantiles, grid, slopes)


@dataclass(frozen=True, eq=False)
class TraceProfile:
    """A stochastic model of one network type, fitted to a real trace set.

    A synthetic trace picks one regime (with probability ``weight``), which
    stands for one class of links (from the slowest to the fastest: real sets mix
    users whose typical bandwidths differ several-fold), then runs that regime's
    Markov-modulated process, one sample every ``sample_interval_s``
    (:class:`ProfileRegime`). Samples
    within a state are correlated in time: their quantile positions follow a
    Gaussian AR(1) process with lag-1 correlation ``within_state_correlation``
    (a Gaussian copula).

    Args:
        name: the profile's name, e.g. ``"4g"``.
        description: what network it models and where the data came from.
        regimes: the regimes; their weights must sum to 1.
        within_state_correlation: lag-1 correlation of the Gaussian copula, in [0, 1).
        typical_duration_s: median length of the real traces, seconds (the length the
            statistics are compared at).
        real_statistics: :func:`network_statistics` of the real set, for comparison.
        sample_interval_s: the time step of the process, seconds (the real set's
            sample spacing: 1 s, or 5 s for the FCC broadband set).

    Raises:
        ValueError: if the regimes do not fit together or a value is out of range.
    """

    name: str
    description: str
    regimes: tuple[ProfileRegime, ...]
    within_state_correlation: float
    typical_duration_s: float
    real_statistics: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    sample_interval_s: float = 1.0

    def __post_init__(self) -> None:
        regimes = tuple(self.regimes)
        if not (np.isfinite(self.sample_interval_s) and self.sample_interval_s > 0):
            raise ValueError(f'"sample_interval_s" must be finite and > 0, got {self.sample_interval_s!r}')
        for index, regime in enumerate(regimes):
            if np.any(regime.mean_dwell_s < self.sample_interval_s * (1 - 1e-9)):
                raise ValueError(
                    f'regime {index}: "mean_dwell_s" must be >= one sample ({self.sample_interval_s:g} s), '
                    f"got {regime.mean_dwell_s!r}"
                )
        if not regimes or not math.isclose(sum(r.weight for r in regimes), 1.0, abs_tol=1e-4):
            raise ValueError('"regimes" must be non-empty with weights summing to 1')
        if not (0 <= self.within_state_correlation < 1):
            raise ValueError(
                f'"within_state_correlation" must be in [0, 1), got {self.within_state_correlation!r}'
            )
        if not (np.isfinite(self.typical_duration_s) and self.typical_duration_s > 0):
            raise ValueError(f'"typical_duration_s" must be finite and > 0, got {self.typical_duration_s!r}')
        object.__setattr__(self, "regimes", regimes)
        object.__setattr__(self, "real_statistics", MappingProxyType(dict(self.real_statistics)))

    @functools.cached_property
    def _weights_cdf(self) -> list[float]:
        """The regimes' cumulative weights (the draw of a regime reads them)."""
        return np.cumsum([r.weight for r in self.regimes]).tolist()


def available_profiles() -> list[str]:
    """Return the names of the fitted trace profiles, sorted."""
    from abrsim._profiles import PROFILES

    return sorted(PROFILES)


@functools.cache
def get_profile(name: str) -> TraceProfile:
    """Return a fitted trace profile by name (``3g``, ``4g``, ``5g`` or ``broadband``).

    Raises:
        UnknownNameError: if there is no profile of that name.

    Example:
        >>> get_profile("4g").regimes[0].state_count
        8
    """
    from abrsim._profiles import PROFILES

    if name not in PROFILES:
        raise UnknownNameError("trace profile", name, sorted(PROFILES))
    spec = PROFILES[name]
    return TraceProfile(
        name=name,
        description=spec["description"],
        regimes=tuple(ProfileRegime(**regime) for regime in spec["regimes"]),
        within_state_correlation=spec["within_state_correlation"],
        typical_duration_s=spec["typical_duration_s"],
        real_statistics=spec["real_statistics"],
        sample_interval_s=spec.get("sample_interval_s", 1.0),
    )


def _state_sequence(
    regime: ProfileRegime, rng: np.random.Generator, samples: int, interval_s: float = 1.0
) -> np.ndarray:
    """The regime's state at each sample, starting from a state drawn from its occupancy.

    Dwell times are geometric (>= 1 sample) with the state's mean (in samples of
    ``interval_s``), drawn by inversion: ``ceil(log(1 - u) / log(1 - 1 / mean))``.
    Uniforms come in blocks of 256: the first starts the chain, then two per dwell (its
    length, then the next state); a pair that does not fit in the block's rest opens a new block.
    """
    occupancy_cdf, jump_cdfs = regime._tables[:2]
    means = (regime.mean_dwell_s / interval_s).tolist()
    log_stay = np.array([math.log(1.0 - 1.0 / d) if d > 1.0 else 0.0 for d in means])
    last = regime.state_count  # the outage state
    states = np.empty(samples, dtype=np.int64)
    uniforms = rng.uniform(size=256)
    state = min(bisect_right(occupancy_cdf, float(uniforms[0]) * occupancy_cdf[-1]), last)
    filled, state, _ = _walk_states(states, 0, state, uniforms, 1, log_stay, jump_cdfs, last)
    while filled < samples:
        filled, state, _ = _walk_states(states, filled, state, rng.uniform(size=256), 0, log_stay,
                                        jump_cdfs, last)
    return states


@njit(cache=True)
def _walk_states(states: np.ndarray, filled: int, state: int, uniforms: np.ndarray, used: int,
                 log_stay: np.ndarray, jump_cdfs: np.ndarray, last: int) -> tuple[int, int, int]:
    """Fill ``states`` from ``filled`` on with dwells drawn from ``uniforms[used:]``, two per dwell,
    until they are full or the block cannot give another pair; return ``(filled, state, used)``."""
    samples = states.shape[0]
    columns = jump_cdfs.shape[1]
    while filled < samples and used + 2 <= uniforms.shape[0]:
        dwell_uniform = uniforms[used]
        jump_uniform = uniforms[used + 1]
        used += 2
        stay = log_stay[state]
        dwell = 1 if stay == 0.0 else max(1, math.ceil(math.log1p(-dwell_uniform) / stay))
        states[filled:min(filled + dwell, samples)] = state
        filled += dwell
        # bisect_right(row, jump_uniform * row[-1]) on the state's cumulative jump row
        target = jump_uniform * jump_cdfs[state, columns - 1]
        low, high = 0, columns
        while low < high:
            middle = (low + high) // 2
            if target < jump_cdfs[state, middle]:
                high = middle
            else:
                low = middle + 1
        state = min(low, last)
    return filled, state, used


def synthesize(
    profile: TraceProfile | str,
    rng: np.random.Generator,
    duration_s: float | None = None,
    name: str | None = None,
    regime: int | None = None,
) -> Trace:
    """Draw one synthetic trace from a fitted profile, one sample per the profile's ``sample_interval_s``.

    Args:
        profile: a :class:`TraceProfile` or the name of a fitted one.
        rng: the source of all randomness.
        duration_s: length of the trace, seconds; > 0 (the last sample may be shorter);
            default: the profile's ``typical_duration_s``.
        name: the trace's name; default: the profile's name.
        regime: index of the regime to use; default: drawn with the regimes' weights.

    Returns:
        The trace (bandwidth 0 during outages).

    Raises:
        UnknownNameError: if ``profile`` names no fitted profile.
        ValueError: if ``duration_s`` is not finite and > 0, ``regime`` is out of range,
            or 100 draws in a row were outages only (possible only for very short traces).

    Example:
        >>> trace = synthesize("3g", np.random.default_rng(1), 120.0)
        >>> trace.start_s.size, trace.duration_s
        (120, 120.0)
    """
    from scipy.signal import lfilter
    from scipy.special import ndtr

    model = get_profile(profile) if isinstance(profile, str) else profile
    if duration_s is None:
        duration_s = model.typical_duration_s
    duration_s = _require_positive("duration_s", duration_s)
    interval_s = model.sample_interval_s
    limits.check("trace_samples", duration_s / interval_s,
                 f"samples of {duration_s:g} s at {interval_s:g} s each", field="duration_s")
    samples = max(1, math.ceil(duration_s / interval_s - 1e-9))
    start_s = np.arange(samples, dtype=np.float64) * interval_s
    if regime is not None and not (0 <= regime < len(model.regimes)):
        raise ValueError(f'"regime" must be in 0..{len(model.regimes) - 1}, got {regime!r}')
    phi = model.within_state_correlation
    for _attempt in range(100):
        index = _regime_for(model, rng.uniform()) if regime is None else regime
        chosen = model.regimes[index]
        states = _state_sequence(chosen, rng, samples, interval_s)
        # Gaussian AR(1) copula: z[t] = phi z[t-1] + sqrt(1 - phi^2) e[t], stationary N(0, 1)
        innovations = rng.standard_normal(samples + 1)
        copula = lfilter([math.sqrt(1 - phi**2)], [1.0, -phi], innovations[1:], zi=[phi * innovations[0]])[0]
        positions = ndtr(copula)
        _, _, log_quantiles, grid, slopes = chosen._tables
        # each sample at its quantile position, interpolated log-linearly in its state's quantiles
        log_bandwidth = _interpolate_states(positions, states, grid, log_quantiles, slopes)
        bandwidth_bps = np.where(states < chosen.state_count, np.exp(log_bandwidth), 0.0)
        if np.any(bandwidth_bps > 0):
            return Trace(start_s, bandwidth_bps, duration_s, name=model.name if name is None else name)
    raise ValueError(f"profile {model.name!r} drew only outages for a {duration_s:g} s trace 100 times")


def _regime_for(profile: TraceProfile, uniform: float) -> int:
    weights_cdf = profile._weights_cdf
    index = bisect_right(weights_cdf, uniform * weights_cdf[-1])
    return min(index, len(weights_cdf) - 1)


@njit(cache=True)
def _interpolate_states(positions: np.ndarray, states: np.ndarray, grid: np.ndarray,
                        log_quantiles: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """``numpy.interp(positions[i], grid, log_quantiles[states[i]])`` for every sample of a bandwidth
    state (0 for the outage state, ``states[i] == len(log_quantiles)``), with numpy's arithmetic:
    the same numbers to the last bit."""
    out = np.zeros(positions.shape[0])
    last = grid.shape[0] - 1
    for i in range(positions.shape[0]):
        state = states[i]
        if state >= log_quantiles.shape[0]:
            continue
        x = positions[i]
        values = log_quantiles[state]
        if x >= grid[last]:  # right of the grid, or on its last point
            out[i] = values[last]
            continue
        if x < grid[0]:
            out[i] = values[0]
            continue
        low, high = 0, last  # grid[low] <= x < grid[high]
        while high - low > 1:
            middle = (low + high) // 2
            if grid[middle] <= x:
                low = middle
            else:
                high = middle
        if x == grid[low]:
            out[i] = values[low]
            continue
        slope = slopes[state, low]
        value = slope * (x - grid[low]) + values[low]
        if np.isnan(value):
            value = slope * (x - grid[low + 1]) + values[low + 1]
            if np.isnan(value) and values[low] == values[low + 1]:
                value = values[low]
        out[i] = value
    return out


def _van_der_corput(index: int) -> float:
    """The ``index``-th point (from 1) of the base-2 van der Corput sequence in [0, 1)."""
    value, scale = 0.0, 0.5
    while index:
        index, bit = divmod(index, 2)
        value += bit * scale
        scale /= 2
    return value


def synthesize_many(
    profile: TraceProfile | str,
    count: int,
    duration_s: float | None = None,
    seed: int = 0,
    name_prefix: str | None = None,
) -> list[Trace]:
    """Draw ``count`` independent traces from a profile (the list of :func:`synthesize_each`'s traces).

    Trace ``i`` draws from ``np.random.SeedSequence(seed).spawn(count)[i]``, so it
    is the same whatever ``count`` is (the first 10 of 100 traces are the 10 traces
    of a run with ``count=10``). Regimes are assigned in a balanced way rather
    than drawn independently: trace ``i`` takes the regime at point
    ``(v(i) + offset) mod 1`` of the regimes' cumulative weights, where ``v`` is the
    base-2 van der Corput sequence and ``offset`` is drawn from the seed, so every
    run of consecutive traces holds each regime in proportion to its weight. This
    keeps the set's statistics close to the profile's with fewer traces.

    Args:
        profile: a :class:`TraceProfile` or the name of a fitted one.
        count: number of traces; >= 1.
        duration_s: length of each trace, seconds; default: the profile's typical length.
        seed: the seed.
        name_prefix: traces are named ``<prefix>_<i>`` (from 1, zero-padded); default:
            the profile's name.

    Raises:
        UnknownNameError: if ``profile`` names no fitted profile.
        ValueError: if ``count`` < 1 or ``duration_s`` is not finite and > 0.
    """
    return list(synthesize_each(profile, count, duration_s, seed, name_prefix))


def synthesize_each(
    profile: TraceProfile | str,
    count: int,
    duration_s: float | None = None,
    seed: int = 0,
    name_prefix: str | None = None,
) -> Iterator[Trace]:
    """The traces of :func:`synthesize_many`, drawn one at a time (memory does not grow with ``count``).

    Raises:
        UnknownNameError: if ``profile`` names no fitted profile.
        ValueError: if ``count`` < 1 or ``duration_s`` is not finite and > 0 (when the first trace
            is asked for).
    """
    model = get_profile(profile) if isinstance(profile, str) else profile
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise ValueError(f'"count" must be an integer >= 1, got {count!r}')
    prefix = model.name if name_prefix is None else name_prefix
    width = max(3, len(str(count)))
    root = np.random.SeedSequence(seed)
    offset = float(np.random.default_rng(root).uniform())
    for i in range(int(count)):
        # one child at a time: the i-th of root.spawn(count), without a list of count seeds
        (child,) = root.spawn(1)
        yield synthesize(
            model,
            np.random.default_rng(child),
            duration_s,
            name=f"{prefix}_{i + 1:0{width}d}",
            regime=_regime_for(model, (_van_der_corput(i + 1) + offset) % 1.0),
        )


@dataclass(frozen=True)
class NetworkStatistics:
    """The five statistics on which a synthetic trace set is compared with a real one.

    All are computed on 1 s means (:func:`~abrsim.trace.interval_means_bps`) pooled
    over the set.

    Attributes:
        mean_bps: mean bandwidth, bit/s.
        p10_bps: 10th percentile, bit/s.
        p90_bps: 90th percentile, bit/s.
        lag1_autocorrelation: lag-1 autocorrelation within traces: each trace is centred
            on its own mean, and the lagged products and squares are summed over all traces
            before dividing.
        outage_fraction: share of 1 s means below the outage threshold
            (:data:`~abrsim.trace.OUTAGE_THRESHOLD_BPS`, 50 kbit/s).
    """

    mean_bps: float
    p10_bps: float
    p90_bps: float
    lag1_autocorrelation: float
    outage_fraction: float

    def as_dict(self) -> dict[str, float]:
        """The statistics by name."""
        return {name: float(getattr(self, name)) for name in self.__dataclass_fields__}


def network_statistics(
    traces: Iterable[Trace], outage_threshold_bps: float = OUTAGE_THRESHOLD_BPS
) -> NetworkStatistics:
    """Compute :class:`NetworkStatistics` of a set of traces.

    ``traces`` may be a generator: each trace is dropped once its 1 s means are taken, so
    memory holds 8 bytes per second of trace.

    Raises:
        ValueError: if the traces hold no whole second at all.
    """
    chunks: list[np.ndarray] = []  # the 1 s means, joined every 1024 traces (an array per trace costs more)
    pending: list[np.ndarray] = []
    lagged = squares = 0.0
    for trace in traces:
        values = interval_means_bps(trace, 1.0)
        if not values.size:
            continue
        centred = values - values.mean()
        lagged += float(np.dot(centred[:-1], centred[1:]))
        squares += float(np.dot(centred, centred))
        pending.append(values)
        if len(pending) == 1024:
            chunks.append(np.concatenate(pending))
            pending.clear()
    if not chunks and not pending:
        raise ValueError("no trace is at least 1 s long")
    pooled = np.concatenate(chunks + pending)
    return NetworkStatistics(
        mean_bps=float(pooled.mean()),
        p10_bps=float(np.percentile(pooled, 10)),
        p90_bps=float(np.percentile(pooled, 90)),
        lag1_autocorrelation=lagged / squares if squares > 0 else float("nan"),
        outage_fraction=float(np.mean(pooled < outage_threshold_bps)),
    )


# --------------------------------------------------------------------------------------------
# The default corpus
# --------------------------------------------------------------------------------------------

# name, profile, regime ("low" = first, "high" = last), duration (s)
_CORPUS: tuple[tuple[str, str, str, float], ...] = (
    ("3g_low", "3g", "low", 300.0),
    ("3g_high", "3g", "high", 300.0),
    ("broadband_low", "broadband", "low", 600.0),
    ("broadband_high", "broadband", "high", 600.0),
    ("4g_low", "4g", "low", 480.0),
    ("4g_high", "4g", "high", 480.0),
)


def _default_corpus_described(seed: int) -> list[tuple[Trace, str]]:
    """The default corpus, each trace with its profile and regime for the README."""
    described = []
    children = np.random.SeedSequence(seed).spawn(len(_CORPUS))
    for (name, profile_name, regime, duration_s), child in zip(_CORPUS, children, strict=True):
        profile = get_profile(profile_name)
        index = 0 if regime == "low" else len(profile.regimes) - 1
        trace = synthesize(profile, np.random.default_rng(child), duration_s, name=name, regime=index)
        # whole kbit/s keep the committed files short and readable
        trace = Trace(trace.start_s, np.round(trace.bandwidth_bps, -3), trace.duration_s, name=name)
        described.append((trace, f"`{profile_name}`, {regime} regime"))
    return described


def default_corpus(seed: int = 2024) -> list[Trace]:
    """The project's small default corpus: six traces of 300 to 600 s drawn from the fitted profiles.

    Two traces each from the ``3g``, ``broadband`` and ``4g`` profiles, one from the
    profile's lowest regime (its slowest fifth of links) and one from its highest,
    so that a handful of traces spans each network's range. Together they exercise
    an HLS-style ladder from 145 kbit/s to 7.8 Mbit/s from the bottom rung to the
    top: 3G and broadband (about 0.2 to 4 Mbit/s) the lower and middle rungs, 4G
    (mostly above 8 Mbit/s, with deep dips and short outages) the top rungs and
    sudden drops. The ``5g`` profile (hundreds of Mbit/s) is left out: on such a
    ladder it would only ever show the top rung, and scaling it down would no
    longer model a real network. Trace ``i`` draws from
    ``np.random.SeedSequence(seed).spawn(6)[i]``; bandwidths are rounded to whole kbit/s.

    Args:
        seed: the seed.

    Returns:
        ``3g_low``, ``3g_high``, ``broadband_low``, ``broadband_high``, ``4g_low``, ``4g_high``.
    """
    return [trace for trace, _ in _default_corpus_described(seed)]


def _mbps(value_bps: float) -> str:
    return f"{value_bps / 1e6:.3f}"


def _corpus_readme(described: list[tuple[Trace, str]], seed: int) -> str:
    from abrsim.trace import trace_stats

    rows = []
    for trace, text in described:
        stats = trace_stats(trace)
        rows.append(
            f"| `{trace.name}.csv` | {text} | {trace.duration_s:g} | {_mbps(stats.mean_bps)} | "
            f"{_mbps(stats.p10_bps)} | {_mbps(stats.p90_bps)} | {_mbps(stats.min_bps)} | "
            f"{_mbps(stats.max_bps)} | {100 * stats.outage_fraction:.1f} |\n"
        )
    profiles = []
    for name in available_profiles():
        profile = get_profile(name)
        real = profile.real_statistics
        profiles.append(
            f"| `{name}` | {profile.description} | {profile.typical_duration_s:g} | "
            f"{_mbps(real['mean_bps'])} | {_mbps(real['p10_bps'])} | {_mbps(real['p90_bps'])} | "
            f"{real['lag1_autocorrelation']:.3f} | {100 * real['outage_fraction']:.2f} |\n"
        )
    return f"""# Traces

This folder holds abrsim's default trace corpus, the traces `abrsim run` replays
when no `--trace` is given. This page also specifies the trace formats abrsim
reads and writes, the fitted network profiles the corpus is drawn from, and
where the public trace sets live.

## The default corpus

These files are generated (`abrsim.tracegen.write_default_corpus`, seed {seed});
do not edit them by hand. Regenerate them with:

```
abrsim traces generate --out traces/
```

Six traces drawn from the fitted profiles (below): for each of `3g`, `broadband`
and `4g`, one trace from the profile's low regime (its slowest fifth of links)
and one from its high regime. Together they exercise an HLS-style ladder from
145 kbit/s to 7.8 Mbit/s from the bottom rung to the top: 3G and broadband the
lower and middle rungs, 4G the top rungs and sudden drops. The `5g` profile
(hundreds of Mbit/s) is left out: on such a ladder it only ever shows the top
rung, and scaling it down would no longer model a real network; use
`abrsim traces synth --profile 5g` for high-bitrate ladders.

Bandwidths in Mbit/s, time-weighted over one pass (`abrsim traces stats traces/`);
outage: share of time below 50 kbit/s.

| file | drawn from | duration (s) | mean | p10 | p90 | min | max | outage (%) |
|---|---|---|---|---|---|---|---|---|
{"".join(rows)}
Samples are 1 s long and rounded to whole kbit/s.

## Formats

abrsim reads four formats (`abrsim.trace.load_trace`, detected from the file:
`.csv` is abrsim, `.json` is Sabre, two numbers per line Pensieve, one integer
per line Mahimahi; `--trace-format` overrides) and writes all four
(`abrsim.trace.write_trace`, `abrsim traces convert IN -o OUT --to FORMAT`).
Every reader reports a bad file in one line naming the file and the line (or
JSON entry). Time is in seconds and bandwidth in bit/s inside abrsim; the files
use the units below.

### abrsim CSV (`.csv`)

* Lines starting with `#` are comments. A comment `# duration_s=<seconds>` before
  the header gives the length of the trace.
* The header is `time_s,bandwidth_mbps` or `time_s,bandwidth_mbps,latency_ms`.
* Each row is one sample: its start time in seconds (the first row is 0; strictly
  increasing), its bandwidth in Mbit/s (10^6 bit/s), which holds until the next
  row's time, and optionally the request latency in milliseconds.
* Without a `# duration_s=` comment, the length is the `duration_s` of this
  file's row in an `index.csv` beside it (columns `file` and `duration_s`);
  without either, the last sample lasts as long as the one before it.
* A comment `# measures=goodput` or `# measures=capacity` before the header says
  what the numbers are: a download's measured throughput (the default, as in the
  FCC, HSDPA and 4G/5G sets) or what the link carries in IP packets, headers
  included (as in a Mahimahi trace; the writer adds the comment for those). Only
  the `tcp` network model reads the two differently; `abrsim traces stats` shows it.
* A session longer than the trace replays it in a loop from the start.

Numbers are written so that they read back to exactly the same floats.

### Pensieve "cooked" text

`time_s<TAB or spaces>bandwidth_mbps` per line, as in Pensieve's simulator
(Mao, Netravali & Alizadeh, SIGCOMM 2017, `sim/env.py`): a row's bandwidth
covers the interval since the previous row, so the first row only marks the
start and the trace lasts `time[-1] - time[0]`. No latency. abrsim writes the
first row as `0<TAB>b0` followed by one row per sample with the time the sample
ends; the round trip is exact.

### Sabre network JSON (`.json`)

A JSON list of `{{"duration_ms": ..., "bandwidth_kbps": ..., "latency_ms": ...}}`
objects, one per sample (Spiteri, Sitaraman & Sparacio, MMSys 2018); 1 kbit/s =
1000 bit/s; other keys are ignored. Latency is required: converting a trace
without latencies needs `--latency-ms`. Durations are summed exactly, so the
round trip is exact.

### Mahimahi packet delivery

One integer per line: a time in ms at which one 1500-byte packet (12000 bits)
can be delivered; times are non-decreasing and may repeat, and the last one is
the loop period (Netravali et al., USENIX ATC 2015). abrsim bins packets into
100 ms samples when reading. When writing, packet *j* goes out in the
millisecond in which the trace has carried *(j - 1/2) x 12000* bits, so the
bits up to every 100 ms bin edge stay within half a packet (the last packet
moves to the loop period; if the trace ends in an outage, that shifts one more
packet); a trace read from a Mahimahi file (whole packets per bin) round-trips
exactly. No latency.

## Fitted network profiles

`abrsim traces synth --profile NAME --count N --duration-s S --seed K -o DIR`
draws traces from a stochastic model of a real network
(`abrsim.tracegen.synthesize_many`). Each profile is a Markov-modulated process
at 1 s resolution, fitted once by `tools/fit_trace_profiles.py` to a public trace
set; only the fitted numbers ship (`abrsim/_profiles.py`). A trace first picks a
regime, one of five classes of the set's links by median bandwidth (this keeps a
trace near its level for minutes, as a real link stays), then moves between eight
bandwidth states and an outage state (bandwidth 0) with per-state geometric
dwell times and fitted jump probabilities; within a state, bandwidths follow
that state's fitted distribution (seven quantiles), placed by a slowly varying
Gaussian AR(1) copula. The real sets' statistics on 1 s means:

| profile | fitted to | typical length (s) | mean | p10 | p90 | lag-1 autocorr. | outage (%) |
|---|---|---|---|---|---|---|---|
{"".join(profiles)}
Synthetic sets match these within 10 % on all five statistics: over five seeds
of 10^6 synthetic seconds per profile, most errors are below 3 %, the worst are
the broadband outage share (up to 9 %, from only 61 outages in the real set), the
5G p10 (up to 8 %, in a sparse stretch of its distribution) and the 4G lag-1
autocorrelation (5 % low). `python benchmarks/trace_profiles.py` prints the
comparison, and the QoE of BOLA and the throughput rule on real versus synthetic
sets; `tests/test_tracegen.py` checks the 10 %. Beyond the five statistics, the
first-order model forgets faster than real links over tens of seconds, so
synthetic broadband traces cause more rebuffering than the real ones (BOLA on
the `hls` ladder: about 16 s against 10 s per session; 3G: 10.5 s against 9.3 s).

## Public trace sets

abrsim ships none of them; download them and pass the folder to `--trace`.

* **HSDPA 3G, Norway** (Riiser, Vigmostad, Griwodz & Halvorsen, MMSys 2013):
  raw logs at <https://datasets.simula.no/hsdpa-tcp-logs/>; Pensieve's "cooked"
  test set (`cooked_test_traces/norway_*`) in GitHub `thu-media/Comyco`
  (`src/cooked_test_traces/`); Sabre's JSON conversion in `UMass-LIDS/sabre`
  (`example/mmsys18/3Glogs/`).
* **LTE 4G, Ghent, Belgium** (van der Hooft et al., IEEE Communications Letters
  2016): raw logs at <https://users.ugent.be/~jvdrhoof/dataset-4g/>; Sabre JSON in
  `UMass-LIDS/sabre` (`example/mmsys18/4Glogs/`).
* **Lumos5G mmWave 5G, Minneapolis** (Narayanan et al., IMC 2020 and SIGCOMM 2021):
  GitHub `SIGCOMM21-5G/artifact` (`Video-Streaming/Network-Traces/Lumous5G/5G/`),
  CC BY 4.0.
* **FCC Measuring Broadband America** (US FCC, raw data by year at
  <https://www.fcc.gov/reports-research/reports/measuring-broadband-america/>);
  Pensieve's cooked 2016 subset in `thu-media/Comyco` (`src/cooked_traces/`).
* **Mahimahi** ships cellular packet-delivery traces (Verizon, AT&T, T-Mobile LTE)
  in GitHub `ravinet/mahimahi` (`traces/`).

`abrsim traces stats PATH...` summarises any of them (duration, mean,
percentiles, outage share, lag-1 autocorrelation).
"""


def write_default_corpus(folder: str | Path, seed: int = 2024) -> list[Path]:
    """Write :func:`default_corpus` as ``<name>.csv`` files plus a ``README.md``.

    The bytes written depend on ``seed`` only.

    Args:
        folder: where to write; created if missing. Existing files of the same
            names are overwritten.
        seed: as in :func:`default_corpus`.

    Returns:
        The files written: the traces in corpus order, then the README.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    described = _default_corpus_described(seed)
    paths = [write_abrsim_csv(trace, target / f"{trace.name}.csv") for trace, _ in described]
    readme = target / "README.md"
    readme.write_text(_corpus_readme(described, seed), encoding="utf-8", newline="\n")
    return [*paths, readme]
