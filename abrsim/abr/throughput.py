"""The throughput rule, as in Sabre: the highest rung the discounted estimate sustains.

The kernels are in :mod:`abrsim.abr._kernels`; this module registers them.
"""

from __future__ import annotations

from abrsim.abr import ParamSpec, _kernels, register
from abrsim.abr.bola import SABRE

THROUGHPUT_PARAMS = (
    ParamSpec("safety_factor", 0.9, "share of the throughput estimate the rule may use", minimum=0.0),
    ParamSpec("ibr", True, "insufficient-buffer rule: never request more than the buffer can cover"),
    ParamSpec("abandon", True, "abandon a download that would take over 1.8 segment durations"),
)

register(
    "throughput",
    summary="Highest rung whose bitrate fits the discounted throughput estimate after one request "
            f"latency, with an insufficient-buffer rule and abandonment; {SABRE}.",
    citation="Rate-based adaptation, e.g. Jiang, Sekar, Zhang, FESTIVE, ACM CoNEXT 2012; "
             "Sabre's ThroughputRule",
    params=THROUGHPUT_PARAMS,
    state_size=_kernels.THROUGHPUT_STATE,
    reset=_kernels.throughput_reset,
    choose=_kernels.throughput_choose,
    abandon=_kernels.throughput_abandon,
    abandon_after=_kernels.throughput_abandon_after,
    can_abandon=_kernels.throughput_can_abandon,
)
