"""Prioritized replay: proportional PER over a sum tree, and the course notebooks' symlog-softmax."""

from __future__ import annotations

import numpy as np
import torch

from drlab.buffers.replay import Batch, ReplayBuffer
from drlab.buffers.sumtree import SumTree
from drlab.returns import symlog


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016).

    P(i) = p_i / sum_k p_k with p_i = (|delta_i| + eps)^alpha; new transitions get the largest
    priority seen so far, so each is replayed at least about once. Sampling is stratified (one
    draw per equal slice of the total). Importance weights w_i = (N P(i))^-beta are divided by
    the largest weight any stored transition could get, (N min_k P(k))^-beta, so they are <= 1.
    """

    keeps_priorities = True

    def __init__(self, *args, alpha: float = 0.6, eps: float = 1e-6, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0

    def add(self, *transitions, **columns) -> np.ndarray:
        slots = super().add(*transitions, **columns)
        self.tree.update(slots, np.full(len(slots), self.max_priority))
        return slots

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        total = self.tree.total
        segment = total / batch_size
        prefix = (np.arange(batch_size) + rng.random(batch_size)) * segment
        indices = np.minimum(self.tree.find(prefix), self.size - 1)
        probs = self.tree.get(indices) / total
        min_prob = self.tree.leaves(self.size).min() / total
        weights = (probs / min_prob) ** (-beta)  # == (N P(i))^-beta / (N min P)^-beta
        return self.gather(indices, weights)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        priorities = (np.abs(td_errors) + self.eps) ** self.alpha
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "tree": self.tree.state_dict(), "max_priority": self.max_priority}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.tree.load_state_dict(state["tree"])
        self.max_priority = float(state["max_priority"])


class SymlogSoftmaxReplayBuffer(ReplayBuffer):
    """The DQN notebook's prioritized replay (from the course notebooks).

    Priority is |TD error| (new transitions get the largest seen so far); a batch is drawn i.i.d.
    (with replacement) from softmax(symlog(priorities)). Every ``sort_interval`` additions the
    stored transitions are sorted by priority, lowest first, and writing restarts at slot 0 once
    the buffer is full, so new transitions evict the lowest-priority ones instead of the oldest.
    No importance weights (the notebook has none).

    softmax(symlog(p))_i = exp(symlog(p_i)) / sum_k exp(symlog(p_k)), so the sampling weights
    exp(symlog(p)) (= 1 + p for p >= 0) live in a sum tree: O(log N) per draw instead of a softmax
    over the whole buffer for every batch.
    """

    keeps_priorities = True

    def __init__(self, *args, sort_interval: int = 1000, **kwargs):
        super().__init__(*args, **kwargs)
        self.priorities = np.zeros(self.capacity, dtype=np.float64)
        self.tree = SumTree(self.capacity)
        self.max_priority = 1.0
        self.sort_interval = int(sort_interval)
        self.added_since_sort = 0

    def _set(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        self.priorities[slots] = priorities
        self.tree.update(slots, np.exp(symlog(self.priorities[slots])))

    def add(self, *transitions, **columns) -> np.ndarray:
        slots = super().add(*transitions, **columns)
        self._set(slots, np.full(len(slots), self.max_priority))
        self.added_since_sort += len(slots)
        if self.added_since_sort >= self.sort_interval:
            self.sort()
        return slots

    def probabilities(self) -> np.ndarray:
        return self.tree.leaves(self.size) / self.tree.total

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        indices = np.minimum(self.tree.find(rng.random(batch_size) * self.tree.total), self.size - 1)
        return self.gather(indices)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        self._set(indices, np.abs(td_errors))
        self.max_priority = max(self.max_priority, float(np.abs(td_errors).max()))

    def sort(self) -> None:
        """Order the stored transitions by priority, lowest first; when full, overwrite from slot 0."""
        order = np.argsort(self.priorities[: self.size], kind="stable")
        self.reorder(order)
        self.priorities[: self.size] = self.priorities[order]
        self._set(np.arange(self.size), self.priorities[: self.size])
        if self.size == self.capacity:
            self.pos = 0
        self.added_since_sort = 0

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "priorities": torch.from_numpy(self.priorities[: self.size].copy()),
            "max_priority": self.max_priority,
            "added_since_sort": self.added_since_sort,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._set(np.arange(self.size), state["priorities"].numpy())
        self.max_priority = float(state["max_priority"])
        self.added_since_sort = int(state["added_since_sort"])
