"""CDN cache tiers: byte-capacity caches, Che's approximation, the popularity workload, tier chains.

The cached object is one segment of one rung of one title, identified by a dense
integer id (:class:`Catalog` maps ``(title, rung, segment)`` to ids and sizes). A
tier is a byte-capacity cache in front of the next tier; the last tier of every
chain is the origin, which holds everything. This module is engine-independent:

- the caches are numba kernels over arrays (:func:`cache_request`,
  :func:`cache_lookup`, :func:`cache_fill`, :func:`cache_push`), usable a whole
  request array at a time (:func:`simulate_requests`) or one request at a time
  (:class:`Cache`, for the discrete-event engine);
- :func:`che_approximation` is the analytic LRU hit ratio the caches are tested against;
- :class:`Workload` and the ``draw_*`` functions make Zipf titles, Poisson sessions
  and request traces from an explicit ``numpy.random.Generator``;
- :class:`Tier`, :class:`TierChain` and :func:`serve_requests` run requests through
  a tier chain without network timing (miss, fetch from the next tier, fill on the
  way back), with per-tier hit ratios over time (:class:`TierStats`);
- :class:`ProactiveFill` and :func:`plan_proactive_fill` push the most popular
  titles into a tier during an off-peak window.

Units: sizes and capacities in bytes (whole bytes, int64), times in seconds,
rates in bit/s.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.optimize import brentq

from abrsim._jit import kernel
from abrsim.errors import InputError
from abrsim.ladder import Ladder

__all__ = [
    "POLICIES",
    "WATCH_DISTRIBUTIONS",
    "Cache",
    "Catalog",
    "CdnLog",
    "CdnState",
    "CheApproximation",
    "ProactiveFill",
    "PushPlan",
    "RequestTrace",
    "Sessions",
    "Tier",
    "TierChain",
    "TierStats",
    "Workload",
    "cache_fill",
    "cache_lookup",
    "cache_push",
    "cache_request",
    "che_approximation",
    "draw_irm_requests",
    "draw_session_arrivals_s",
    "draw_sessions",
    "draw_watch_durations_s",
    "new_cache_state",
    "plan_proactive_fill",
    "serve_requests",
    "sessions_to_requests",
    "simulate_requests",
    "zipf_popularity",
]

# ---------------------------------------------------------------------------
# Cache state layout. One cache is two int64 arrays: ``meta[META_SIZE]`` (the
# scalars below) and ``objects[object_count, OBJECT_COLUMNS]`` (one row per
# object id; a row keeps an object's fields in one cache line).

POLICY_LRU = 0
POLICY_LFU = 1
POLICY_FIFO = 2
POLICY_SIEVE = 3

# policy name -> policy id (the ids index the dispatch in the kernels)
POLICIES: Mapping[str, int] = MappingProxyType(
    {"lru": POLICY_LRU, "lfu": POLICY_LFU, "fifo": POLICY_FIFO, "sieve": POLICY_SIEVE}
)

META_POLICY = 0
META_CAPACITY_BYTES = 1
META_USED_BYTES = 2
META_COUNT = 3  # resident objects (LFU: the heap's size)
META_NEWEST = 4  # list policies: newest object, -1 if empty
META_OLDEST = 5  # list policies: oldest object, -1 if empty
META_HAND = 6  # SIEVE: next eviction candidate, -1 to start from the oldest
META_CLOCK = 7  # +1 per lookup, fill and push: LFU's recency tie-break
META_ADMIT_AFTER = 8  # admit an object on a miss from its N-th request on
META_REQUESTS = 9
META_HITS = 10
META_ADMISSIONS = 11  # objects inserted (fills and pushes)
META_EVICTIONS = 12
META_SIZE = 13

OBJ_NEWER = 0  # list policies: the next newer object, -1 if none; LFU: position in the heap
OBJ_OLDER = 1  # list policies: the next older object, -1 if none; LFU: heap[position] (by row)
OBJ_RESIDENT = 2  # 1 if cached
OBJ_MARK = 3  # LFU: frequency since admission; SIEVE: visited bit
OBJ_TICK = 4  # LFU: clock of the last access
OBJ_SEEN = 5  # requests seen by this tier, ever (admission after N requests)
OBJECT_COLUMNS = 6
OBJ_HEAP_POSITION = OBJ_NEWER
OBJ_HEAP = OBJ_OLDER

# stands for an unlimited capacity (math.inf) in an int64 slot
UNLIMITED_BYTES = 2**62


# ---------------------------------------------------------------------------
# Kernels.


@kernel
def _unlink(meta: np.ndarray, objects: np.ndarray, object_id: int) -> None:
    newer = objects[object_id, OBJ_NEWER]
    older = objects[object_id, OBJ_OLDER]
    if newer >= 0:
        objects[newer, OBJ_OLDER] = older
    else:
        meta[META_NEWEST] = older
    if older >= 0:
        objects[older, OBJ_NEWER] = newer
    else:
        meta[META_OLDEST] = newer


@kernel
def _push_newest(meta: np.ndarray, objects: np.ndarray, object_id: int) -> None:
    head = meta[META_NEWEST]
    objects[object_id, OBJ_NEWER] = -1
    objects[object_id, OBJ_OLDER] = head
    if head >= 0:
        objects[head, OBJ_NEWER] = object_id
    else:
        meta[META_OLDEST] = object_id
    meta[META_NEWEST] = object_id


@kernel
def _lfu_before(objects: np.ndarray, first: int, second: int) -> bool:
    """Whether ``first`` is evicted before ``second``: lower frequency, then older last access."""
    if objects[first, OBJ_MARK] != objects[second, OBJ_MARK]:
        return objects[first, OBJ_MARK] < objects[second, OBJ_MARK]
    return objects[first, OBJ_TICK] < objects[second, OBJ_TICK]


@kernel
def _heap_sift_up(objects: np.ndarray, position: int) -> None:
    object_id = objects[position, OBJ_HEAP]
    while position > 0:
        parent = (position - 1) // 2
        above = objects[parent, OBJ_HEAP]
        if not _lfu_before(objects, object_id, above):
            break
        objects[position, OBJ_HEAP] = above
        objects[above, OBJ_HEAP_POSITION] = position
        position = parent
    objects[position, OBJ_HEAP] = object_id
    objects[object_id, OBJ_HEAP_POSITION] = position


@kernel
def _heap_sift_down(meta: np.ndarray, objects: np.ndarray, position: int) -> None:
    count = meta[META_COUNT]
    object_id = objects[position, OBJ_HEAP]
    while True:
        child = 2 * position + 1
        if child >= count:
            break
        if child + 1 < count and _lfu_before(objects, objects[child + 1, OBJ_HEAP], objects[child, OBJ_HEAP]):
            child += 1
        below = objects[child, OBJ_HEAP]
        if not _lfu_before(objects, below, object_id):
            break
        objects[position, OBJ_HEAP] = below
        objects[below, OBJ_HEAP_POSITION] = position
        position = child
    objects[position, OBJ_HEAP] = object_id
    objects[object_id, OBJ_HEAP_POSITION] = position


@kernel
def _evict_one(meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray) -> None:
    policy = meta[META_POLICY]
    if policy == POLICY_LFU:
        victim = objects[0, OBJ_HEAP]
        last = objects[meta[META_COUNT] - 1, OBJ_HEAP]
        meta[META_COUNT] -= 1
        if meta[META_COUNT] > 0:
            objects[0, OBJ_HEAP] = last
            objects[last, OBJ_HEAP_POSITION] = 0
            _heap_sift_down(meta, objects, 0)
        objects[victim, OBJ_HEAP_POSITION] = -1
    else:
        if policy == POLICY_SIEVE:
            # Zhang et al. 2024, Algorithm 1: the hand walks from the oldest object toward the
            # newest, clearing visited bits, and evicts the first unvisited object; it then
            # rests on the evicted object's newer neighbour (wrapping to the oldest).
            victim = meta[META_HAND]
            if victim < 0:
                victim = meta[META_OLDEST]
            while objects[victim, OBJ_MARK] != 0:
                objects[victim, OBJ_MARK] = 0
                victim = objects[victim, OBJ_NEWER]
                if victim < 0:
                    victim = meta[META_OLDEST]
            meta[META_HAND] = objects[victim, OBJ_NEWER]
        else:  # LRU and FIFO evict the oldest
            victim = meta[META_OLDEST]
        _unlink(meta, objects, victim)
        meta[META_COUNT] -= 1
    objects[victim, OBJ_RESIDENT] = 0
    objects[victim, OBJ_MARK] = 0
    meta[META_USED_BYTES] -= sizes_bytes[victim]
    meta[META_EVICTIONS] += 1


@kernel
def _admit(meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray, object_id: int) -> bool:
    """Evict until ``object_id`` fits, then insert it; False if it is larger than the cache."""
    size_bytes = sizes_bytes[object_id]
    capacity_bytes = meta[META_CAPACITY_BYTES]
    if size_bytes > capacity_bytes:
        return False
    while meta[META_USED_BYTES] + size_bytes > capacity_bytes and meta[META_COUNT] > 0:
        _evict_one(meta, objects, sizes_bytes)
    meta[META_CLOCK] += 1
    objects[object_id, OBJ_RESIDENT] = 1
    meta[META_USED_BYTES] += size_bytes
    meta[META_ADMISSIONS] += 1
    if meta[META_POLICY] == POLICY_LFU:
        objects[object_id, OBJ_MARK] = 1
        objects[object_id, OBJ_TICK] = meta[META_CLOCK]
        position = meta[META_COUNT]
        meta[META_COUNT] += 1
        objects[position, OBJ_HEAP] = object_id
        _heap_sift_up(objects, position)
    else:
        objects[object_id, OBJ_MARK] = 0
        _push_newest(meta, objects, object_id)
        meta[META_COUNT] += 1
    return True


@kernel
def cache_lookup(meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray, object_id: int) -> bool:
    """Look ``object_id`` up: count the request and, on a hit, update the policy's order.

    A miss changes nothing but the counts; call :func:`cache_fill` when the object
    has been fetched from upstream.

    Args:
        meta: the cache's scalars (``META_*`` slots), updated in place.
        objects: the cache's per-object rows (``OBJ_*`` columns), updated in place.
        sizes_bytes: size of every object, bytes.
        object_id: the requested object, ``0 <= object_id < len(sizes_bytes)`` (not checked).

    Returns:
        True on a hit.
    """
    meta[META_CLOCK] += 1
    meta[META_REQUESTS] += 1
    objects[object_id, OBJ_SEEN] += 1
    if objects[object_id, OBJ_RESIDENT] == 0:
        return False
    meta[META_HITS] += 1
    policy = meta[META_POLICY]
    if policy == POLICY_LRU:
        if meta[META_NEWEST] != object_id:
            _unlink(meta, objects, object_id)
            _push_newest(meta, objects, object_id)
    elif policy == POLICY_LFU:
        objects[object_id, OBJ_MARK] += 1
        objects[object_id, OBJ_TICK] = meta[META_CLOCK]
        _heap_sift_down(meta, objects, objects[object_id, OBJ_HEAP_POSITION])
    elif policy == POLICY_SIEVE:
        objects[object_id, OBJ_MARK] = 1
    return True


@kernel
def cache_fill(meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray, object_id: int) -> bool:
    """Offer a fetched object to the cache after a miss; the admission rule decides.

    The object is admitted if it is not already cached, this tier has seen at least
    ``admit_after`` requests for it, and it is no larger than the capacity; the
    policy evicts until it fits.

    Args:
        meta: the cache's scalars, updated in place.
        objects: the cache's per-object rows, updated in place.
        sizes_bytes: size of every object, bytes.
        object_id: the fetched object (not checked).

    Returns:
        True if the object was inserted.
    """
    if objects[object_id, OBJ_RESIDENT] != 0:
        return False
    if objects[object_id, OBJ_SEEN] < meta[META_ADMIT_AFTER]:
        return False
    return _admit(meta, objects, sizes_bytes, object_id)


@kernel
def cache_push(meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray, object_id: int) -> bool:
    """Insert an object pushed by a proactive fill: no request is counted and admission is bypassed.

    Returns:
        True if the object was inserted (False if already cached or larger than the cache).
    """
    if objects[object_id, OBJ_RESIDENT] != 0:
        return False
    return _admit(meta, objects, sizes_bytes, object_id)


@kernel
def cache_request(meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray, object_id: int) -> bool:
    """One request with an immediate fill on a miss: :func:`cache_lookup`, then :func:`cache_fill`.

    Returns:
        True on a hit.
    """
    if cache_lookup(meta, objects, sizes_bytes, object_id):
        return True
    cache_fill(meta, objects, sizes_bytes, object_id)
    return False


@kernel
def _run_requests(
    meta: np.ndarray,
    objects: np.ndarray,
    sizes_bytes: np.ndarray,
    requests: np.ndarray,
    out_hit: np.ndarray,
    out_used_bytes: np.ndarray,
) -> None:
    record = out_used_bytes.shape[0] > 0
    for k in range(requests.shape[0]):
        out_hit[k] = cache_request(meta, objects, sizes_bytes, requests[k])
        if record:
            out_used_bytes[k] = meta[META_USED_BYTES]


@kernel
def _push_many(meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray, object_ids: np.ndarray) -> int:
    pushed = 0
    for k in range(object_ids.shape[0]):
        if cache_push(meta, objects, sizes_bytes, object_ids[k]):
            pushed += 1
    return pushed


@kernel
def _serve_requests(
    meta: np.ndarray,
    objects: np.ndarray,
    sizes_bytes: np.ndarray,
    slot_of_tier: np.ndarray,
    paths: np.ndarray,
    groups: np.ndarray,
    requests: np.ndarray,
    time_s: np.ndarray,
    push_time_s: np.ndarray,
    push_slot: np.ndarray,
    push_object: np.ndarray,
    out_tier: np.ndarray,
    missed: np.ndarray,
) -> None:
    """Walk each request down its group's path to the first tier that has the object; fill on the way back.

    ``meta[slot]`` and ``objects[slot]`` are the state of the cache in ``slot``;
    ``slot_of_tier[tier]`` is -1 for an origin, which serves everything. Pushes
    (sorted by time) are applied before the first request at or after their time,
    and any left after the last request at the end. ``missed`` is scratch space for one path.
    """
    depth = paths.shape[1]
    next_push = 0
    push_count = push_time_s.shape[0]
    for k in range(requests.shape[0]):
        while next_push < push_count and push_time_s[next_push] <= time_s[k]:
            slot = push_slot[next_push]
            cache_push(meta[slot], objects[slot], sizes_bytes, push_object[next_push])
            next_push += 1
        object_id = requests[k]
        path = paths[groups[k]]
        missed_count = 0
        served = -1
        for level in range(depth):
            tier = path[level]
            slot = slot_of_tier[tier]
            if slot < 0 or cache_lookup(meta[slot], objects[slot], sizes_bytes, object_id):
                served = tier
                break
            missed[missed_count] = slot
            missed_count += 1
        for j in range(missed_count - 1, -1, -1):  # the response flows back toward the client
            slot = missed[j]
            cache_fill(meta[slot], objects[slot], sizes_bytes, object_id)
        out_tier[k] = served
    while next_push < push_count:
        slot = push_slot[next_push]
        cache_push(meta[slot], objects[slot], sizes_bytes, push_object[next_push])
        next_push += 1


# ---------------------------------------------------------------------------
# Python wrappers over the kernels.


def _policy_id(policy: str, source: str | None = None) -> int:
    try:
        return POLICIES[policy]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown cache policy {policy!r}; expected one of: {', '.join(POLICIES)}",
            source=source,
            field="policy",
        ) from None


def _capacity_bytes(capacity_bytes: float, source: str | None = None) -> int:
    try:
        value = float(capacity_bytes)
    except (TypeError, ValueError):
        raise InputError(
            f"expected a number of bytes >= 0, found {capacity_bytes!r}",
            source=source,
            field="capacity_bytes",
        ) from None
    if math.isnan(value) or value < 0:
        raise InputError(
            f"expected a number of bytes >= 0, found {capacity_bytes!r}",
            source=source,
            field="capacity_bytes",
        )
    return UNLIMITED_BYTES if value >= UNLIMITED_BYTES else int(value)


def _admit_after(admit_after: int, source: str | None = None) -> int:
    if isinstance(admit_after, bool) or not isinstance(admit_after, (int, np.integer)) or admit_after < 1:
        raise InputError(
            f"expected an integer >= 1 (1: admit on the first miss), found {admit_after!r}",
            source=source,
            field="admit_after",
        )
    return int(admit_after)


def _sizes_bytes(sizes_bytes: Any) -> np.ndarray:
    sizes = np.asarray(sizes_bytes)
    if sizes.ndim != 1 or sizes.size == 0:
        raise InputError(f"expected a non-empty 1-D array, found shape {sizes.shape}", field="sizes_bytes")
    if not np.issubdtype(sizes.dtype, np.integer):
        if not np.issubdtype(sizes.dtype, np.floating):
            raise InputError(f"expected whole bytes, found dtype {sizes.dtype}", field="sizes_bytes")
        bad = np.flatnonzero(~np.isfinite(sizes) | (sizes != np.floor(sizes)))
        if bad.size:
            raise InputError(
                f"expected whole bytes, object {int(bad[0])} has {float(sizes[bad[0]])!r}",
                field="sizes_bytes",
            )
    bad = np.flatnonzero(sizes <= 0)
    if bad.size:
        raise InputError(
            f"expected sizes > 0, object {int(bad[0])} has {sizes[bad[0]]!r}", field="sizes_bytes"
        )
    return np.array(sizes, dtype=np.int64)  # a private, writable copy: one compiled signature


def _object_ids(object_ids: Any, object_count: int, name: str = "requests") -> np.ndarray:
    ids = np.ascontiguousarray(object_ids, dtype=np.int64)
    if ids.ndim != 1:
        raise InputError(f"expected a 1-D array of object ids, found shape {ids.shape}", field=name)
    if ids.size and (ids.min() < 0 or ids.max() >= object_count):
        bad = int(np.flatnonzero((ids < 0) | (ids >= object_count))[0])
        raise InputError(
            f"object id {int(ids[bad])} at position {bad} is outside 0..{object_count - 1}", field=name
        )
    return ids


def new_cache_state(
    policy_id: int, capacity_bytes: int, object_count: int, admit_after: int = 1, *, caches: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Allocate the state arrays of an empty cache (or a stack of caches) for the kernels.

    Args:
        policy_id: ``POLICIES[name]``.
        capacity_bytes: capacity, whole bytes (``UNLIMITED_BYTES`` for no limit).
        object_count: number of object ids.
        admit_after: admit an object on a miss from its N-th request on (1: always).
        caches: None for one cache: ``meta[META_SIZE]``, ``objects[object_count, OBJECT_COLUMNS]``;
            an integer for a stack: ``meta[caches, META_SIZE]``, ``objects[caches, object_count,
            OBJECT_COLUMNS]`` (all with the same policy and capacity; set rows of ``meta`` to differ).

    Returns:
        ``(meta, objects)``, int64 arrays. Memory: 48 bytes per object per cache.
    """
    lead = () if caches is None else (int(caches),)
    meta = np.zeros((*lead, META_SIZE), dtype=np.int64)
    meta[..., META_POLICY] = policy_id
    meta[..., META_CAPACITY_BYTES] = capacity_bytes
    meta[..., META_NEWEST] = -1
    meta[..., META_OLDEST] = -1
    meta[..., META_HAND] = -1
    meta[..., META_ADMIT_AFTER] = admit_after
    objects = np.zeros((*lead, int(object_count), OBJECT_COLUMNS), dtype=np.int64)
    objects[..., OBJ_NEWER] = -1
    objects[..., OBJ_OLDER] = -1
    return meta, objects


