"""Buffer-based rules: Pensieve's BB baseline and BBA-0.

The kernels are in :mod:`abrsim.abr._kernels`; this module registers them.
"""

from __future__ import annotations

from abrsim.abr import ParamSpec, _kernels, register

register(
    "bb",
    summary="Pensieve's buffer-based baseline: rung 0 below the reservoir, the top rung above "
            "reservoir + cushion, linear (rounded down) in between.",
    citation="Huang et al., ACM SIGCOMM 2014, as coded in Pensieve's test/bb.py (Mao et al., "
             "SIGCOMM 2017)",
    params=(ParamSpec("reservoir_s", 5.0, "buffer below which the lowest rung is used", minimum=0.0),
            ParamSpec("cushion_s", 10.0, "buffer span over which the rung rises to the top",
                      minimum=1e-9)),
    choose=_kernels.bb_choose,
    reads_estimates=_kernels.never_reads_estimates,
)

register(
    "bba0",
    summary="BBA-0: a linear rate map from the reservoir to reservoir + cushion; the rate changes "
            "only when the map passes the next rate up or down.",
    citation="Huang, Johari, McKeown, Trunnell, Watson, A Buffer-Based Approach to Rate "
             "Adaptation, ACM SIGCOMM 2014, Sec. 4, Algorithm 1",
    params=(ParamSpec("reservoir_s", 5.0, "buffer below which the lowest rung is used", minimum=0.0),
            ParamSpec("cushion_s", 10.0, "buffer span of the rate map", minimum=1e-9)),
    choose=_kernels.bba0_choose,
    reads_estimates=_kernels.never_reads_estimates,
)
