"""The algorithm registry: name -> module.

Each algorithm module provides:
  ``Config``           its dataclass (extends drlab.config.RunConfig), with ``validate()``;
  ``VARIANTS``         {name: one-line description} for ``drlab list``;
  ``check_env(envs)``  a one-line DrlabError if the env's spaces do not fit;
  ``make_agent(cfg, obs_space, action_space, device)`` the acting part (``act(obs, greedy)``);
  ``make_learner(cfg, agent, obs_space, action_space, rng)`` everything else training needs;
  ``train_loop(run, learner)`` the pipeline: env -> collect -> buffer -> loss -> optimizer -> log.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from drlab.errors import DrlabError

ALGORITHMS = {
    "dqn": "drlab.algos.dqn",
    "reinforce": "drlab.algos.reinforce",
    "actor-critic": "drlab.algos.actor_critic",
    "a2c": "drlab.algos.a2c",
    "ppo": "drlab.algos.ppo",
    "option-critic": "drlab.algos.option_critic",
}


def get_algo(name: str) -> ModuleType:
    if name not in ALGORITHMS:
        raise DrlabError(f"unknown algorithm '{name}' (available: {', '.join(ALGORITHMS)})")
    return importlib.import_module(ALGORITHMS[name])
