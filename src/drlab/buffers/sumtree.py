"""A vectorized sum tree: the sampling structure of prioritized replay."""

from __future__ import annotations

import numpy as np
import torch


class SumTree:
    """A tree whose leaves hold non-negative priorities and whose every node holds the sum of its
    ``fanout`` children.

    Vectorized: ``update`` and ``find`` take whole batches and walk the tree one level at a time
    with NumPy, so a batch costs O(batch * fanout * depth) array work and no Python loop per item.
    A fan-out of 16 instead of 2 cuts the depth fourfold (4 levels for 65k leaves); on small
    batches NumPy's per-call overhead, not arithmetic, is the cost, so fewer levels is faster.
    ``levels[0]`` is the root (one node), ``levels[-1]`` the leaves (slot i is leaf i).
    """

    def __init__(self, capacity: int, fanout: int = 16):
        self.capacity, self.fanout = int(capacity), int(fanout)
        self.depth = 0
        while self.fanout**self.depth < self.capacity:
            self.depth += 1
        self.levels = [np.zeros(self.fanout**d, dtype=np.float64) for d in range(self.depth + 1)]

    def leaves(self, size: int) -> np.ndarray:
        """Priorities of slots 0..size-1 (a view)."""
        return self.levels[-1][:size]

    @property
    def total(self) -> float:
        return float(self.levels[0][0])

    def get(self, slots: np.ndarray) -> np.ndarray:
        return self.levels[-1][np.asarray(slots)]

    def update(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of ``slots`` (for a repeated slot the last value wins)."""
        if len(slots) == 0:
            return
        nodes = np.asarray(slots, dtype=np.int64)
        self.levels[-1][nodes] = priorities
        # Walk up one level at a time. A parent listed twice gets the same sum twice, so no
        # de-duplication is needed.
        for d in range(self.depth - 1, -1, -1):
            nodes = nodes // self.fanout
            self.levels[d][nodes] = self.levels[d + 1].reshape(-1, self.fanout)[nodes].sum(axis=1)

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """For each value v in [0, total), the slot i with cumsum[i-1] <= v < cumsum[i]."""
        values = np.asarray(prefix_sums, dtype=np.float64).copy()
        nodes = np.zeros(len(values), dtype=np.int64)
        rows = np.arange(len(values))
        for d in range(1, self.depth + 1):
            children = self.levels[d].reshape(-1, self.fanout)[nodes]
            bounds = np.cumsum(children, axis=1)
            child = (values[:, None] >= bounds).sum(axis=1)
            # Never step into an empty child: guards against v == total from rounding.
            last_nonempty = self.fanout - 1 - np.argmax(children[:, ::-1] > 0, axis=1)
            child = np.minimum(child, last_nonempty)
            values -= np.where(child > 0, bounds[rows, child - 1], 0.0)
            nodes = nodes * self.fanout + child
        return nodes

    def state_dict(self) -> dict:
        return {"leaves": torch.from_numpy(self.levels[-1].copy())}

    def load_state_dict(self, state: dict) -> None:
        leaves = state["leaves"].numpy()
        self.update(np.arange(len(leaves)), leaves)
