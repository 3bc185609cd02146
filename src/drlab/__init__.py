"""drlab: classic deep-RL algorithms, correct, fast and inspectable."""

import os

# PyTorch's CPU wheels run their thread pool on GNU OpenMP, whose idle threads busy-wait for 300,000
# spins after each parallel region: ~10 ms on recent Intel cores, where a spin's `pause` is slow.
# Between two network passes of a rollout those threads would spin through the env step and take
# a core from the env's own threads (ale-py steps games in C++ threads). 10,000 spins still bridge
# the regions inside one forward pass. A2C's loop on SpaceInvaders, 2 cores, two alternating repeats:
# env stepping 41 -> 31 ms per 60 steps, 565 -> 630 SPS (docs/benchmarks.md). Only a default, and
# only effective before torch is first imported; set GOMP_SPINCOUNT yourself to choose otherwise.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from drlab.errors import DrlabError  # noqa: E402

__version__ = "0.1.0"


def train(algo: str, env_id: str, **overrides):
    """Train ``algo`` on ``env_id`` with its tuned preset; keyword overrides set config fields.

    Returns a :class:`drlab.run.runner.RunResult` with ``dir`` and ``summary``.
    """
    from drlab.run.runner import train_from_preset

    return train_from_preset(algo, env_id, overrides)


def load(run_dir):
    """Load the agent saved in ``run_dir`` (weights only; nothing in the checkpoint is executed)."""
    from drlab.run.rundir import load_agent

    return load_agent(run_dir)


__all__ = ["DrlabError", "train", "load", "__version__"]
