from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from abrsim.ladder import Ladder, Rung
from abrsim.trace import Trace

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# CI (.ci/run sets HYPOTHESIS_PROFILE=ci) draws the same examples on every run, so a result
# does not depend on luck; a developer's run explores new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips the test when the folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def step_trace(bandwidths_bps, durations_s, name: str = "") -> Trace:
    """A trace of ``bandwidths_bps`` held for the first ``len(bandwidths_bps)`` of ``durations_s``."""
    durations = np.asarray(durations_s[:len(bandwidths_bps)], dtype=float)
    starts = np.concatenate(([0.0], np.cumsum(durations[:-1])))
    return Trace(starts, bandwidths_bps, float(durations.sum()), name=name)


@pytest.fixture(autouse=True)
def registry_as_it_was():
    """Policies a test registers (a file loaded with ``load_policy`` may register compiled ones) do
    not leak into other tests, e.g. those that list the algorithms or sweep over "all"."""
    import abrsim.abr as abr
    from abrsim.abr import _python

    saved = dict(abr._REGISTRY)
    yield
    abr._REGISTRY.clear()
    abr._REGISTRY.update(saved)
    _python._MODULES.clear()  # a file that registers policies registers them again when loaded


@pytest.fixture
def tiny_trace() -> Trace:
    return Trace([0.0, 10.0, 20.0], [3e6, 0.4e6, 5e6], 40.0, name="tiny")


@pytest.fixture
def tiny_ladder() -> Ladder:
    rungs = [Rung(b) for b in (300e3, 750e3, 1.2e6, 2.85e6, 4.3e6)]
    return Ladder.cbr(rungs, 4.0, 30, name="tiny")


@pytest.fixture
def vbr_ladder() -> Ladder:
    rng = np.random.default_rng(7)
    bitrates = np.array([230e3, 477e3, 991e3, 2056e3, 5027e3])
    sizes = bitrates * 3.0 * rng.uniform(0.6, 1.5, size=(40, 5))
    return Ladder(tuple(Rung(b) for b in bitrates), 3.0, sizes, name="vbr")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
