from __future__ import annotations

import math

import numpy as np
import pytest

from abrsim.errors import InputError
from abrsim.failures import (
    DEFAULT_STATEMENTS,
    FailureStatement,
    evaluate,
    failure_counts,
    statements_from_config,
)
from abrsim.qoe import METRICS


def row(**values: float) -> dict[str, float]:
    """A result row with harmless metrics, changed by ``values``."""
    base = dict.fromkeys(METRICS, 0.0)
    base.update(played_s=600.0, startup_s=0.5)
    base.update(values)
    return base


def test_default_statements_are_the_streaming_targets():
    by_name = {s.name: s for s in DEFAULT_STATEMENTS}
    assert list(by_name) == ["slow_start", "abandoned_start", "any_rebuffer", "heavy_rebuffer",
                             "switch_storm"]
    assert by_name["slow_start"].definition == "startup_s > 2"
    assert by_name["abandoned_start"].definition == "startup_s > 3"
    assert by_name["any_rebuffer"].definition == "rebuffer_count > 0"
    assert by_name["heavy_rebuffer"].definition == "rebuffer_ratio > 0.01"
    assert by_name["switch_storm"].definition == "switch_count per minute > 4"
    assert all(s.metric in METRICS for s in DEFAULT_STATEMENTS)


def test_hand_made_rows():
    rows = [
        row(),                                                  # a good session
        row(startup_s=2.0),                                     # exactly at the target: not slow
        row(startup_s=2.5),                                     # slow, not abandoned
        row(startup_s=3.2),                                     # slow and abandoned
        row(rebuffer_count=1, rebuffer_s=1.0, rebuffer_ratio=1 / 601),  # one short stall
        row(rebuffer_count=3, rebuffer_s=30.0, rebuffer_ratio=30 / 630),  # heavy
        row(switch_count=40),                                   # 4 per minute over 10 min: not a storm
        row(switch_count=41),                                   # 4.1 per minute: a storm
        row(switch_count=3, played_s=30.0),                     # 6 per minute in a 30 s clip
    ]
    got = {name: failed.tolist() for name, failed in evaluate(rows).items()}
    assert got == {
        "slow_start": [False, False, True, True, False, False, False, False, False],
        "abandoned_start": [False, False, False, True, False, False, False, False, False],
        "any_rebuffer": [False, False, False, False, True, True, False, False, False],
        "heavy_rebuffer": [False, False, False, False, False, True, False, False, False],
        "switch_storm": [False, False, False, False, False, False, False, True, True],
    }
    assert failure_counts(rows) == {"slow_start": 2, "abandoned_start": 1, "any_rebuffer": 2,
                                    "heavy_rebuffer": 1, "switch_storm": 2}


def test_values_may_be_text_and_nan_never_fails():
    rows = [{"mean_quality": "nan"}, {"mean_quality": "40"}, {"mean_quality": 95.0}]
    low_quality = FailureStatement("low_quality", "mean_quality", 60.0, op="<")
    assert low_quality.holds(rows).tolist() == [False, True, False]
    assert low_quality.definition == "mean_quality < 60"


def test_operators():
    rows = [row(startup_s=v) for v in (1.0, 2.0, 3.0)]
    for op, expected in ((">", [False, False, True]), (">=", [False, True, True]),
                         ("<", [True, False, False]), ("<=", [True, True, False])):
        assert FailureStatement("s", "startup_s", 2.0, op=op).holds(rows).tolist() == expected


def test_missing_column_is_an_input_error():
    with pytest.raises(InputError, match="rebuffer_count"):
        evaluate([{"startup_s": 1.0}])


@pytest.mark.parametrize("kwargs", [{"op": "=="}, {"threshold": math.nan}, {"name": ""}])
def test_constructor_validates(kwargs):
    args = {"name": "s", "metric": "startup_s", "threshold": 1.0, **kwargs}
    with pytest.raises(ValueError, match="name|op|threshold"):
        FailureStatement(**args)


def test_config_changes_drops_and_adds():
    statements = statements_from_config({
        "switch_storm": 6,
        "any_rebuffer": False,
        "slow_start": {"threshold": 1.5, "doc": "stricter"},
        "long_stall": {"metric": "rebuffer_s", "threshold": 10},
        "low_bitrate": {"metric": "mean_bitrate_bps", "threshold": 1e6, "op": "<"},
        "heavy_rebuffer": True,
    })
    by_name = {s.name: s for s in statements}
    assert list(by_name) == ["slow_start", "abandoned_start", "heavy_rebuffer", "switch_storm", "long_stall",
                             "low_bitrate"]
    assert by_name["switch_storm"].threshold == 6.0
    assert by_name["switch_storm"].per_minute
    assert by_name["slow_start"].threshold == 1.5
    assert by_name["long_stall"].definition == "rebuffer_s > 10"
    assert by_name["low_bitrate"].holds([row(mean_bitrate_bps=5e5)]).tolist() == [True]
    assert statements_from_config({}) == DEFAULT_STATEMENTS


@pytest.mark.parametrize(("config", "field", "message"), [
    ({"slow_start": "fast"}, "failures.slow_start", "expected false, a threshold or a table"),
    ({"slow_start": {"thresold": 1}}, "failures.slow_start", "unknown key 'thresold'"),
    ({"long_stall": {"metric": "rebuffer_s"}}, "failures.long_stall", "needs metric and threshold"),
    ({"long_stall": {"metric": "stall_time", "threshold": 1}}, "failures.long_stall.metric",
     "unknown metric 'stall_time'"),
    ({"slow_start": {"op": "=="}}, "failures.slow_start", '"op" must be one of'),
    ({"slow_start": {"threshold": "2"}}, "failures.slow_start.threshold", "expected a number"),
    ({"slow_start": {"per_minute": 1}}, "failures.slow_start.per_minute", "expected true or false"),
    ({"new_one": True}, "failures.new_one", "unknown statement"),
])
def test_config_errors_name_file_and_key(config, field, message):
    with pytest.raises(InputError) as info:
        statements_from_config(config, source="spec.toml")
    text = str(info.value)
    assert text.startswith(f"spec.toml, field '{field}'"), text
    assert message in text
    assert "\n" not in text


def test_evaluate_is_vectorised_over_many_rows():
    rng = np.random.default_rng(3)
    startup_s = rng.uniform(0, 4, size=1000)
    rows = [row(startup_s=float(v)) for v in startup_s]
    assert evaluate(rows)["slow_start"].tolist() == (startup_s > 2).tolist()
