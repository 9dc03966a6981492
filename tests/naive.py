"""Slow, obviously-correct twins of the compiled kernels (stumpy's tests/naive.py pattern).

Plain Python floats and lists; written from the model's description, not from the kernels.
"""

from __future__ import annotations

import itertools
import math


def trace_segments(trace):
    """Yield (start_s, end_s, bandwidth_bps, latency_s) forever, looping the trace."""
    starts = [float(v) for v in trace.start_s]
    ends = starts[1:] + [trace.duration_s]
    latencies = [0.0] * len(starts) if trace.latency_s is None else [float(v) for v in trace.latency_s]
    loop = 0
    while True:
        base = loop * trace.duration_s
        for start, end, bw, lat in zip(starts, ends, trace.bandwidth_bps, latencies):
            yield base + start, base + end, float(bw), lat
        loop += 1


def sample_at(trace, time_s):
    for start, end, bw, lat in trace_segments(trace):
        if start <= time_s < end:
            return bw, lat
    raise AssertionError


def arrival_time(trace, time_s, size_bits, goodput=1.0):
    remaining = size_bits
    for start, end, bw, _ in trace_segments(trace):
        if end <= time_s:
            continue
        begin = max(start, time_s)
        rate = bw * goodput
        if rate > 0 and rate * (end - begin) >= remaining:
            return begin + remaining / rate
        remaining -= rate * (end - begin)
    raise AssertionError


class Ewma:
    def __init__(self, half_lives_s, segment_duration_s):
        self.half_lives_s = list(half_lives_s)
        self.segment_duration_s = segment_duration_s
        self.tp = [0.0] * len(half_lives_s)
        self.lat = [0.0] * len(half_lives_s)
        self.total_s = 0.0
        self.count = 0

    def push(self, throughput_bps, weight_s, latency_s):
        self.total_s += weight_s
        self.count += 1
        for i, hl in enumerate(self.half_lives_s):
            a = 0.5 ** (weight_s / hl)
            self.tp[i] = a * self.tp[i] + (1 - a) * throughput_bps
            a = 0.5 ** (self.segment_duration_s / hl)
            self.lat[i] = a * self.lat[i] + (1 - a) * latency_s

    def throughput_bps(self):
        if not self.count:
            return 0.0
        return min(e / (1 - 0.5 ** (self.total_s / hl)) for e, hl in zip(self.tp, self.half_lives_s))

    def latency_s(self):
        if not self.count:
            return 0.0
        return max(e / (1 - 0.5 ** (self.count * self.segment_duration_s / hl))
                   for e, hl in zip(self.lat, self.half_lives_s))


class Sliding:
    def __init__(self, sizes):
        self.sizes = list(sizes)
        self.tp = []
        self.lat = []

    def push(self, throughput_bps, weight_s, latency_s):
        self.tp = (self.tp + [throughput_bps])[-20:]
        self.lat = (self.lat + [latency_s])[-20:]

    def throughput_bps(self):
        if not self.tp:
            return 0.0
        return min(sum(self.tp[-n:]) / len(self.tp[-n:]) for n in self.sizes)

    def latency_s(self):
        if not self.lat:
            return 0.0
        return max(sum(self.lat[-n:]) / len(self.lat[-n:]) for n in self.sizes)


def rung_for_throughput(bitrates, throughput_bps, latency_s, segment_duration_s):
    if throughput_bps <= 0:
        return 0
    ok = [q for q, b in enumerate(bitrates)
          if latency_s + segment_duration_s * b / throughput_bps <= segment_duration_s]
    return max(ok) if ok else 0


class Bola:
    """BOLA as Sabre's Bola class describes it (no abandonment here)."""

    def __init__(self, params, bitrates, p, segments):
        self.params, self.bitrates, self.p, self.n = params, bitrates, p, segments
        self.utilities = [math.log(b / bitrates[0]) for b in bitrates]
        self.last = 0

    def choose(self, index, buffer_s, last_rung, tput, lat):
        gp = self.params["gamma_p"]
        target = self.params["buffer_target_s"]
        if self.params["scale_v"]:
            target = min(target, max(min(index, self.n - index) / 2, 3) * self.p)
        v = (target - self.p) / (self.utilities[-1] + gp)
        scores = [(v * (u + gp) - buffer_s) / b for u, b in zip(self.utilities, self.bitrates)]
        rung = scores.index(max(scores))
        pause = 0.0
        if self.params["guard"] != "none" and rung > self.last:
            safe = rung_for_throughput(self.bitrates, tput, lat, self.p)
            if rung <= safe:
                pass
            elif self.last > safe:
                rung = self.last
            elif self.params["guard"] == "u":
                rung = safe + 1
            else:
                rung = safe
                if rung < len(self.bitrates) - 1:
                    pause = max(0.0, buffer_s - v * (gp + self.utilities[safe]))
        self.last = rung
        return rung, pause

    def done(self, index, rung):
        if index == 0:
            self.last = rung