class Cache:
    """One byte-capacity cache over dense object ids, backed by the numba kernels.

    Policies (``policy``):

    - ``"lru"``: evict the least recently requested object; O(1) per request (a
      doubly linked list in index arrays).
    - ``"lfu"``: evict the object with the fewest requests since it was admitted
      (in-cache LFU: the count starts at 1 on admission and is forgotten on
      eviction); ties go to the least recently requested, so on equal counts LFU
      evicts like LRU. O(log n) per request (a binary heap keyed by (count, last access)).
    - ``"fifo"``: evict the object admitted first; hits change nothing.
    - ``"sieve"``: SIEVE (Zhang, Yang, Yue, Vigfusson, Rashmi, "SIEVE is Simpler than
      LRU: an Efficient Turn-Key Eviction Algorithm for Web Caches", NSDI 2024,
      Algorithm 1): a FIFO queue with one visited bit per object and a hand that
      sweeps from old to new, clearing bits and evicting the first unvisited object.

    Admission: on a miss an object is admitted from its ``admit_after``-th request
    at this cache on (counts persist across evictions; 2 is "cache on second hit",
    which keeps one-hit wonders out, Maggs & Sitaraman, "Algorithmic Nuggets in
    Content Delivery", ACM SIGCOMM CCR 45(3), 2015). An object larger than the
    capacity is never admitted. Variable sizes: the policy evicts, in its order,
    until the new object fits, so the used bytes never exceed the capacity.

    Args:
        policy: a name in :data:`POLICIES`.
        capacity_bytes: capacity, bytes (``math.inf``: unlimited); fractions are dropped.
        sizes_bytes: size of every object id, whole bytes > 0.
        admit_after: admit from the N-th request on; 1 admits on every miss.

    Raises:
        InputError: naming the field, for an unknown policy, a negative capacity,
            ``admit_after`` < 1 or sizes that are not whole positive bytes.

    Example:
        >>> cache = Cache("lru", 2, [1, 1, 1])
        >>> [cache.request(i) for i in (0, 1, 0, 2, 1)]
        [False, False, True, False, False]
    """

    def __init__(self, policy: str, capacity_bytes: float, sizes_bytes: Any, *, admit_after: int = 1) -> None:
        policy_id = _policy_id(policy)
        capacity = _capacity_bytes(capacity_bytes)
        admit = _admit_after(admit_after)
        self.sizes_bytes = _sizes_bytes(sizes_bytes)
        self.meta, self.objects = new_cache_state(policy_id, capacity, self.sizes_bytes.size, admit)

    @classmethod
    def _view(cls, meta: np.ndarray, objects: np.ndarray, sizes_bytes: np.ndarray) -> Cache:
        cache = cls.__new__(cls)
        cache.meta, cache.objects, cache.sizes_bytes = meta, objects, sizes_bytes
        return cache

    def _check(self, object_id: int) -> int:
        index = int(object_id)
        if not 0 <= index < self.sizes_bytes.size:
            raise InputError(
                f"object id {index} is outside 0..{self.sizes_bytes.size - 1}", field="object_id"
            )
        return index

    def request(self, object_id: int) -> bool:
        """Request one object, filling on a miss; True on a hit."""
        return bool(cache_request(self.meta, self.objects, self.sizes_bytes, self._check(object_id)))

    def lookup(self, object_id: int) -> bool:
        """Look one object up without filling (see :func:`cache_lookup`); True on a hit."""
        return bool(cache_lookup(self.meta, self.objects, self.sizes_bytes, self._check(object_id)))

    def fill(self, object_id: int) -> bool:
        """Offer a fetched object after a miss (see :func:`cache_fill`); True if inserted."""
        return bool(cache_fill(self.meta, self.objects, self.sizes_bytes, self._check(object_id)))

    def push(self, object_id: int) -> bool:
        """Push one object, bypassing admission (see :func:`cache_push`); True if inserted."""
        return bool(cache_push(self.meta, self.objects, self.sizes_bytes, self._check(object_id)))

    def push_many(self, object_ids: Any) -> int:
        """Push objects in order (a proactive fill); returns how many were inserted."""
        ids = _object_ids(object_ids, self.sizes_bytes.size, "object_ids")
        return int(_push_many(self.meta, self.objects, self.sizes_bytes, ids))

    def run(self, requests: Any, *, record_used_bytes: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Process a whole request array in compiled code.

        Args:
            requests: object ids, in request order.
            record_used_bytes: also return the used bytes after every request.

        Returns:
            ``(hit, used_bytes)``: a boolean hit flag per request, and the used bytes
            after each request (None unless recorded).

        Raises:
            InputError: if an object id is out of range.
        """
        ids = _object_ids(requests, self.sizes_bytes.size)
        hit = np.zeros(ids.size, dtype=np.bool_)
        used = np.zeros(ids.size if record_used_bytes else 0, dtype=np.int64)
        _run_requests(self.meta, self.objects, self.sizes_bytes, ids, hit, used)
        return hit, (used if record_used_bytes else None)

    def contains(self, object_id: int) -> bool:
        """Whether the object is cached."""
        return bool(self.objects[self._check(object_id), OBJ_RESIDENT])

    def resident_ids(self) -> np.ndarray:
        """Ids of the cached objects, ascending."""
        return np.flatnonzero(self.objects[:, OBJ_RESIDENT])

    @property
    def policy(self) -> str:
        """The eviction policy's name."""
        policy_id = int(self.meta[META_POLICY])
        return next(name for name, value in POLICIES.items() if value == policy_id)

    @property
    def capacity_bytes(self) -> int:
        """Capacity, bytes (``UNLIMITED_BYTES`` if unlimited)."""
        return int(self.meta[META_CAPACITY_BYTES])

    @property
    def admit_after(self) -> int:
        """Admission threshold, requests."""
        return int(self.meta[META_ADMIT_AFTER])

    @property
    def used_bytes(self) -> int:
        """Bytes cached now."""
        return int(self.meta[META_USED_BYTES])

    @property
    def object_count(self) -> int:
        """Objects cached now."""
        return int(self.meta[META_COUNT])

    @property
    def requests(self) -> int:
        """Lookups so far (pushes excluded)."""
        return int(self.meta[META_REQUESTS])

    @property
    def hits(self) -> int:
        """Hits so far."""
        return int(self.meta[META_HITS])

    @property
    def admissions(self) -> int:
        """Objects inserted so far (fills and pushes)."""
        return int(self.meta[META_ADMISSIONS])

    @property
    def evictions(self) -> int:
        """Objects evicted so far."""
        return int(self.meta[META_EVICTIONS])

    def __repr__(self) -> str:
        return (
            f"Cache(policy={self.policy!r}, capacity_bytes={self.capacity_bytes}, "
            f"used_bytes={self.used_bytes}, objects={self.object_count}, admit_after={self.admit_after})"
        )


def simulate_requests(
    policy: str, capacity_bytes: float, sizes_bytes: Any, requests: Any, *, admit_after: int = 1
) -> np.ndarray:
    """Run a request array through a fresh cache in compiled code; return the per-request hit flags.

    Args:
        policy: a name in :data:`POLICIES`.
        capacity_bytes: capacity, bytes.
        sizes_bytes: size of every object id, whole bytes > 0.
        requests: object ids, in request order.
        admit_after: admit on a miss from the N-th request on.

    Returns:
        A boolean array, True where the request hit.

    Raises:
        InputError: as :class:`Cache`, or if an object id is out of range.

    Example:
        >>> simulate_requests("fifo", 2, [1, 1, 1], [0, 1, 0, 2, 0]).tolist()
        [False, False, True, False, False]
    """
    hit, _ = Cache(policy, capacity_bytes, sizes_bytes, admit_after=admit_after).run(requests)
    return hit


# ---------------------------------------------------------------------------
# Che's approximation.


@dataclass(frozen=True)
class CheApproximation:
    """Che's approximation of an LRU cache under the independent reference model.

    Attributes:
        characteristic_time_requests: T, the time (counted in requests) an object
            stays cached after its last request; ``inf`` if everything fits.
        hit_ratio: expected share of requests that hit.
        byte_hit_ratio: expected share of requested bytes that hit.
        object_hit_probability: ``1 - exp(-p_i T)`` per object.
    """

    characteristic_time_requests: float
    hit_ratio: float
    byte_hit_ratio: float
    object_hit_probability: np.ndarray


def che_approximation(popularity: Any, capacity: float, sizes: Any = None) -> CheApproximation:
    """Che's approximation of the hit ratio of an LRU cache under independent references.

    Under the independent reference model object i is requested with probability
    p_i at each request. Che, Tung and Wang ("Hierarchical Web caching systems:
    modeling, design and experimental results", IEEE JSAC 20(7), 2002, eqs. 2-4)
    replace the random time an LRU cache of C objects keeps an object by one
    constant, the characteristic time T, solving ``sum_i (1 - exp(-p_i T)) = C``;
    object i then hits with probability ``h_i = 1 - exp(-p_i T)`` and the hit ratio
    is ``sum_i p_i h_i``. Fricker, Robert and Roberts ("A versatile and accurate
    approximation for LRU cache performance", ITC 24, 2012) explain why it is
    accurate for large catalogs and extend it; with object sizes s_i the cache is
    full of bytes, ``sum_i s_i (1 - exp(-p_i T)) = C``.

    Args:
        popularity: request probability (or any positive multiple) of every object.
        capacity: cache size in objects without ``sizes``, in bytes with them.
        sizes: size of every object (bytes), or None for unit sizes.

    Returns:
        The characteristic time (in requests) and the hit ratios.

    Raises:
        InputError: if the popularity is not positive and finite, the capacity is
            negative, or the sizes do not match.

    Example:
        >>> round(che_approximation(zipf_popularity(10_000, 0.8), 100).hit_ratio, 3)
        0.157
    """
    p = np.asarray(popularity, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise InputError("expected a non-empty 1-D array of finite probabilities >= 0", field="popularity")
    p = p / p.sum()
    s = np.ones_like(p) if sizes is None else np.asarray(sizes, dtype=np.float64)
    if s.shape != p.shape or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError(f"expected {p.size} finite sizes > 0", field="sizes")
    if not isinstance(capacity, numbers.Real) or math.isnan(capacity) or capacity < 0:
        raise InputError(f"expected a capacity >= 0, found {capacity!r}", field="capacity")
    live = p > 0
    if capacity >= s[live].sum():
        t = math.inf
        h = live.astype(np.float64)
    elif capacity == 0:
        t = 0.0
        h = np.zeros_like(p)
    else:

        def excess(t_requests: float) -> float:
            return float(np.dot(s, -np.expm1(-p * t_requests))) - float(capacity)

        upper = 1.0
        while excess(upper) < 0:
            upper *= 2.0
        t = float(brentq(excess, 0.0, upper, xtol=1e-12 * upper, rtol=1e-14, maxiter=500))
        h = -np.expm1(-p * t)
    return CheApproximation(
        characteristic_time_requests=t,
        hit_ratio=float(np.dot(p, h)),
        byte_hit_ratio=float(np.dot(p * s, h) / np.dot(p, s)),
        object_hit_probability=h,
    )


# ---------------------------------------------------------------------------
# Workload: catalog, popularity, sessions, request traces.


@dataclass(frozen=True, eq=False)
class Catalog:
    """The titles a CDN serves and the cache objects they make: one per (title, rung, segment).

    Object ids are dense: title t's objects are ``first_object[t]`` to
    ``first_object[t + 1] - 1``, segment-major, so
    ``object_id = first_object[t] + segment * rung_count[t] + rung``. Segment k of a
    title has the size of row ``k % ladder.segment_count`` of its ladder, so a title
    may be shorter or longer than its ladder's size table.

    Args:
        ladders: each title's ladder (the same object may be repeated).
        segment_counts: each title's number of segments; None: its ladder's.

    Raises:
        InputError: naming the field, if there are no titles or a segment count is < 1.
    """

    ladders: tuple[Ladder, ...]
    segment_counts: tuple[int, ...] | None = None
    first_object: np.ndarray = field(init=False, repr=False)
    sizes_bytes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ladders = tuple(self.ladders)
        if not ladders:
            raise InputError("expected at least one title", field="ladders")
        counts = (
            tuple(ladder.segment_count for ladder in ladders)
            if self.segment_counts is None
            else tuple(int(c) for c in self.segment_counts)
        )
        if len(counts) != len(ladders):
            raise InputError(
                f"expected {len(ladders)} segment counts, found {len(counts)}", field="segment_counts"
            )
        bad = [k for k, c in enumerate(counts) if c < 1]
        if bad:
            raise InputError(
                f"title {bad[0]} has {counts[bad[0]]} segments; expected >= 1", field="segment_counts"
            )
        per_title = np.array([c * ladder.rung_count for c, ladder in zip(counts, ladders, strict=True)])
        first = np.zeros(len(ladders) + 1, dtype=np.int64)
        np.cumsum(per_title, out=first[1:])
        sizes = np.empty(int(first[-1]), dtype=np.int64)
        done: dict[tuple[int, int], np.ndarray] = {}  # (id(ladder), segments) -> that title's sizes
        for title, (ladder, count) in enumerate(zip(ladders, counts, strict=True)):
            key = (id(ladder), count)
            if key not in done:
                rows = ladder.size_bits[np.arange(count) % ladder.segment_count]
                done[key] = np.ceil(rows / 8.0).astype(np.int64).ravel()
            sizes[first[title] : first[title + 1]] = done[key]
        first.flags.writeable = False
        sizes.flags.writeable = False
        object.__setattr__(self, "ladders", ladders)
        object.__setattr__(self, "segment_counts", counts)
        object.__setattr__(self, "first_object", first)
        object.__setattr__(self, "sizes_bytes", sizes)

    @classmethod
    def uniform(cls, ladder: Ladder, title_count: int, *, durations_s: Any = None) -> Catalog:
        """``title_count`` titles with the same ladder, optionally of different durations.

        Args:
            ladder: every title's ladder.
            title_count: number of titles, >= 1.
            durations_s: each title's duration, seconds (rounded up to whole
                segments); None: the ladder's.

        Raises:
            InputError: if ``title_count`` < 1 or a duration is not > 0.
        """
        if int(title_count) < 1:
            raise InputError(f"expected >= 1 titles, found {title_count!r}", field="title_count")
        if durations_s is None:
            counts = None
        else:
            durations = np.broadcast_to(np.asarray(durations_s, dtype=np.float64), (int(title_count),))
            if not np.all(np.isfinite(durations) & (durations > 0)):
                raise InputError("expected durations > 0", field="durations_s")
            counts = tuple(int(c) for c in np.ceil(durations / ladder.segment_duration_s - 1e-9))
        return cls((ladder,) * int(title_count), counts)

    @property
    def title_count(self) -> int:
        """Number of titles."""
        return len(self.ladders)

    @property
    def object_count(self) -> int:
        """Number of objects (segments of every rung of every title)."""
        return int(self.first_object[-1])

    @property
    def rung_count(self) -> np.ndarray:
        """Each title's number of rungs."""
        return np.array([ladder.rung_count for ladder in self.ladders], dtype=np.int64)

    @property
    def segment_duration_s(self) -> np.ndarray:
        """Each title's segment duration, seconds."""
        return np.array([ladder.segment_duration_s for ladder in self.ladders])

    @property
    def duration_s(self) -> np.ndarray:
        """Each title's duration, seconds."""
        assert self.segment_counts is not None
        return np.array(self.segment_counts, dtype=np.float64) * self.segment_duration_s

    @property
    def title_bytes(self) -> np.ndarray:
        """Total bytes of each title (every rung)."""
        return np.add.reduceat(self.sizes_bytes, self.first_object[:-1])

    def object_id(self, title: Any, rung: Any, segment: Any) -> np.ndarray | int:
        """Object id of ``(title, rung, segment)``; broadcasts over arrays.

        Raises:
            InputError: if an index is out of range.
        """
        title_a, rung_a, segment_a = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.int64) for v in (title, rung, segment))
        )
        if np.any((title_a < 0) | (title_a >= self.title_count)):
            raise InputError(f"expected titles in 0..{self.title_count - 1}", field="title")
        rungs = self.rung_count[title_a]
        if np.any((rung_a < 0) | (rung_a >= rungs)):
            raise InputError("rung outside the title's ladder", field="rung")
        if np.any((segment_a < 0) | (segment_a >= np.asarray(self.segment_counts)[title_a])):
            raise InputError("segment outside the title", field="segment")
        ids = self.first_object[title_a] + segment_a * rungs + rung_a
        return int(ids) if ids.ndim == 0 else ids

    def __repr__(self) -> str:
        return (
            f"Catalog(titles={self.title_count}, objects={self.object_count}, "
            f"size_bytes={int(self.sizes_bytes.sum())})"
        )

    def title_of(self, object_ids: Any) -> np.ndarray:
        """Title of each object id."""
        return np.searchsorted(self.first_object, np.asarray(object_ids), side="right") - 1


