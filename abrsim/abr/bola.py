"""The BOLA family: BOLA (BOLA-U, BOLA-O, basic) and BOLA-E, as in Sabre.

The kernels are in :mod:`abrsim.abr._kernels`; this module registers them (see
:func:`abrsim.abr.register`) with their parameters and documentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abrsim.abr import ParamSpec, _kernels, register
from abrsim.errors import InputError
from abrsim.ladder import Ladder

SABRE = "as in Sabre (Spiteri et al., ACM MMSys 2018)"

BOLA_PARAMS = (
    ParamSpec("buffer_target_s", 25.0, "buffer level BOLA aims to fill; sets V", minimum=0.0),
    ParamSpec("gamma_p", 5.0, "utility offset gamma*p: larger favours avoiding rebuffering (> 0)",
              minimum=1e-9),
    ParamSpec("guard", "u", "oscillation guard when moving up: u (BOLA-U), o (BOLA-O, may pause), "
              "none (basic BOLA)", choices=("none", "u", "o")),
    ParamSpec("scale_v", True, "shrink V near the title's start and end"),
    ParamSpec("abandon", True, "abandon a download BOLA's score says to (when the player checks)"),
)
BOLAE_PARAMS = (
    ParamSpec("buffer_target_s", 25.0, "maximum buffer; BOLA-E's buffer is max(10 s + 2 s per rung, "
              "this)", minimum=0.0),
    ParamSpec("gamma_p", 5.0, "utility offset, used only without the insufficient-buffer rule "
              "(BOLA-PL, as gamma_p - 1)", minimum=1.0 + 1e-9),
    ParamSpec("guard", "u", "when moving up past the throughput rung: u adds one rung, o does not",
              choices=("u", "o")),
    ParamSpec("ibr", True, "insufficient-buffer rule; off gives BOLA-PL"),
)


def _check_bola(params: Mapping[str, Any], ladder: Ladder) -> None:
    if float(params["buffer_target_s"]) <= ladder.segment_duration_s:
        raise InputError(
            f"got {params['buffer_target_s']!r}, expected more than one segment "
            f"({ladder.segment_duration_s:g} s) of ladder {ladder.name!r}",
            field="buffer_target_s",
        )
    if params.get("utility") == "quality" and ladder.quality is None:
        raise InputError(f"got 'quality', but ladder {ladder.name!r} has no quality table; expected "
                         "log_bitrate, or a ladder with quality (a table or quality_model)",
                         field="bola.utility")


register(
    "bola",
    summary=f"BOLA: utility ln(b/b0), BOLA-U guard, V scaled near start and end, abandonment; {SABRE}.",
    citation="Spiteri, Urgaonkar, Sitaraman, BOLA, IEEE INFOCOM 2016 (Alg. 1); "
             "Spiteri, Sitaraman, Sparacio, ACM MMSys 2018 (BOLA-U/BOLA-O)",
    params=(*BOLA_PARAMS,
            ParamSpec("utility", "log_bitrate", "what a rung is worth: log_bitrate (ln(b/b0)) or "
                      "quality (the ladder's mean quality per rung, scaled to the same span)",
                      choices=("log_bitrate", "quality"))),
    check_ladder=_check_bola,
    state_size=lambda rungs: _kernels.BOLA_SCALARS + rungs,
    reset=_kernels.bola_reset,
    choose=_kernels.bola_choose,
    event=_kernels.bola_event,
    abandon=_kernels.bola_abandon,
    abandon_after=_kernels.bola_abandon_after,
    can_abandon=_kernels.bola_can_abandon,
    reads_estimates=_kernels.bola_reads_estimates,
)

register(
    "bolae",
    summary=f"BOLA-E: placeholder buffer, throughput startup, insufficient-buffer rule; {SABRE}.",
    citation="Spiteri, Sitaraman, Sparacio, From Theory to Practice, ACM MMSys 2018, Sec. 4",
    params=BOLAE_PARAMS,
    state_size=lambda rungs: _kernels.BOLAE_SCALARS + 2 * rungs,
    reset=_kernels.bolae_reset,
    choose=_kernels.bolae_choose,
    event=_kernels.bolae_event,
    abandon=_kernels.bolae_abandon,
    abandon_after=_kernels.bolae_abandon_after,
    can_abandon=_kernels.always_abandons,
)
