"""The ``dashjs`` kernels (abrsim/abr/_dashjs.py) rule by rule and against the plain-Python twin.

The kernels are not registered yet, so the tests call them directly with the kernel protocol's
arrays, on scripted observation sequences.
"""

from __future__ import annotations

import math

import naive_dashjs
import numpy as np
import pytest

from abrsim.abr import _dashjs as dashjs
from abrsim.abr import _kernels as kernels

ENVIVIO_BPS = np.array([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3])
SEGMENT_S = 4.0
DEFAULTS = {name: default for name, default, _ in dashjs.DASHJS_PARAMS}


def param_array(**changes):
    values = dict(DEFAULTS, **changes)
    return np.array([float(values[name]) for name, _, _ in dashjs.DASHJS_PARAMS])


class Kernel:
    """The kernels with their arrays, called like a player would."""

    def __init__(self, bitrates_bps=ENVIVIO_BPS, **changes):
        self.bitrates_bps = np.asarray(bitrates_bps, dtype=np.float64)
        self.params = param_array(**changes)
        self.state = np.zeros(dashjs.dashjs_state_size(self.bitrates_bps.size))
        dashjs.dashjs_reset(self.params, self.state, self.bitrates_bps, SEGMENT_S)
        self.obs = np.zeros(kernels.OBS_SIZE)
        self.obs[kernels.OBS_SEGMENT_DURATION_S] = SEGMENT_S
        self.obs[kernels.OBS_SEGMENTS] = 100
        self.sizes = np.tile(self.bitrates_bps * SEGMENT_S, (100, 1))

    def choose(self, segment, buffer_s):
        self.obs[kernels.OBS_SEGMENT] = segment
        self.obs[kernels.OBS_BUFFER_S] = buffer_s
        rung, pause_s = dashjs.dashjs_choose(self.params, self.state, self.obs, self.bitrates_bps, self.sizes)
        return int(rung), float(pause_s)

    def wait(self, wait_s):
        self.obs[kernels.OBS_WAIT_S] = wait_s
        dashjs.dashjs_event(self.params, self.state, self.obs, kernels.EVENT_WAIT, self.bitrates_bps)

    def done(self, segment, rung, size_bits, elapsed_s, ttfb_s, buffer_after_s):
        self.obs[kernels.OBS_SEGMENT] = segment
        self.obs[kernels.OBS_RUNG] = rung
        self.obs[kernels.OBS_SIZE_BITS] = size_bits
        self.obs[kernels.OBS_DOWNLOADED_BITS] = size_bits
        self.obs[kernels.OBS_ELAPSED_S] = elapsed_s
        self.obs[kernels.OBS_TTFB_S] = ttfb_s
        self.obs[kernels.OBS_BUFFER_S] = buffer_after_s
        dashjs.dashjs_event(self.params, self.state, self.obs, kernels.EVENT_DONE, self.bitrates_bps)

    def progress(self, segment, rung, size_bits, loaded_bits, elapsed_s, ttfb_s, buffer_s):
        self.obs[kernels.OBS_SEGMENT] = segment
        self.obs[kernels.OBS_RUNG] = rung
        self.obs[kernels.OBS_SIZE_BITS] = size_bits
        self.obs[kernels.OBS_DOWNLOADED_BITS] = loaded_bits
        self.obs[kernels.OBS_ELAPSED_S] = elapsed_s
        self.obs[kernels.OBS_TTFB_S] = ttfb_s
        self.obs[kernels.OBS_BUFFER_S] = buffer_s
        return int(dashjs.dashjs_abandon(self.params, self.state, self.obs, self.bitrates_bps))

    def abandoned(self, segment, rung, target, elapsed_s, buffer_s):
        self.obs[kernels.OBS_SEGMENT] = segment
        self.obs[kernels.OBS_RUNG] = rung
        self.obs[kernels.OBS_ABANDON_TO] = target
        self.obs[kernels.OBS_ELAPSED_S] = elapsed_s
        self.obs[kernels.OBS_BUFFER_S] = buffer_s
        dashjs.dashjs_event(self.params, self.state, self.obs, kernels.EVENT_ABANDONED, self.bitrates_bps)

    @property
    def placeholder_s(self):
        return self.state[dashjs.S_PLACEHOLDER_S]

    @property
    def use_bola(self):
        return bool(self.state[dashjs.S_USE_BOLA])

    def feed(self, kbps, count=1, transfer_s=2.0, segment=0, buffer_after_s=8.0):
        """Complete ``count`` downloads at ``kbps`` (no latency) to set the throughput estimate."""
        for _ in range(count):
            self.done(segment, 0, kbps * 1000.0 * transfer_s, transfer_s, 0.0, buffer_after_s)


