from __future__ import annotations

import math
from collections import OrderedDict, defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abrsim.cdn import (
    POLICIES,
    Cache,
    Catalog,
    CdnState,
    ProactiveFill,
    Tier,
    TierChain,
    Workload,
    che_approximation,
    draw_irm_requests,
    draw_session_arrivals_s,
    draw_sessions,
    draw_watch_durations_s,
    plan_proactive_fill,
    serve_requests,
    sessions_to_requests,
    simulate_requests,
    zipf_popularity,
)
from abrsim.errors import InputError
from abrsim.ladder import Ladder, Rung

# ---------------------------------------------------------------------------
# Slow, obviously-correct twins, written from the policies' descriptions.


class NaiveCache:
    """Plain-Python byte-capacity cache: OrderedDict LRU/FIFO, dict LFU with min(), list SIEVE."""

    def __init__(self, policy, capacity_bytes, sizes_bytes, admit_after=1):
        self.policy = policy
        self.capacity = capacity_bytes
        self.sizes = [int(s) for s in sizes_bytes]
        self.admit_after = admit_after
        self.seen = defaultdict(int)
        self.clock = 0
        self.used = 0
        self.order = OrderedDict()  # lru, fifo: oldest first
        self.lfu = {}  # object -> [count since admission, clock of last access]
        self.queue = []  # sieve: oldest first
        self.visited = {}
        self.hand = None  # sieve: index into queue, None: start from the oldest
        self.admitted = []

    def resident(self):
        if self.policy in ("lru", "fifo"):
            return set(self.order)
        if self.policy == "lfu":
            return set(self.lfu)
        return set(self.queue)

    def lookup(self, oid):
        self.clock += 1
        self.seen[oid] += 1
        if oid not in self.resident():
            return False
        if self.policy == "lru":
            self.order.move_to_end(oid)
        elif self.policy == "lfu":
            self.lfu[oid][0] += 1
            self.lfu[oid][1] = self.clock
        elif self.policy == "sieve":
            self.visited[oid] = True
        return True

    def fill(self, oid):
        if oid in self.resident() or self.seen[oid] < self.admit_after:
            return False
        return self._admit(oid)

    def push(self, oid):
        if oid in self.resident():
            return False
        return self._admit(oid)

    def request(self, oid):
        if self.lookup(oid):
            return True
        self.fill(oid)
        return False

    def _admit(self, oid):
        size = self.sizes[oid]
        if size > self.capacity:
            return False
        while self.used + size > self.capacity:
            self._evict()
        self.clock += 1
        self.used += size
        if self.policy in ("lru", "fifo"):
            self.order[oid] = None
        elif self.policy == "lfu":
            self.lfu[oid] = [1, self.clock]
        else:
            self.queue.append(oid)
            self.visited[oid] = False
        self.admitted.append(oid)
        return True

    def _evict(self):
        if self.policy in ("lru", "fifo"):
            victim, _ = self.order.popitem(last=False)
        elif self.policy == "lfu":
            victim = min(self.lfu, key=lambda o: (self.lfu[o][0], self.lfu[o][1]))
            del self.lfu[victim]
        else:
            i = 0 if self.hand is None else self.hand
            while self.visited[self.queue[i]]:
                self.visited[self.queue[i]] = False
                i = (i + 1) % len(self.queue)
            victim = self.queue.pop(i)
            del self.visited[victim]
            self.hand = i if i < len(self.queue) else None
        self.used -= self.sizes[victim]


def naive_chain(tiers_policy, requests, sizes, paths, groups, origin):
    """Twin of serve_requests: one NaiveCache per cache tier; returns the serving tiers."""
    caches = {
        k: NaiveCache(policy, capacity, sizes, admit)
        for k, (policy, capacity, admit) in enumerate(tiers_policy)
        if not origin[k]
    }
    served = []
    for oid, group in zip(requests, groups):
        missed = []
        for tier in paths[group]:
            if origin[tier] or caches[tier].lookup(oid):
                served.append(tier)
                break
            missed.append(tier)
        for tier in reversed(missed):
            caches[tier].fill(oid)
    return served, caches


