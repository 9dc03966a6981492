"""Hybrids of BOLA and the throughput rule: DYNAMIC and Sabre's DynamicDash.

The kernels are in :mod:`abrsim.abr._kernels`; this module registers them.
"""

from __future__ import annotations

from abrsim.abr import ParamSpec, _kernels, register
from abrsim.abr.bola import BOLA_PARAMS, BOLAE_PARAMS, SABRE
from abrsim.abr.throughput import THROUGHPUT_PARAMS


def _prefixed(prefix: str, specs: tuple[ParamSpec, ...]) -> tuple[ParamSpec, ...]:
    return tuple(ParamSpec(f"{prefix}{p.name}", p.default, p.doc, p.choices, p.minimum, p.maximum)
                 for p in specs)


register(
    "dynamic",
    summary="DYNAMIC: BOLA above the switch buffer when it asks for at least the throughput rule's "
            f"rung, the throughput rule otherwise; abandonment from the throughput rule; {SABRE}.",
    citation="Spiteri, Sitaraman, Sparacio, ACM MMSys 2018, Sec. 5",
    params=(*_prefixed("bola_", BOLA_PARAMS), *_prefixed("throughput_", THROUGHPUT_PARAMS),
            ParamSpec("switch_buffer_s", 10.0, "buffer level where BOLA and the throughput rule "
                      "hand over", minimum=0.0)),
    state_size=lambda rungs: 1 + _kernels.BOLA_SCALARS + rungs + _kernels.THROUGHPUT_STATE,
    reset=_kernels.dynamic_reset,
    choose=_kernels.dynamic_choose,
    event=_kernels.dynamic_event,
    abandon=_kernels.dynamic_abandon,
    abandon_after=_kernels.dynamic_abandon_after,
    can_abandon=_kernels.always_abandons,
)

register(
    "dynamicdash",
    summary="BOLA-E above to_bola_s, the throughput rule below to_throughput_s; only the active "
            f"rule decides and abandons; {SABRE}.",
    citation="Sabre's DynamicDash (Spiteri et al., ACM MMSys 2018)",
    params=(*_prefixed("bolae_", BOLAE_PARAMS), *_prefixed("throughput_", THROUGHPUT_PARAMS),
            ParamSpec("to_bola_s", 10.0, "switch to BOLA-E above this buffer", minimum=0.0),
            ParamSpec("to_throughput_s", 5.0, "switch to the throughput rule below this buffer",
                      minimum=0.0)),
    state_size=lambda rungs: 1 + _kernels.BOLAE_SCALARS + 2 * rungs + _kernels.THROUGHPUT_STATE,
    reset=_kernels.dynamicdash_reset,
    choose=_kernels.dynamicdash_choose,
    event=_kernels.dynamicdash_event,
    abandon=_kernels.dynamicdash_abandon,
    abandon_after=_kernels.dynamicdash_abandon_after,
    can_abandon=_kernels.always_abandons,
)