class Throughput:
    def __init__(self, params, bitrates, p, segments):
        self.params, self.bitrates, self.p = params, bitrates, p
        self.safety = 0.9

    def choose(self, index, buffer_s, last_rung, tput, lat):
        rung = rung_for_throughput(self.bitrates, self.params["safety_factor"] * tput, lat, self.p)
        if self.params["ibr"]:
            safe_bits = self.safety * (buffer_s - lat) * tput
            self.safety = max(self.safety * 0.9, 0.5)
            for lower in range(rung):
                if self.bitrates[lower + 1] * self.p > safe_bits:
                    rung = lower
                    break
        return rung, 0.0

    def done(self, index, rung):
        pass


class BufferBased:
    """Pensieve's test/bb.py rule."""

    def __init__(self, params, bitrates, p, segments):
        self.params, self.top = params, len(bitrates) - 1

    def choose(self, index, buffer_s, last_rung, tput, lat):
        reservoir, cushion = self.params["reservoir_s"], self.params["cushion_s"]
        if buffer_s < reservoir:
            return 0, 0.0
        if buffer_s >= reservoir + cushion:
            return self.top, 0.0
        return int(self.top * (buffer_s - reservoir) / cushion), 0.0

    def done(self, index, rung):
        pass


class Bba0:
    """BBA-0, Huang et al. SIGCOMM 2014, Algorithm 1."""

    def __init__(self, params, bitrates, p, segments):
        self.params, self.rates = params, bitrates

    def choose(self, index, buffer_s, last_rung, tput, lat):
        rates, r, cu = self.rates, self.params["reservoir_s"], self.params["cushion_s"]
        prev = max(last_rung, 0)
        if buffer_s <= r:
            return 0, 0.0
        if buffer_s >= r + cu:
            return len(rates) - 1, 0.0
        f = rates[0] + (rates[-1] - rates[0]) * (buffer_s - r) / cu
        plus = rates[min(prev + 1, len(rates) - 1)]
        minus = rates[max(prev - 1, 0)]
        if f >= plus:
            return max([q for q, rate in enumerate(rates) if rate < f], default=0), 0.0
        if f <= minus:
            return min([q for q, rate in enumerate(rates) if rate > f], default=len(rates) - 1), 0.0
        return prev, 0.0

    def done(self, index, rung):
        pass


class Mpc:
    """RobustMPC / FastMPC as Pensieve's test/mpc.py computes them: every sequence scored from scratch."""

    def __init__(self, params, bitrates, p, segments, sizes=None):
        self.params, self.kbps, self.p, self.n = params, [b / 1000 for b in bitrates], p, segments
        self.sizes = sizes  # size_bits table
        self.samples, self.errors, self.estimates = [], [], []

    def done_download(self, size_bits, elapsed_s):
        sample = (size_bits / 8) / (elapsed_s * 1000) / 1000
        error = abs(self.estimates[-1] - sample) / sample if self.estimates else 0.0
        self.samples.append(sample)
        self.errors.append(error)

    def choose(self, index, buffer_s, last_rung, tput, lat):
        if not self.samples:
            return max(last_rung, 0), 0.0
        recent = self.samples[-5:]
        harmonic = 1 / (sum(1 / x for x in recent) / len(recent))
        max_error = max(self.errors[-5:]) if self.params["robust"] else 0.0
        future = harmonic / (1 + max_error)
        self.estimates.append(harmonic)
        horizon = min(self.params["horizon"], self.n - index)
        offset = 1 if self.params["compat_pensieve_lookahead"] else 0
        best, best_reward = None, -1e8
        for combo in itertools.product(range(len(self.kbps)), repeat=horizon):
            buffer, rebuf, bitrate_sum, smooth, last = buffer_s, 0.0, 0.0, 0.0, last_rung
            for step, q in enumerate(combo):
                segment = index + offset + step
                size = self.sizes[segment][q] if segment < len(self.sizes) else 0.0
                dl = (size / 8 / 1e6) / future
                if buffer < dl:
                    rebuf += dl - buffer
                    buffer = 0.0
                else:
                    buffer -= dl
                buffer += self.p
                bitrate_sum += self.kbps[q]
                smooth += abs(self.kbps[q] - self.kbps[last])
                last = q
            reward = bitrate_sum / 1000 - self.params["rebuffer_penalty"] * rebuf - smooth / 1000
            if reward >= best_reward:
                best, best_reward = combo, reward
        return best[0], 0.0

    def done(self, index, rung):
        pass


