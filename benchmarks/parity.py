"""Parity with Sabre and Pensieve: run abrsim on reference folders and print pass rates.

    python benchmarks/parity.py [--reference DIR ...] [--worst N]

Default references: ../shared/reference/sabre and ../shared/reference/pensieve. Prints, per
(kind, algorithm, configuration), the share of sessions within tolerance and the worst
offenders; the last line is one JSON object with ``sabre_noa_pass_rate``,
``sabre_default_pass_rate`` and ``pensieve_pass_rate`` (null where there are no such rows).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from abrsim.parity import check_reference, summarize

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, action="append",
                        help="reference folder (repeatable); default: shared/reference/{sabre,pensieve}")
    parser.add_argument("--worst", type=int, default=3, help="offenders listed per group")
    args = parser.parse_args()
    folders = args.reference or [SHARED / "sabre", SHARED / "pensieve"]
    results = []
    for folder in folders:
        start = time.perf_counter()
        found = check_reference(folder)
        print(f"{folder}: {len(found)} sessions checked in {time.perf_counter() - start:.2f} s")
        results += found
    groups = defaultdict(list)
    for row in results:
        groups[(row.kind, row.algorithm, row.config)].append(row)
    for (kind, algorithm, config), rows in sorted(groups.items()):
        passed = sum(r.passed for r in rows)
        print(f"{kind:>8} {algorithm:>12} {config:>20}: {passed}/{len(rows)} within tolerance "
              f"({passed / len(rows):.1%})")
        for row in [r for r in rows if not r.passed][: args.worst]:
            print(f"{'':>12} {row.trace}: {row.failure}")
    print(json.dumps(summarize(results)))


if __name__ == "__main__":
    main()