POLICY_NAMES = sorted(POLICIES)

# ---------------------------------------------------------------------------
# Kernels against the twins.

ops = st.lists(
    st.tuples(
        st.sampled_from(["request", "request", "request", "lookup", "fill", "push"]), st.integers(0, 11)
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(POLICY_NAMES),
    sizes=st.lists(st.integers(1, 9), min_size=12, max_size=12),
    capacity=st.integers(0, 30),
    admit_after=st.integers(1, 3),
    script=ops,
)
def test_every_operation_matches_the_naive_twin(policy, sizes, capacity, admit_after, script):
    cache = Cache(policy, capacity, sizes, admit_after=admit_after)
    twin = NaiveCache(policy, capacity, sizes, admit_after)
    for op, oid in script:
        assert getattr(cache, op)(oid) == getattr(twin, op)(oid), (op, oid)
        assert cache.used_bytes == twin.used <= capacity
        assert set(cache.resident_ids().tolist()) == twin.resident()
        assert cache.object_count == len(twin.resident())


@settings(max_examples=40, deadline=None)
@given(
    policy=st.sampled_from(POLICY_NAMES),
    seed=st.integers(0, 2**32 - 1),
    objects=st.integers(1, 60),
    capacity=st.integers(0, 200),
    admit_after=st.integers(1, 3),
)
def test_batch_hits_match_the_twin_on_random_streams(policy, seed, objects, capacity, admit_after):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 40, objects)
    requests = draw_irm_requests(zipf_popularity(objects, 0.9), 400, rng)
    cache = Cache(policy, capacity, sizes, admit_after=admit_after)
    hit, used = cache.run(requests, record_used_bytes=True)
    twin = NaiveCache(policy, capacity, sizes, admit_after)
    expected = []
    for oid in requests.tolist():
        expected.append(twin.request(oid))
    assert hit.tolist() == expected
    assert used.max(initial=0) <= capacity
    assert cache.used_bytes == twin.used
    assert cache.hits == sum(expected) and cache.requests == len(expected)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_long_stream_with_many_evictions_matches_the_twin(policy):
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 1000, 300)
    requests = draw_irm_requests(zipf_popularity(300, 0.7), 6000, rng)
    hit, used = Cache(policy, 12_000, sizes).run(requests, record_used_bytes=True)
    twin = NaiveCache(policy, 12_000, sizes)
    assert hit.tolist() == [twin.request(oid) for oid in requests.tolist()]
    assert used.max() <= 12_000
    assert 0.1 < hit.mean() < 0.9  # the stream exercised both paths


def test_exact_orders_on_a_small_script():
    sizes = [1] * 5
    # LRU keeps 0 (hit) and evicts 1; FIFO evicts 0 (oldest admitted) despite the hit.
    assert simulate_requests("lru", 2, sizes, [0, 1, 0, 2, 0, 1]).tolist() == [0, 0, 1, 0, 1, 0]
    assert simulate_requests("fifo", 2, sizes, [0, 1, 0, 2, 0, 1]).tolist() == [0, 0, 1, 0, 0, 0]
    # LFU: 0 has count 3, 1 has 2, 2 has 1 -> 3 evicts 2; 2 comes back and evicts 3 (count 1).
    assert simulate_requests("lfu", 3, sizes, [0, 0, 0, 1, 1, 2, 3, 2]).tolist() == [0, 1, 1, 0, 1, 0, 0, 0]
    # LFU ties go to the least recently requested: 0 and 1 both count 1, 0 older -> 2 evicts 0.
    assert simulate_requests("lfu", 2, sizes, [0, 1, 2, 1, 0]).tolist() == [0, 0, 0, 1, 0]
    # SIEVE: 3 clears 0's visited bit and evicts 1; 1 then evicts 2 and 4 evicts 3; 0 survives throughout.
    assert simulate_requests("sieve", 3, sizes, [0, 1, 2, 0, 3, 0, 1, 4, 0]).tolist() == [
        0,
        0,
        0,
        1,
        0,
        1,
        0,
        0,
        1,
    ]


