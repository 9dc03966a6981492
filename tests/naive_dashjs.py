"""A slow, obviously-correct twin of the ``dashjs`` kernels (abrsim/abr/_dashjs.py).

Plain Python objects, one per dash.js rule, written from the description of dash.js v5.1.1
(shared/reference/pensieve_dashjs_model.md, section 2) and the kernel module's docstring,
not from the kernel code. Units as in dash.js where it helps: kbit/s for throughput.
"""

from __future__ import annotations

import math
from collections import deque

MIN_BUFFER_S = 10.0


def js_round(value):
    return math.floor(value + 0.5)


def representation_for(kbps_list, kbps):
    """Highest representation whose kbit/s is <= kbps, else the lowest (NaN: the lowest)."""
    best = 0
    for index, rate in enumerate(kbps_list):
        if rate <= kbps:
            best = index
    return best


class Ewma:
    """dash.js ThroughputModel's EWMA: weights 0.0015 per ms, bias-corrected, min of fast and slow."""

    def __init__(self, fast, slow):
        self.half_lives = (fast, slow)
        self.samples = []  # (kbps, weight)

    def push(self, kbps, transfer_ms):
        self.samples.append((kbps, 0.0015 * transfer_ms))

    def average(self):
        if not self.samples:
            return math.nan
        estimates = []
        for half_life in self.half_lives:
            value = 0.0
            total = 0.0
            for kbps, weight in self.samples:
                alpha = 0.5 ** (weight / half_life)
                value = alpha * value + (1 - alpha) * kbps
                total += weight
            estimates.append(value / (1 - 0.5 ** (total / half_life)))
        return min(estimates)


class Bola:
    def __init__(self, p, bitrates_bps):
        self.p = p
        self.bitrates = list(bitrates_bps)
        self.utilities = [math.log(b) - math.log(bitrates_bps[0]) + 1 for b in bitrates_bps]
        buffer_time = max(p["buffer_time_default_s"], 10 + 2 * len(bitrates_bps))
        self.gp = (self.utilities[-1] - 1) / (buffer_time / 10 - 1)
        self.vp = 10 / self.gp
        self.state = "startup"
        self.placeholder = 0.0
        self.saw_segment = False

    def min_level(self, rung):
        level = 0.0
        for lower in range(rung):
            if self.utilities[lower] < self.utilities[rung]:
                bq, bi = self.bitrates[rung], self.bitrates[lower]
                uq, ui = self.utilities[rung], self.utilities[lower]
                level = max(level, self.vp * (self.gp + (bq * ui - bi * uq) / (bq - bi)))
        return level

    def max_level(self, rung):
        return self.vp * (self.utilities[rung] + self.gp)

    def decide(self, buffer_s, segment_s, safe_kbps, current, gap_s):
        kbps = [b / 1000 for b in self.bitrates]
        if self.state == "startup":
            if math.isnan(safe_kbps):
                return None, 0.0
            rung = representation_for(kbps, safe_kbps)
            self.placeholder = max(0.0, self.min_level(rung) - buffer_s)
            if self.saw_segment and buffer_s >= segment_s:
                self.state = "steady"
            return rung, 0.0
        self.placeholder += max(0.0, gap_s)
        level = buffer_s + self.placeholder
        offset = self.p["bola_score_offset"]
        scores = [(self.vp * (u - offset + self.gp) - level) / b
                  for u, b in zip(self.utilities, self.bitrates)]
        best = max(scores)
        rung = max(i for i, s in enumerate(scores) if s == best)  # ties to the higher rung
        sustainable = representation_for(kbps, safe_kbps)
        if rung > current and rung > sustainable:
            rung = max(sustainable, current)
        delay = max(0.0, level - self.max_level(rung))
        if delay <= self.placeholder:
            self.placeholder -= delay
            delay = 0.0
        else:
            delay -= self.placeholder
            self.placeholder = 0.0
            if rung == len(self.bitrates) - 1:
                delay = 0.0
        return rung, delay


class SwitchHistory:
    def __init__(self):
        self.entries = deque(maxlen=8)

    def push(self, old, new):
        self.entries.append((int(old), int(new)))

    def clear(self):
        self.entries.clear()

    def cap(self, rungs, samples, threshold):
        drops = no_drops = 0
        for rung in range(rungs):
            mine = [(old, new) for old, new in self.entries if old == rung]
            if not mine:
                continue
            rung_drops = sum(1 for old, new in mine if new < old)
            drops += rung_drops
            no_drops += len(mine) - rung_drops
            ratio = math.inf if no_drops == 0 and drops > 0 else (drops / no_drops if no_drops else math.nan)
            if drops + no_drops >= samples and ratio > threshold:
                return rung - 1 if rung > 0 and rung_drops > 0 else rung
        return None


