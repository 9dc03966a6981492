"""A small MLP over abrsim.gym's observation, as a policy (docs/gym.md).

``train_cem.py`` trains its weights and writes them to ``results/gym_cem/mlp.npz`` (or the file
named by ``ABRSIM_MLP_WEIGHTS``); then it runs like any algorithm:

    abrsim run --policy docs/examples/mlp_policy.py:MlpPolicy --abr bola --abr robustmpc

The network: the observation divided by fixed scales, one tanh hidden layer, one logit per rung;
the policy takes the rung with the largest logit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from abrsim.gym import EnvPolicy

HIDDEN = 32
_LOADED: dict[Path, dict[str, np.ndarray]] = {}


def weights_path() -> Path:
    return Path(os.environ.get("ABRSIM_MLP_WEIGHTS", "results/gym_cem/mlp.npz"))


def unpack(theta: np.ndarray, inputs: int, rungs: int) -> tuple[np.ndarray, ...]:
    """The layers ``(w1, b1, w2, b2)`` of flat parameter vectors (one per row of ``theta``)."""
    theta = np.atleast_2d(theta)
    shapes = [(inputs, HIDDEN), (HIDDEN,), (HIDDEN, rungs), (rungs,)]
    layers, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        layers.append(theta[:, at:at + size].reshape(len(theta), *shape))
        at += size
    return tuple(layers)


def parameter_count(inputs: int, rungs: int) -> int:
    return inputs * HIDDEN + HIDDEN + HIDDEN * rungs + rungs


def logits(theta: np.ndarray, scale: np.ndarray, obs: np.ndarray, rungs: int) -> np.ndarray:
    """Logits of ``P`` networks (``theta``: P x parameters) on their observations (P x K x inputs)."""
    w1, b1, w2, b2 = unpack(theta, obs.shape[-1], rungs)
    hidden = np.tanh(np.matmul(obs / scale, w1) + b1[:, None, :])
    return np.matmul(hidden, w2) + b2[:, None, :]


class MlpPolicy(EnvPolicy):
    """The trained MLP (see the module doc)."""

    name = "cem_mlp"
    observation = "abrsim"
    history = 8

    def __init__(self) -> None:
        path = weights_path()
        if path not in _LOADED:
            with np.load(path) as saved:
                _LOADED[path] = {key: saved[key] for key in saved.files}
        self.theta = _LOADED[path]["theta"][None, :]
        self.scale = _LOADED[path]["scale"]
        self.rungs = int(_LOADED[path]["rungs"])

    def act(self, observation: np.ndarray) -> int:
        return int(np.argmax(logits(self.theta, self.scale, observation[None, None, :], self.rungs)[0, 0]))