def expected_ewma_kbps(samples, fast=3.0, slow=8.0):
    """dash.js's estimate for (kbps, transfer_s) samples, computed in closed form."""
    estimates = []
    for half_life in (fast, slow):
        total = sum(0.0015 * 1000 * seconds for _, seconds in samples)
        value = 0.0
        for position, (kbps, seconds) in enumerate(samples):
            later = sum(0.0015 * 1000 * s for _, s in samples[position + 1:])
            weight = 0.0015 * 1000 * seconds
            value += kbps * (1 - 0.5 ** (weight / half_life)) * 0.5 ** (later / half_life)
        estimates.append(value / (1 - 0.5 ** (total / half_life)))
    return min(estimates)


# ------------------------------------------------------------------------------------------------
# Parameters, state, throughput
# ------------------------------------------------------------------------------------------------


def test_params_table_matches_kernel_slots():
    names = [name for name, _, _ in dashjs.DASHJS_PARAMS]
    assert len(names) == dashjs.DASHJS_PARAM_COUNT == len(set(names))
    slots = {
        "P_BUFFER_TIME_DEFAULT_S": "buffer_time_default_s", "P_SAFETY": "bandwidth_safety_factor",
        "P_FAST_HALF_LIFE": "fast_half_life", "P_SLOW_HALF_LIFE": "slow_half_life",
        "P_INITIAL_BITRATE_BPS": "initial_bitrate_bps", "P_STALL_THRESHOLD_S": "stall_threshold_s",
        "P_BOLA": "bola_rule", "P_BOLA_SCORE_OFFSET": "bola_score_offset", "P_THROUGHPUT": "throughput_rule",
        "P_IBR": "insufficient_buffer_rule", "P_IBR_SAFETY": "ibr_safety_factor",
        "P_IBR_IGNORE": "ibr_ignore_segments", "P_SWITCH_HISTORY": "switch_history_rule",
        "P_SWITCH_SAMPLES": "switch_history_samples", "P_SWITCH_THRESHOLD": "switch_history_threshold",
        "P_ABANDON": "abandon", "P_ABANDON_MULTIPLIER": "abandon_multiplier",
        "P_ABANDON_MIN_TIME_S": "abandon_min_time_s", "P_ABANDON_MIN_SAMPLES": "abandon_min_samples",
        "P_ABANDON_TIMEOUT_S": "abandon_load_timeout_s",
    }
    assert sorted(name for name in vars(dashjs) if name.startswith("P_")) == sorted(slots)
    for constant, name in slots.items():
        assert names[getattr(dashjs, constant)] == name
    assert dashjs.dashjs_state_size(6) == dashjs.DASHJS_SCALARS + 6


def test_bola_parameters_for_the_pensieve_ladder():
    """The reference's numbers: buffer time 22 s, gp = 2.219, Vp = 4.507."""
    kernel = Kernel()
    assert kernel.state[dashjs.S_GP] == pytest.approx(2.219, abs=1e-3)
    assert kernel.state[dashjs.S_VP_S] == pytest.approx(4.507, abs=1e-3)