ALGORITHMS = {"bola": Bola, "throughput": Throughput, "bb": BufferBased, "bba0": Bba0,
              "robustmpc": Mpc, "fastmpc": Mpc}


def make(name, params, ladder, segments):
    bitrates = [float(b) for b in ladder.bitrates_bps]
    if name in ("robustmpc", "fastmpc"):
        return Mpc(params, bitrates, ladder.segment_duration_s, segments, ladder.size_bits.tolist())
    return ALGORITHMS[name](params, bitrates, ladder.segment_duration_s, segments)


def session(trace, ladder, name, params, model):
    """Return (records, startup_s, end_s, rebuffer_count); records are per-segment dicts.

    Covers the player model without abandonment: latency on or off the trace clock, the two
    buffer-cap rules, rounded waits, a segment limit.
    """
    p = ladder.segment_duration_s
    n = model.segments_played(ladder)
    algorithm = make(name, params, ladder, n)
    est = (Ewma(model.ewma_half_lives_s, p) if model.estimator == "ewma"
           else Sliding(model.sliding_window_sizes))
    state = {"t": 0.0, "buffer": 0.0, "started": False, "stalled": False, "stall": 0.0, "events": 0}
    lag = 0.0  # wall time minus trace time

    def elapse(dt):
        if state["started"]:
            if state["stalled"]:
                state["stall"] += dt
            elif state["buffer"] >= dt:
                state["buffer"] -= dt
            else:
                state["stall"] += dt - state["buffer"]
                state["buffer"] = 0.0
                state["stalled"] = True
                state["events"] += 1
        state["t"] += dt

    records = []
    startup = 0.0
    last = -1
    for i in range(n):
        state["stall"] = 0.0
        wait = 0.0
        excess = state["buffer"] + (p if model.cap_counts_next_segment else 0.0) - model.max_buffer_s
        if excess > 0:
            if not state["started"]:
                state["started"] = True
                startup = state["t"]
            state["stalled"] = False
            wait = math.ceil(excess / model.wait_step_s) * model.wait_step_s if model.wait_step_s else excess
            elapse(wait)
        if i == 0 and model.first_rung >= 0:
            rung, pause = model.first_rung, 0.0
        else:
            rung, pause = algorithm.choose(i, state["buffer"], last, est.throughput_bps(), est.latency_s())
        if pause > 0:
            elapse(pause)
            wait += pause
        request = state["t"]
        before = state["buffer"]
        lat = (sample_at(trace, request - lag)[1] if trace.latency_s is not None
               else model.request_latency_s)
        size = float(ladder.size_bits[i, rung])
        if not model.latency_on_trace_clock:
            lag += lat  # the latency passes on the wall clock only
        done = arrival_time(trace, request + lat - lag, size, model.goodput_factor) + lag
        elapse(done - request)
        state["t"] = done
        state["buffer"] += p
        est.push(size / (done - request - lat), done - request - lat, lat)
        if isinstance(algorithm, Mpc):
            algorithm.done_download(size, done - request)
        algorithm.done(i, rung)
        if not state["started"]:
            if state["buffer"] >= model.startup_threshold_s or i == n - 1:
                state["started"] = True
                startup = done
        elif state["stalled"] and (state["buffer"] >= model.resume_threshold_s or i == n - 1):
            state["stalled"] = False
        records.append({"rung": rung, "size_bits": size, "request_s": request,
                        "first_byte_s": request + lat, "done_s": done, "buffer_before_s": before,
                        "buffer_after_s": state["buffer"], "stall_s": state["stall"], "wait_s": wait})
        last = rung
    return records, startup, state["t"] + state["buffer"], state["events"]


