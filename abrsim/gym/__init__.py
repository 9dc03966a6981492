"""Gymnasium environments over abrsim's session step (the optional extra ``abrsim[gym]``).

Importing this module registers the environments with Gymnasium:

- ``abrsim/Abr-v0``: :class:`AbrEnv` with abrsim's defaults (``gymnasium.make("abrsim/Abr-v0",
  traces=..., ladder=..., model=..., reward=...)``);
- ``abrsim/Pensieve-v0``: the ``pensieve`` preset: Pensieve's player model, 6 x 8 state and reward.

Both have a vectorised form (:class:`AbrVectorEnv`, N sessions stepped in one compiled call)
through ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``.
A policy trained on them (a function from the observation to a rung) runs wherever a Python
policy does (:class:`EnvPolicy`; ``abrsim run --policy my_policy.py:act``). See docs/gym.md.
"""

from __future__ import annotations

try:
    import gymnasium
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("abrsim.gym needs gymnasium: pip install 'abrsim[gym]'") from exc

from abrsim.gym.env import PENSIEVE_REWARD, AbrEnv, Reward
from abrsim.gym.policy import EnvPolicy
from abrsim.gym.vector import AbrVectorEnv

__all__ = ["ENV_IDS", "PENSIEVE_REWARD", "AbrEnv", "AbrVectorEnv", "EnvPolicy", "Reward"]

#: The registered environment ids, and the preset each one is.
ENV_IDS = {"abrsim/Abr-v0": "abrsim", "abrsim/Pensieve-v0": "pensieve"}


def _register() -> None:
    for env_id, preset in ENV_IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(id=env_id, entry_point="abrsim.gym.env:AbrEnv",
                           vector_entry_point="abrsim.gym.vector:AbrVectorEnv",
                           kwargs={"preset": preset}, disable_env_checker=False)


_register()