def test_objects_larger_than_the_cache_bypass_it():
    cache = Cache("lru", 10, [4, 11, 6])
    assert [cache.request(i) for i in (0, 1, 1, 2, 0)] == [False, False, False, False, True]
    assert cache.used_bytes == 10 and not cache.contains(1)
    unlimited = Cache("lru", math.inf, [4, 11, 6])
    assert [unlimited.request(i) for i in (0, 1, 2, 0, 1, 2)] == [False] * 3 + [True] * 3


# ---------------------------------------------------------------------------
# Che's approximation.


def lru_hit_ratio(popularity, capacity, request_count, seed, sizes=None):
    n = popularity.size
    requests = draw_irm_requests(popularity, request_count, np.random.default_rng(seed))
    unit = np.ones(n, dtype=np.int64) if sizes is None else sizes
    hit = simulate_requests("lru", capacity, unit, requests)
    warm = request_count // 5  # drop the cold start
    if sizes is None:
        return hit[warm:].mean(), None
    return hit[warm:].mean(), (sizes[requests[warm:]] * hit[warm:]).sum() / sizes[requests[warm:]].sum()


@pytest.mark.parametrize("alpha", [0.8, 1.0])
@pytest.mark.parametrize("share", [0.01, 0.1])
@pytest.mark.parametrize(
    ("objects", "request_count"),
    [(10_000, 400_000), (100_000, 2_000_000), pytest.param(1_000_000, 10_000_000, marks=pytest.mark.slow)],
)
def test_lru_matches_che_approximation(alpha, share, objects, request_count):
    popularity = zipf_popularity(objects, alpha)
    capacity = int(objects * share)
    simulated, _ = lru_hit_ratio(popularity, capacity, request_count, seed=11)
    che = che_approximation(popularity, capacity)
    assert abs(simulated - che.hit_ratio) < 0.01
    occupied = (1 - np.exp(-popularity * che.characteristic_time_requests)).sum()
    assert occupied == pytest.approx(capacity, rel=1e-9)


@pytest.mark.parametrize("alpha", [0.8, 1.0])
def test_byte_capacity_lru_matches_che_with_sizes(alpha):
    objects = 10_000
    rng = np.random.default_rng(5)
    sizes = rng.integers(100_000, 2_000_000, objects)
    popularity = zipf_popularity(objects, alpha)
    capacity = int(0.05 * sizes.sum())
    hit_ratio, byte_hit_ratio = lru_hit_ratio(popularity, capacity, 400_000, seed=2, sizes=sizes)
    che = che_approximation(popularity, capacity, sizes)
    assert abs(hit_ratio - che.hit_ratio) < 0.01
    assert abs(byte_hit_ratio - che.byte_hit_ratio) < 0.01


def test_che_limits():
    popularity = zipf_popularity(100, 1.0)
    assert che_approximation(popularity, 100).hit_ratio == pytest.approx(1.0)
    assert che_approximation(popularity, 100).characteristic_time_requests == math.inf
    assert che_approximation(popularity, 0).hit_ratio == 0.0
    uniform = che_approximation(np.ones(1000), 100)  # T solves 1000 (1 - exp(-T/1000)) = 100
    assert uniform.hit_ratio == pytest.approx(0.1, rel=1e-9)


# ---------------------------------------------------------------------------
# Policies and admission on workloads.


