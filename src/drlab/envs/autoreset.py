"""The episode bookkeeping that Gymnasium 1.x next-step autoreset needs.

Gymnasium's vector envs reset an env on the step *after* it reported terminated or truncated:
that step returns the reset observation, reward 0 and ignores the action. It is not a
transition. Every training loop in drlab keeps ``prev_done`` and treats ``valid = ~prev_done``
as the mask of real transitions; :class:`EpisodeStats` does the same for episode returns.
"""

from __future__ import annotations

import numpy as np


def game_signals(rewards, dones, valid, info) -> tuple:
    """(rewards, episode ends, real steps) of the *game*, for the episode bookkeeping: what the env
    reports for training, unless it also reports the full game (Atari: life loss and reward
    clipping are training-only; see drlab.envs.atari)."""
    if isinstance(info, dict) and "raw_reward" in info:
        return info["raw_reward"], info["game_over"], info["game_step"]
    return rewards, dones, valid


class EpisodeStats:
    """Raw (unclipped) return and length of the episode running in each of N envs.

    ``update`` takes one vector step and returns the returns and lengths of the episodes that
    ended on it. The autoreset step (``valid`` False) adds nothing.
    """

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def update(self, rewards, dones, valid) -> tuple[np.ndarray, np.ndarray]:
        self.returns += np.where(valid, rewards, 0.0)
        self.lengths += valid
        ended = dones & valid
        finished = self.returns[ended].copy(), self.lengths[ended].copy()
        self.returns[ended] = 0.0
        self.lengths[ended] = 0
        return finished
