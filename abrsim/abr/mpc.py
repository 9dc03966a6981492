"""Model-predictive control: RobustMPC and FastMPC, as in Pensieve.

The kernels are in :mod:`abrsim.abr._kernels`; this module registers them.
"""

from __future__ import annotations

from abrsim.abr import ParamSpec, _kernels, register

_HORIZON = ParamSpec("horizon", 5, "segments planned ahead", minimum=1, maximum=_kernels.MPC_MAX_HORIZON)
_REST = (
    ParamSpec("rebuffer_penalty", 4.3, "QoE_lin's rebuffering penalty per second", minimum=0.0),
    ParamSpec("compat_pensieve_lookahead", False, "Pensieve compatibility: plan with the sizes of the "
              "segments after the one being chosen (test/mpc.py's off-by-one)"),
)


def _state_size(rungs: int) -> int:
    return 2 + 2 * _kernels.MPC_HISTORY


register(
    "robustmpc",
    summary="RobustMPC: exhaustive QoE_lin search over the next segments with the harmonic-mean "
            "throughput divided by 1 + the largest of the last five prediction errors.",
    citation="Yin, Jindal, Sekar, Sinopoli, ACM SIGCOMM 2015; as coded in Pensieve's test/mpc.py",
    params=(_HORIZON, ParamSpec("robust", True, "divide the prediction by 1 + max recent error"), *_REST),
    state_size=_state_size,
    choose=_kernels.mpc_choose,
    event=_kernels.mpc_event,
    reads_estimates=_kernels.never_reads_estimates,  # its own samples
)

register(
    "fastmpc",
    summary="FastMPC: the same search as RobustMPC with the plain harmonic-mean prediction.",
    citation="Yin, Jindal, Sekar, Sinopoli, ACM SIGCOMM 2015; Pensieve's rl_server/mpc_server.py",
    params=(_HORIZON, ParamSpec("robust", False, "divide the prediction by 1 + max recent error"), *_REST),
    state_size=_state_size,
    choose=_kernels.mpc_choose,
    event=_kernels.mpc_event,
    reads_estimates=_kernels.never_reads_estimates,  # its own samples
)