@pytest.mark.parametrize("alpha", [0.8, 1.0])
@pytest.mark.parametrize("share", [0.01, 0.1])
def test_sieve_beats_fifo_and_lfu_beats_lru_on_zipf(alpha, share):
    objects = 20_000
    requests = draw_irm_requests(zipf_popularity(objects, alpha), 400_000, np.random.default_rng(4))
    sizes = np.ones(objects, dtype=np.int64)
    ratio = {
        p: simulate_requests(p, int(objects * share), sizes, requests)[100_000:].mean() for p in POLICY_NAMES
    }
    assert ratio["sieve"] > ratio["fifo"] + 0.01
    assert ratio["lfu"] > ratio["lru"] > ratio["fifo"]  # under IRM the frequency is the signal


def test_admission_after_two_requests_keeps_one_hit_wonders_out():
    rng = np.random.default_rng(8)
    popular = 2_000
    stream = draw_irm_requests(zipf_popularity(popular, 0.9), 60_000, rng)
    wonders = popular + np.arange(30_000)  # each requested exactly once
    requests = stream.copy()
    slots = np.sort(rng.choice(stream.size, wonders.size, replace=False))
    requests[slots] = wonders
    sizes = np.ones(popular + wonders.size, dtype=np.int64)
    results = {}
    for admit_after in (1, 2):
        cache = Cache("lru", 200, sizes, admit_after=admit_after)
        wonder_admissions = 0
        hits = 0
        for oid in requests.tolist():
            hits += cache.request(oid)
            if oid >= popular and cache.contains(oid):
                wonder_admissions += 1
        results[admit_after] = (wonder_admissions, hits / requests.size, cache.admissions)
    assert results[1][0] == wonders.size
    assert results[2][0] == 0
    assert results[2][2] < results[1][2]
    assert results[2][1] > results[1][1]  # the wonders no longer push popular objects out


# ---------------------------------------------------------------------------
# Tier chains.


def three_tiers(edge_policy="lru", edge_bytes=40, ixp_bytes=120, admit_after=1):
    return TierChain.linear(
        [
            Tier("edge", edge_bytes, 0.005, 1e9, 1e8, edge_policy, admit_after),
            Tier("ixp", ixp_bytes, 0.02, 1e10, 1e9, "sieve"),
            Tier("origin", None, 0.08),
        ]
    )


def branched_chain():
    return TierChain(
        (
            Tier("edge_a", 30, policy="lru", next="ixp"),
            Tier("edge_b", 50, policy="sieve", admit_after=2, next="ixp"),
            Tier("ixp", 150, policy="lfu", next="origin"),
            Tier("origin", None),
        ),
        groups={"isp_a": "edge_a", "isp_b": "edge_b"},
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), branched=st.booleans())
def test_serve_requests_matches_a_chain_of_twins(seed, branched):
    rng = np.random.default_rng(seed)
    objects = 80
    sizes = rng.integers(1, 12, objects)
    chain = branched_chain() if branched else three_tiers(edge_policy="lfu", admit_after=2)
    requests = draw_irm_requests(zipf_popularity(objects, 0.8), 500, rng)
    groups = rng.integers(0, len(chain.group_names), requests.size)
    state = CdnState(chain, sizes)
    log = state.serve(requests, groups=groups)
    paths = [[t for t in row if t >= 0] for row in chain.paths().tolist()]
    spec = [(t.policy, t.capacity_bytes, t.admit_after) for t in chain.tiers]
    origin = [t.is_origin for t in chain.tiers]
    expected, twins = naive_chain(spec, requests.tolist(), sizes, paths, groups.tolist(), origin)
    assert log.tier.tolist() == expected
    for k, twin in twins.items():
        cache = state.caches[chain.tiers[k].name]
        assert set(cache.resident_ids().tolist()) == twin.resident()
        assert cache.used_bytes == twin.used <= chain.tiers[k].capacity_bytes


