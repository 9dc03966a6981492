"""``EnvPolicy``: a policy trained on :class:`abrsim.gym.AbrEnv`, as every engine runs it.

A trained policy is a function from the environment's observation to a rung. ``EnvPolicy`` is a
Python policy (docs/policies.md) that rebuilds that observation from what the player reports
(each finished download, then the state at the decision) with the environment's own kernels, and
asks the function. So ``abrsim run --policy``, sweep specs and ``abrsim compare`` evaluate a
trained policy like any algorithm: subclass ``EnvPolicy`` and define ``act``, or name a plain
function in the file (``--policy my_policy.py:act``; :func:`abrsim.abr.load_policy` wraps it
with :meth:`EnvPolicy.wrap`).

The observations equal the environment's up to the rounding of one subtraction (the transfer
time is the download time less the latency here, the last byte's time less the first byte's
in the environment), which float32 hides in all but rare cases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from abrsim.engine.step import LOG_COLUMNS
from abrsim.gym import _kernels
from abrsim.gym.env import _OBSERVATIONS, make_config
from abrsim.ladder import Ladder
from abrsim.model import PlayerModel

__all__ = ["EnvPolicy"]


class EnvPolicy:
    """A Python policy that decides with ``act(observation) -> rung`` on the environment's observation.

    Class attributes (the environment's arguments the policy was trained with):
        observation: ``"abrsim"`` or ``"pensieve"``.
        history: past downloads in the ``abrsim`` observation.
        name: the name results show (default: the class name).
    """

    observation: ClassVar[str] = "abrsim"
    history: ClassVar[int] = 8

    def act(self, observation: np.ndarray) -> int:
        """The rung for the next segment, from the environment's observation (float32)."""
        raise NotImplementedError("define act(observation) -> rung in a subclass, or use EnvPolicy.wrap")

    @classmethod
    def wrap(cls, function: Callable[[np.ndarray], Any], observation: str | None = None,
             history: int | None = None, name: str | None = None) -> type[EnvPolicy]:
        """A policy class that asks ``function`` (observation -> rung); the observation and history
        default to ``function``'s ``observation`` and ``history`` attributes, if it has them, else
        the environment's defaults.

        Raises:
            ValueError: if the observation is unknown.
        """
        kind = observation or getattr(function, "observation", cls.observation)
        if kind not in _OBSERVATIONS:
            raise ValueError(f'"observation" must be one of {", ".join(_OBSERVATIONS)}, got {kind!r}')
        length = int(history if history is not None else getattr(function, "history", cls.history))
        label = name or getattr(function, "__name__", None) or type(function).__name__

        def act(self: EnvPolicy, values: np.ndarray) -> int:
            return function(values)  # type: ignore[no-any-return]

        return type(label, (cls,), {"observation": kind, "history": length, "name": label, "act": act,
                                    "__module__": getattr(function, "__module__", __name__)})

    # The Python-policy protocol (abrsim.abr.PythonPolicy).
    def reset(self, ladder: Ladder, model: PlayerModel, rng: np.random.Generator) -> None:
        kind = _OBSERVATIONS[self.observation]
        self._cfg = make_config(kind, self.history, ladder)
        self._size_bits = np.ascontiguousarray(ladder.size_bits, dtype=np.float64)
        self._state = np.zeros(_kernels.state_size(self.history))
        self._log = np.zeros((1, LOG_COLUMNS))
        self._downloads = np.zeros((4, 6))
        self._count = 0
        shape = ((_kernels.PENSIEVE_ROWS, _kernels.PENSIEVE_COLUMNS) if kind == _kernels.OBSERVATION_PENSIEVE
                 else (_kernels.observation_size(kind, self.history, ladder.rung_count),))
        self._obs = np.zeros(shape, dtype=np.float32)

    def on_download(self, obs: Any, abandoned: bool) -> None:
        if abandoned:
            return
        if self._count == self._downloads.shape[0]:
            self._downloads = np.concatenate([self._downloads, np.zeros_like(self._downloads)])
        self._downloads[self._count] = (obs.download_rung, obs.segment_index, obs.download_size_bits,
                                        obs.download_latency_s, obs.download_s, obs.buffer_s)
        self._count += 1

    def choose(self, obs: Any) -> int:
        _kernels.observe_policy(self._state, self._log, self._downloads, self._count, self._size_bits,
                                self._cfg, obs.buffer_s, obs.segment_index, obs.last_rung, obs.segments,
                                self._obs.reshape(-1))
        self._count = 0
        return self.act(self._obs.copy())  # type: ignore[no-any-return]
