"""A small MLP over abrsim.gym's observation, as a policy (docs/gym.md).

``train_cem.py`` trains its weights and writes them to ``results/gym_cem/mlp.npz`` (or the file
named by ``ABRSIM_MLP_WEIGHTS``); then it runs like any algorithm:

    abrsim run --policy docs/examples/mlp_policy.py:MlpPolicy --abr bola --abr robustmpc

The network scores every rung with the same small MLP (weights shared by the rungs): its input
is the observation divided by fixed scales, plus three features of the rung itself (the
throughput its next segment needs over the last and over the mean measured throughput, and its
index / rungs); one ReLU hidden layer of 32; one score. The policy takes the rung with the
highest score. Sharing the scorer lets it learn one rule for all rungs ("the highest rung whose
need fits what the network delivers, given the buffer") instead of one output per rung.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from abrsim.gym import EnvPolicy

HIDDEN = 32
_LOADED: dict[Path, dict[str, np.ndarray]] = {}


RUNG_FEATURES = 3


def weights_path() -> Path:
    return Path(os.environ.get("ABRSIM_MLP_WEIGHTS", "results/gym_cem/mlp.npz"))


def parameter_count(inputs: int, rungs: int) -> int:
    """Parameters of the network (the same for any number of rungs)."""
    width = inputs + RUNG_FEATURES
    return width * HIDDEN + HIDDEN + HIDDEN


def unpack(theta: np.ndarray, inputs: int) -> tuple[np.ndarray, ...]:
    """The layers ``(w1, b1, w2)`` of flat parameter vectors (one per row of ``theta``)."""
    theta = np.atleast_2d(theta)
    width = inputs + RUNG_FEATURES
    shapes = [(width, HIDDEN), (HIDDEN,), (HIDDEN, 1)]
    layers, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        layers.append(theta[:, at:at + size].reshape(len(theta), *shape))
        at += size
    return tuple(layers)


def logits(theta: np.ndarray, scale: np.ndarray, obs: np.ndarray, rungs: int) -> np.ndarray:
    """Each rung's score, for ``P`` networks (``theta``: P x parameters) on their observations
    (P x K x inputs, the abrsim layout of docs/gym.md); returns P x K x rungs."""
    history = (obs.shape[-1] - rungs - 3) // 2
    sizes = obs[..., 2 * history:2 * history + rungs]  # Mbit
    last = obs[..., history - 1:history]
    mean = obs[..., :history].mean(axis=-1, keepdims=True)
    duration = scale[history]  # (train_cem.observation_scale: download times over the segment duration)
    need = sizes / duration  # Mbit/s the rung needs
    features = np.stack([need / np.maximum(last, 1e-3), need / np.maximum(mean, 1e-3),
                         np.broadcast_to(np.arange(rungs) / rungs, need.shape)], axis=-1)
    features = np.minimum(features, 10.0)
    w1, b1, w2 = unpack(theta, obs.shape[-1])
    inputs = obs.shape[-1]
    p, k = obs.shape[0], obs.shape[1]
    shared = np.matmul(obs / scale, w1[:, :inputs]) + b1[:, None, :]  # P x K x hidden
    own = np.matmul(features.reshape(p, k * rungs, -1), w1[:, inputs:]).reshape(p, k, rungs, -1)
    hidden = np.maximum(own + shared[:, :, None, :], 0.0)
    return np.matmul(hidden.reshape(p, k * rungs, -1), w2).reshape(p, k, rungs)


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
