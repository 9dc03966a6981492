from __future__ import annotations

import pytest

from abrsim.errors import InputError, UnknownNameError
from abrsim.model import PRESETS, PlayerModel, get_preset
from abrsim.runner import parse_params, resolve_params


@pytest.mark.parametrize(("field", "value"), [
    ("request_latency_s", -0.1), ("goodput_factor", 0.0), ("goodput_factor", 1.5),
    ("max_buffer_s", 0.0), ("startup_threshold_s", 99.0), ("resume_threshold_s", -1.0),
    ("first_rung", -2), ("estimator", "kalman"), ("ewma_half_lives_s", ()),
    ("sliding_window_sizes", (0,)), ("sliding_window_sizes", (21,)),
])
def test_invalid_model_fields_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        PlayerModel(**{field: value})


def test_replace_coerces_text_and_validates():
    model = PlayerModel().replace(max_buffer_s="30", ewma_half_lives_s="2,5", first_rung="-1")
    assert model.max_buffer_s == 30.0
    assert model.ewma_half_lives_s == (2.0, 5.0)
    assert model.first_rung == -1
    with pytest.raises(InputError, match="max_buffer_s"):
        PlayerModel().replace(max_buffer_s="lots")
    with pytest.raises(InputError, match="goodput_factor"):
        PlayerModel().replace(goodput_factor="2")
    with pytest.raises(UnknownNameError, match="player model field"):
        PlayerModel().replace(max_buffer="30")


def test_presets():
    assert get_preset("abrsim") is PRESETS["abrsim"]
    with pytest.raises(UnknownNameError, match="abrsim"):
        get_preset("nope")


def test_parse_params():
    assert parse_params(["a=1", " b = x ", "bola.a=2"]) == {"a": "1", "b": "x", "bola.a": "2"}
    with pytest.raises(InputError, match=r"--param a'?: given twice \('1', then '2'\)"):
        parse_params(["a=1", "b=3", " a =2"])
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_params(["gamma_p"])
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_params(["=3"])


def test_resolve_params_routes_keys():
    per_algorithm, model = resolve_params(
        {"gamma_p": "4", "throughput.safety_factor": "0.8", "max_buffer_s": "20",
         "model.estimator": "sliding"},
        ["bola", "throughput"], PlayerModel())
    assert per_algorithm == {"bola": {"gamma_p": "4"}, "throughput": {"safety_factor": "0.8"}}
    assert model.max_buffer_s == 20.0
    assert model.estimator == "sliding"
    with pytest.raises(UnknownNameError, match="gama_p"):
        resolve_params({"gama_p": "4"}, ["bola"], PlayerModel())
    with pytest.raises(UnknownNameError, match="algorithm in --param"):
        resolve_params({"mpc.horizon": "4"}, ["bola"], PlayerModel())


def test_a_scoped_param_wins_over_a_bare_one_whatever_their_order():
    for params in ({"bola.gamma_p": "4", "gamma_p": "6"}, {"gamma_p": "6", "bola.gamma_p": "4"}):
        per_algorithm, _ = resolve_params(params, ["bola", "bolae"], PlayerModel())
        assert per_algorithm == {"bola": {"gamma_p": "4"}, "bolae": {"gamma_p": "6"}}


@pytest.mark.parametrize("key", ["name", "model.name", "algorithm_defaults", "model.algorithm_defaults"])
def test_the_model_name_and_its_algorithm_defaults_are_not_parameters(key):
    with pytest.raises(UnknownNameError) as error:
        resolve_params({key: "x"}, ["bola"], PlayerModel())
    assert "algorithm_defaults" not in str(error.value).partition("expected")[2]


def test_top_level_api():
    import abrsim

    for name in abrsim.__all__:
        assert getattr(abrsim, name) is not None
    with pytest.raises(AttributeError):
        abrsim.nonexistent  # noqa: B018
