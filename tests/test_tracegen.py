from __future__ import annotations

from pathlib import Path

import naive
import numpy as np
import pytest

from abrsim.errors import UnknownNameError
from abrsim.trace import OUTAGE_THRESHOLD_BPS, Trace, interval_means_bps, read_abrsim_csv
from abrsim.tracegen import (
    NetworkStatistics,
    ProfileRegime,
    TraceProfile,
    available_profiles,
    constant,
    default_corpus,
    get_profile,
    markov,
    network_statistics,
    step,
    synthesize,
    synthesize_each,
    synthesize_many,
    write_default_corpus,
)

COMMITTED_TRACES = Path(__file__).resolve().parents[1] / "traces"


def same_arrays(a: Trace, b: Trace) -> bool:
    return (
        a.name == b.name
        and a.duration_s == b.duration_s
        and a.start_s.tobytes() == b.start_s.tobytes()
        and a.bandwidth_bps.tobytes() == b.bandwidth_bps.tobytes()
    )


def test_constant() -> None:
    trace = constant(3e6, 300.0)
    assert trace.name == "constant"
    assert list(trace.start_s) == [0.0]
    assert list(trace.bandwidth_bps) == [3e6]
    assert trace.duration_s == 300.0
    assert trace.bandwidth_at(12345.0) == 3e6


