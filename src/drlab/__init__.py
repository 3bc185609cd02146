"""drlab: classic deep-RL algorithms, correct, fast and inspectable."""

from drlab.errors import DrlabError

__version__ = "0.1.0"


def train(algo: str, env_id: str, **overrides):
    """Train ``algo`` on ``env_id`` with its tuned preset; keyword overrides set config fields.

    Returns a :class:`drlab.runner.RunResult` with ``dir`` and ``summary``.
    """
    from drlab.runner import train_from_preset

    return train_from_preset(algo, env_id, overrides)


def load(run_dir):
    """Load the agent saved in ``run_dir`` (weights only; nothing in the checkpoint is executed)."""
    from drlab.agents import load_agent

    return load_agent(run_dir)


__all__ = ["DrlabError", "train", "load", "__version__"]
