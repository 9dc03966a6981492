"""``AbrEnv``: one streaming session per episode, one decision (the next segment's rung) per step.

The session runs on abrsim's session step (:mod:`abrsim.engine.step`) through the driver that
serves Python policies (:func:`abrsim.engine._session.advance`): an action answers the player's
decision and the compiled step runs the session to the next one. So an episode is exactly the
session ``abrsim run`` would simulate for the same rungs, and the rewards summed over it are
that session's QoE (see :class:`Reward`).

Observation (``observation="abrsim"``, a ``Box`` of float32, ``2 * history + rungs + 3`` values):

=================================== =====================================================================
``[0, history)``                    throughput of the last ``history`` downloads (size / transfer time,
                                    first byte to last), Mbit/s, oldest first, 0 before there are any
``[history, 2 * history)``          their download times (request to last byte, latency included), s
``[2 * history, 2 * history + R)``  the next segment's size at each of the R rungs, Mbit (0 at the end)
``2 * history + R``                 buffer level, s
``2 * history + R + 1``             rung of the last download, -1 before the first
``2 * history + R + 2``             segments left to request
=================================== =====================================================================

``observation="pensieve"``: Pensieve's 6 x 8 state (Mao et al., SIGCOMM 2017; hongzimao/pensieve
``sim/multi_agent.py``), float32: each row shifted left by one after every download, then
``[0, -1]`` the last bitrate / the top bitrate, ``[1, -1]`` the buffer / 10 s, ``[2, -1]`` the
download's throughput in kbyte/ms (size / delay, the 80 ms RTT included), ``[3, -1]`` the delay
/ 10 s, ``[4, :R]`` the next segment's sizes in Mbyte, ``[5, -1]`` min(segments left, 48) / 48.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from abrsim.abr import estimator_arrays
from abrsim.engine import _session as driver
from abrsim.engine.fast import pack_traces
from abrsim.engine.step import (
    PS_BUFFER_S,
    PS_INDEX,
    PS_REBUFFER_COUNT,
    PS_STARTUP_S,
    PS_TIME_S,
    model_array,
    session_log,
)
from abrsim.errors import InputError
from abrsim.gym import _kernels
from abrsim.ladder import Ladder
from abrsim.log import SessionLog
from abrsim.model import PENSIEVE, PlayerModel, get_preset
from abrsim.qoe import REBUFFER_PENALTY_LIN, qoe_utility
from abrsim.trace import Trace, load_traces

__all__ = ["PENSIEVE_REWARD", "AbrEnv", "Reward"]


@dataclass(frozen=True)
class Reward:
    """The per-segment reward: the terms of a QoE model, one segment at a time.

    A played segment at rung ``q`` earns ``utility[q] - rebuffer_penalty * stall_s -
    switch_penalty * |utility[q] - utility[q_previous]|`` (``stall_s``: the stall while waiting for
    and fetching it; the switch term from the second played segment on); the step in which
    playback starts also pays ``startup_penalty * startup_s``. With the defaults the rewards of a
    session sum to its ``qoe_lin`` (``qoe_log``, ``qoe_hd``) metric of :mod:`abrsim.qoe`.

    Args:
        utility: ``"qoe_lin"`` (bitrate in Mbit/s), ``"qoe_log"`` (ln of bitrate / lowest bitrate),
            ``"qoe_hd"`` (Pensieve's HD scores), or one value per rung.
        rebuffer_penalty: per second of stall; default: the QoE model's (4.3, 2.66, 8; 4.3 for
            a utility given as values).
        switch_penalty: per unit of utility change between consecutive segments.
        startup_penalty: per second of startup delay (0 in abrsim's QoE, which excludes startup;
            Pensieve's reward counts the first chunk's delay as rebuffering: 4.3).

    Raises:
        ValueError: on construction, if a penalty is negative or not finite, or the utility is
            an unknown name.
    """

    utility: str | tuple[float, ...] = "qoe_lin"
    rebuffer_penalty: float | None = None
    switch_penalty: float = 1.0
    startup_penalty: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.utility, str):
            qoe_utility(self.utility, np.ones(1))  # raises on an unknown name
        else:
            object.__setattr__(self, "utility", tuple(float(v) for v in self.utility))
        for name in ("rebuffer_penalty", "switch_penalty", "startup_penalty"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f'"{name}" must be a finite number >= 0, got {value!r}')

    def arrays(self, ladder: Ladder) -> tuple[np.ndarray, float]:
        """The utility of each rung of ``ladder`` and the rebuffering penalty.

        Raises:
            ValueError: if a utility given as values has not one value per rung.
        """
        if isinstance(self.utility, str):
            utility, penalty = qoe_utility(self.utility, ladder.bitrates_bps)
        else:
            utility, penalty = np.array(self.utility, dtype=np.float64), REBUFFER_PENALTY_LIN
            if utility.shape != (ladder.rung_count,) or not np.isfinite(utility).all():
                raise ValueError(f'"utility" must hold {ladder.rung_count} finite values (one per rung of '
                                 f"ladder {ladder.name!r}), got {len(utility)}")
        return utility, penalty if self.rebuffer_penalty is None else float(self.rebuffer_penalty)


#: Pensieve's training reward (``sim/multi_agent.py``): QoE_lin with REBUF_PENALTY 4.3 and
#: SMOOTH_PENALTY 1, the first chunk's delay counted as rebuffering.
PENSIEVE_REWARD = Reward("qoe_lin", 4.3, 1.0, 4.3)

_REWARDS = {name: Reward(name) for name in ("qoe_lin", "qoe_log", "qoe_hd")}
_OBSERVATIONS = {"abrsim": _kernels.OBSERVATION_ABRSIM, "pensieve": _kernels.OBSERVATION_PENSIEVE}


def pensieve_cbr_ladder() -> Ladder:
    """Pensieve's six bitrates (300 to 4300 kbit/s) at constant bitrate: 49 chunks of 4 s (its video
    has 49 chunk sizes, of which the environment plays 48 and reads the 49th as the next sizes).
    The ``pensieve`` preset's default; Pensieve's own video is a folder of ``video_size_*`` files."""
    from abrsim.ladder import Rung
    from abrsim.peer_formats import PENSIEVE_BITRATES_KBPS

    return Ladder.cbr([Rung(kbps * 1000.0) for kbps in PENSIEVE_BITRATES_KBPS], 4.0, 49, name="pensieve_cbr")


def _load_ladder(ladder: Ladder | str | Path) -> Ladder:
    if isinstance(ladder, Ladder):
        return ladder
    from abrsim.runner import load_any_ladder

    return load_any_ladder(str(ladder))


#: Environment presets: defaults of the keyword arguments left unset.
PRESETS: dict[str, dict[str, Any]] = {
    "abrsim": {},
    "pensieve": {"ladder": pensieve_cbr_ladder, "model": PENSIEVE, "observation": "pensieve",
                 "reward": PENSIEVE_REWARD, "random_start": True},
}


def make_config(kind: int, history: int, ladder: Ladder) -> np.ndarray:
    """The kernels' configuration array (``CFG_*``) for an observation on ``ladder``; no reward."""
    rungs = ladder.rung_count
    cfg = np.zeros(_kernels.CFG_SCALARS + 2 * rungs)
    cfg[_kernels.CFG_KIND] = kind
    cfg[_kernels.CFG_HISTORY] = history
    cfg[_kernels.CFG_MAX_BITRATE_BPS] = float(ladder.bitrates_bps.max())
    cfg[_kernels.CFG_SEGMENT_DURATION_S] = ladder.segment_duration_s
    cfg[_kernels.CFG_SCALARS + rungs:] = ladder.bitrates_bps
    return cfg


