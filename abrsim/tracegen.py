"""Synthetic bandwidth traces, and the small default corpus abrsim ships with.

Deterministic shapes (:func:`constant`, :func:`step`) take no randomness; the
random one (:func:`markov`) draws everything from the ``rng`` it is given, so
the same generator state gives the same trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from abrsim.trace import Trace, write_abrsim_csv

__all__ = ["constant", "default_corpus", "markov", "step", "write_default_corpus"]


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


def _default_corpus_described(seed: int) -> list[tuple[Trace, str]]:
    """The default corpus, each trace with a one-line description for its README."""
    # name, state bandwidths (Mbit/s), mean dwell (s, one or per state), duration (s), noise CV
    markov_specs: tuple[tuple[str, tuple[float, ...], float | tuple[float, ...], float, float], ...] = (
        ("markov_commute_1", (0.6, 1.5, 3.0, 5.0), 20.0, 600.0, 0.15),
        ("markov_commute_2", (0.0, 0.4, 1.2, 2.5), (3.0, 25.0, 30.0, 25.0), 600.0, 0.2),
        ("markov_wifi_1", (2.0, 4.5, 8.5), 45.0, 480.0, 0.1),
        ("markov_cellular_1", (0.3, 0.8, 1.8, 3.5), 10.0, 420.0, 0.25),
    )
    described = [
        (constant(3e6, 300.0, name="constant_3mbps"), "3 Mbit/s throughout"),
        (
            step([6e6, 1.5e6, 0.5e6, 4e6], 120.0, name="step_down_up"),
            "6, 1.5, 0.5 then 4 Mbit/s, 120 s each",
        ),
    ]
    children = np.random.SeedSequence(seed).spawn(len(markov_specs))
    for (name, states_mbps, dwell_s, duration_s, noise_cv), child in zip(markov_specs, children, strict=True):
        trace = markov(
            np.random.default_rng(child),
            np.array(states_mbps) * 1e6,
            dwell_s,
            duration_s,
            noise_cv=noise_cv,
            name=name,
        )
        # whole kbit/s keep the committed files short and readable
        trace = Trace(trace.start_s, np.round(trace.bandwidth_bps, -3), trace.duration_s, name=name)
        dwell_text = "/".join(f"{d:g}" for d in np.atleast_1d(dwell_s))
        described.append(
            (
                trace,
                f"Markov over {'/'.join(f'{b:g}' for b in states_mbps)} Mbit/s, mean dwell {dwell_text} s, "
                f"noise CV {noise_cv:g}" + (", with short outages" if 0.0 in states_mbps else ""),
            )
        )
    return described


def default_corpus(seed: int = 2024) -> list[Trace]:
    """The project's small default corpus: six synthetic traces of 300 to 600 s.

    Bandwidths span about 0.3 to 10 Mbit/s, so an HLS-style ladder from
    145 kbit/s to 7.8 Mbit/s is exercised from the bottom rung to the top. The
    Markov traces draw from ``np.random.SeedSequence(seed).spawn(...)`` children, so
    the corpus depends on ``seed`` only. Bandwidths are rounded to whole kbit/s.

    Args:
        seed: the seed of the Markov traces.

    Returns:
        ``constant_3mbps``, ``step_down_up``, ``markov_commute_1``,
        ``markov_commute_2`` (with short outages), ``markov_wifi_1`` and
        ``markov_cellular_1``.
    """
    return [trace for trace, _ in _default_corpus_described(seed)]


def _corpus_readme(described: list[tuple[Trace, str]], seed: int) -> str:
    rows = "".join(
        f"| `{trace.name}.csv` | {trace.duration_s:g} | {trace.mean_bandwidth_bps / 1e6:.3f} | "
        f"{trace.bandwidth_bps.min() / 1e6:.3f} | {trace.bandwidth_bps.max() / 1e6:.3f} | {text} |\n"
        for trace, text in described
    )
    return f"""# Default traces

Small synthetic bandwidth traces that ship with abrsim. Their bandwidths span
about 0.3 to 10 Mbit/s, so an HLS-style ladder from 145 kbit/s to 7.8 Mbit/s is
exercised from the bottom rung to the top.

These files are generated (`abrsim.tracegen.write_default_corpus`, seed {seed});
do not edit them by hand. Regenerate them with:

```
abrsim traces generate --out traces/
```

## Format

Each trace is a CSV file in abrsim's format (`abrsim.trace.read_abrsim_csv`):

* Lines starting with `#` are comments. A comment `# duration_s=<seconds>` before
  the header gives the length of the trace.
* The header is `time_s,bandwidth_mbps` or `time_s,bandwidth_mbps,latency_ms`.
* Each row is one sample: its start time in seconds (the first row is 0; strictly
  increasing), its bandwidth in Mbit/s (10^6 bit/s), which holds until the next
  row's time, and optionally the request latency in milliseconds.
* Without a `# duration_s=` comment, the length is the `duration_s` of this
  file's row in an `index.csv` beside it (columns `file` and `duration_s`);
  without either, the last sample lasts as long as the one before it.
* A session longer than the trace replays it in a loop from the start.

Numbers are written so that they read back to exactly the same floats.

## Traces

Bandwidths in Mbit/s; the mean is time-weighted over one pass.

| file | duration (s) | mean | min | max | description |
|---|---|---|---|---|---|
{rows}
The Markov traces are sampled every second from a continuous-time Markov chain
that starts in its stationary distribution; each sample is the state's bandwidth
times mean-1 lognormal noise, rounded to whole kbit/s
(`abrsim.tracegen.markov`).
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
