"""Fit abrsim's trace profiles (3g, 4g, 5g, broadband) to the public trace sets in ../shared/traces.

Run once, by hand, when the data or the model changes; tests never run it. It
prints the fitted numbers as the Python module ``abrsim/_profiles.py`` (or writes
it with ``--write``) and a table comparing real and synthetic statistics. Only
numbers go into the package, never the data.

    python tools/fit_trace_profiles.py --write

The model (``abrsim.tracegen.TraceProfile``), fitted per trace set:

1. Every trace becomes means over the set's sample spacing (1 s; 5 s for the
   FCC set, whose values are test results 5 s apart)
   (``abrsim.trace.interval_means_bps``); a mean below 50 kbit/s
   (``OUTAGE_THRESHOLD_BPS``) is an outage.
2. Traces are sorted by their median non-outage bandwidth and split into five
   regimes holding a fifth of the set's time each (the slowest links to the
   fastest). Five rather than three keeps synthetic traces as close to their
   level over minutes as real ones (autocorrelation at 30 to 60 s), which the
   QoE comparison in ``benchmarks/trace_profiles.py`` is sensitive to.
3. Per regime, the non-outage means are cut into eight equally likely bandwidth
   states (by quantiles of the regime's pooled means); the outage is a ninth
   state. Each state's distribution is kept as seven quantiles of the means in
   it (0, 1/6, ..., 1).
4. Transitions between consecutive samples of a trace give each state's mean
   dwell time (seconds in the state / transitions out of it: the geometric
   maximum-likelihood estimate when traces may end in the middle of a dwell) and
   its jump probabilities (the transitions out, normalised); the share of samples
   in each state gives the occupancy a trace starts from.
5. The one free parameter left, the lag-1 correlation of the Gaussian copula
   that places samples within their state's distribution, is set by bisection
   so that synthetic traces match the real lag-1 autocorrelation.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np

from abrsim.trace import OUTAGE_THRESHOLD_BPS, interval_means_bps, load_traces
from abrsim.tracegen import (
    NetworkStatistics,
    ProfileRegime,
    TraceProfile,
    network_statistics,
    synthesize_many,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"

# profile name -> (folder under ../shared/traces, description, sample interval in seconds)
SETS = {
    "3g": (
        "hsdpa_norway_3g",
        "Mobile 3G/HSDPA, Telenor, Oslo commute routes by bus, car, ferry, metro, train and tram "
        "(Riiser et al., MMSys 2013; the 142 traces of Pensieve's test set)",
        1.0,
    ),
    "4g": (
        "lte_belgium_4g",
        "Mobile 4G/LTE, Ghent, by bicycle, bus, car, foot, train and tram "
        "(van der Hooft et al., IEEE Communications Letters 2016; 29 logs as converted by Sabre)",
        1.0,
    ),
    "5g": (
        "lumos5g_mmwave_5g",
        "Mobile 5G mmWave, Verizon, Minneapolis, walking and driving "
        "(Lumos5G, Narayanan et al., IMC 2020; 90 traces of the SIGCOMM 2021 ABR artifact)",
        1.0,
    ),
    "broadband": (
        "fcc_broadband",
        "Fixed broadband, US homes (FCC Measuring Broadband America 2016, web-browsing "
        "throughput every 5 s, as cooked for Pensieve; 59 traces)",
        1.0,  # its values are 5 s apart; a 5 s step fits no better and counts outages worse
    ),
}
REGIMES = 5
STATES = 8
QUANTILES = 7
FIT_TRACES = 400  # synthetic traces per bisection step
FIT_SEED = 20240601


def _weighted_split(levels: np.ndarray, weights: np.ndarray, parts: int) -> np.ndarray:
    """Assign each item to one of ``parts`` groups of about equal total weight, by increasing level."""
    order = np.argsort(levels, kind="stable")
    midpoints = (np.cumsum(weights[order]) - weights[order] / 2) / weights.sum()
    groups = np.empty(levels.size, dtype=np.int64)
    groups[order] = np.minimum((midpoints * parts).astype(np.int64), parts - 1)
    return groups


def fit_regime(
    series: list[np.ndarray], weight: float, max_dwell_s: float, interval_s: float
) -> ProfileRegime:
    """Fit one regime's states, dwell times and jumps to its traces' means over ``interval_s``."""
    outage = STATES
    positive = np.concatenate([s[s >= OUTAGE_THRESHOLD_BPS] for s in series])
    log_positive = np.log(positive)
    edges = np.quantile(log_positive, np.linspace(0.0, 1.0, STATES + 1))
    quantiles = []
    for k in range(STATES):
        inside = log_positive[(log_positive >= edges[k]) & (log_positive <= edges[k + 1])]
        quantiles.append(np.exp(np.quantile(inside, np.linspace(0.0, 1.0, QUANTILES))))
    counts = np.zeros((STATES + 1, STATES + 1))
    occupancy = np.zeros(STATES + 1)
    for values in series:
        states = np.full(values.size, outage)
        ok = values >= OUTAGE_THRESHOLD_BPS
        states[ok] = np.clip(np.searchsorted(edges, np.log(values[ok]), side="right") - 1, 0, STATES - 1)
        np.add.at(counts, (states[:-1], states[1:]), 1.0)
        np.add.at(occupancy, states, 1.0)
    dwell_s = np.full(STATES + 1, interval_s)
    jumps = np.zeros((STATES + 1, STATES + 1))
    for k in range(STATES + 1):
        leave = counts[k].sum() - counts[k, k]
        if counts[k].sum() == 0 and occupancy[k] == 0:
            continue  # never visited (e.g. no outages in this regime)
        if leave == 0:  # never left within a trace: long dwell, then a neighbouring state
            dwell_s[k] = max_dwell_s
            neighbours = [j for j in (k - 1, k + 1) if 0 <= j < STATES]
            jumps[k, neighbours] = 1.0 / len(neighbours)
            continue
        # geometric dwell with right-censoring (a trace may end mid-run): time in the state / exits
        dwell_s[k] = min(max_dwell_s, interval_s * occupancy[k] / leave)
        jumps[k] = counts[k] / leave
        jumps[k, k] = 0.0
    return ProfileRegime(
        weight=weight,
        occupancy=occupancy / occupancy.sum(),
        mean_dwell_s=dwell_s,
        jump_probabilities=jumps,
        state_quantiles_bps=np.array(quantiles),
    )


def fit_profile(
    name: str, folder: Path, description: str, interval_s: float
) -> tuple[TraceProfile, NetworkStatistics]:
    """Fit one profile; return it with the real set's statistics."""
    traces = load_traces(folder)
    typical_s = float(np.median([interval_means_bps(t, 1.0).size for t in traces]))
    series = [interval_means_bps(t, interval_s) for t in traces]
    series = [s for s in series if s.size >= 2]
    real = network_statistics(traces)
    lengths = np.array([s.size for s in series], dtype=np.float64)
    levels = np.array([np.median(s[s >= OUTAGE_THRESHOLD_BPS]) if s.max() >= OUTAGE_THRESHOLD_BPS else 0.0
                       for s in series])
    groups = _weighted_split(levels, lengths, REGIMES)
    regimes = tuple(
        fit_regime(
            [s for s, g in zip(series, groups, strict=True) if g == r],
            float(lengths[groups == r].sum() / lengths.sum()),
            max_dwell_s=typical_s,
            interval_s=interval_s,
        )
        for r in range(REGIMES)
    )

    def make(phi: float) -> TraceProfile:
        return TraceProfile(name, description, regimes, phi, typical_s, real.as_dict(), interval_s)

    def lag1(phi: float) -> float:
        return network_statistics(synthesize_many(make(phi), FIT_TRACES, seed=FIT_SEED)).lag1_autocorrelation

    low, high = 0.0, 0.99
    if lag1(low) >= real.lag1_autocorrelation:
        phi = low
    else:
        for _ in range(10):
            middle = (low + high) / 2
            low, high = (middle, high) if lag1(middle) < real.lag1_autocorrelation else (low, middle)
        phi = (low + high) / 2
    return make(round(phi, 4)), real