def test_incremental_chain_requests_match_the_batch():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 12, 80)
    requests = draw_irm_requests(zipf_popularity(80, 1.0), 800, rng)
    groups = rng.integers(0, 2, requests.size)
    batch = serve_requests(branched_chain(), requests, sizes, groups=groups)
    state = CdnState(branched_chain(), sizes)
    one_by_one = []
    for oid, group in zip(requests.tolist(), groups.tolist()):
        one_by_one.append(state.request(oid, group))
        for name, cache in state.caches.items():
            assert cache.used_bytes <= branched_chain().tiers[branched_chain().index(name)].capacity_bytes
    assert one_by_one == batch.tier.tolist()


def test_a_miss_fills_every_tier_on_the_way_back_and_bytes_add_up():
    chain = three_tiers()
    sizes = np.array([5, 7, 9, 3] + [4] * 40)
    state = CdnState(chain, sizes)
    log = state.serve([2])
    assert log.tier.tolist() == [2]  # the origin
    assert state.caches["edge"].contains(2) and state.caches["ixp"].contains(2)
    assert state.serve([2]).tier.tolist() == [0]

    rng = np.random.default_rng(0)
    requests = draw_irm_requests(zipf_popularity(sizes.size, 0.7), 3000, rng)
    log = serve_requests(chain, requests, sizes, time_s=np.arange(requests.size) * 0.5)
    stats = log.stats()
    assert stats.hit_bytes.sum() == sizes[requests].sum()  # every byte is served by exactly one tier
    assert stats.hits.sum() == requests.size
    # what the edge missed reached the exchange point, and what it missed reached the origin
    assert stats.requests[0, 1] == stats.requests[0, 0] - stats.hits[0, 0]
    assert stats.requests[0, 2] == stats.requests[0, 1] - stats.hits[0, 1]
    assert stats.requested_bytes[0, 1] == stats.requested_bytes[0, 0] - stats.hit_bytes[0, 0]
    assert stats.hit_ratio[0, 2] == 1.0
    assert log.origin_offload == pytest.approx(1 - stats.hit_bytes[0, 2] / stats.hit_bytes.sum())
    binned = log.stats(bin_duration_s=60.0)
    assert binned.bin_start_s.tolist() == [
        0.0,
        60.0,
        120.0,
        180.0,
        240.0,
        300.0,
        360.0,
        420.0,
        480.0,
        540.0,
        600.0,
        660.0,
        720.0,
        780.0,
        840.0,
        900.0,
        960.0,
        1020.0,
        1080.0,
        1140.0,
        1200.0,
        1260.0,
        1320.0,
        1380.0,
        1440.0,
    ]
    for name in ("requests", "hits", "requested_bytes", "hit_bytes"):
        assert (getattr(binned, name).sum(axis=0) == getattr(stats, name)[0]).all()
    assert binned.hit_ratio[0, 0] < binned.hit_ratio[-1, 0]  # the edge warms up
    assert np.all((binned.origin_offload >= 0) & (binned.origin_offload <= 1))


def test_shared_exchange_point_sees_both_edges_misses():
    chain = branched_chain()
    assert chain.path_names("isp_a") == ("edge_a", "ixp", "origin")
    assert chain.path_names("isp_b") == ("edge_b", "ixp", "origin")
    sizes = np.full(10, 10)
    log = serve_requests(chain, [3, 3, 3], sizes, groups=[0, 1, 1])
    # isp_a fills edge_a and ixp; isp_b misses edge_b, hits ixp; edge_b admits only on the 2nd request
    assert [chain.names[t] for t in log.tier] == ["origin", "ixp", "ixp"]


# ---------------------------------------------------------------------------
# Workload and proactive fill.


@pytest.fixture
def catalog():
    ladder = Ladder.cbr([Rung(b) for b in (400e3, 1.2e6, 3e6)], 4.0, 30)  # 2-minute titles
    return Catalog.uniform(ladder, 50, durations_s=np.linspace(40.0, 120.0, 50))