def test_bola_score_thresholds_match_the_reference():
    """Steady BOLA moves to level q from Q = 7.3, 10.6, 12.7, 14.6, 16.6 s (reference 2.3, which
    rounds; the last is 16.50 s by its own formulas)."""
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False, throughput_rule=False)
    kernel.feed(50000.0, count=2)
    kernel.choose(2, 5.0)
    kernel.done(2, 5, 2e7, 0.4, 0.0, 8.0)
    kernel.choose(3, 8.0)
    assert kernel.state[dashjs.S_BOLA] == dashjs.BOLA_STEADY
    switches = []
    previous = 0
    for level_s in np.arange(0.0, 20.0, 0.01):
        kernel.state[dashjs.S_PLACEHOLDER_S] = 0.0
        kernel.state[dashjs.S_CURRENT] = 5  # BOLA-O does not bind
        rung, _ = kernel.choose(4, level_s)
        if rung != previous:
            switches.append((rung, level_s))
            previous = rung
    assert [rung for rung, _ in switches] == [1, 2, 3, 4, 5]
    assert [level for _, level in switches] == pytest.approx([7.25, 10.6, 12.65, 14.6, 16.51], abs=0.011)
    kernel.params[dashjs.P_BOLA_SCORE_OFFSET] = 0.0  # earlier v5 sources: Vp higher
    kernel.state[dashjs.S_PLACEHOLDER_S] = 0.0
    kernel.state[dashjs.S_CURRENT] = 5
    assert kernel.choose(4, 7.25 + kernel.state[dashjs.S_VP_S] - 0.02)[0] == 0


def test_ewma_matches_closed_form_and_excludes_latency():
    kernel = Kernel()
    samples = [(2000.0, 1.5), (800.0, 4.0), (5000.0, 0.3), (1200.0, 2.2)]
    for kbps, seconds in samples:
        latency_s = 0.25  # excluded from the sample and from its weight
        kernel.done(1, 0, kbps * 1000 * seconds, seconds + latency_s, latency_s, 8.0)
    estimate = dashjs._average_kbps(kernel.params, kernel.state)
    assert estimate == pytest.approx(expected_ewma_kbps(samples), rel=1e-12)


def test_ewma_of_constant_samples_is_that_constant():
    kernel = Kernel()
    assert math.isnan(dashjs._average_kbps(kernel.params, kernel.state))
    kernel.feed(1500.0, count=3, transfer_s=0.7)
    assert dashjs._average_kbps(kernel.params, kernel.state) == pytest.approx(1500.0, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# First segment, throughput rule
# ------------------------------------------------------------------------------------------------


def test_first_segment_uses_the_initial_bitrate_rule():
    assert Kernel().choose(0, 0.0) == (1, 0.0)  # 750 kbit/s <= 1000 kbit/s
    assert Kernel(initial_bitrate_bps=2e6).choose(0, 0.0) == (3, 0.0)
    assert Kernel(initial_bitrate_bps=1e5).choose(0, 0.0) == (0, 0.0)  # below every rung: the lowest


def test_throughput_rule_picks_highest_rung_under_safe_throughput():
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False)
    kernel.feed(2000.0)
    assert kernel.choose(1, 8.0) == (2, 0.0)  # 0.9 * 2000 = 1800 < 1850: 1200 kbit/s
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False, bandwidth_safety_factor=1.0)
    kernel.feed(2000.0)
    assert kernel.choose(1, 8.0) == (3, 0.0)


def test_throughput_rule_abstains_on_empty_buffer():
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False)
    kernel.done(0, 2, 1e7, 2.0, 0.0, 4.0)  # 5000 kbit/s at rung 2
    assert kernel.choose(1, 0.2) == (2, 0.0)  # no opinion: the rung stays
    assert kernel.choose(1, 0.3) == (5, 0.0)  # 4500 kbit/s once the buffer is not empty


# ------------------------------------------------------------------------------------------------
# InsufficientBufferRule
# ------------------------------------------------------------------------------------------------


def test_insufficient_buffer_rule_ignores_first_two_segments():
    kernel = Kernel(throughput_rule=False, bola_rule=False, switch_history_rule=False)
    kernel.done(0, 2, 4e6, 4.0, 0.0, 4.0)  # one appended segment, at rung 2
    assert kernel.choose(1, 0.0) == (2, 0.0)  # ignored: no opinion, the rung stays
    kernel.done(1, 2, 4e6, 4.0, 0.0, 4.0)  # two appended
    assert kernel.choose(2, 0.1) == (0, 0.0)  # buffer empty: the lowest rung


def test_insufficient_buffer_rule_caps_by_buffer():
    kernel = Kernel(throughput_rule=False, bola_rule=False, switch_history_rule=False)
    kernel.feed(3000.0, count=2)
    # 3000 * 0.7 * 2 / 4 = 1050 kbit/s -> 750; with 8 s: 4200 -> 2850.
    assert kernel.choose(2, 2.0)[0] == 1
    assert kernel.choose(3, 8.0)[0] == 4
    assert kernel.choose(4, 30.0)[0] == 5