class Scenario:
    """What an environment simulates, resolved once: ladder, model, traces, reward, observation.

    Shared by :class:`AbrEnv` and :class:`abrsim.gym.vector.AbrVectorEnv`; see :class:`AbrEnv`
    for the arguments.
    """

    def __init__(self, traces: Any = None, ladder: Ladder | str | Path | None = None,
                 model: PlayerModel | str | None = None, reward: Reward | str | None = None, history: int = 8,
                 observation: str | None = None, profile: str | None = None,
                 trace_duration_s: float | None = None, random_start: bool | None = None,
                 preset: str = "abrsim") -> None:
        if preset not in PRESETS:
            raise ValueError(f'"preset" must be one of {", ".join(PRESETS)}, got {preset!r}')
        defaults = PRESETS[preset]
        if ladder is None:
            ladder = defaults["ladder"]() if "ladder" in defaults else "hls"
        model = defaults.get("model", "abrsim") if model is None else model
        reward = defaults.get("reward", "qoe_lin") if reward is None else reward
        observation = defaults.get("observation", "abrsim") if observation is None else observation
        random_start = defaults.get("random_start", False) if random_start is None else random_start
        self.ladder = _load_ladder(ladder)
        self.model = get_preset(model) if isinstance(model, str) else model
        if isinstance(reward, str):
            if reward not in _REWARDS:
                raise ValueError(f'"reward" must be one of {", ".join(_REWARDS)} or a Reward, got {reward!r}')
            reward = _REWARDS[reward]
        self.reward = reward
        if observation not in _OBSERVATIONS:
            raise ValueError(f'"observation" must be one of {", ".join(_OBSERVATIONS)}, got {observation!r}')
        whole = isinstance(history, (int, np.integer)) and not isinstance(history, bool)
        if not (whole and 0 <= history <= 1000):
            raise ValueError(f'"history" must be an integer in [0, 1000], got {history!r}')
        self.history = int(history)
        self.observation = observation
        self.kind = _OBSERVATIONS[observation]
        rungs = self.ladder.rung_count
        if self.kind == _kernels.OBSERVATION_PENSIEVE and rungs > _kernels.PENSIEVE_COLUMNS:
            raise ValueError(f"Pensieve's observation holds at most {_kernels.PENSIEVE_COLUMNS} rungs; "
                             f"ladder {self.ladder.name!r} has {rungs}")
        self.random_start = bool(random_start)
        self.model_params = model_array(self.model, self.ladder)
        self.est_params, _ = estimator_arrays(self.model, self.ladder.segment_duration_s)
        self.segments = self.model.segments_played(self.ladder)
        self.size_bits = np.ascontiguousarray(self.ladder.size_bits, dtype=np.float64)
        self.cfg = cfg = make_config(self.kind, self.history, self.ladder)
        utility, rebuffer_penalty = reward.arrays(self.ladder)
        cfg[_kernels.CFG_REBUFFER_PENALTY] = rebuffer_penalty
        cfg[_kernels.CFG_SWITCH_PENALTY] = reward.switch_penalty
        cfg[_kernels.CFG_STARTUP_PENALTY] = reward.startup_penalty
        cfg[_kernels.CFG_SCALARS:_kernels.CFG_SCALARS + rungs] = utility
        self.profile = profile
        if profile is not None:
            if traces is not None:
                raise ValueError('give "traces" or "profile", not both')
            from abrsim.tracegen import get_profile

            self._profile = get_profile(profile)
            self.trace_duration_s = float(trace_duration_s or self._profile.typical_duration_s)
            self.pool = None
        else:
            if trace_duration_s is not None:
                raise ValueError('"trace_duration_s" goes with "profile"')
            self.pool = pack_traces(_trace_list(traces))
            self.pool_bandwidth_bps = self.pool.bandwidth_for(self.model)
            self._pool_size = len(self.pool)
            self._pool_samples = np.diff(self.pool.offsets).tolist()
        self.observation_space = self._observation_space()
        self.action_space = spaces.Discrete(rungs)

    def _observation_space(self) -> spaces.Box:
        """The observations' bounds: what the model and ladder allow, and float32's largest value
        for throughputs and delays (bounded only by the input limits)."""
        big = float(np.finfo(np.float32).max)
        rungs = self.ladder.rung_count
        buffer_s = self.model.max_buffer_s + self.ladder.segment_duration_s
        size_mbit = float(self.size_bits.max()) / 1e6
        if self.kind == _kernels.OBSERVATION_PENSIEVE:
            high = np.full((_kernels.PENSIEVE_ROWS, _kernels.PENSIEVE_COLUMNS), big, dtype=np.float32)
            high[0] = 1.0
            high[1] = buffer_s / _kernels.PENSIEVE_BUFFER_NORM_S
            high[4] = size_mbit / 8.0
            high[5] = 1.0
            return spaces.Box(np.zeros_like(high), high, dtype=np.float32)
        history = self.history
        size = _kernels.observation_size(self.kind, history, rungs)
        low = np.zeros(size, dtype=np.float32)
        high = np.full(size, big, dtype=np.float32)
        high[2 * history:2 * history + rungs] = size_mbit
        low[2 * history + rungs + 1] = -1.0
        high[2 * history + rungs:] = (buffer_s, rungs - 1, self.segments)
        return spaces.Box(low, high, dtype=np.float32)

    @property
    def log_rows(self) -> int:
        """Log rows one session can need: a row per segment, and one for a download the time limit cuts."""
        return self.segments + 2

    def draw(self, rng: np.random.Generator) -> tuple[Trace | int, int]:
        """An episode's trace (a pool index, or a trace drawn from the profile) and start sample."""
        if self.pool is None:
            from abrsim.tracegen import synthesize

            trace: Trace | int = synthesize(self._profile, rng, self.trace_duration_s)
            samples = trace.start_s.size  # type: ignore[union-attr]
        else:
            trace = int(rng.integers(self._pool_size))
            samples = self._pool_samples[trace]
        start = int(rng.integers(samples)) if self.random_start else 0
        return trace, start

    def trace_arrays(self, trace: Trace | int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, bool, float]:
        """``(name, start_s, bandwidth_bps, latency_s, has_latency, duration_s)`` of a drawn trace."""
        if isinstance(trace, Trace):
            trace = self.model.link_trace(trace)  # as the model's download walk reads it
            latency = trace.latency_s if trace.latency_s is not None else np.zeros(trace.start_s.size)
            return (trace.name, trace.start_s, trace.bandwidth_bps, latency, trace.latency_s is not None,
                    float(trace.duration_s))
        pool = self.pool
        assert pool is not None
        first, last = pool.offsets[trace], pool.offsets[trace + 1]
        return (pool.names[trace], pool.start_s[first:last], self.pool_bandwidth_bps[first:last],
                pool.latency_s[first:last], bool(pool.has_latency[trace]), float(pool.duration_s[trace]))


