"""Loading a trained agent from a run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from drlab.checkpoint import load_checkpoint
from drlab.envs import make_vec_env
from drlab.errors import DrlabError
from drlab.nets import pick_device
from drlab.runner import CHECKPOINT, load_run_config


def load_agent(run_dir, device: str = "cpu"):
    """The agent of ``run_dir`` with its latest weights; ``agent.act(obs, greedy=True)`` is batched."""
    from drlab.algos import get_algo

    run_dir = Path(run_dir)
    algo, cfg = load_run_config(run_dir)
    module = get_algo(algo)
    checkpoint = load_checkpoint(run_dir / CHECKPOINT)
    envs = make_vec_env(cfg.env_id, 1)
    try:
        agent = module.make_agent(cfg, envs.single_observation_space, envs.single_action_space, pick_device(device))
    finally:
        envs.close()
    try:
        agent.load_state_dict(checkpoint["learner"]["agent"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise DrlabError(f"checkpoint in {run_dir} does not match its config.json ({err.__class__.__name__})") from None
    agent.algo, agent.config = algo, cfg
    torch.set_num_threads(cfg.torch_threads)
    return agent
