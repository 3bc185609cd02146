"""Episode bookkeeping: each env's running raw return and length, every finished episode logged, and
the mean of the last 100 returns."""

from __future__ import annotations

from collections import deque

import numpy as np

from drlab.envs.autoreset import EpisodeStats, game_signals


class EpisodeBook:
    """The run's episodes. ``log(metrics)`` logs at the current step; ``show(text)`` puts the running
    mean where the user sees it (the progress bar)."""

    def __init__(self, num_envs: int, log, show=lambda text: None):
        self.stats = EpisodeStats(num_envs)
        self.log, self.show = log, show
        self.count = 0
        self.recent_returns: deque[float] = deque(maxlen=100)

    @property
    def reward_mean_100(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def record(self, rewards, dones, valid, info=None) -> None:
        """Book one vector step's raw rewards; log each finished episode's raw return (of the whole
        game: an env that trains on clipped rewards or lives reports the game in ``info``, see
        drlab.envs.autoreset.game_signals)."""
        self.record_game_steps(*game_signals(rewards, dones, valid, info))

    def record_game_steps(self, rewards, game_over, game_step) -> None:
        """:meth:`record` with the game's signals already taken from ``info``."""
        returns, lengths = self.stats.update(rewards, game_over, game_step)
        for ret, length in zip(returns, lengths):
            self.count += 1
            self.recent_returns.append(float(ret))
            self.log({"episode/return": ret, "episode/length": length, "episode/reward_mean_100": self.reward_mean_100})
        if len(returns):
            self.show(f"return(100)={self.reward_mean_100:.1f}")

    def forget(self, rows: slice) -> None:
        """The episodes running in envs ``rows`` are lost (their runner died): they start over at 0."""
        self.stats.returns[rows] = 0.0
        self.stats.lengths[rows] = 0

    def state_dict(self) -> dict:
        return {"episodes": self.count, "recent_returns": list(self.recent_returns)}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["episodes"])
        self.recent_returns.extend(state["recent_returns"])
