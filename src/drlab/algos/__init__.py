"""The algorithm registry: name -> module.

Each algorithm module provides (written as Protocols in drlab.algos.protocol, checked for every
registered algorithm by tests/test_protocol.py):
  ``Config``                its dataclass (extends drlab.config.RunConfig), with ``validate()``;
  ``VARIANTS``              {name: one-line description} for ``drlab list``;
  ``ACTION_SPACES``         the gymnasium space types it acts in (checked by ``check_action_space``);
  ``OBSERVATIONS``          what it observes, in words, for ``drlab list``;
  ``check_env(cfg, envs)``  a one-line DrlabError if the env's spaces do not fit;
  ``make_agent(cfg, obs_space, action_space, device)``  the acting part: ``act(obs, greedy, starts)``,
                            batched, with ``obs_space``, ``rng``, ``num_options`` / ``options`` (what it
                            keeps per env), ``fork()`` and ``state_dict`` / ``load_state_dict``;
  ``Learner(cfg, agent, rng)``  everything else training needs (networks, optimizers, buffers), with
                            ``state_dict`` / ``load_state_dict``; ``rng`` is the run's generator;
  ``train_loop(run, learner)``  the pipeline: act -> env step -> episode bookkeeping -> storage ->
                            update -> log, calling the run's services (``LoopServices``: the
                            clock, episode bookkeeping, ``end_step``; see drlab.run.runner).
``Learner.update(data, step)`` has one shape for every algorithm: ``data`` is what its family learns
from (A2C, PPO and Actor-Critic: the rollout; REINFORCE: its episode storage; DQN, SAC and TD3: a
replay batch; Option-Critic: the on-policy window, its critic sampling the replay itself) and
``step`` the env step it was collected by. Losses are pure functions returning ``(loss, metrics)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import gymnasium as gym

from drlab.errors import DrlabError

ALGORITHMS = {
    "dqn": "drlab.algos.dqn",
    "reinforce": "drlab.algos.reinforce",
    "actor-critic": "drlab.algos.actor_critic",
    "a2c": "drlab.algos.a2c",
    "ppo": "drlab.algos.ppo",
    "option-critic": "drlab.algos.option_critic",
    "sac": "drlab.algos.sac",
    "td3": "drlab.algos.td3",
}


def get_algo(name: str) -> ModuleType:
    if name not in ALGORITHMS:
        raise DrlabError(f"unknown algorithm '{name}' (available: {', '.join(ALGORITHMS)})")
    return importlib.import_module(ALGORITHMS[name])


def check_action_space(algo: str, env_id: str, space) -> None:
    """A one-line error when ``algo`` cannot act in ``space``, naming the algorithms that can."""
    takes = get_algo(algo).ACTION_SPACES
    fit = [name for name in ALGORITHMS if isinstance(space, get_algo(name).ACTION_SPACES)]
    hint = f"; {', '.join(fit)} take{'s' if len(fit) == 1 else ''} it" if fit else "; no drlab algorithm takes it"
    if not isinstance(space, takes):
        kinds = " or ".join(kind.__name__ for kind in takes)
        raise DrlabError(f"{algo} needs a {kinds} action space, but {env_id} has {space}{hint}")
    if takes == (gym.spaces.Discrete,) and space.start != 0:  # Q-values are indexed by the action
        fit = [name for name in fit if get_algo(name).ACTION_SPACES != takes]
        raise DrlabError(f"{algo} needs Discrete actions that start at 0, but {env_id} has {space}; "
                         f"{', '.join(fit)} take it")
