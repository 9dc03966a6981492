"""Print a digest of every fast-engine output per ladder, preset and algorithm.

Run it at two commits and diff the outputs to show that a change leaves results unchanged to
the bit (the per-download log, the rungs, the per-session scalars and the QoE metrics that both
commits have):

    python tools/run_digests.py > after.txt
    git stash; python tools/run_digests.py > before.txt; git stash pop
    diff before.txt after.txt

Both network models run on the ``abrsim`` preset (``abrsim+throughput``, ``abrsim+tcp``: its
default changed from ``throughput`` to ``tcp``, so compare these lines across that change) and
the tcp model on the ``sabre`` preset too (``sabre+tcp``: with abandonment). Columns added since
a commit (``SES_TIMED_OUT``, the ``timed_out`` metric) are left out, so that older commits can
be compared: the first six session columns and the first 18 metrics.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from abrsim.abr import available
from abrsim.engine.fast import pack_traces, run_batch
from abrsim.ladder import load_ladder
from abrsim.model import get_preset
from abrsim.trace import load_traces

TRACES = Path(__file__).resolve().parents[1] / "traces"


def main() -> None:
    packed = pack_traces(load_traces(sorted(TRACES.glob("*.csv"))))
    lines = []
    for ladder_name in ("hls", "mobile"):
        ladder = load_ladder(ladder_name)
        for preset in ("abrsim", "sabre", "pensieve", "abrsim+throughput", "abrsim+tcp", "sabre+tcp"):
            base, _, network = preset.partition("+")
            model = get_preset(base)
            if network:  # (commits before the tcp network print an error for these lines)
                model = model.replace(network=network)
            for name in sorted(available()):
                batch = run_batch(packed, ladder, name, model)
                digest = hashlib.sha256()
                for array in (batch.log, batch.rungs, batch.session[:, :6], batch.metrics()[:, :18]):
                    digest.update(array.tobytes())
                lines.append(f"{ladder_name} {preset} {name} {digest.hexdigest()[:16]}\n")
    sys.stdout.write("".join(sorted(lines)))


if __name__ == "__main__":
    main()