def test_insufficient_buffer_rule_is_a_cap_on_the_throughput_rule():
    kernel = Kernel(switch_history_rule=False)
    kernel.feed(3000.0, count=2)
    assert kernel.choose(2, 2.0)[0] == 1  # throughput says 1850 (rung 3), buffer says 750
    assert kernel.choose(3, 12.0)[0] == 3  # buffer allows 6300 kbit/s: throughput's rung


# ------------------------------------------------------------------------------------------------
# SwitchHistoryRule
# ------------------------------------------------------------------------------------------------


def test_switch_history_caps_after_drops():
    kernel = Kernel(insufficient_buffer_rule=False)
    rates = [5000.0, 5000.0, 5000.0, 5000.0, 5000.0, 5000.0, 5000.0, 5000.0]
    for segment, kbps in enumerate(rates):
        kernel.feed(kbps, segment=segment)
        kernel.choose(segment + 1, 10.0)
    assert kernel.choose(9, 10.0)[0] == 5
    # One drop from the top among 8 samples of rung 5: drops / non-drops = 1/7 > 0.075.
    slow = Kernel(insufficient_buffer_rule=False)
    history = [(5, 5)] * 7 + [(5, 3)]
    for old, new in history:
        dashjs._history_push(slow.state, old, new)
    assert dashjs._switch_history_cap(slow.params, slow.state, 6) == 4
    # Below the sample size the rule abstains.
    few = Kernel()
    for old, new in [(5, 3)] * 3:
        dashjs._history_push(few.state, old, new)
    assert dashjs._switch_history_cap(few.params, few.state, 6) == -1


def test_switch_history_counts_from_the_lowest_rung_up():
    kernel = Kernel()
    for old, new in [(1, 1)] * 4 + [(2, 2)] * 3 + [(3, 1)]:
        dashjs._history_push(kernel.state, old, new)
    # Rungs 1..2 give 7 non-drops; rung 3 adds a drop: 8 samples, 1/7 > 0.075, rung 3 saw a drop.
    assert dashjs._switch_history_cap(kernel.params, kernel.state, 6) == 2
    # Only the last 8 pushes count.
    for _ in range(8):
        dashjs._history_push(kernel.state, 4, 4)
    assert dashjs._switch_history_cap(kernel.params, kernel.state, 6) == -1


# ------------------------------------------------------------------------------------------------
# DYNAMIC and BOLA
# ------------------------------------------------------------------------------------------------


def test_dynamic_hysteresis():
    kernel = Kernel()
    kernel.feed(3000.0, count=3)
    kernel.choose(3, 17.9)
    assert not kernel.use_bola
    kernel.choose(4, 18.0)
    assert kernel.use_bola
    kernel.choose(5, 9.5)  # between 9 and 18: stays with BOLA
    assert kernel.use_bola
    kernel.choose(6, 8.9)
    assert not kernel.use_bola
    kernel.choose(7, 17.0)  # between 9 and 18: stays with the throughput rule
    assert not kernel.use_bola


def test_dynamic_sees_the_low_point_of_a_download():
    """A download that drains the buffer below 9 s hands back to the throughput rule even if the
    appended segment lifts it again."""
    kernel = Kernel()
    kernel.feed(3000.0, count=3)
    kernel.choose(3, 20.0)
    assert kernel.use_bola
    kernel.done(3, 2, 4.8e6, 12.0, 0.0, 20.0 - 12.0 + SEGMENT_S)
    assert not kernel.use_bola


def test_bola_only_and_throughput_only_modes():
    assert Kernel(throughput_rule=False).use_bola
    kernel = Kernel(bola_rule=False)
    kernel.feed(3000.0, count=2)
    kernel.choose(2, 30.0)
    assert not kernel.use_bola