def test_catalog_ids_and_sizes(catalog):
    assert catalog.title_count == 50
    assert catalog.segment_counts[0] == 10 and catalog.segment_counts[-1] == 30
    assert catalog.object_count == sum(3 * c for c in catalog.segment_counts)
    oid = catalog.object_id(4, 2, 7)
    assert oid == catalog.first_object[4] + 7 * 3 + 2
    assert catalog.sizes_bytes[oid] == 3e6 * 4.0 / 8
    assert catalog.title_of([oid, 0, catalog.object_count - 1]).tolist() == [4, 0, 49]
    with pytest.raises(InputError, match="'segment'"):
        catalog.object_id(0, 0, 10)
    longer = Catalog.uniform(Ladder.cbr([Rung(1e6)], 2.0, 3), 1, durations_s=14.0)  # 7 segments, tiled
    assert longer.segment_counts == (7,) and longer.sizes_bytes.tolist() == [250_000] * 7


def test_zipf_and_irm_trace():
    p = zipf_popularity(1000, 0.8)
    assert p.sum() == pytest.approx(1.0) and np.all(np.diff(p) < 0)
    assert p[0] / p[9] == pytest.approx(10**0.8)
    trace = draw_irm_requests(p, 200_000, np.random.default_rng(0))
    counts = np.bincount(trace, minlength=1000) / trace.size
    assert abs(counts[0] - p[0]) < 0.003