def _number(value: float) -> str:
    return "0.0" if value == 0 else repr(float(f"{value:.6g}"))


def _vector(values: np.ndarray, indent: str, prefix: str = "") -> str:
    """A tuple literal for a line starting ``indent + prefix``, wrapped to at most 110 characters."""
    items = [_number(v) for v in values]
    flat = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if len(indent) + len(prefix) + len(flat) + 1 <= 110:
        return flat
    lines = textwrap.wrap(", ".join(items) + ",", width=110 - len(indent) - 4, break_on_hyphens=False)
    return "(\n" + "".join(f"{indent}    {line}\n" for line in lines) + indent + ")"


def _matrix(rows: np.ndarray, indent: str) -> str:
    inner = "".join(f"{indent}    {_vector(row, indent + '    ')},\n" for row in rows)
    return "(\n" + inner + indent + ")"


def _text(value: str, indent: str) -> str:
    """A string literal, split into implicitly concatenated pieces that fit in 110 characters."""
    pieces = textwrap.wrap(value, width=110 - len(indent) - 6, drop_whitespace=False)
    return "(\n" + "".join(f"{indent}    {piece!r}\n" for piece in pieces) + indent + ")"


def module_text(profiles: list[TraceProfile]) -> str:
    """The source of ``abrsim/_profiles.py`` holding the fitted numbers."""
    out = [
        '"""Fitted trace-profile parameters: numbers only, no data.\n\n'
        "Generated by ``tools/fit_trace_profiles.py`` from the public trace sets described in\n"
        "``traces/README.md``; do not edit by hand. The model is documented in\n"
        ":class:`abrsim.tracegen.TraceProfile` and :class:`abrsim.tracegen.ProfileRegime`.\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
        "from collections.abc import Mapping\n"
        "from types import MappingProxyType\n"
        "from typing import Any\n\n"
        "PROFILES: Mapping[str, Mapping[str, Any]] = MappingProxyType(\n    {\n"
    ]
    for profile in profiles:
        stats = "".join(f'                "{k}": {_number(v)},\n' for k, v in profile.real_statistics.items())
        out.append(f'        "{profile.name}": {{\n')
        out.append(f'            "description": {_text(profile.description, " " * 12)},\n')
        out.append(f'            "typical_duration_s": {_number(profile.typical_duration_s)},\n')
        out.append(f'            "sample_interval_s": {_number(profile.sample_interval_s)},\n')
        out.append(f'            "within_state_correlation": {_number(profile.within_state_correlation)},\n')
        out.append(f'            "real_statistics": {{\n{stats}            }},\n')
        out.append('            "regimes": (\n')
        indent = " " * 20
        for regime in profile.regimes:
            out.append("                {\n")
            out.append(f'{indent}"weight": {_number(regime.weight)},\n')
            occupancy = _vector(regime.occupancy, indent, '"occupancy": ')
            dwell = _vector(regime.mean_dwell_s, indent, '"mean_dwell_s": ')
            out.append(f'{indent}"occupancy": {occupancy},\n')
            out.append(f'{indent}"mean_dwell_s": {dwell},\n')
            out.append(f'{indent}"jump_probabilities": {_matrix(regime.jump_probabilities, indent)},\n')
            out.append(f'{indent}"state_quantiles_bps": {_matrix(regime.state_quantiles_bps, indent)},\n')
            out.append("                },\n")
        out.append("            ),\n        },\n")
    out.append("    }\n)\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    """Fit all profiles, print the comparison, and print or write the module."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder of the trace sets")
    parser.add_argument("--write", action="store_true", help="write abrsim/_profiles.py, not stdout")
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        sys.stderr.write(f"{args.shared} not found\n")
        return 1
    profiles = []
    for name, (folder, description, interval_s) in SETS.items():
        profile, real = fit_profile(name, args.shared / folder, description, interval_s)
        profiles.append(profile)
        sys.stderr.write(
            f"{name}: within_state_correlation {profile.within_state_correlation}, "
            f"typical {profile.typical_duration_s:g} s\n"
        )
        synthetic = network_statistics(synthesize_many(profile, FIT_TRACES, seed=FIT_SEED + 1))
        for key, want in real.as_dict().items():
            got = getattr(synthetic, key)
            sys.stderr.write(f"  {key:22s} real {want:14.6g}  synthetic {got:14.6g}\n")
    text = module_text(profiles)
    if args.write:
        target = Path(__file__).resolve().parents[1] / "abrsim" / "_profiles.py"
        target.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {target}\n")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