def test_bola_startup_then_steady():
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False, throughput_rule=False)
    kernel.feed(2200.0, count=3)  # safe: 1980 kbit/s -> rung 3
    assert kernel.choose(3, 2.0) == (3, 0.0)
    assert kernel.state[dashjs.S_BOLA] == dashjs.BOLA_STARTUP  # no segment seen since created
    min_level = dashjs._bola_min_level_s(kernel.state, ENVIVIO_BPS, 3)
    assert kernel.placeholder_s == pytest.approx(min_level - 2.0)
    kernel.done(3, 3, 7.4e6, 3.5, 0.0, 3.5)
    assert kernel.choose(4, 3.5)[0] == 3
    assert kernel.state[dashjs.S_BOLA] == dashjs.BOLA_STARTUP  # less than one segment buffered
    kernel.done(4, 3, 7.4e6, 3.5, 0.0, 4.0)
    assert kernel.choose(5, 4.0)[0] == 3
    assert kernel.state[dashjs.S_BOLA] == dashjs.BOLA_STEADY


def test_bola_steady_delay_and_top_rung():
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False, throughput_rule=False)
    kernel.feed(20000.0, count=2)
    kernel.choose(2, 10.0)
    kernel.done(2, 5, 1.72e7, 1.0, 0.0, 13.0)
    kernel.choose(3, 13.0)
    assert kernel.state[dashjs.S_BOLA] == dashjs.BOLA_STEADY
    kernel.state[dashjs.S_PLACEHOLDER_S] = 0.0
    # A large buffer at the top rung: no delay (the scheduler decides).
    assert kernel.choose(4, 40.0) == (5, 0.0)
    # Slow network: BOLA-O keeps rung 1 at most; the buffer above Vp (u_1 + gp) becomes a delay.
    slow = Kernel(insufficient_buffer_rule=False, switch_history_rule=False, throughput_rule=False)
    slow.feed(900.0, count=2)
    slow.choose(2, 10.0)
    slow.done(2, 1, 3e6, 3.0, 0.0, 11.0)
    slow.choose(3, 11.0)
    slow.state[dashjs.S_PLACEHOLDER_S] = 0.0
    rung, delay_s = slow.choose(4, 30.0)
    assert rung == 1
    assert delay_s == pytest.approx(30.0 - dashjs._bola_max_level_s(slow.state, 1))


def test_bola_placeholder_grows_with_waits_and_resets_on_empty_buffer():
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False, throughput_rule=False)
    kernel.feed(1500.0, count=2)
    kernel.choose(2, 6.0)
    kernel.done(2, 2, 4.8e6, 3.2, 0.0, 6.8)
    kernel.choose(3, 6.8)  # steady now
    placeholder_s = kernel.placeholder_s
    kernel.done(3, 2, 4.8e6, 3.2, 0.0, 7.6)
    decayed_s = kernel.placeholder_s
    assert decayed_s <= placeholder_s * 0.99 + 1e-12
    kernel.wait(2.5)
    kernel.wait(0.5)
    kernel.choose(4, 7.6)
    assert kernel.placeholder_s >= decayed_s  # grew by 3 s, then maybe spent on a delay
    kernel.done(4, 2, 4.8e6, 9.0, 0.0, 4.0)  # buffer ran dry: 7.6 - 9 < 0
    assert kernel.placeholder_s == 0.0


# ------------------------------------------------------------------------------------------------
# AbandonRequestsRule
# ------------------------------------------------------------------------------------------------


def run_progress(kernel, segment, rung, size_bits, rate_kbps, buffer_s, step_s=0.05, ttfb_s=0.1):
    """Progress checks every ``step_s`` at a constant rate; the first that abandons, or None."""
    elapsed_s = ttfb_s
    loaded_bits = 0.0
    while True:
        elapsed_s += step_s
        loaded_bits = min(size_bits, loaded_bits + rate_kbps * 1000 * step_s)
        if loaded_bits >= size_bits:
            return None
        target = kernel.progress(segment, rung, size_bits, loaded_bits, elapsed_s, ttfb_s, buffer_s)
        if target != -1:
            return target, elapsed_s - ttfb_s


def test_abandon_on_a_slow_download():
    kernel = Kernel()
    size_bits = 4300e3 * SEGMENT_S
    target, since_s = run_progress(kernel, 5, 5, size_bits, rate_kbps=1000.0, buffer_s=10.0)
    assert target == 1  # highest rung <= 1000 kbit/s (no safety factor)
    assert since_s > 0.5  # not before 500 ms after the first byte
    # Once per segment.
    assert run_progress(kernel, 5, 1, 750e3 * SEGMENT_S, rate_kbps=100.0, buffer_s=10.0) is None