class DashJs:
    """The whole rule set, driven through the kernel protocol's calls."""

    def __init__(self, p, bitrates_bps):
        self.p = p
        self.bitrates = list(bitrates_bps)
        self.kbps = [b / 1000 for b in bitrates_bps]
        self.ewma = Ewma(p["fast_half_life"], p["slow_half_life"])
        self.current = representation_for(self.kbps, p["initial_bitrate_bps"] / 1000)
        self.dynamic = p["bola_rule"] and p["throughput_rule"]
        self.use_bola = p["bola_rule"] and not p["throughput_rule"]
        self.bola = None
        self.history = SwitchHistory()
        self.appended = 0
        self.clock = 0.0
        self.gap = 0.0
        self.abandon_until = 0.0
        self.abandoned_segment = None
        self.progress = []

    def check_level(self, level):
        if not self.dynamic:
            return
        limit = self.p["buffer_time_default_s"]
        if self.use_bola and level < limit / 2:
            self.use_bola = False
        elif not self.use_bola and level >= limit:
            self.use_bola = True

    def low_point(self, level):
        self.check_level(level)
        if level < self.p["stall_threshold_s"] and self.bola is not None and self.bola.state == "steady":
            self.bola.placeholder = 0.0

    def choose(self, buffer_s, segment_s):
        if len(self.bitrates) == 1:
            return 0, 0.0
        self.check_level(buffer_s)
        average = self.ewma.average()
        safe = average * self.p["bandwidth_safety_factor"]
        loaded = buffer_s >= self.p["stall_threshold_s"]
        abandoning = self.clock < self.abandon_until
        opinions = []
        delay = 0.0
        if self.use_bola:
            if self.bola is None:
                self.bola = Bola(self.p, self.bitrates)
            gap, self.gap = (self.gap, 0.0) if self.bola.state == "steady" else (0.0, self.gap)
            rung, delay = self.bola.decide(buffer_s, segment_s, safe, self.current, gap)
            if rung is not None:
                opinions.append(rung)
        elif self.p["throughput_rule"] and not math.isnan(safe) and loaded and not abandoning:
            opinions.append(representation_for(self.kbps, safe))
        if self.p["insufficient_buffer_rule"] and self.appended >= self.p["ibr_ignore_segments"]:
            if not loaded:
                opinions.append(0)
            elif not math.isnan(average):
                bitrate = average * self.p["ibr_safety_factor"] * buffer_s / segment_s
                if bitrate > 0:
                    opinions.append(representation_for(self.kbps, bitrate))
        if self.p["switch_history_rule"]:
            cap = self.history.cap(len(self.bitrates), self.p["switch_history_samples"],
                                   self.p["switch_history_threshold"])
            if cap is not None:
                opinions.append(cap)
        if opinions:
            choice = min(opinions)
            self.history.push(self.current, choice)
            if abandoning and choice > self.current:
                choice = self.current
        else:
            choice = self.current
        self.current = choice
        self.clock += delay
        return choice, delay

    def wait(self, wait_s):
        self.clock += wait_s
        self.gap += wait_s

    def done(self, rung, size_bits, elapsed_s, ttfb_s, buffer_after_s, segment_s):
        self.clock += elapsed_s
        self.gap = 0.0
        self.progress = []
        transfer_ms = (elapsed_s - ttfb_s) * 1000
        if transfer_ms > 0:
            self.ewma.push(size_bits / transfer_ms, transfer_ms)
        self.appended += 1
        before = max(0.0, buffer_after_s - segment_s)
        self.low_point(before)
        if self.bola is not None:
            self.bola.saw_segment = True
            self.bola.placeholder *= 0.99
            ceiling = max(0.0, self.bola.max_level(rung) - (before + elapsed_s))
            self.bola.placeholder = min(ceiling, self.bola.placeholder)
        self.current = rung
        self.check_level(buffer_after_s)

    def abandoned(self, rung, target, elapsed_s, buffer_s):
        self.clock += elapsed_s
        self.gap = 0.0
        self.progress = []
        self.low_point(buffer_s)
        self.abandon_until = self.clock + self.p["abandon_load_timeout_s"]
        self.history.clear()
        self.history.push(rung, target)
        self.current = target
        if self.bola is not None:
            want = self.bola.min_level(target) if target > 0 else MIN_BUFFER_S
            self.bola.placeholder = min(self.bola.placeholder, max(0.0, want - buffer_s))

    def abandon(self, segment, rung, size_bits, loaded_bits, elapsed_s, ttfb_s, buffer_s, segment_s):
        if not self.p["abandon"] or len(self.bitrates) == 1:
            return -1
        if buffer_s > self.p["buffer_time_default_s"] or self.abandoned_segment == segment:
            return -1
        since_ms = (elapsed_s - ttfb_s) * 1000
        if loaded_bits > 0 and since_ms > 0:
            self.progress.append(js_round(loaded_bits / since_ms))
        if (len(self.progress) < self.p["abandon_min_samples"]
                or since_ms <= self.p["abandon_min_time_s"] * 1000 or loaded_bits >= size_bits):
            return -1
        measured = js_round(sum(self.progress) / len(self.progress))
        estimate = js_round(size_bits / measured / 1000 * 100) / 100 if measured > 0 else math.inf
        if estimate < segment_s * self.p["abandon_multiplier"] or rung == 0:
            return -1
        target = representation_for(self.kbps, measured)
        if size_bits - loaded_bits > size_bits * self.bitrates[target] / self.bitrates[rung]:
            self.abandoned_segment = segment
            return target
        return -1
