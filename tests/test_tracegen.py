from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abrsim.trace import Trace, read_abrsim_csv
from abrsim.tracegen import constant, default_corpus, markov, step, write_default_corpus

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
        "constant_3mbps",
        "step_down_up",
        "markov_commute_1",
        "markov_commute_2",
        "markov_wifi_1",
        "markov_cellular_1",
    ]
    assert all(300.0 <= t.duration_s <= 600.0 for t in corpus)
    all_bps = np.concatenate([t.bandwidth_bps for t in corpus])
    positive_bps = all_bps[all_bps > 0]
    assert positive_bps.min() < 0.3e6  # below the second rung of an HLS ladder
    assert positive_bps.max() > 7.8e6  # above its top rung
    assert (all_bps == 0).any()  # one trace has outages
    assert all(same_arrays(a, b) for a, b in zip(corpus, default_corpus(2024), strict=True))
    other = default_corpus(seed=1)
    assert same_arrays(other[0], corpus[0])
    assert not same_arrays(other[2], corpus[2])


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
