"""Every registered algorithm keeps the module contract (drlab.algos.protocol), and its agent the
agent contract: it says whether it has options, and a fork acts with state of its own."""

import numpy as np
import pytest
import torch

from drlab.algos import ALGORITHMS, get_algo
from drlab.algos.protocol import Agent, AlgorithmModule
from drlab.config import build_config
from drlab.envs import make_vec_env


def env_for(module) -> str:
    import gymnasium as gym

    return "CartPole-v1" if issubclass(gym.spaces.Discrete, module.ACTION_SPACES) else "Pendulum-v1"


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_module_and_its_agent_keep_the_contract(algo):
    module = get_algo(algo)
    assert isinstance(module, AlgorithmModule)
    env_id = env_for(module)
    cfg = build_config(module.Config, env_id, {"num_envs": 2})
    cfg.validate()
    envs = make_vec_env(env_id, 2)
    try:
        module.check_env(cfg, envs)
        agent = module.make_agent(cfg, envs.single_observation_space, envs.single_action_space, torch.device("cpu"))
        obs, _ = envs.reset(seed=0)
    finally:
        envs.close()
    assert isinstance(agent, Agent)
    starts = np.ones(2, dtype=bool)
    actions = agent.act(obs, greedy=False, starts=starts)
    assert len(actions) == 2
    before = agent.options.copy()
    forked = agent.fork()
    assert forked.num_options == agent.num_options
    for _ in range(20):  # the fork's acting leaves the agent's per-env state alone
        forked.act(obs, greedy=False, starts=starts)
    np.testing.assert_array_equal(agent.options, before)
    assert len(agent.options) == (2 if agent.num_options else 0)
    if agent.num_options:  # the fork's options are its own: writing them leaves the agent's alone
        forked.options[:] = (agent.options + 1) % agent.num_options
        np.testing.assert_array_equal(agent.options, before)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_learner_updates_in_one_shape(algo):
    """``Learner.update(data, step)``: the family's data (a rollout, episodes, a replay batch, the
    on-policy window) and the env step it was collected by."""
    import inspect

    parameters = list(inspect.signature(get_algo(algo).Learner.update).parameters)
    assert len(parameters) == 3 and parameters[0] == "self" and parameters[2] == "step", parameters


def test_the_run_gives_loops_the_services_the_protocol_names(tmp_path):
    """drlab.run.runner.Run is what every train_loop receives: it keeps the LoopServices contract."""
    from drlab.algos.protocol import LoopServices
    from drlab.run.runner import Run

    module = get_algo("dqn")
    run = Run("dqn", build_config(module.Config, "CartPole-v1", {"num_envs": 2}), tmp_path)
    try:
        assert isinstance(run, LoopServices)
    finally:
        run.envs.close()
