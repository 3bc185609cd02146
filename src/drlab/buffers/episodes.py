"""REINFORCE's storage: steps wait until their episode has ended."""

from __future__ import annotations

import numpy as np


class EpisodeStorage:
    """Rows of one vector step each, kept until every step in them belongs to a finished episode.

    ``trained`` marks steps already used by an update (their episode ended before it); a step is
    used when its episode has ended and it has not been trained yet.
    """

    COLUMNS = ("obs", "actions", "rewards", "terminated", "truncated", "valid")

    def __init__(self):
        self.rows: dict[str, list[np.ndarray]] = {name: [] for name in self.COLUMNS}
        self.rows["trained"] = []
        self.next_obs: np.ndarray | None = None

    def append(self, next_obs: np.ndarray, **step: np.ndarray) -> None:
        """One vector step's columns, and the observation that follows it (kept for the last step only)."""
        for name in self.COLUMNS:  # copies: a vector env may hand out the same array every step
            self.rows[name].append(np.array(step[name]))
        self.rows["trained"].append(np.zeros_like(step["valid"]))
        self.next_obs = np.array(next_obs)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.stack(rows) for name, rows in self.rows.items()}

    def drop_trained(self, trained: np.ndarray, valid: np.ndarray) -> None:
        """Record what the update used and forget the leading rows that hold nothing else to train."""
        finished = (trained | ~valid).all(axis=1)
        keep = len(finished) if finished.all() else int(np.argmin(finished))
        self.rows = {name: rows[keep:] for name, rows in self.rows.items()}
        self.rows["trained"] = list(trained[keep:])
