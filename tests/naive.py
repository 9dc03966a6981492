"""Slow, obviously-correct twins of the compiled kernels (stumpy's tests/naive.py pattern).

Plain Python floats and lists; written from the model's description, not from the kernels.
"""

from __future__ import annotations

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
    ok = [q for q, b in enumerate(bitrates) if b <= throughput_bps * (1 - latency_s / segment_duration_s)]
    return max(ok) if ok else 0


def bola(params, index, count, buffer_s, last, tput, lat, bitrates, p):
    utilities = [math.log(b / bitrates[0]) for b in bitrates]
    gp = params["gamma_p"]
    target = params["buffer_target_s"]
    if params["scale_v"]:
        target = min(target, max(min(index, count - index) / 2, 3) * p)
    v = (target - p) / (utilities[-1] + gp)
    scores = [(v * (u + gp) - buffer_s) / b for u, b in zip(utilities, bitrates)]
    rung = scores.index(max(scores))
    last = max(last, 0)
    pause = 0.0
    if params["guard"] != "none" and rung > last:
        safe = rung_for_throughput(bitrates, tput, lat, p)
        if rung <= safe:
            pass
        elif last > safe:
            rung = last
        elif params["guard"] == "u":
            rung = safe + 1
        else:
            rung = safe
            pause = max(0.0, buffer_s - v * (gp + utilities[safe]))
    return rung, pause


def throughput_rule(params, index, count, buffer_s, last, tput, lat, bitrates, p):
    return rung_for_throughput(bitrates, params["safety_factor"] * tput, lat, p), 0.0


ALGORITHMS = {"bola": bola, "throughput": throughput_rule}


def session(trace, ladder, name, params, model):
    """Return (records, startup_s, end_s, rebuffer_count); records are per-segment dicts."""
    p = ladder.segment_duration_s
    bitrates = [float(b) for b in ladder.bitrates_bps]
    n = ladder.segment_count
    est = (Ewma(model.ewma_half_lives_s, p) if model.estimator == "ewma"
           else Sliding(model.sliding_window_sizes))
    state = {"t": 0.0, "buffer": 0.0, "started": False, "stalled": False, "stall": 0.0, "events": 0}

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
        if state["buffer"] + p > model.max_buffer_s:
            if not state["started"]:
                state["started"] = True
                startup = state["t"]
            state["stalled"] = False
            wait = state["buffer"] + p - model.max_buffer_s
            elapse(wait)
        if i == 0 and model.first_rung >= 0:
            rung, pause = model.first_rung, 0.0
        else:
            rung, pause = ALGORITHMS[name](params, i, n, state["buffer"], last, est.throughput_bps(),
                                           est.latency_s(), bitrates, p)
        if pause > 0:
            elapse(pause)
            wait += pause
        request = state["t"]
        before = state["buffer"]
        lat = sample_at(trace, request)[1] if trace.latency_s is not None else model.request_latency_s
        size = float(ladder.size_bits[i, rung])
        done = arrival_time(trace, request + lat, size, model.goodput_factor)
        elapse(done - request)
        state["t"] = done
        state["buffer"] += p
        est.push(size / (done - request - lat), done - request - lat, lat)
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
    rungs = [r["rung"] for r in records]
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
        "downloaded_bits": sum(r["size_bits"] for r in records),
    }