def qoe(records, startup_s, events, ladder):
    """The metrics of abrsim.qoe, from their definitions."""
    rates = [float(ladder.bitrates_bps[r["rung"]]) for r in records]
    rates_all = [float(b) for b in ladder.bitrates_bps]
    rungs = [r["rung"] for r in records]

    def hd(rate):
        points = [(300e3, 1), (750e3, 2), (1200e3, 3), (1850e3, 12), (2850e3, 15), (4300e3, 20)]
        if rate <= points[0][0]:
            return points[0][1]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            if rate <= x1:
                return y0 + (y1 - y0) * (rate - x0) / (x1 - x0)
        return points[-1][1]

    rebuffer = sum(r["stall_s"] for r in records)
    played = len(records) * ladder.segment_duration_s
    changes = [abs(a - b) for a, b, qa, qb in zip(rates[1:], rates, rungs[1:], rungs) if qa != qb]
    return {
        "startup_s": startup_s,
        "rebuffer_s": rebuffer,
        "rebuffer_count": events,
        "rebuffer_ratio": rebuffer / (played + rebuffer),
        "played_s": played,
        "mean_bitrate_bps": sum(rates) / len(rates),
        "switch_count": len(changes),
        "switch_magnitude_bps": sum(changes) / len(changes) if changes else 0.0,
        "qoe_lin": sum(rates) / 1e6 - 4.3 * rebuffer - sum(changes) / 1e6,
        "qoe_log": sum(math.log(r / rates_all[0]) for r in rates) - 2.66 * rebuffer
        - sum(abs(math.log(a / b)) for a, b in zip(rates[1:], rates)),
        "qoe_hd": sum(hd(r) for r in rates) - 8 * rebuffer
        - sum(abs(hd(a) - hd(b)) for a, b in zip(rates[1:], rates)),
        "downloaded_bits": sum(r["size_bits"] for r in records),
    }


def state_sequence(regime, rng, samples, interval_s=1.0):
    """A fitted profile's Markov state at each sample, one dwell at a time in plain Python
    (the twin of ``tracegen._state_sequence``): uniforms in blocks of 256, the first starts the
    chain, then two per dwell (its length by inversion, then the next state)."""
    import bisect
    import math

    import numpy as np

    occupancy_cdf = np.cumsum(regime.occupancy).tolist()
    jump_cdfs = np.cumsum(regime.jump_probabilities, axis=1).tolist()
    means = (regime.mean_dwell_s / interval_s).tolist()
    log_stay = [math.log(1.0 - 1.0 / d) if d > 1.0 else 0.0 for d in means]
    last = regime.state_count
    states = np.empty(samples, dtype=np.int64)
    uniforms = rng.uniform(size=256).tolist()
    state = min(bisect.bisect_right(occupancy_cdf, uniforms[0] * occupancy_cdf[-1]), last)
    used, filled = 1, 0
    while filled < samples:
        if used + 2 > len(uniforms):
            uniforms, used = rng.uniform(size=256).tolist(), 0
        dwell_uniform, jump_uniform = uniforms[used], uniforms[used + 1]
        used += 2
        stay = log_stay[state]
        dwell = 1 if stay == 0.0 else max(1, math.ceil(math.log1p(-dwell_uniform) / stay))
        states[filled:filled + dwell] = state
        filled += dwell
        row = jump_cdfs[state]
        state = min(bisect.bisect_right(row, jump_uniform * row[-1]), last)
    return states


def state_bandwidths(positions, states, log_quantiles):
    """Each sample's bandwidth from its quantile position in its state (0 in the outage state,
    ``len(log_quantiles)``), one state at a time with numpy.interp: the twin of the compiled
    ``tracegen._interpolate_states`` followed by ``exp``."""
    import numpy as np

    bandwidth_bps = np.zeros(len(positions))
    grid = np.linspace(0.0, 1.0, log_quantiles.shape[1])
    for state in range(log_quantiles.shape[0]):
        mask = states == state
        if mask.any():
            bandwidth_bps[mask] = np.exp(np.interp(positions[mask], grid, log_quantiles[state]))
    return bandwidth_bps
