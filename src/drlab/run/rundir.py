"""The run directory contract: file names, config.json to and from a config, default names, and
loading the agent a run saved."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from pathlib import Path

from drlab.algos import get_algo
from drlab.config import build_config, pick_device
from drlab.errors import DrlabError
from drlab.run.checkpoint import load_checkpoint, read_json

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT = Path("checkpoints") / "latest.pt"


def config_to_json(algo: str, cfg) -> dict:
    return {"algo": algo, **dataclasses.asdict(cfg)}


def config_from_json(data: dict):
    """(algo name, config) from config.json contents."""
    if not isinstance(data, dict) or "algo" not in data or "env_id" not in data:
        raise DrlabError("config.json is not a drlab run config")
    values = dict(data)
    algo = values.pop("algo")
    module = get_algo(algo)
    # Settings an older version wrote that now have only one possible value (see the module).
    for name, value in getattr(module, "RETIRED_SETTINGS", {}).items():
        if name in values and values[name] == value:
            del values[name]
    return algo, build_config(module.Config, values.pop("env_id"), values)


def load_run_config(run_dir: Path):
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DrlabError(f"no run directory at {run_dir}")
    return config_from_json(read_json(run_dir / CONFIG_FILE, "run config"))


def safe_name(text: str) -> str:
    """``text`` with anything but letters, digits and ``._-`` made ``_``, for a directory name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def default_run_dir(algo: str, env_id: str, seed: int) -> Path:
    return timestamped_dir(f"{algo}-{safe_name(env_id)}-s{seed}")


def timestamped_dir(name: str) -> Path:
    """runs/NAME-YYYYmmdd-HHMMSS, with -2, -3... if that already exists."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def load_agent(run_dir, device: str = "cpu"):
    """The agent of ``run_dir`` with its latest weights (weights only; nothing in the checkpoint is
    executed); ``agent.act(obs, greedy=True)`` is batched, ``agent.algo`` and ``agent.config`` say
    what it is."""
    import torch

    from drlab.envs import make_vec_env

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