def test_step() -> None:
    trace = step([6e6, 1.5e6, 0.0, 4e6], 120.0, name="s")
    assert trace.name == "s"
    assert list(trace.start_s) == [0.0, 120.0, 240.0, 360.0]
    assert list(trace.bandwidth_bps) == [6e6, 1.5e6, 0.0, 4e6]
    assert trace.duration_s == 480.0
    assert trace.bandwidth_at(480.0 + 250.0) == 0.0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: constant(0.0, 10.0), '"bandwidth_bps" must be finite and > 0, got 0.0'),
        (lambda: constant(1e6, -1.0), '"duration_s" must be finite and > 0, got -1.0'),
        (lambda: step([], 10.0), '"levels_bps" must be a non-empty sequence'),
        (lambda: step([1e6], np.nan), '"step_duration_s" must be finite and > 0, got nan'),
        (lambda: step([1e6, -1.0], 1.0), "sample 1 is -1.0"),
    ],
)
def test_deterministic_shapes_validate(make: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()  # type: ignore[operator]


def test_markov_same_seed_same_trace() -> None:
    def make(seed: int) -> Trace:
        return markov(np.random.default_rng(seed), [0.0, 1e6, 4e6], [2.0, 10.0, 20.0], 500.0, 0.5, 0.2)

    assert same_arrays(make(7), make(7))
    assert not same_arrays(make(7), make(8))


def test_markov_sampling_grid() -> None:
    trace = markov(np.random.default_rng(0), [1e6, 2e6], 5.0, duration_s=10.5, sample_interval_s=1.0)
    assert trace.start_s.size == 11
    assert trace.sample_duration_s[-1] == 0.5
    trace = markov(np.random.default_rng(0), [1e6, 2e6], 5.0, duration_s=0.3, sample_interval_s=0.1)
    assert trace.start_s.size == 3  # no zero-length sample from 0.3 / 0.1 rounding


def test_markov_mean_matches_stationary_mean() -> None:
    # stationary probabilities are proportional to the mean dwell: 1/4 and 3/4
    states_bps, dwell_s = np.array([1e6, 5e6]), np.array([10.0, 30.0])
    trace = markov(np.random.default_rng(2024), states_bps, dwell_s, duration_s=400_000.0, noise_cv=0.3)
    expected_bps = float(np.dot(states_bps, dwell_s / dwell_s.sum()))  # 4 Mbit/s
    # about 10^4 visits per state: the standard error of the mean is ~0.5 %
    assert trace.mean_bandwidth_bps == pytest.approx(expected_bps, rel=0.03)


def test_markov_noise_is_mean_one_with_the_given_cv() -> None:
    trace = markov(np.random.default_rng(1), [2e6], 10.0, duration_s=100_000.0, noise_cv=0.25)
    noise = trace.bandwidth_bps / 2e6
    assert noise.mean() == pytest.approx(1.0, abs=0.01)
    assert noise.std() / noise.mean() == pytest.approx(0.25, rel=0.05)
    exact = markov(np.random.default_rng(1), [2e6, 3e6], 10.0, duration_s=100.0, noise_cv=0.0)
    assert set(exact.bandwidth_bps) <= {2e6, 3e6}


def test_markov_outage_stays_zero() -> None:
    trace = markov(np.random.default_rng(3), [0.0, 2e6, 3e6], [5.0, 20.0, 25.0], 200_000.0, noise_cv=0.5)
    zero = trace.bandwidth_bps == 0.0
    assert zero.any()
    assert np.all(trace.bandwidth_bps[~zero] > 0)
    assert zero.mean() == pytest.approx(5.0 / 50.0, rel=0.1)  # the outage state's stationary share


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"state_bandwidths_bps": []}, '"state_bandwidths_bps" must be a non-empty'),
        ({"state_bandwidths_bps": [0.0, 0.0]}, "not all 0, got"),
        ({"state_bandwidths_bps": [1e6, -1.0]}, r"got \[1000000.0, -1.0\]"),
        ({"mean_dwell_s": 0.0}, '"mean_dwell_s" must be finite and > 0, one value or 2'),
        ({"mean_dwell_s": [1.0, 2.0, 3.0]}, r"got \[1.0, 2.0, 3.0\]"),
        ({"duration_s": 0.0}, '"duration_s" must be finite and > 0, got 0.0'),
        ({"sample_interval_s": -1.0}, '"sample_interval_s" must be finite and > 0, got -1.0'),
        ({"noise_cv": -0.1}, '"noise_cv" must be finite and >= 0, got -0.1'),
    ],
)
def test_markov_validates(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {
        "state_bandwidths_bps": [1e6, 2e6],
        "mean_dwell_s": 10.0,
        "duration_s": 100.0,
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        markov(np.random.default_rng(0), **arguments)  # type: ignore[arg-type]


def test_default_corpus() -> None:
    corpus = default_corpus()
    assert [t.name for t in corpus] == [
        "3g_low",
        "3g_high",
        "broadband_low",
        "broadband_high",
        "4g_low",
        "4g_high",
    ]
    assert all(300.0 <= t.duration_s <= 600.0 for t in corpus)
    all_bps = np.concatenate([t.bandwidth_bps for t in corpus])
    positive_bps = all_bps[all_bps > 0]
    assert positive_bps.min() < 0.3e6  # below the second rung of the HLS ladder
    assert positive_bps.max() > 7.8e6  # above its top rung
    assert (all_bps == 0).any()  # the 4G traces have outages
    assert np.all(all_bps == np.round(all_bps, -3))  # whole kbit/s
    # the low regime of each profile is slower than its high regime
    means = {t.name: t.mean_bandwidth_bps for t in corpus}
    assert all(means[f"{p}_low"] < means[f"{p}_high"] for p in ("3g", "broadband", "4g"))
    assert all(same_arrays(a, b) for a, b in zip(corpus, default_corpus(2024), strict=True))
    other = default_corpus(seed=1)
    assert not any(same_arrays(a, b) for a, b in zip(corpus, other, strict=True))


def test_write_default_corpus_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    first = write_default_corpus(tmp_path / "a")
    second = write_default_corpus(tmp_path / "b", seed=2024)
    assert [p.name for p in first] == [f"{t.name}.csv" for t in default_corpus()] + ["README.md"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    for path, trace in zip(first[:-1], default_corpus(), strict=True):
        assert same_arrays(read_abrsim_csv(path), trace)
    readme = first[-1].read_text()
    assert "abrsim traces generate --out traces/" in readme
    assert "# duration_s=" in readme
    assert all(f"`{t.name}.csv`" in readme for t in default_corpus())


@pytest.mark.skipif(not COMMITTED_TRACES.is_dir(), reason="no traces/ folder in this checkout")
def test_committed_corpus_is_up_to_date(tmp_path: Path) -> None:
    for path in write_default_corpus(tmp_path):
        committed = COMMITTED_TRACES / path.name
        assert committed.read_bytes() == path.read_bytes(), f"regenerate {committed}"


# ------------------------------------------------------------------------- fitted profiles


def test_available_profiles() -> None:
    assert available_profiles() == ["3g", "4g", "5g", "broadband"]
    with pytest.raises(UnknownNameError, match="unknown trace profile '6g'; expected one of: 3g, 4g, 5g"):
        get_profile("6g")


@pytest.mark.parametrize("name", ["3g", "4g", "5g", "broadband"])
def test_profile_is_well_formed(name: str) -> None:
    profile = get_profile(name)
    assert profile.name == name
    assert len(profile.regimes) == 5
    assert sum(r.weight for r in profile.regimes) == pytest.approx(1.0, abs=1e-5)  # printed to 6 digits
    assert set(profile.real_statistics) == set(NetworkStatistics.__dataclass_fields__)
    for regime in profile.regimes:
        assert regime.state_count == 8
        assert regime.occupancy.sum() == pytest.approx(1.0)
        assert np.all(regime.state_quantiles_bps >= OUTAGE_THRESHOLD_BPS)
        live = regime.occupancy > 0
        assert np.allclose(regime.jump_probabilities[live].sum(axis=1), 1.0)
        with pytest.raises(ValueError, match="read-only"):
            regime.occupancy[0] = 1.0
    # outages: none in the 3G set, some in the others
    assert (profile.real_statistics["outage_fraction"] == 0) == (name == "3g")


def test_profile_means_are_ordered() -> None:
    means = {name: get_profile(name).real_statistics["mean_bps"] for name in available_profiles()}
    assert means["3g"] < means["4g"] < means["5g"]
    assert 1e6 < means["broadband"] < 2e6


def regime(**changes: object) -> ProfileRegime:
    fields: dict[str, object] = {
        "weight": 1.0,
        "occupancy": [0.5, 0.5, 0.0],
        "mean_dwell_s": [2.0, 3.0, 1.0],
        "jump_probabilities": [[0, 1, 0], [1, 0, 0], [0, 0, 0]],
        "state_quantiles_bps": [[1e5, 2e5], [2e5, 5e5]],
    }
    fields.update(changes)
    return ProfileRegime(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"weight": 0.0}, '"weight" must be finite and > 0'),
        ({"occupancy": [0.5, 0.4, 0.0]}, '"occupancy" must be 3 shares'),
        ({"mean_dwell_s": [0.0, 3.0, 1.0]}, '"mean_dwell_s" must be 3 values > 0'),
        ({"jump_probabilities": [[0, 1, 0], [0.5, 0, 0], [0, 0, 0]]}, '"jump_probabilities"'),
        ({"jump_probabilities": [[1, 0, 0], [1, 0, 0], [0, 0, 0]]}, "zero diagonal"),
        ({"state_quantiles_bps": [[2e5, 1e5], [2e5, 5e5]]}, "non-decreasing"),
        ({"state_quantiles_bps": [[np.nan, 1e5], [2e5, 5e5]]}, "finite 2-d array"),
    ],
)
def test_profile_regime_validates(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        regime(**changes)


def test_trace_profile_validates() -> None:
    with pytest.raises(ValueError, match="weights summing to 1"):
        TraceProfile("x", "", (regime(weight=0.5),), 0.5, 100.0)
    with pytest.raises(ValueError, match='"within_state_correlation" must be in'):
        TraceProfile("x", "", (regime(),), 1.0, 100.0)
    with pytest.raises(ValueError, match='"typical_duration_s"'):
        TraceProfile("x", "", (regime(),), 0.5, 0.0)
    with pytest.raises(ValueError, match='"sample_interval_s" must be finite and > 0'):
        TraceProfile("x", "", (regime(),), 0.5, 10.0, sample_interval_s=0.0)
    with pytest.raises(ValueError, match=r'regime 0: "mean_dwell_s" must be >= one sample \(5 s\)'):
        TraceProfile("x", "", (regime(),), 0.5, 10.0, sample_interval_s=5.0)


def test_synthesize_with_a_longer_sample_interval() -> None:
    slow = regime(mean_dwell_s=[10.0, 15.0, 5.0])
    profile = TraceProfile("slow", "", (slow,), 0.0, 60.0, sample_interval_s=5.0)
    trace = synthesize(profile, np.random.default_rng(1), 23.0)
    assert trace.start_s.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert trace.duration_s == 23.0


def test_synthesize_small_profile() -> None:
    profile = TraceProfile("two", "two states", (regime(),), 0.5, 100.0)
    trace = synthesize(profile, np.random.default_rng(3), 50.5, name="t")
    assert trace.name == "t"
    assert trace.start_s.size == 51
    assert trace.duration_s == 50.5
    assert np.all((trace.bandwidth_bps >= 1e5) & (trace.bandwidth_bps <= 5e5))  # no outage state visited
    assert synthesize(profile, np.random.default_rng(3)).duration_s == 100.0


def test_synthesize_is_deterministic_and_uses_the_regime() -> None:
    first = synthesize("4g", np.random.default_rng(5), 300.0, regime=0)
    second = synthesize("4g", np.random.default_rng(5), 300.0, regime=0)
    assert same_arrays(first, second)
    assert first.name == "4g"
    low = np.mean([synthesize("4g", np.random.default_rng(s), 300.0, regime=0).mean_bandwidth_bps
                   for s in range(20)])
    high = np.mean([synthesize("4g", np.random.default_rng(s), 300.0, regime=4).mean_bandwidth_bps
                    for s in range(20)])
    assert low < high
    with pytest.raises(ValueError, match='"regime" must be in 0..4'):
        synthesize("4g", np.random.default_rng(5), 300.0, regime=5)
    with pytest.raises(ValueError, match='"duration_s" must be finite and > 0'):
        synthesize("4g", np.random.default_rng(5), -1.0)


def test_synthesized_outages_are_zero_and_the_rest_above_the_threshold() -> None:
    traces = synthesize_many("5g", 50, 300.0, seed=2)
    bandwidth_bps = np.concatenate([t.bandwidth_bps for t in traces])
    assert (bandwidth_bps == 0).any()
    assert np.all((bandwidth_bps == 0) | (bandwidth_bps >= OUTAGE_THRESHOLD_BPS))


def test_synthesize_many_prefix_is_stable() -> None:
    ten = synthesize_many("3g", 10, 120.0, seed=7)
    four = synthesize_many("3g", 4, 120.0, seed=7)
    assert [t.name for t in ten[:3]] == ["3g_001", "3g_002", "3g_003"]
    assert all(same_arrays(a, b) for a, b in zip(four, ten[:4], strict=True))
    assert not same_arrays(ten[0], synthesize_many("3g", 1, 120.0, seed=8)[0])
    assert synthesize_many("3g", 2, 120.0, seed=7, name_prefix="x")[1].name == "x_002"
    with pytest.raises(ValueError, match='"count" must be an integer >= 1'):
        synthesize_many("3g", 0)
    # One at a time, the same traces as drawing from the count seeds spawned at once.
    from abrsim.tracegen import _regime_for, _van_der_corput, get_profile, synthesize

    model, root = get_profile("3g"), np.random.SeedSequence(7)
    offset = float(np.random.default_rng(root).uniform())
    spawned = [synthesize(model, np.random.default_rng(child), 120.0, name=f"3g_{i + 1:03d}",
                          regime=_regime_for(model, (_van_der_corput(i + 1) + offset) % 1.0))
               for i, child in enumerate(root.spawn(10))]
    each = synthesize_each("3g", 10, 120.0, seed=7)
    assert all(same_arrays(a, b) and a.name == b.name for a, b in zip(each, spawned, strict=True))


def test_network_statistics_by_hand() -> None:
    first = Trace([0.0, 2.0], [1e6, 0.0], 4.0)  # 1 s means: 1, 1, 0, 0 Mbit/s
    second = Trace([0.0], [3e6], 2.0)
    stats = network_statistics([first, second])
    assert stats.mean_bps == pytest.approx(8e6 / 6)  # 1 s means 1, 1, 0, 0, 3, 3 Mbit/s
    assert stats.outage_fraction == pytest.approx(2 / 6)
    # within-trace lag-1: first centred on 0.5: (0.25 - 0.25 + 0.25) / 1; second is constant
    assert stats.lag1_autocorrelation == pytest.approx(0.25)
    assert stats.as_dict()["p90_bps"] == stats.p90_bps
    many = [Trace([0.0], [1e6 * (k % 7 + 1)], 2.0 + k % 3) for k in range(3000)]  # past a 1024-trace chunk
    pooled = np.concatenate([interval_means_bps(trace) for trace in many])
    streamed = network_statistics(iter(many))
    assert (streamed.mean_bps, streamed.p10_bps, streamed.p90_bps) == (
        pooled.mean(), np.percentile(pooled, 10), np.percentile(pooled, 90))
    with pytest.raises(ValueError, match="no trace is at least 1 s long"):
        network_statistics([Trace([0.0], [1e6], 0.5)])


SYNTHETIC_SECONDS_PER_PROFILE = 1_000_000  # enough that rare outages are counted to a few percent


def test_profiles_match_their_real_sets_within_10_percent() -> None:
    """Synthetic traces match the real set on mean, p10, p90, lag-1 autocorrelation and outage share.

    Fixed seeds; about 10^6 synthetic seconds per profile at the real set's median trace length.
    ``python benchmarks/trace_profiles.py`` prints the same comparison over several seeds.
    """
    report = []
    failures = []
    for name in available_profiles():
        profile = get_profile(name)
        count = int(np.ceil(SYNTHETIC_SECONDS_PER_PROFILE / profile.typical_duration_s))
        synthetic = network_statistics(synthesize_many(profile, count, seed=1)).as_dict()
        for key, real in profile.real_statistics.items():
            error = abs(synthetic[key] - real) / real if real else abs(synthetic[key])
            report.append(f"{name:10s} {key:22s} real {real:12.5g} synthetic {synthetic[key]:12.5g} "
                          f"error {100 * error:5.1f} %")
            if error > 0.10:
                failures.append(report[-1])
    assert not failures, "\n".join(report)


def test_real_statistics_are_those_of_the_shared_sets() -> None:
    """The statistics stored with each profile are those of ../shared/traces (skipped without it)."""
    from conftest import shared_path

    from abrsim.trace import load_traces

    folders = {"3g": "hsdpa_norway_3g", "4g": "lte_belgium_4g", "5g": "lumos5g_mmwave_5g",
               "broadband": "fcc_broadband"}
    for name, folder in folders.items():
        real = network_statistics(load_traces(shared_path("traces", folder))).as_dict()
        stored = get_profile(name).real_statistics
        for key, value in real.items():
            assert stored[key] == pytest.approx(value, rel=1e-5, abs=1e-9), (name, key)


# ------------------------------------------------------------------------------------- CLI


def test_cli_synth(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from abrsim.cli import cli

    runner = CliRunner()
    args = ["traces", "synth", "--profile", "4g", "--count", "3", "--duration-s", "60", "--seed", "1", "-o"]
    result = runner.invoke(cli, [*args, str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "wrote 3 4g traces of 60 s" in result.output
    assert "outage_fraction" in result.output
    files = sorted((tmp_path / "a").iterdir())
    assert [f.name for f in files] == ["4g_001.csv", "4g_002.csv", "4g_003.csv"]
    assert runner.invoke(cli, [*args, str(tmp_path / "b")]).exit_code == 0
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in sorted((tmp_path / "b").iterdir())]
    assert same_arrays(read_abrsim_csv(files[0]), synthesize_many("4g", 1, 60.0, seed=1)[0])
    result = runner.invoke(cli, ["traces", "synth", "--profile", "wifi", "-o", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "unknown trace profile 'wifi'" in result.output
    result = runner.invoke(cli, [*args[:-3], "--duration-s", "-5", "-o", str(tmp_path / "d")])
    assert result.exit_code == 2
    assert "--duration-s" in result.output


@pytest.mark.parametrize("name", ["3g", "4g", "5g", "broadband"])
def test_compiled_state_walk_equals_the_naive_one(name):
    """The compiled dwell-by-dwell walk draws the same states from the same uniforms as plain Python,
    across block boundaries (long traces) and for every regime."""
    from abrsim.tracegen import _state_sequence

    profile = get_profile(name)
    for index, regime in enumerate(profile.regimes):
        for seed, samples in ((index, 1), (index + 10, 300), (index + 20, 5000)):
            interval_s = profile.sample_interval_s
            got = _state_sequence(regime, np.random.default_rng(seed), samples, interval_s)
            want = naive.state_sequence(regime, np.random.default_rng(seed), samples, interval_s)
            assert np.array_equal(got, want), (name, index, samples)


@pytest.mark.parametrize("name", ["3g", "4g", "5g", "broadband"])
def test_compiled_interpolation_equals_numpy_interp(name):
    """Bandwidths from quantile positions: the same bits as numpy.interp state by state, at the
    grid's points, its ends and in between, flat stretches included."""
    from abrsim.tracegen import _interpolate_states

    rng = np.random.default_rng(5)
    for regime in get_profile(name).regimes:
        _, _, log_quantiles, grid, slopes = regime._tables
        positions = np.concatenate([rng.uniform(size=3000), grid, [0.0, 1.0, np.nextafter(1.0, 0.0), 5e-324]])
        states = rng.integers(0, regime.state_count + 1, positions.size)
        got = np.where(states < regime.state_count,
                       np.exp(_interpolate_states(positions, states, grid, log_quantiles, slopes)), 0.0)
        assert np.array_equal(got, naive.state_bandwidths(positions, states, log_quantiles))