def test_abandon_waits_for_samples_and_time():
    kernel = Kernel(abandon_min_time_s=0.0)
    size_bits = 4300e3 * SEGMENT_S
    target, since_s = run_progress(kernel, 5, 5, size_bits, rate_kbps=1000.0, buffer_s=10.0, step_s=0.01)
    assert target == 1
    assert since_s == pytest.approx(0.06)  # the sixth sample


def test_no_abandon_when_fast_enough_full_buffer_or_lowest_rung():
    size_bits = 4300e3 * SEGMENT_S
    # 17.2 Mbit at 2400 kbit/s = 7.17 s < 1.8 * 4 = 7.2 s.
    assert run_progress(Kernel(), 5, 5, size_bits, rate_kbps=2400.0, buffer_s=10.0) is None
    assert run_progress(Kernel(), 5, 5, size_bits, rate_kbps=500.0, buffer_s=18.5) is None
    assert run_progress(Kernel(), 5, 0, 300e3 * SEGMENT_S, rate_kbps=10.0, buffer_s=5.0) is None
    assert run_progress(Kernel(abandon=False), 5, 5, size_bits, rate_kbps=500.0, buffer_s=5.0) is None


def test_abandonment_blocks_up_switches_for_a_while():
    kernel = Kernel(insufficient_buffer_rule=False, switch_history_rule=False)
    kernel.feed(5000.0, count=2)
    kernel.abandoned(2, 5, 1, 2.0, 6.0)
    assert kernel.choose(2, 6.0) == (1, 0.0)  # throughput rule abstains, the rung may only drop
    kernel.done(2, 1, 3e6, 0.6, 0.0, 9.4)
    assert kernel.choose(3, 9.4)[0] == 1
    kernel.wait(10.0)  # past the 10 s timeout
    assert kernel.choose(4, 9.4)[0] == 5  # 0.9 * 5000 kbit/s


# ------------------------------------------------------------------------------------------------
# Against the twin, and determinism
# ------------------------------------------------------------------------------------------------


def scripted_session(seed, kernel, twin, segments=60):
    """Random protocol-conforming observations fed to both; returns the kernel's answers."""
    rng = np.random.default_rng(seed)
    answers = []
    buffer_s = 0.0
    bitrates = kernel.bitrates_bps
    segment = 0
    pending = None
    while segment < segments:
        if buffer_s > 20.0 and rng.random() < 0.5:
            wait_s = float(rng.uniform(0.1, 5.0))
            buffer_s -= wait_s
            kernel.wait(wait_s)
            twin.wait(wait_s)
        if pending is None and (segment > 0 or rng.random() < 0.5):
            got = kernel.choose(segment, buffer_s)
            want = twin.choose(buffer_s, SEGMENT_S)
            assert got[0] == want[0]
            assert got[1] == pytest.approx(want[1], rel=1e-9, abs=1e-12)
            rung, pause_s = got
            buffer_s = max(0.0, buffer_s - pause_s)
        else:
            rung, pause_s = (pending if pending is not None else int(rng.integers(0, bitrates.size))), 0.0
        pending = None
        answers.append((segment, rung, pause_s))
        size_bits = float(bitrates[rung] * SEGMENT_S * rng.uniform(0.7, 1.3))
        rate_kbps = float(rng.choice([300.0, 900.0, 2500.0, 6000.0]) * rng.uniform(0.5, 1.5))
        ttfb_s = float(rng.uniform(0.0, 0.3))
        elapsed_s = ttfb_s
        loaded_bits = 0.0
        abandoned_to = -1
        if segment > 0:
            while True:
                step_s = float(rng.uniform(0.02, 0.3))
                if loaded_bits + rate_kbps * 1000 * step_s >= size_bits:
                    break
                elapsed_s += step_s
                loaded_bits += rate_kbps * 1000 * step_s
                level_s = max(0.0, buffer_s - elapsed_s)
                got = kernel.progress(segment, rung, size_bits, loaded_bits, elapsed_s, ttfb_s, level_s)
                want = twin.abandon(segment, rung, size_bits, loaded_bits, elapsed_s, ttfb_s, level_s,
                                    SEGMENT_S)
                assert got == want
                if got != -1:
                    abandoned_to = got
                    break
        if abandoned_to != -1:
            buffer_s = max(0.0, buffer_s - elapsed_s)
            kernel.abandoned(segment, rung, abandoned_to, elapsed_s, buffer_s)
            twin.abandoned(rung, abandoned_to, elapsed_s, buffer_s)
            answers.append((segment, -1, abandoned_to))
            pending = abandoned_to if rng.random() < 0.7 else None
        else:
            elapsed_s += (size_bits - loaded_bits) / (rate_kbps * 1000)
            buffer_s = max(0.0, buffer_s - elapsed_s) + SEGMENT_S
            kernel.done(segment, rung, size_bits, elapsed_s, ttfb_s, buffer_s)
            twin.done(rung, size_bits, elapsed_s, ttfb_s, buffer_s, SEGMENT_S)
            segment += 1
        assert kernel.use_bola == twin.use_bola
        assert int(kernel.state[dashjs.S_CURRENT]) == twin.current
        if twin.bola is not None:
            assert kernel.placeholder_s == pytest.approx(twin.bola.placeholder, rel=1e-9, abs=1e-12)
    return answers