def _trace_list(traces: Any) -> list[Trace]:
    """Traces from ``None`` (the built-in corpus), a path, a Trace, or a sequence of those."""
    if traces is None:
        from abrsim._data import data_dir

        return load_traces([data_dir("traces")])
    if isinstance(traces, (str, Path, Trace)):
        traces = [traces]
    loaded: list[Trace] = []
    for item in traces:
        loaded.extend([item] if isinstance(item, Trace) else load_traces([item]))
    if not loaded:
        raise InputError("no traces given", field="traces")
    return loaded


class AbrEnv(gymnasium.Env[np.ndarray, np.int64]):
    """One streaming session per episode; the action is the next segment's rung (``Discrete``).

    Each episode draws a trace with the environment's seed: one of ``traces`` (uniformly), or a
    new one from a generator ``profile``; with ``random_start`` the session starts at a random
    sample of it (the trace still loops). ``reset`` runs the session to its first decision (a
    model that sets the first rung itself, as all presets but ``dashjs`` do, has downloaded the
    first segment by then: its reward is ``info["reward"]``; otherwise it is 0); each ``step``
    answers one decision and runs to the next; the episode ends (``terminated``) with the
    session. Downloads are never abandoned. See the module doc for the observation.

    Args:
        traces: trace files or folders (any format abrsim reads), :class:`~abrsim.trace.Trace`
            objects, or a list of those; default: the built-in corpus.
        ladder: a built-in ladder name, a ladder file or a folder of Pensieve ``video_size_*``
            files, or a :class:`~abrsim.ladder.Ladder`; default ``hls`` (preset ``pensieve``:
            :func:`pensieve_cbr_ladder`).
        model: a player-model preset name or a :class:`~abrsim.model.PlayerModel`.
        reward: ``"qoe_lin"`` (default), ``"qoe_log"``, ``"qoe_hd"`` or a :class:`Reward`.
        history: past downloads in the observation (``observation="abrsim"``), default 8.
        observation: ``"abrsim"`` or ``"pensieve"`` (see the module doc).
        profile: a trace generator profile (``3g``, ``4g``, ``5g``, ``broadband``) instead of
            ``traces``: every episode draws a new trace of ``trace_duration_s`` (default: the
            profile's typical duration).
        trace_duration_s: see ``profile``.
        random_start: start each session at a uniformly drawn sample of its trace.
        preset: ``"abrsim"`` or ``"pensieve"``: the defaults of ``model``, ``observation``,
            ``reward`` and ``random_start`` (``pensieve``: the pensieve model, Pensieve's state
            and reward, random starts as in its training environment).

    Raises:
        ValueError: if an argument is out of range.
        InputError: if a trace or ladder cannot be loaded, or the model does not fit the ladder.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, traces: Any = None, ladder: Ladder | str | Path | None = None,
                 model: PlayerModel | str | None = None, reward: Reward | str | None = None, history: int = 8,
                 observation: str | None = None, profile: str | None = None,
                 trace_duration_s: float | None = None, random_start: bool | None = None,
                 preset: str = "abrsim") -> None:
        self.scenario = scenario = Scenario(traces, ladder, model, reward, history, observation, profile,
                                            trace_duration_s, random_start, preset)
        self.observation_space = scenario.observation_space
        self.action_space = scenario.action_space
        self._state = np.zeros(_kernels.state_size(scenario.history))
        self._log = np.zeros((scenario.log_rows, driver.LOG_COLUMNS))
        self._rungs = np.zeros(scenario.log_rows, dtype=np.int64)
        self._obs = np.zeros(int(np.prod(self.observation_space.shape)), dtype=np.float32)
        self._obs_view = self._obs.reshape(self.observation_space.shape)
        self._size_bits = scenario.size_bits
        self._cfg = scenario.cfg
        self._trace: tuple[Any, ...] | None = None
        self._trace_name = ""
        self._ended = True
        self._step = _kernels.step_session

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: draw a trace and run the session to its first decision."""
        super().reset(seed=seed)
        scenario = self.scenario
        drawn, start_sample = scenario.draw(self.np_random)
        name, start_s, bandwidth_bps, latency_s, has_latency, duration_s = scenario.trace_arrays(drawn)
        self._trace = (start_s, bandwidth_bps, latency_s)
        self._trace_name = name
        reward, status = _kernels.reset_session(
            self._state, start_s, bandwidth_bps, latency_s, has_latency, duration_s, start_sample,
            self._size_bits, self._log, self._rungs, self._cfg, scenario.model_params, scenario.est_params,
            self._obs)
        self._check(status)
        self._ended = status == _kernels.ENDED
        info = {"trace": name, "start_s": float(start_s[start_sample]), "reward": reward}
        return self._obs_view.copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Request the next segment at rung ``action``; run the session to the next decision.

        Raises:
            RuntimeError: if the episode has ended (call ``reset``).
            ValueError: if ``action`` is not a rung of the ladder.
        """
        if self._ended:
            raise RuntimeError("the episode has ended (or not begun): call reset()")
        start_s, bandwidth_bps, latency_s = self._trace  # type: ignore[misc]
        reward, status = self._step(self._state, start_s, bandwidth_bps, latency_s, self._size_bits,
                                    self._log, self._rungs, self._cfg, self._obs, operator.index(action))
        if status != _kernels.RUNNING:
            self._check(status, action)
            self._ended = True
        return self._obs_view.copy(), reward, self._ended, False, {}

    def _check(self, status: int, action: Any = None) -> None:
        if status == _kernels.BAD_ACTION:
            raise ValueError(f"action {action!r} is not a rung of ladder {self.scenario.ladder.name!r} "
                             f"(0 to {self.scenario.ladder.rung_count - 1})")
        if status == _kernels.LOG_FULL:  # pragma: no cover - log_rows covers every session
            raise RuntimeError("the session's log is full")

    def session_log(self) -> SessionLog:
        """The episode's session so far, as the engine logs it (one row per download)."""
        rows = int(self._state[driver.PS_ROW])
        state = self._state
        end_s = state[PS_TIME_S] + state[PS_BUFFER_S]
        return session_log(self._log[:rows], self._rungs[:rows], self._trace_name, "gym",
                           state[PS_STARTUP_S], end_s, int(state[PS_REBUFFER_COUNT]))

    @property
    def segment_index(self) -> int:
        """The segment the next action requests."""
        return int(self._state[PS_INDEX])
