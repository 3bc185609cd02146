"""config.json across versions, in one place: what an older drlab wrote, and how it reads today.

A run directory outlives the version that wrote it (eval, record, resume, report on old runs), so
config.json is read through :func:`upgrade_config` before it is built into a config:

- settings written under another name or form are rewritten (DQN's ``double_dqn = true`` is
  ``target = "double"``);
- retired settings, which only ever had one allowed value, are dropped when they have it;
- settings added since get the value that older runs had in effect (not today's default: a
  resumed run must go on as it started).

The command line still understands the flags an older version had (:func:`flag_aliases`).
"""

from __future__ import annotations

# Settings every algorithm gained since the first config.json.
RUN_ADDED = {"max_episode_steps": None, "video_interval": 0, "env_packages": (), "frame_stack": 1,
             "total_episodes": 0}
_POLICY = {"head_init": "small", "log_std_init": 0.0, "squash_actions": False}
_ROLLOUT = {"sde": False, "sde_sample_freq": -1}
_ON_POLICY = {"critic_lr": None, "runners": 0, "address": None}
# Per algorithm: settings added since, with the value older runs had in effect (runs before a replay
# setting kept the replay in their checkpoints; Option-Critic ran on vectors in float32).
ADDED = {
    "dqn": {"save_replay": "true"},
    "option-critic": {"bf16": False, "save_replay": "true", "actor_return": "one-step",
                      "termination_advantage": "raw", "normalize_advantages": False, "deliberation_cost": 0.0},
    "reinforce": _POLICY,
    "actor-critic": {**_POLICY, **_ROLLOUT},
    "a2c": {**_POLICY, **_ROLLOUT, **_ON_POLICY},
    "ppo": {**_POLICY, **_ROLLOUT, **_ON_POLICY},
}
# Per algorithm: settings older versions carried only to reject any other value (Actor-Critic's body
# is always shared; its critic learns from replay, where a moving reward scale would mix units).
RETIRED = {"actor-critic": {"shared_body": True, "normalize_rewards": False}}
# Per algorithm: flags of an older version, still understood by `drlab train`.
FLAG_ALIASES = {"dqn": {"--double-dqn": ["--target", "double"], "--no-double-dqn": ["--target", "max"]}}


def _dqn_renamed(values: dict) -> None:
    """``double_dqn = true/false`` is ``target = double/max``."""
    if "double_dqn" in values:
        double = values.pop("double_dqn")
        values.setdefault("target", "double" if double is True else "max" if double is False else double)


RENAMED = {"dqn": _dqn_renamed}


def upgrade_config(algo: str, values: dict) -> None:
    """Bring config.json's settings (without ``algo``) of any earlier version to today's, in place."""
    RENAMED.get(algo, lambda values: None)(values)
    for name, value in RETIRED.get(algo, {}).items():
        if name in values and values[name] == value:
            del values[name]
    for name, value in {**RUN_ADDED, **ADDED.get(algo, {})}.items():
        values.setdefault(name, value)


def flag_aliases(algo: str) -> dict[str, list[str]]:
    return FLAG_ALIASES.get(algo, {})
