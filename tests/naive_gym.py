"""A plain-Python twin of abrsim.gym.AbrEnv, written from the documented semantics.

The kind of environment ABR papers train in (a Python loop over trace samples): one session
per episode, one rung per step, the same observation and reward. It covers the player models
without the tcp network, abandonment or scaled latency, and sessions that stay within their
time limit. benchmarks/gym_env.py times it next to the compiled environment; tests/test_gym.py
checks that both give the same episodes.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding


class NaiveAbrEnv:
    """``AbrEnv``'s semantics in plain Python floats and lists (see the module doc).

    Args:
        traces: a list of :class:`abrsim.trace.Trace`.
        ladder: the ladder.
        model: the player model.
        utility: the reward's utility per rung; rebuffer_penalty, switch_penalty,
            startup_penalty: its penalties.
        history: past downloads in the observation; pensieve: Pensieve's 6 x 8 observation.
        random_start: start at a random sample of the trace.
    """

    def __init__(self, traces, ladder, model, utility, rebuffer_penalty, switch_penalty=1.0,
                 startup_penalty=0.0, history=8, pensieve=False, random_start=False):
        self.traces = [(list(map(float, t.start_s)), list(map(float, t.bandwidth_bps)),
                        None if t.latency_s is None else list(map(float, t.latency_s)), float(t.duration_s))
                       for t in traces]
        self.sizes = [list(map(float, row)) for row in ladder.size_bits]
        self.bitrates = list(map(float, ladder.bitrates_bps))
        self.p = float(ladder.segment_duration_s)
        self.model = model
        self.segments = model.segments_played(ladder)
        self.utility = list(map(float, utility))
        self.rebuffer_penalty = rebuffer_penalty
        self.switch_penalty = switch_penalty
        self.startup_penalty = startup_penalty
        self.history = history
        self.pensieve = pensieve
        self.random_start = random_start
        self.rng = None
        self.action_space = spaces.Discrete(len(self.bitrates))

    # --- the player ---------------------------------------------------------------------------
    def _elapse(self, dt):
        if self.started:
            if self.stalled:
                self.stall += dt
            elif self.buffer >= dt:
                self.buffer -= dt
            else:
                self.stall += dt - self.buffer
                self.buffer = 0.0
                self.stalled = True
        self.t += dt

    def _sample_end(self):
        start_s, _, _, duration = self.trace
        return self.loop + (start_s[self.sample + 1] if self.sample + 1 < len(start_s) else duration)

    def _next_sample(self):
        self.sample += 1
        if self.sample == len(self.trace[0]):
            self.sample = 0
            self.loop += self.trace[3]

    def _seek(self, trace_s):
        while trace_s >= self._sample_end():
            self._next_sample()

    def _transfer(self, trace_s, bits):
        """Trace time when ``bits`` have arrived, sent from trace time ``trace_s``."""
        self._seek(trace_s)
        bandwidth = self.trace[1]
        while True:
            end = self._sample_end()
            rate = bandwidth[self.sample] * self.model.goodput_factor
            slack = 1e-13 * max(1.0, end)  # (the engine's rounding allowance at a sample's end)
            if rate > 0 and bits <= (end - trace_s + slack) * rate:
                return trace_s + bits / rate
            bits -= (end - trace_s) * rate
            trace_s = end
            self._next_sample()

    def _wait(self):
        m = self.model
        excess = self.buffer + (self.p if m.cap_counts_next_segment else 0.0) - m.max_buffer_s
        if excess > 0:
            if not self.started:
                self.started = True
                self.startup = self.t
            self.stalled = False
            wait = math.ceil(excess / m.wait_step_s) * m.wait_step_s if m.wait_step_s else excess
            self._elapse(wait)

    def _download(self, rung):
        m = self.model
        self.stall = 0.0
        request = self.t
        latency = m.request_latency_s
        if self.trace[2] is not None:
            self._seek(request - self.lag)
            latency = self.trace[2][self.sample]
        if not m.latency_on_trace_clock:
            self.lag += latency
        size = self.sizes[self.index][rung]
        done = self._transfer(request + latency - self.lag, size) + self.lag
        self._elapse(done - request)
        self.t = done
        self.buffer += self.p
        last = self.index == self.segments - 1
        if not self.started:
            if self.buffer >= m.startup_threshold_s or last:
                self.started = True
                self.startup = done
        elif self.stalled and (self.buffer >= m.resume_threshold_s or last):
            self.stalled = False
        reward = self.utility[rung] - self.rebuffer_penalty * self.stall
        if self.previous >= 0:
            reward -= self.switch_penalty * abs(self.utility[rung] - self.utility[self.previous])
        if self.started and not self.startup_counted:
            self.startup_counted = True
            reward -= self.startup_penalty * self.startup
        self.previous = rung
        self.index += 1
        self.downloads.append((rung, size, done - request - latency, done - request))
        return reward

    def _to_decision(self):
        """Run to the next decision (or the end); the reward of the downloads on the way."""
        reward = 0.0
        while self.index < self.segments:
            self._wait()
            if self.index == 0 and self.model.first_rung >= 0:
                reward += self._download(self.model.first_rung)
                self._observe_download()
                continue
            return reward, False
        return reward, True

    # --- what the agent sees ------------------------------------------------------------------
    def _observe_download(self):
        rung, size, transfer_s, delay_s = self.downloads[-1]
        if self.pensieve:
            self.matrix = [row[1:] + row[:1] for row in self.matrix]
            self.matrix[0][-1] = self.bitrates[rung] / max(self.bitrates)
            self.pending_buffer = True  # the buffer after the wait that precedes the next decision
            self.matrix[2][-1] = size / 8.0 / (delay_s * 1000.0) / 1000.0
            self.matrix[3][-1] = delay_s * 1000.0 / 1000.0 / 10.0
            nxt = self.index
            for r in range(len(self.bitrates)):
                self.matrix[4][r] = self.sizes[nxt][r] / 8.0 / 1e6 if nxt < len(self.sizes) else 0.0
            self.matrix[5][-1] = min(self.segments - nxt, 48.0) / 48.0
        else:
            self.throughputs = (self.throughputs + [size / transfer_s / 1e6])[-self.history:]
            self.download_times = (self.download_times + [delay_s])[-self.history:]

    def _observation(self, done):
        if self.pensieve:
            if getattr(self, "pending_buffer", False):
                self.matrix[1][-1] = (self.buffer if not done else self.buffer_after) / 10.0
                self.pending_buffer = False
            return np.array(self.matrix, dtype=np.float32)
        pad = [0.0] * (self.history - len(self.throughputs))
        nxt = [s / 1e6 for s in self.sizes[self.index]] if self.index < self.segments else [0.0] * len(
            self.bitrates)
        last = self.downloads[-1][0] if self.downloads else -1
        values = (pad + self.throughputs + pad + self.download_times + nxt
                  + [self.buffer, float(last), float(self.segments - self.index)])
        return np.array(values, dtype=np.float32)

    # --- the Gymnasium interface --------------------------------------------------------------
    def reset(self, seed=None):
        if seed is not None or self.rng is None:
            self.rng, _ = seeding.np_random(seed)
        self.trace = self.traces[int(self.rng.integers(len(self.traces)))]
        start = int(self.rng.integers(len(self.trace[0]))) if self.random_start else 0
        self.sample, self.loop, self.lag = start, 0.0, -self.trace[0][start]
        self.t = self.buffer = self.startup = self.stall = 0.0
        self.started = self.stalled = self.startup_counted = False
        self.index, self.previous = 0, -1
        self.downloads, self.throughputs, self.download_times = [], [], []
        self.matrix = [[0.0] * 8 for _ in range(6)]
        reward, done = self._to_decision()
        self.done = done
        return self._observation(done), {"reward": reward}

    def step(self, action):
        reward = self._download(int(action))
        self.buffer_after = self.buffer
        self._observe_download()
        more, done = self._to_decision()
        self.done = done
        return self._observation(done), reward + more, done, False, {}