def test_poisson_arrivals_and_diurnal_thinning():
    rng = np.random.default_rng(2)
    times = draw_session_arrivals_s(2.0, 10_000.0, rng)
    assert abs(times.size - 20_000) < 5 * math.sqrt(20_000)
    assert np.all(np.diff(times) >= 0) and times.min() >= 0 and times.max() < 10_000
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)  # exponential gaps

    curve = np.array([0.2] * 6 + [1.0] * 12 + [3.0] * 6)  # 24 hourly multipliers
    day = draw_session_arrivals_s(1.0, 86_400.0, rng, diurnal_multipliers=curve)
    per_hour = np.bincount((day // 3600).astype(int), minlength=24)
    expected = 3600 * curve
    assert np.all(np.abs(per_hour - expected) < 5 * np.sqrt(expected))
    shifted = draw_session_arrivals_s(1.0, 3600.0, rng, diurnal_multipliers=curve, start_s=20 * 3600.0)
    assert abs(shifted.size - 3 * 3600) < 5 * math.sqrt(3 * 3600)  # the evening peak


def test_watch_durations():
    rng = np.random.default_rng(3)
    assert draw_watch_durations_s(3, rng, distribution="fixed", mean_s=30.0).tolist() == [30.0] * 3
    for distribution in ("exponential", "lognormal"):
        watch = draw_watch_durations_s(200_000, rng, distribution=distribution, mean_s=300.0, sigma=0.8)
        assert watch.mean() == pytest.approx(300.0, rel=0.02)
        assert watch.min() > 0


def test_sessions_and_their_requests(catalog):
    workload = Workload(
        alpha=1.0, arrival_rate_per_s=0.5, watch_distribution="exponential", watch_mean_s=60.0
    )
    sessions = draw_sessions(workload, catalog, 4000.0, np.random.default_rng(9))
    assert np.all(sessions.watch_s <= catalog.duration_s[sessions.title])
    assert np.bincount(sessions.title, minlength=50)[0] > np.bincount(sessions.title, minlength=50)[25]
    trace = sessions_to_requests(catalog, sessions, np.random.default_rng(1), rung_weights=[0, 1, 3])
    assert np.all(np.diff(trace.time_s) >= 0)
    assert np.all(catalog.title_of(trace.object_id) == sessions.title[trace.session])
    rungs = (trace.object_id - catalog.first_object[catalog.title_of(trace.object_id)]) % 3
    assert not np.any(rungs == 0)
    first = trace.session == 0
    expected_segments = math.ceil(sessions.watch_s[0] / 4.0 - 1e-9)
    assert first.sum() == expected_segments
    np.testing.assert_allclose(trace.time_s[first], sessions.start_s[0] + 4.0 * np.arange(expected_segments))


def test_same_seed_same_everything(catalog):
    workload = Workload(
        alpha=0.9,
        arrival_rate_per_s=0.2,
        diurnal_multipliers=tuple(np.linspace(0.5, 2, 24)),
        watch_distribution="lognormal",
        watch_mean_s=90.0,
    )
    chain = three_tiers(edge_bytes=2e7, ixp_bytes=1e8)

    def run(seed):
        rng = np.random.default_rng(seed)
        sessions = draw_sessions(workload, catalog, 20_000.0, rng)
        trace = sessions_to_requests(catalog, sessions, rng)
        return serve_requests(chain, trace.object_id, catalog.sizes_bytes, time_s=trace.time_s)

    first, again, other = run(5), run(5), run(6)
    assert np.array_equal(first.object_id, again.object_id) and np.array_equal(first.time_s, again.time_s)
    assert np.array_equal(first.tier, again.tier)
    assert not np.array_equal(first.object_id[:100], other.object_id[:100])


def test_proactive_fill_pushes_the_most_popular_titles_within_the_budget(catalog):
    popularity = zipf_popularity(catalog.title_count, 1.0)[::-1].copy()  # title 49 most popular
    fill = ProactiveFill("edge", start_s=0.0, duration_s=100.0, rate_bps=8e6)  # 100 MB budget
    plan = plan_proactive_fill(fill, catalog, popularity, capacity_bytes=60e6)
    pushed = catalog.sizes_bytes[plan.object_id]
    assert pushed.sum() <= 60e6 and pushed.sum() + catalog.sizes_bytes.max() > 60e6
    titles = catalog.title_of(plan.object_id)
    assert titles[0] == 49 and np.all(np.diff(titles) <= 0)  # most popular first
    assert plan.time_s[-1] <= fill.start_s + fill.duration_s
    np.testing.assert_allclose(plan.time_s[-1], 8 * pushed.sum() / 8e6)

    top_only = plan_proactive_fill(ProactiveFill("edge", 0.0, 10.0, 8e6, rungs=(2,)), catalog, popularity)
    assert np.all((top_only.object_id - catalog.first_object[catalog.title_of(top_only.object_id)]) % 3 == 2)

    # Off-peak push of 400 MB (6 titles) before the sessions start: the edge starts warm.
    chain = three_tiers(edge_bytes=400e6, ixp_bytes=1e9)
    plan = plan_proactive_fill(ProactiveFill("edge", 0.0, 400.0, 8e6), catalog, popularity, 400e6)
    rng = np.random.default_rng(0)
    sessions = draw_sessions(
        Workload(alpha=1.0, arrival_rate_per_s=0.05), catalog, 3600.0, rng, start_s=400.0
    )
    sessions = type(sessions)(sessions.start_s, 49 - sessions.title, sessions.watch_s)  # reversed ranks
    trace = sessions_to_requests(catalog, sessions, rng)
    cold = serve_requests(chain, trace.object_id, catalog.sizes_bytes, time_s=trace.time_s)
    warm = serve_requests(chain, trace.object_id, catalog.sizes_bytes, time_s=trace.time_s, pushes=[plan])
    first_bin = slice(0, 1)
    cold_edge = cold.stats(900.0, start_s=400.0).hit_ratio[first_bin, 0]
    warm_edge = warm.stats(900.0, start_s=400.0).hit_ratio[first_bin, 0]
    assert warm_edge > cold_edge + 0.1
    state = CdnState(chain, catalog.sizes_bytes)
    state.serve([], pushes=[plan])
    assert state.caches["edge"].used_bytes == catalog.sizes_bytes[plan.object_id].sum()
    assert state.caches["edge"].requests == 0


# ---------------------------------------------------------------------------
# Bad input: one line naming the field.


def one_line_error(call, field):
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert info.value.field == field, message
    return message


def test_bad_cache_and_workload_inputs():
    assert "-1" in one_line_error(lambda: Cache("lru", -1, [1]), "capacity_bytes")
    assert "lfu" in one_line_error(lambda: Cache("arc", 1, [1]), "policy")
    one_line_error(lambda: Cache("lru", 1, [1], admit_after=0), "admit_after")
    one_line_error(lambda: Cache("lru", 1, [1, 0]), "sizes_bytes")
    one_line_error(lambda: Cache("lru", 1, [1.5]), "sizes_bytes")
    one_line_error(lambda: simulate_requests("lru", 1, [1, 1], [0, 2]), "requests")
    one_line_error(lambda: Cache("lru", 1, [1]).request(-1), "object_id")
    for alpha in (0, -0.5, math.nan):
        one_line_error(lambda alpha=alpha: zipf_popularity(10, alpha), "alpha")
        one_line_error(lambda alpha=alpha: Workload(alpha=alpha), "alpha")
    one_line_error(lambda: Workload(arrival_rate_per_s=-1), "arrival_rate_per_s")
    one_line_error(lambda: Workload(diurnal_multipliers=(0.0, 0.0)), "diurnal_multipliers")
    one_line_error(lambda: Workload(watch_distribution="weibull"), "watch_distribution")
    one_line_error(lambda: draw_session_arrivals_s(1.0, -5.0, np.random.default_rng(0)), "duration_s")
    one_line_error(lambda: ProactiveFill("edge", 0.0, 10.0, 0.0), "rate_bps")
    one_line_error(lambda: che_approximation([0.5, 0.5], -1), "capacity")


def test_bad_tier_chains():
    msg = one_line_error(lambda: Tier("edge", -5.0), "capacity_bytes")
    assert "tier 'edge'" in msg
    one_line_error(lambda: Tier("edge", 10, rtt_s=-0.1), "rtt_s")
    one_line_error(lambda: Tier("edge", 10, upstream_bandwidth_bps=0), "upstream_bandwidth_bps")
    one_line_error(lambda: Tier("edge", 10, policy="random"), "policy")
    one_line_error(lambda: Tier("", 10), "name")
    msg = one_line_error(
        lambda: TierChain((Tier("a", 1, next="b"), Tier("b", 1, next="c"), Tier("c", 1, next="a"))), "next"
    )
    assert "cycle" in msg and "a -> b -> c -> a" in msg
    msg = one_line_error(lambda: TierChain((Tier("edge", 1, next="ixp"), Tier("origin", None))), "next")
    assert "'ixp'" in msg  # the gap
    one_line_error(
        lambda: TierChain(
            (Tier("edge", 1, next="origin"), Tier("edge", 2, next="origin"), Tier("origin", None))
        ),
        "name",
    )
    one_line_error(lambda: TierChain((Tier("edge", 1, next="origin"), Tier("origin", 5))), "capacity_bytes")
    one_line_error(
        lambda: TierChain((Tier("edge", None, next="origin"), Tier("origin", None))), "capacity_bytes"
    )
    one_line_error(lambda: TierChain(()), "tiers")
    two_edges = (Tier("a", 1, next="o"), Tier("b", 1, next="o"), Tier("o", None))
    one_line_error(lambda: TierChain(two_edges), "groups")  # which edge do clients enter at?
    one_line_error(lambda: TierChain(two_edges, groups={"x": "a"}), "groups")  # b is unreachable
    one_line_error(lambda: TierChain(two_edges, groups={"x": "z", "y": "b"}), "groups")
    state = CdnState(three_tiers(), [1, 1])
    one_line_error(lambda: state.serve([0, 1], time_s=[1.0, 0.0]), "time_s")
    one_line_error(lambda: state.serve([0, 1], groups=[0, 1]), "groups")
