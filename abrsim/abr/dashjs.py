"""dash.js v5.1.1's default rule set (the kernels are in :mod:`abrsim.abr._dashjs`)."""

from __future__ import annotations

from abrsim._jit import kernel
from abrsim.abr import ParamSpec, _dashjs, _kernels, register


@kernel
def _reset(params, state, bitrates_bps, segment_duration_s):
    state[:] = 0.0
    _dashjs.dashjs_reset(params, state, bitrates_bps, segment_duration_s)


register(
    "dashjs",
    summary="dash.js v5.1.1's default rules: DYNAMIC switching between BOLA (BOLA-O, placeholder) "
            "and the throughput rule at 18 s / 9 s of buffer, insufficient-buffer, switch-history "
            "and abandon-requests rules, the minimum of their answers; dash.js's own EWMA 3/8 x 0.9.",
    citation="Dash-Industry-Forum dash.js v5.1.1 (ABRRulesCollection, BolaRule, ThroughputRule, "
             "InsufficientBufferRule, SwitchHistoryRule, AbandonRequestsRule); Spiteri, Sitaraman, "
             "Sparacio, ACM MMSys 2018",
    params=tuple(ParamSpec(name, default, doc, minimum=None if isinstance(default, bool) else 0.0)
                 for name, default, doc in _dashjs.DASHJS_PARAMS),
    state_size=_dashjs.dashjs_state_size,
    reset=_reset,
    choose=_dashjs.dashjs_choose,
    event=_dashjs.dashjs_event,
    abandon=_dashjs.dashjs_abandon,
    can_abandon=_dashjs.dashjs_can_abandon,
    reads_estimates=_kernels.never_reads_estimates,  # dash.js's own estimator
    modules=(_dashjs,),
)