def zipf_popularity(count: int, alpha: float) -> np.ndarray:
    """Zipf popularity: the probability of rank i (1-based) is ``i**-alpha / sum_j j**-alpha``.

    Rank 1 is index 0, the most popular.

    Args:
        count: number of items, >= 1.
        alpha: the Zipf exponent, > 0.

    Raises:
        InputError: naming ``alpha`` or ``count``.

    Example:
        >>> zipf_popularity(3, 1.0).round(3).tolist()
        [0.545, 0.273, 0.182]
    """
    _check_alpha(alpha)
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise InputError(f"expected an integer >= 1, found {count!r}", field="count")
    weights = np.arange(1, int(count) + 1, dtype=np.float64) ** -float(alpha)
    return weights / weights.sum()


def _check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, (int, float, np.number)) and math.isfinite(alpha) and alpha > 0):
        raise InputError(f"expected a Zipf exponent > 0, found {alpha!r}", field="alpha")


def _draw_from(probability: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Inverse-CDF draws of indices; the same Generator stream gives the same indices."""
    cdf = np.cumsum(probability)
    cdf /= cdf[-1]
    index = np.searchsorted(cdf, rng.random(int(count)), side="right")
    return np.minimum(index, probability.size - 1).astype(np.int64)


def draw_irm_requests(popularity: Any, request_count: int, rng: np.random.Generator) -> np.ndarray:
    """An independent-reference request trace: each request is object i with probability p_i.

    Args:
        popularity: probability (or weight) of every object.
        request_count: number of requests.
        rng: the source of randomness.

    Returns:
        int64 object ids.

    Raises:
        InputError: if the popularity is not a non-negative weight vector.
    """
    p = np.asarray(popularity, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise InputError("expected a non-empty 1-D array of finite weights >= 0", field="popularity")
    if int(request_count) < 0:
        raise InputError(f"expected >= 0, found {request_count!r}", field="request_count")
    return _draw_from(p, int(request_count), rng)


WATCH_DISTRIBUTIONS = ("fixed", "exponential", "lognormal")


def draw_watch_durations_s(
    count: int,
    rng: np.random.Generator,
    *,
    distribution: str = "exponential",
    mean_s: float = 600.0,
    sigma: float = 1.0,
) -> np.ndarray:
    """Draw how long each session watches, seconds.

    Args:
        count: number of sessions.
        rng: the source of randomness.
        distribution: ``"fixed"`` (every session ``mean_s``), ``"exponential"``
            (mean ``mean_s``) or ``"lognormal"`` (mean ``mean_s``, log-space
            standard deviation ``sigma``).
        mean_s: mean watch duration, seconds, > 0.
        sigma: the lognormal's shape, > 0.

    Raises:
        InputError: naming the field.
    """
    _check_watch(distribution, mean_s, sigma)
    if distribution == "fixed":
        return np.full(int(count), float(mean_s))
    if distribution == "exponential":
        return rng.exponential(float(mean_s), int(count))
    return rng.lognormal(math.log(mean_s) - 0.5 * sigma * sigma, float(sigma), int(count))


def _check_watch(distribution: str, mean_s: float, sigma: float, source: str | None = None) -> None:
    if distribution not in WATCH_DISTRIBUTIONS:
        raise InputError(
            f"unknown distribution {distribution!r}; expected one of: {', '.join(WATCH_DISTRIBUTIONS)}",
            source=source,
            field="watch_distribution",
        )
    if not (math.isfinite(mean_s) and mean_s > 0):
        raise InputError(f"expected a duration > 0, found {mean_s!r}", source=source, field="watch_mean_s")
    if not (math.isfinite(sigma) and sigma > 0):
        raise InputError(f"expected a shape > 0, found {sigma!r}", source=source, field="watch_sigma")


def draw_session_arrivals_s(
    rate_per_s: float,
    duration_s: float,
    rng: np.random.Generator,
    *,
    diurnal_multipliers: Any = None,
    diurnal_period_s: float = 86_400.0,
    start_s: float = 0.0,
) -> np.ndarray:
    """Session start times of a Poisson process, optionally modulated by a diurnal curve.

    The rate at clock time t is ``rate_per_s * m[k]``, where ``m`` (e.g. 24 hourly
    multipliers) splits each ``diurnal_period_s`` into ``len(m)`` equal,
    piecewise-constant parts and ``k`` is the part t falls in. Arrivals are drawn by
    thinning (Lewis & Shedler, "Simulation of nonhomogeneous Poisson processes by
    thinning", Naval Research Logistics Quarterly 26(3), 1979): a homogeneous
    process at the peak rate (its count Poisson, its times uniform), each point kept
    with probability ``m[k] / max(m)``.

    Args:
        rate_per_s: arrival rate where the multiplier is 1, sessions per second, >= 0.
        duration_s: length of the window, seconds, >= 0.
        rng: the source of randomness.
        diurnal_multipliers: the rate multipliers over one period (>= 0, not all 0); None: constant.
        diurnal_period_s: the period the multipliers span, seconds.
        start_s: clock time of the window's start (sets the phase of the diurnal curve), seconds.

    Returns:
        Sorted arrival times in ``[start_s, start_s + duration_s)``.

    Raises:
        InputError: naming the field.
    """
    if not (math.isfinite(rate_per_s) and rate_per_s >= 0):
        raise InputError(f"expected a rate >= 0, found {rate_per_s!r}", field="rate_per_s")
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise InputError(f"expected a duration >= 0, found {duration_s!r}", field="duration_s")
    multipliers = _diurnal(diurnal_multipliers, diurnal_period_s)
    peak = 1.0 if multipliers is None else float(multipliers.max())
    count = rng.poisson(rate_per_s * peak * duration_s)
    times = start_s + np.sort(rng.uniform(0.0, duration_s, count))
    if multipliers is None:
        return times
    part = np.floor(np.mod(times, diurnal_period_s) / diurnal_period_s * multipliers.size).astype(np.int64)
    keep = rng.random(count) * peak < multipliers[np.minimum(part, multipliers.size - 1)]
    return times[keep]


def _diurnal(multipliers: Any, period_s: float, source: str | None = None) -> np.ndarray | None:
    if multipliers is None:
        return None
    values = np.asarray(multipliers, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InputError(
            "expected a non-empty list of multipliers >= 0", source=source, field="diurnal_multipliers"
        )
    if values.max() <= 0:
        raise InputError("expected at least one multiplier > 0", source=source, field="diurnal_multipliers")
    if not (math.isfinite(period_s) and period_s > 0):
        raise InputError(
            f"expected a period > 0, found {period_s!r}", source=source, field="diurnal_period_s"
        )
    return values


@dataclass(frozen=True)
class Workload:
    """How viewers use a catalog: Zipf title popularity, Poisson sessions, watch durations.

    Attributes:
        alpha: Zipf exponent of title popularity (title 0 most popular), > 0.
        arrival_rate_per_s: session arrivals per second where the diurnal multiplier is 1.
        diurnal_multipliers: rate multipliers over one period (e.g. 24 hourly values); None: constant.
        diurnal_period_s: the period the multipliers span, seconds.
        watch_distribution: one of :data:`WATCH_DISTRIBUTIONS`.
        watch_mean_s: mean watch duration, seconds (capped by the title's duration).
        watch_sigma: lognormal shape.

    Raises:
        InputError: naming the field, for a value out of range.
    """

    alpha: float = 0.8
    arrival_rate_per_s: float = 1.0
    diurnal_multipliers: tuple[float, ...] | None = None
    diurnal_period_s: float = 86_400.0
    watch_distribution: str = "exponential"
    watch_mean_s: float = 600.0
    watch_sigma: float = 1.0

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        if not (math.isfinite(self.arrival_rate_per_s) and self.arrival_rate_per_s >= 0):
            raise InputError(
                f"expected a rate >= 0, found {self.arrival_rate_per_s!r}", field="arrival_rate_per_s"
            )
        values = _diurnal(self.diurnal_multipliers, self.diurnal_period_s)
        if values is not None:
            object.__setattr__(self, "diurnal_multipliers", tuple(float(v) for v in values))
        _check_watch(self.watch_distribution, self.watch_mean_s, self.watch_sigma)


@dataclass(frozen=True, eq=False)
class Sessions:
    """Viewing sessions, sorted by start time.

    Attributes:
        start_s: start time of each session, seconds.
        title: the title each session watches.
        watch_s: how long each session watches, seconds (at most the title's duration).
    """

    start_s: np.ndarray
    title: np.ndarray
    watch_s: np.ndarray


def draw_sessions(
    workload: Workload, catalog: Catalog, duration_s: float, rng: np.random.Generator, *, start_s: float = 0.0
) -> Sessions:
    """Draw the sessions that start within ``[start_s, start_s + duration_s)``.

    The draws come from ``rng`` in a fixed order (arrivals, then titles, then watch
    durations), so the same seed gives the same sessions.

    Args:
        workload: popularity, arrival process and watch durations.
        catalog: the titles.
        duration_s: length of the window, seconds.
        rng: the source of randomness.
        start_s: clock time of the window's start, seconds.
    """
    starts = draw_session_arrivals_s(
        workload.arrival_rate_per_s,
        duration_s,
        rng,
        diurnal_multipliers=workload.diurnal_multipliers,
        diurnal_period_s=workload.diurnal_period_s,
        start_s=start_s,
    )
    titles = _draw_from(zipf_popularity(catalog.title_count, workload.alpha), starts.size, rng)
    watch = draw_watch_durations_s(
        starts.size,
        rng,
        distribution=workload.watch_distribution,
        mean_s=workload.watch_mean_s,
        sigma=workload.watch_sigma,
    )
    return Sessions(starts, titles, np.minimum(watch, catalog.duration_s[titles]))


@dataclass(frozen=True, eq=False)
class RequestTrace:
    """Segment requests, sorted by time.

    Attributes:
        time_s: request time, seconds.
        object_id: the requested object.
        session: index of the session that made the request.
    """

    time_s: np.ndarray
    object_id: np.ndarray
    session: np.ndarray


def sessions_to_requests(
    catalog: Catalog, sessions: Sessions, rng: np.random.Generator, *, rung_weights: Any = None
) -> RequestTrace:
    """The segment requests of steady-state playback, without an ABR or a network.

    A session watching w seconds of a title with segments of d seconds requests
    segments 0 to ``ceil(w / d) - 1`` at ``start + k d``, all at one rung drawn per
    session from ``rung_weights`` (None: uniform; a rung past a title's top rung
    is clipped to it). The discrete-event engine replaces this with real players.

    Args:
        catalog: the titles.
        sessions: the sessions, e.g. from :func:`draw_sessions`.
        rng: the source of randomness (the rung draws).
        rung_weights: weight of each rung index.

    Raises:
        InputError: if the weights are not a non-negative vector with a positive sum.
    """
    top = int(catalog.rung_count.max())
    weights = np.ones(top) if rung_weights is None else np.asarray(rung_weights, dtype=np.float64)
    if (
        weights.ndim != 1
        or weights.size == 0
        or np.any(~np.isfinite(weights) | (weights < 0))
        or weights.sum() <= 0
    ):
        raise InputError("expected non-negative weights with a positive sum", field="rung_weights")
    titles = np.asarray(sessions.title, dtype=np.int64)
    rungs = np.minimum(_draw_from(weights, titles.size, rng), catalog.rung_count[titles] - 1)
    segment_s = catalog.segment_duration_s[titles]
    counts = np.ceil(np.asarray(sessions.watch_s) / segment_s - 1e-9).astype(np.int64)
    counts = np.clip(counts, 0, np.asarray(catalog.segment_counts)[titles])
    session = np.repeat(np.arange(titles.size, dtype=np.int64), counts)
    segment = np.arange(session.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    time_s = np.asarray(sessions.start_s)[session] + segment * segment_s[session]
    object_id = (
        catalog.first_object[titles[session]] + segment * catalog.rung_count[titles[session]] + rungs[session]
    )
    order = np.argsort(time_s, kind="stable")
    return RequestTrace(time_s[order], object_id[order], session[order])


# ---------------------------------------------------------------------------
# Tier chains.


@dataclass(frozen=True)
class Tier:
    """One CDN tier: a byte-capacity cache, its round trip, its serving link and its upstream link.

    A tier without ``next`` is an origin: it holds every object (``capacity_bytes``
    None). Other tiers fetch misses from ``next`` over their upstream link and fill
    on the way back.

    Attributes:
        name: unique within a chain.
        capacity_bytes: cache size, bytes (``math.inf``: unlimited); None for an origin.
        rtt_s: round-trip time between this tier and what it serves, seconds.
        serving_bandwidth_bps: capacity of the link toward clients (or the tier below), bit/s.
        upstream_bandwidth_bps: capacity of the link that fills misses from ``next``, bit/s.
        policy: eviction policy, a name in :data:`POLICIES`.
        admit_after: admit on a miss from the N-th request on (1: always).
        next: the tier misses go to; None for an origin.

    Raises:
        InputError: naming the tier and the field, for a value out of range or an unknown policy.
    """

    name: str
    capacity_bytes: float | None
    rtt_s: float = 0.0
    serving_bandwidth_bps: float = math.inf
    upstream_bandwidth_bps: float = math.inf
    policy: str = "lru"
    admit_after: int = 1
    next: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"expected a non-empty name, found {self.name!r}", field="name")
        source = f"tier {self.name!r}"
        if self.capacity_bytes is not None:
            _capacity_bytes(self.capacity_bytes, source)
        if not (isinstance(self.rtt_s, numbers.Real) and math.isfinite(self.rtt_s) and self.rtt_s >= 0):
            raise InputError(
                f"expected a round trip >= 0 s, found {self.rtt_s!r}", source=source, field="rtt_s"
            )
        for name in ("serving_bandwidth_bps", "upstream_bandwidth_bps"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and value > 0):  # inf is allowed: no limit
                raise InputError(
                    f"expected a bandwidth > 0 bit/s, found {value!r}", source=source, field=name
                )
        _policy_id(self.policy, source)
        _admit_after(self.admit_after, source)
        if self.next is not None and (not isinstance(self.next, str) or not self.next):
            raise InputError(
                f"expected a tier name or None, found {self.next!r}", source=source, field="next"
            )

    @property
    def is_origin(self) -> bool:
        """Whether this tier ends the chain and holds everything."""
        return self.next is None


@dataclass(frozen=True)
class TierChain:
    """Tiers linked by ``next`` and the entry tier of each client group.

    Each client group's chain runs from its entry tier along ``next`` to an origin,
    e.g. ``{"isp_a": "edge_a", "isp_b": "edge_b"}`` with both edges' ``next`` the
    same exchange point, whose ``next`` is the origin: the exchange point then
    caches the misses of both edges.

    Args:
        tiers: every tier, each name once.
        groups: client group -> entry tier name; None: one group ``"default"``
            entering at the only tier that no other tier points to.

    Raises:
        InputError: naming the tier and field, for duplicate names, a ``next`` that
            names no tier (a gap), a cycle, an origin with a capacity, a cache tier
            without one, an unknown entry tier, or a tier no group reaches.

    Example:
        >>> chain = TierChain.linear([Tier("edge", 1e9), Tier("ixp", 1e10), Tier("origin", None)])
        >>> chain.path_names("default")
        ('edge', 'ixp', 'origin')
    """

    tiers: tuple[Tier, ...]
    groups: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        tiers = tuple(self.tiers)
        if not tiers:
            raise InputError("expected at least one tier", field="tiers")
        index: dict[str, int] = {}
        for tier in tiers:
            if tier.name in index:
                raise InputError("duplicate tier name", source=f"tier {tier.name!r}", field="name")
            index[tier.name] = len(index)
        for tier in tiers:
            source = f"tier {tier.name!r}"
            if tier.next is not None and tier.next not in index:
                raise InputError(
                    f"names tier {tier.next!r}, which is not in the chain (known: {', '.join(index)})",
                    source=source,
                    field="next",
                )
            if tier.is_origin and tier.capacity_bytes is not None:
                raise InputError(
                    "this tier has no 'next', so it is an origin and holds every object: "
                    f"expected capacity_bytes None, found {tier.capacity_bytes!r}",
                    source=source,
                    field="capacity_bytes",
                )
            if not tier.is_origin and tier.capacity_bytes is None:
                raise InputError(
                    f"only an origin (a tier without 'next') may omit the capacity; this tier's next is "
                    f"{tier.next!r}",
                    source=source,
                    field="capacity_bytes",
                )
        for tier in tiers:  # cycles: a walk longer than the chain revisits a tier
            walk = [tier.name]
            while tiers[index[walk[-1]]].next is not None:
                following = tiers[index[walk[-1]]].next
                assert following is not None
                if following in walk:
                    cycle = " -> ".join([*walk[walk.index(following) :], following])
                    raise InputError(
                        f"the chain has a cycle: {cycle}", source=f"tier {following!r}", field="next"
                    )
                walk.append(following)
        if self.groups is None:
            pointed = {tier.next for tier in tiers}
            roots = [tier.name for tier in tiers if tier.name not in pointed]
            if len(roots) != 1:
                raise InputError(
                    f"{len(roots)} tiers start a chain ({', '.join(roots)}); name each group's entry tier",
                    field="groups",
                )
            groups: dict[str, str] = {"default": roots[0]}
        else:
            groups = dict(self.groups)
            if not groups:
                raise InputError("expected at least one client group", field="groups")
        for group, entry in groups.items():
            if entry not in index:
                raise InputError(
                    f"group {group!r} enters at tier {entry!r}, which is not in the chain", field="groups"
                )
        reached = {name for group in groups for name in self._walk(tiers, index, groups[group])}
        unused = [tier.name for tier in tiers if tier.name not in reached]
        if unused:
            raise InputError(
                "no client group's chain reaches this tier", source=f"tier {unused[0]!r}", field="groups"
            )
        object.__setattr__(self, "tiers", tiers)
        object.__setattr__(self, "groups", MappingProxyType(groups))

    @staticmethod
    def _walk(tiers: tuple[Tier, ...], index: Mapping[str, int], entry: str) -> list[str]:
        names = [entry]
        while tiers[index[names[-1]]].next is not None:
            names.append(str(tiers[index[names[-1]]].next))
        return names

    @classmethod
    def linear(cls, tiers: Sequence[Tier]) -> TierChain:
        """One chain in list order: each tier's ``next`` is the following tier, the last is the origin."""
        tiers = list(tiers)
        linked = [replace(tier, next=tiers[k + 1].name) for k, tier in enumerate(tiers[:-1])]
        if tiers:
            linked.append(replace(tiers[-1], next=None))
        return cls(tuple(linked))

    @property
    def names(self) -> tuple[str, ...]:
        """Tier names, in ``tiers`` order (the tier index used in logs)."""
        return tuple(tier.name for tier in self.tiers)

    @property
    def group_names(self) -> tuple[str, ...]:
        """Client group names (the group index used in logs)."""
        assert self.groups is not None
        return tuple(self.groups)

    def index(self, name: str) -> int:
        """Index of the tier called ``name``.

        Raises:
            InputError: if there is no such tier.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"no tier {name!r} (known: {', '.join(self.names)})", field="tier") from None

    def path_names(self, group: str) -> tuple[str, ...]:
        """The tiers a request of ``group`` goes through, entry first, origin last."""
        assert self.groups is not None
        if group not in self.groups:
            raise InputError(f"no client group {group!r} (known: {', '.join(self.groups)})", field="group")
        index = {name: k for k, name in enumerate(self.names)}
        return tuple(self._walk(self.tiers, index, self.groups[group]))

    def paths(self) -> np.ndarray:
        """Tier indices of each group's chain, ``paths[group, level]``, padded with -1."""
        chains = [[self.index(name) for name in self.path_names(group)] for group in self.group_names]
        out = np.full((len(chains), max(len(c) for c in chains)), -1, dtype=np.int64)
        for row, chain in enumerate(chains):
            out[row, : len(chain)] = chain
        return out


@dataclass(frozen=True, eq=False)
class TierStats:
    """Per-tier counts over time bins, from a :class:`CdnLog`.

    Arrays are ``[bin, tier]``. A request *reaches* the tiers of its chain down to
    the one that serves it; it *hits* the tier that serves it (an origin serves
    everything that reaches it).

    Attributes:
        tier_names: tier names, the columns.
        bin_start_s: start of each bin, seconds.
        requests: requests that reached each tier.
        hits: requests each tier served.
        requested_bytes: bytes of the requests that reached each tier.
        hit_bytes: bytes each tier served.
        origin: True for the columns that are origins.
    """

    tier_names: tuple[str, ...]
    bin_start_s: np.ndarray
    requests: np.ndarray
    hits: np.ndarray
    requested_bytes: np.ndarray
    hit_bytes: np.ndarray
    origin: np.ndarray

    @property
    def hit_ratio(self) -> np.ndarray:
        """Hits per request that reached the tier (NaN where none did)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.hits / self.requests

    @property
    def byte_hit_ratio(self) -> np.ndarray:
        """Bytes served per byte requested at the tier (NaN where none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.hit_bytes / self.requested_bytes

    @property
    def origin_offload(self) -> np.ndarray:
        """Per bin, the share of requested bytes not served by an origin (NaN for an empty bin)."""
        total = self.hit_bytes.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - self.hit_bytes[:, self.origin].sum(axis=1) / total


@dataclass(frozen=True, eq=False)
class CdnLog:
    """Which tier served each request of a :func:`serve_requests` run.

    Attributes:
        tier_names: the chain's tier names (``tier`` indexes them).
        group_names: the chain's client groups (``group`` indexes them).
        paths: tier indices of each group's chain, padded with -1.
        origin: True for the tiers that are origins.
        time_s: request time, seconds.
        object_id: requested object.
        group: client group of each request.
        size_bytes: size of each request, bytes.
        tier: index of the tier that served each request.
    """

    tier_names: tuple[str, ...]
    group_names: tuple[str, ...]
    paths: np.ndarray
    origin: np.ndarray
    time_s: np.ndarray
    object_id: np.ndarray
    group: np.ndarray
    size_bytes: np.ndarray
    tier: np.ndarray

    @property
    def level(self) -> np.ndarray:
        """Position of the serving tier in each request's chain (0: its entry tier)."""
        return np.argmax(self.paths[self.group] == self.tier[:, None], axis=1)

    def stats(self, bin_duration_s: float | None = None, *, start_s: float | None = None) -> TierStats:
        """Per-tier requests, hits and bytes, over time bins.

        Args:
            bin_duration_s: bin width, seconds; None: one bin for the whole log.
            start_s: start of the first bin; None: the first request's time.

        Raises:
            InputError: if ``bin_duration_s`` is not > 0.
        """
        tiers = len(self.tier_names)
        first_s = float(self.time_s[0]) if start_s is None and self.time_s.size else float(start_s or 0.0)
        if bin_duration_s is None:
            bins = np.zeros(self.tier.size, dtype=np.int64)
            bin_count = 1
        else:
            if not (math.isfinite(bin_duration_s) and bin_duration_s > 0):
                raise InputError(
                    f"expected a bin width > 0 s, found {bin_duration_s!r}", field="bin_duration_s"
                )
            bins = np.floor((self.time_s - first_s) / bin_duration_s).astype(np.int64)
            if bins.size and bins.min() < 0:
                raise InputError("a request precedes the first bin", field="start_s")
            bin_count = int(bins.max()) + 1 if bins.size else 1
        shape = (bin_count, tiers)
        requests = np.zeros(shape, dtype=np.int64)
        requested = np.zeros(shape, dtype=np.int64)
        level = self.level
        chains = self.paths[self.group]
        for depth in range(self.paths.shape[1]):
            reached = level >= depth
            cell = bins[reached] * tiers + chains[reached, depth]
            requests += np.bincount(cell, minlength=bin_count * tiers).reshape(shape)
            requested += (
                np.bincount(cell, weights=self.size_bytes[reached], minlength=bin_count * tiers)
                .reshape(shape)
                .astype(np.int64)
            )
        cell = bins * tiers + self.tier
        hits = np.bincount(cell, minlength=bin_count * tiers).reshape(shape)
        hit_bytes = np.bincount(cell, weights=self.size_bytes, minlength=bin_count * tiers).reshape(shape)
        width = 0.0 if bin_duration_s is None else bin_duration_s
        return TierStats(
            tier_names=self.tier_names,
            bin_start_s=first_s + width * np.arange(bin_count),
            requests=requests,
            hits=hits.astype(np.int64),
            requested_bytes=requested,
            hit_bytes=hit_bytes.astype(np.int64),
            origin=self.origin,
        )

    @property
    def origin_offload(self) -> float:
        """Share of the requested bytes not served by an origin."""
        total = float(self.size_bytes.sum())
        origin_bytes = float(self.size_bytes[self.origin[self.tier]].sum())
        return 1.0 - origin_bytes / total if total else math.nan


@dataclass(frozen=True)
class PushPlan:
    """Objects pushed into one tier and when each arrives.

    Attributes:
        tier: name of the tier filled.
        time_s: arrival time of each object, seconds (non-decreasing).
        object_id: the pushed objects, in push order.
    """

    tier: str
    time_s: np.ndarray
    object_id: np.ndarray


@dataclass(frozen=True)
class ProactiveFill:
    """A push of the most popular titles into a tier's cache during an off-peak window.

    Attributes:
        tier: the tier to fill (usually an edge).
        start_s: start of the window, seconds.
        duration_s: length of the window, seconds.
        rate_bps: the fill's rate limit, bit/s. The byte budget is
            ``rate_bps * duration_s / 8``, capped at the tier's capacity.
        rungs: rung indices to push (None: every rung).

    Raises:
        InputError: naming the field.
    """

    tier: str
    start_s: float
    duration_s: float
    rate_bps: float
    rungs: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        source = f"proactive fill of {self.tier!r}"
        if not math.isfinite(self.start_s):
            raise InputError(
                f"expected a finite time, found {self.start_s!r}", source=source, field="start_s"
            )
        if not (math.isfinite(self.duration_s) and self.duration_s >= 0):
            raise InputError(
                f"expected a duration >= 0, found {self.duration_s!r}", source=source, field="duration_s"
            )
        if not (math.isfinite(self.rate_bps) and self.rate_bps > 0):
            raise InputError(
                f"expected a rate > 0 bit/s, found {self.rate_bps!r}", source=source, field="rate_bps"
            )
        if self.rungs is not None:
            rungs = tuple(int(r) for r in self.rungs)
            if not rungs or min(rungs) < 0:
                raise InputError("expected rung indices >= 0", source=source, field="rungs")
            object.__setattr__(self, "rungs", rungs)


def plan_proactive_fill(
    fill: ProactiveFill, catalog: Catalog, title_popularity: Any, capacity_bytes: float | None = None
) -> PushPlan:
    """Choose what a proactive fill pushes and when each object arrives.

    Titles go in decreasing popularity (ties: lower index first); within a title,
    segments in order and, per segment, the chosen rungs, so a title cut by the
    budget keeps its beginning, which every session watches. Objects are taken
    while they fit in the budget ``min(rate_bps * duration_s / 8, capacity_bytes)``;
    the first that does not ends the plan. Object k arrives when the fill has sent
    it at ``rate_bps``: at ``start_s + 8 * (bytes up to and including k) / rate_bps``,
    so everything has arrived by the end of the window.

    Args:
        fill: the tier, window, rate and rungs.
        catalog: the titles.
        title_popularity: popularity of each title (e.g. :func:`zipf_popularity`).
        capacity_bytes: the tier's capacity, bytes; None: no cap beyond the budget.

    Raises:
        InputError: if the popularity does not match the catalog.
    """
    popularity = np.asarray(title_popularity, dtype=np.float64)
    if popularity.shape != (catalog.title_count,):
        raise InputError(
            f"expected {catalog.title_count} title popularities, found shape {popularity.shape}",
            field="title_popularity",
        )
    budget = fill.rate_bps * fill.duration_s / 8.0
    if capacity_bytes is not None:
        budget = min(budget, float(capacity_bytes))
    chosen: list[np.ndarray] = []
    spent = 0.0
    for title in np.argsort(-popularity, kind="stable"):
        ids = np.arange(catalog.first_object[title], catalog.first_object[title + 1])
        if fill.rungs is not None:
            ids = ids[np.isin((ids - catalog.first_object[title]) % catalog.rung_count[title], fill.rungs)]
        sizes = catalog.sizes_bytes[ids]
        fits = int(np.searchsorted(spent + np.cumsum(sizes), budget, side="right"))
        chosen.append(ids[:fits])
        spent += float(sizes[:fits].sum())
        if fits < ids.size:
            break
    object_id = np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)
    time_s = fill.start_s + 8.0 * np.cumsum(catalog.sizes_bytes[object_id]) / fill.rate_bps
    return PushPlan(fill.tier, time_s, object_id)


class CdnState:
    """The caches of a tier chain, for one run: batch (:meth:`serve`) or one request at a time.

    Every cache tier's state is a row of two stacked arrays (``meta[slot]``,
    ``objects[slot]``), and :attr:`caches` maps tier names to :class:`Cache`
    views of those rows, so the discrete-event engine can look up, fill and push
    tier by tier with the timing it models, while :meth:`serve` runs the same
    kernels over a whole request array.

    Args:
        chain: the tiers and client groups.
        sizes_bytes: size of every object id, whole bytes > 0.

    Raises:
        InputError: if the sizes are not whole positive bytes.
    """

    def __init__(self, chain: TierChain, sizes_bytes: Any) -> None:
        self.chain = chain
        self.sizes_bytes = _sizes_bytes(sizes_bytes)
        cached = [k for k, tier in enumerate(chain.tiers) if not tier.is_origin]
        self.slot_of_tier = np.full(len(chain.tiers), -1, dtype=np.int64)
        self.slot_of_tier[cached] = np.arange(len(cached))
        self.meta, self.objects = new_cache_state(POLICY_LRU, 0, self.sizes_bytes.size, caches=len(cached))
        self.caches: dict[str, Cache] = {}
        for slot, k in enumerate(cached):
            tier = chain.tiers[k]
            self.meta[slot, META_POLICY] = POLICIES[tier.policy]
            self.meta[slot, META_CAPACITY_BYTES] = _capacity_bytes(tier.capacity_bytes)  # type: ignore[arg-type]
            self.meta[slot, META_ADMIT_AFTER] = tier.admit_after
            self.caches[tier.name] = Cache._view(self.meta[slot], self.objects[slot], self.sizes_bytes)
        self.paths = chain.paths()

    def request(self, object_id: int, group: int = 0) -> int:
        """Serve one request: look up each tier of the group's chain, fill the missed ones on the way back.

        Returns:
            Index of the tier that served it.
        """
        index = int(object_id)
        if not 0 <= index < self.sizes_bytes.size:
            raise InputError(
                f"object id {index} is outside 0..{self.sizes_bytes.size - 1}", field="object_id"
            )
        if not 0 <= int(group) < self.paths.shape[0]:
            raise InputError(f"group {group!r} is outside 0..{self.paths.shape[0] - 1}", field="group")
        missed: list[int] = []
        for tier in self.paths[int(group)]:
            slot = int(self.slot_of_tier[tier])
            if slot < 0 or cache_lookup(self.meta[slot], self.objects[slot], self.sizes_bytes, index):
                break
            missed.append(slot)
        for slot in reversed(missed):
            cache_fill(self.meta[slot], self.objects[slot], self.sizes_bytes, index)
        return int(tier)

    def serve(
        self, object_ids: Any, *, time_s: Any = None, groups: Any = None, pushes: Sequence[PushPlan] = ()
    ) -> CdnLog:
        """Serve a request array in compiled code, continuing from the current state.

        Args:
            object_ids: the requested objects, in order.
            time_s: request times, seconds, non-decreasing; None: 0, 1, 2, ...
            groups: client group index of each request (into ``chain.group_names``); None: group 0.
            pushes: proactive fills; each object is pushed before the first request at
                or after its arrival time (pushes after the last request at the end).

        Returns:
            The per-request log.

        Raises:
            InputError: naming the argument, for ids, times or groups out of range, or a
                push into an origin or an unknown tier.
        """
        ids = _object_ids(object_ids, self.sizes_bytes.size)
        times = (
            np.arange(ids.size, dtype=np.float64) if time_s is None else np.asarray(time_s, dtype=np.float64)
        )
        if times.shape != ids.shape or not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
            raise InputError(f"expected {ids.size} finite, non-decreasing times", field="time_s")
        group = np.zeros(ids.size, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
        if group.shape != ids.shape or (
            group.size and (group.min() < 0 or group.max() >= self.paths.shape[0])
        ):
            raise InputError(
                f"expected {ids.size} group indices in 0..{self.paths.shape[0] - 1}", field="groups"
            )
        push_time, push_slot, push_object = self._pushes(pushes)
        tier = np.empty(ids.size, dtype=np.int64)
        _serve_requests(
            self.meta,
            self.objects,
            self.sizes_bytes,
            self.slot_of_tier,
            self.paths,
            np.ascontiguousarray(group),
            ids,
            np.ascontiguousarray(times),
            push_time,
            push_slot,
            push_object,
            tier,
            np.empty(self.paths.shape[1], dtype=np.int64),
        )
        return CdnLog(
            tier_names=self.chain.names,
            group_names=self.chain.group_names,
            paths=self.paths,
            origin=self.slot_of_tier < 0,
            time_s=times,
            object_id=ids,
            group=group,
            size_bytes=self.sizes_bytes[ids],
            tier=tier,
        )

    def _pushes(self, pushes: Sequence[PushPlan]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        times, slots, objects = [np.zeros(0)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for plan in pushes:
            slot = int(self.slot_of_tier[self.chain.index(plan.tier)])
            if slot < 0:
                raise InputError(f"tier {plan.tier!r} is an origin; it cannot be filled", field="pushes")
            ids = _object_ids(plan.object_id, self.sizes_bytes.size, "pushes")
            plan_times = np.asarray(plan.time_s, dtype=np.float64)
            if plan_times.shape != ids.shape or not np.all(np.isfinite(plan_times)):
                raise InputError("expected one finite time per pushed object", field="pushes")
            times.append(plan_times)
            slots.append(np.full(ids.size, slot, dtype=np.int64))
            objects.append(ids)
        time_s = np.concatenate(times)
        order = np.argsort(time_s, kind="stable")
        return time_s[order], np.concatenate(slots)[order], np.concatenate(objects)[order]


def serve_requests(
    chain: TierChain,
    object_ids: Any,
    sizes_bytes: Any,
    *,
    time_s: Any = None,
    groups: Any = None,
    pushes: Sequence[PushPlan] = (),
) -> CdnLog:
    """Run requests through a tier chain with empty caches, without network timing.

    Each request goes down its group's chain to the first tier that has the object
    (an origin has everything); every tier it missed on the way is offered the
    object on the way back (:func:`cache_fill`: its admission rule and policy
    decide). See :meth:`CdnState.serve` for the arguments.

    Returns:
        The per-request log; ``log.stats(bin_duration_s)`` gives per-tier hit ratios
        and byte hit ratios over time, ``log.origin_offload`` the share of bytes the
        origins did not serve.

    Example:
        >>> chain = TierChain.linear([Tier("edge", 2), Tier("origin", None)])
        >>> serve_requests(chain, [0, 0, 1, 2, 0], [1, 1, 1]).tier.tolist()
        [1, 0, 1, 1, 1]
    """
    return CdnState(chain, sizes_bytes).serve(object_ids, time_s=time_s, groups=groups, pushes=pushes)
