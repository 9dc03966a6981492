"""What the two engine figures issue 18 misses are made of: the estimator's powers, and exact float chains.

    python benchmarks/engine_costs.py

- ``0.5 ** x``, the power the default BOLA's estimator computes about five times per segment
  (two EWMA weights per download, up to four debiasing terms per decision): nanoseconds per call,
  independent calls (throughput) and calls that wait for the one before (a chain).
- The exact replays of abandonment steps (``abrsim.engine.step.skip_steps``,
  ``abrsim.engine._sabre_ms.skip_ms_steps``): ``n`` additions ``x += d`` on two chains, as the
  engine does, against :func:`repeat_add`, which reaches the same float in a few operations per
  power of two crossed. Within a binade every addition adds the same multiple of the ulp (a tie
  rounds the same way from the second step on), so ``k`` of them add ``k`` times it exactly.
  It is checked against the plain loop on random cases (ties, negative steps, crossings) and
  timed: it is slower than the additions it would replace, so the engine does not use it.

Each figure is the best of 5 runs over 200,000 cases (compilation excluded). The last line is one
JSON object.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
from numba import njit


@njit(cache=True)
def repeat_add(x, d, n):
    """``x`` after ``n`` times ``x += d``, the same float as the loop."""
    while n > 0:
        y1 = x + d
        if n < 3 or not (1e-290 < x < 1e290):
            x = y1
            n -= 1
            continue
        _, exponent = math.frexp(x)
        lo = math.ldexp(0.5, exponent)
        hi = math.ldexp(1.0, exponent)
        ulp = math.ldexp(1.0, exponent - 53)
        y2 = y1 + d
        step = y1 - x
        if not (lo + ulp <= y1 <= hi - ulp and lo + ulp <= y2 <= hi - ulp) or y2 - y1 != step:
            x = y1  # a crossing, or a tie from an odd start: one plain step
            n -= 1
            continue
        if step == 0.0:
            return x
        room = (hi - ulp - x) if step > 0.0 else (x - (lo + ulp))
        k = np.int64(min(math.floor(room / abs(step)), n))
        end = x + k * step
        while not (lo + ulp <= end <= hi - ulp):
            k -= 1
            end = x + k * step
        x = end
        n -= k
    return x


@njit(cache=True)
def plain_add(x, d, n):
    for _ in range(n):
        x += d
    return x


@njit(cache=True)
def two_chains(xs, ds, ys, es, n, jump):
    """Each case's two chains of ``n`` additions, as additions or (``jump``) with :func:`repeat_add`."""
    total = 0.0
    for i in range(xs.shape[0]):
        if jump:
            total += repeat_add(xs[i], ds[i], n) + repeat_add(ys[i], es[i], n)
        else:
            total += plain_add(xs[i], ds[i], n) + plain_add(ys[i], es[i], n)
    return total


@njit(cache=True)
def powers(xs):
    total = 0.0
    for i in range(xs.shape[0]):
        total += 0.5 ** xs[i]
    return total


@njit(cache=True)
def chained_powers(xs):
    value = 0.0
    for i in range(xs.shape[0]):
        value = 0.5 ** (xs[i] + value * 1e-20)
    return value


def best_ns(run, cases: int) -> float:
    run()
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / cases * 1e9


def mismatches(rng: np.random.Generator, cases: int) -> int:
    """Cases where :func:`repeat_add` and the plain loop differ (must be 0)."""
    bad = 0
    for case in range(cases):
        kind = case % 5
        if kind == 0:  # bits sent, in abandonment steps
            x, d = rng.uniform(0, 1e6), rng.uniform(1, 2e4)
        elif kind == 1:  # a clock in seconds
            x, d = rng.uniform(0, 300), rng.uniform(1e-3, 0.1)
        elif kind == 2:  # time left in a sample, counting down
            x, d = rng.uniform(0, 3000), -rng.uniform(1e-3, 50)
        elif kind == 3:  # ties: d an odd number of half ulps of x
            x = float(rng.integers(1, 2**20)) * 2.0 ** int(rng.integers(-30, 30))
            sign = 1.0 if rng.random() < 0.7 else -1.0
            d = (float(rng.integers(0, 1000)) + 0.5) * float(np.spacing(x)) * sign
        else:  # whole milliseconds
            x, d = float(rng.integers(1, 1000)), float(rng.integers(1, 100)) * 0.05
        n = int(rng.integers(0, 200))
        bad += plain_add(x, d, n) != repeat_add(x, d, n)
    return bad


def main() -> None:
    rng = np.random.default_rng(1)
    cases = 200_000
    result: dict[str, float] = {"repeat_add_mismatches": mismatches(rng, cases)}
    exponents = rng.uniform(0.01, 50.0, cases)
    result["pow_ns"] = best_ns(lambda: powers(exponents), cases)
    result["pow_chained_ns"] = best_ns(lambda: chained_powers(exponents), cases)
    xs, ds = rng.uniform(1e4, 1e6, cases), rng.uniform(1.2e4, 5e4, cases)  # bits
    ys, es = rng.uniform(10, 300, cases), rng.uniform(0.05, 0.3, cases)  # seconds
    for n in (10, 48, 96):
        for name, jump in (("plain", False), ("jump", True)):
            result[f"{name}_{n}_steps_two_chains_ns"] = best_ns(
                lambda n=n, jump=jump: two_chains(xs, ds, ys, es, n, jump), cases)
    print(f"0.5 ** x: {result['pow_ns']:.1f} ns per call ({result['pow_chained_ns']:.1f} ns chained)")
    for n in (10, 48, 96):
        print(f"{n} steps on two chains: additions {result[f'plain_{n}_steps_two_chains_ns']:.1f} ns, "
              f"exact jump {result[f'jump_{n}_steps_two_chains_ns']:.1f} ns")
    print(f"exact jump against the additions: {result['repeat_add_mismatches']} mismatches in "
          f"{cases:,} cases")
    print(json.dumps({k: round(v, 2) for k, v in result.items()}))


if __name__ == "__main__":
    main()
