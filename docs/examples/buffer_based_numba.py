"""Pensieve's buffer-based baseline (BB) as a compiled policy: the numba example of docs/policies.md.

Importing this module registers the policy ``bb_numba``; it makes the built-in ``bb``'s decisions.

    abrsim run --policy docs/examples/buffer_based_numba.py:bb_numba --abr bb
"""

from numba import njit

from abrsim.abr import ParamSpec, register
from abrsim.abr.protocol import OBS_BUFFER_S


@njit(cache=True)
def choose(params, state, obs, bitrates_bps, size_bits):
    """The rung and a pause: params = [reservoir_s, cushion_s], in the order of PARAMS below."""
    reservoir_s = params[0]
    cushion_s = params[1]
    buffer_s = obs[OBS_BUFFER_S]
    top = bitrates_bps.shape[0] - 1
    if buffer_s < reservoir_s:
        return 0, 0.0
    if buffer_s >= reservoir_s + cushion_s:
        return top, 0.0
    return int(top * (buffer_s - reservoir_s) / cushion_s), 0.0


@njit(cache=True)
def reads_estimates(params):
    """BB reads the buffer only: the fast engine need not run its throughput estimator."""
    return False


PARAMS = (
    ParamSpec("reservoir_s", 5.0, "buffer below which the lowest rung is used", minimum=0.0),
    ParamSpec("cushion_s", 10.0, "buffer span over which the rung rises to the top", minimum=1e-9),
)

register("bb_numba", choose=choose, reads_estimates=reads_estimates, params=PARAMS, replace=True,
         summary="Pensieve's buffer-based baseline, as a user's compiled policy (docs/examples).")