PARAM_VARIANTS = [
    {},
    {"bola_score_offset": 0.0},
    {"throughput_rule": False},
    {"bola_rule": False},
    {"buffer_time_default_s": 12.0, "switch_history_samples": 6},
    {"abandon_load_timeout_s": 0.0, "abandon_min_samples": 2, "abandon_multiplier": 1.2},
    {"insufficient_buffer_rule": False, "switch_history_rule": False},
]


@pytest.mark.parametrize("changes", PARAM_VARIANTS)
@pytest.mark.parametrize("seed", range(6))
def test_kernels_match_twin_on_scripted_sessions(changes, seed):
    bitrates = ENVIVIO_BPS if seed % 2 == 0 else np.array([230e3, 477e3, 991e3, 2056e3, 5027e3])
    kernel = Kernel(bitrates, **changes)
    twin = naive_dashjs.DashJs(dict(DEFAULTS, **changes), bitrates)
    scripted_session(seed, kernel, twin)


def test_scripted_sessions_exercise_every_rule():
    """The random scripts reach BOLA's steady state, abandonments and switch-history caps."""
    seen_steady = seen_abandon = seen_bola_delay = 0
    for seed in range(6):
        kernel = Kernel()
        twin = naive_dashjs.DashJs(dict(DEFAULTS), ENVIVIO_BPS)
        answers = scripted_session(seed, kernel, twin)
        seen_steady += kernel.state[dashjs.S_BOLA] == dashjs.BOLA_STEADY
        seen_abandon += any(rung == -1 for _, rung, _ in answers)
        seen_bola_delay += any(rung >= 0 and pause_s > 0 for _, rung, pause_s in answers)
    assert seen_steady and seen_abandon and seen_bola_delay


def test_deterministic():
    runs = []
    for _ in range(2):
        kernel = Kernel()
        twin = naive_dashjs.DashJs(dict(DEFAULTS), ENVIVIO_BPS)
        runs.append((scripted_session(11, kernel, twin), kernel.state.copy()))
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1])


def test_reset_clears_state():
    kernel = Kernel()
    twin = naive_dashjs.DashJs(dict(DEFAULTS), ENVIVIO_BPS)
    scripted_session(3, kernel, twin)
    dashjs.dashjs_reset(kernel.params, kernel.state, kernel.bitrates_bps, SEGMENT_S)
    fresh = Kernel()
    assert np.array_equal(kernel.state, fresh.state)


def test_single_rung_ladder():
    kernel = Kernel(np.array([1e6]))
    kernel.feed(100.0, count=3)
    assert kernel.choose(3, 0.0) == (0, 0.0)
    assert kernel.progress(3, 0, 4e6, 1e3, 5.0, 0.1, 1.0) == -1
    assert dashjs.dashjs_can_abandon(kernel.params)
    assert not dashjs.dashjs_can_abandon(param_array(abandon=False))
