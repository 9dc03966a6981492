"""``AbrVectorEnv``: N sessions stepped in one compiled call, with next-step autoreset.

Each sub-environment is an :class:`abrsim.gym.AbrEnv` with its own random generator: after
``reset(seed=s)`` sub-environment ``i`` draws its traces exactly as ``AbrEnv`` reset with seed
``s + i`` does, so the vector environment equals N single ones step for step. An environment
whose session ended in a step is reset in the next (Gymnasium's ``AutoresetMode.NEXT_STEP``):
its action is ignored, its observation is the new session's first, its reward 0 and
``terminated`` False.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from abrsim.engine import _session as driver
from abrsim.gym import _kernels
from abrsim.gym.env import Reward, Scenario
from abrsim.ladder import Ladder
from abrsim.model import PlayerModel

__all__ = ["AbrVectorEnv"]

#: Log rows each sub-environment keeps: only the current step's (the log is rewound every step).
STEP_LOG_ROWS = 4


class AbrVectorEnv(VectorEnv):  # type: ignore[misc]
    """``num_envs`` :class:`~abrsim.gym.AbrEnv` sessions stepped together in compiled code.

    Args:
        num_envs: the number of sessions, >= 1.
        copy: return copies of the observation and reward arrays (False: the same arrays,
            overwritten by the next step).
        **kwargs: the scenario, as for :class:`~abrsim.gym.AbrEnv`.

    Raises:
        ValueError: if ``num_envs`` < 1, or a scenario argument is out of range.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, copy: bool = True, traces: Any = None,
                 ladder: Ladder | str | Path | None = None, model: PlayerModel | str | None = None,
                 reward: Reward | str | None = None, history: int = 8, observation: str | None = None,
                 profile: str | None = None, trace_duration_s: float | None = None,
                 random_start: bool | None = None, preset: str = "abrsim") -> None:
        if int(num_envs) < 1:
            raise ValueError(f'"num_envs" must be >= 1, got {num_envs!r}')
        self.num_envs = int(num_envs)
        self.copy = bool(copy)
        self.scenario = scenario = Scenario(traces, ladder, model, reward, history, observation, profile,
                                            trace_duration_s, random_start, preset)
        self.single_observation_space = scenario.observation_space
        self.single_action_space = scenario.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, scenario.ladder.rung_count))
        n = self.num_envs
        self._cfg = scenario.cfg.copy()
        self._cfg[_kernels.CFG_REWIND] = 1.0
        self._states = np.zeros((n, _kernels.state_size(scenario.history)))
        self._logs = np.zeros((n, STEP_LOG_ROWS, driver.LOG_COLUMNS))
        self._rungs = np.zeros((n, STEP_LOG_ROWS), dtype=np.int64)
        self._meta = np.zeros((n, _kernels.META_COLUMNS))
        self._obs = np.zeros((n, *self.single_observation_space.shape), dtype=np.float32)
        self._obs_flat = self._obs.reshape(n, -1)
        self._rewards = np.zeros(n)
        self._ended = np.zeros(n, dtype=np.bool_)
        self._resetting = np.ones(n, dtype=np.bool_)
        self._truncated = np.zeros(n, dtype=np.bool_)
        self._no_actions = np.zeros(n, dtype=np.int64)
        if scenario.pool is not None:
            pool = scenario.pool
            self._pool_meta = np.zeros((len(pool), _kernels.META_COLUMNS))  # each trace's row of _meta
            self._pool_meta[:, _kernels.META_FIRST] = pool.offsets[:-1]
            self._pool_meta[:, _kernels.META_LAST] = pool.offsets[1:]
            self._pool_meta[:, _kernels.META_HAS_LATENCY] = pool.has_latency
            self._pool_meta[:, _kernels.META_DURATION_S] = pool.duration_s
            self._start_s = scenario.pool.start_s
            self._bandwidth_bps = scenario.pool_bandwidth_bps
            self._latency_s = scenario.pool.latency_s
        else:  # one slot per environment for the trace its session draws
            interval_s = scenario._profile.sample_interval_s
            self._slot = max(1, math.ceil(scenario.trace_duration_s / interval_s - 1e-9))
            self._start_s = np.zeros(n * self._slot)
            self._bandwidth_bps = np.zeros(n * self._slot)
            self._latency_s = np.zeros(n * self._slot)
        self._rngs: list[np.random.Generator] = []
        self._drawn: list[Any] = [None] * n  # each environment's trace: a pool index or its name

    def _draw(self, index: int) -> None:
        """A new episode's trace for environment ``index``, drawn with its generator."""
        scenario = self.scenario
        drawn, start_sample = scenario.draw(self._rngs[index])
        meta = self._meta[index]
        if isinstance(drawn, int):
            meta[:] = self._pool_meta[drawn]
            meta[_kernels.META_START_SAMPLE] = start_sample
            self._drawn[index] = drawn
            return
        name, start_s, bandwidth_bps, latency_s, has_latency, duration_s = scenario.trace_arrays(drawn)
        first = index * self._slot
        last = first + start_s.size
        self._start_s[first:last] = start_s
        self._bandwidth_bps[first:last] = bandwidth_bps
        self._latency_s[first:last] = latency_s
        meta[_kernels.META_FIRST] = first
        meta[_kernels.META_LAST] = last
        meta[_kernels.META_HAS_LATENCY] = has_latency
        meta[_kernels.META_DURATION_S] = duration_s
        self._drawn[index] = name
        meta[_kernels.META_START_SAMPLE] = start_sample

    @property
    def trace_names(self) -> list[str]:
        """The trace each environment's session plays."""
        pool = self.scenario.pool
        return [pool.names[d] if isinstance(d, int) and pool is not None else str(d) for d in self._drawn]

    def _run(self, actions: np.ndarray) -> None:
        scenario = self.scenario
        for index in self._resetting.nonzero()[0].tolist():
            self._draw(index)
        bad = _kernels.step_vector(
            self._states, self._start_s, self._bandwidth_bps, self._latency_s, self._meta, scenario.size_bits,
            self._logs, self._rungs, self._cfg, scenario.model_params, scenario.est_params, actions,
            self._resetting, self._obs_flat, self._rewards, self._ended)
        if bad >= 0:
            raise ValueError(f"action {actions[bad]!r} of environment {bad} is not a rung of ladder "
                             f"{scenario.ladder.name!r} (0 to {scenario.ladder.rung_count - 1})")

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a session in every environment (seeds: ``seed + i``, or one per environment)."""
        if seed is None or isinstance(seed, int):
            seeds: list[int | None] = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} environments")
        self._rngs = [seeding.np_random(s)[0] for s in seeds]
        self._resetting[:] = True
        self._run(self._no_actions)
        self._resetting[:] = self._ended  # (a session that ended before any decision restarts)
        return (self._obs.copy() if self.copy else self._obs), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Answer every environment's decision (``actions``: one rung each); reset those whose
        session ended in the last step.

        Raises:
            ValueError: if ``actions`` has not one rung of the ladder per environment.
        """
        if not self._rngs:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            raise ValueError(f"expected {self.num_envs} integer actions, got an array of shape "
                             f"{actions.shape} and type {actions.dtype}")
        self._run(actions.astype(np.int64, copy=False))
        ended = self._ended
        self._resetting[:] = ended
        if self.copy:
            return self._obs.copy(), self._rewards.copy(), ended.copy(), self._truncated.copy(), {}
        return self._obs, self._rewards, ended, self._truncated, {}
