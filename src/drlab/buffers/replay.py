"""Uniform experience replay over preallocated ring arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """A sampled batch as tensors on the training device; ``weights`` are importance weights."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    discounts: torch.Tensor
    weights: torch.Tensor
    indices: np.ndarray


class ReplayBuffer:
    """Transitions (s, a, r, s', terminated, discount) in fixed arrays; the oldest are overwritten first.

    ``terminated`` only: a truncated transition is stored as not terminated, so its target
    bootstraps from s' (the true last observation of the episode). ``discount`` is the factor on
    the bootstrap value: gamma for one-step transitions, gamma^m for m-step ones (NStepWindow).
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, device: torch.device):
        self.capacity = int(capacity)
        self.device = device
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.discounts = np.zeros(self.capacity, dtype=np.float32)
        self.pos = 0  # next slot to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, actions, rewards, next_obs, terminated, discounts) -> np.ndarray:
        """Store a batch of k transitions; returns the slots they went to."""
        k = len(actions)
        slots = (self.pos + np.arange(k)) % self.capacity
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.discounts[slots] = discounts
        self.pos = int((self.pos + k) % self.capacity)
        self.size = min(self.size + k, self.capacity)
        return slots

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        indices = rng.integers(0, self.size, size=batch_size)
        return self.gather(indices)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Uniform replay keeps no priorities."""

    def gather(self, indices: np.ndarray, weights: np.ndarray | None = None) -> Batch:
        """The transitions in ``indices`` as a Batch (unit weights unless given)."""
        if weights is None:
            weights = np.ones(len(indices), dtype=np.float32)
        def t(x):
            return torch.from_numpy(x).to(self.device, non_blocking=True)

        return Batch(
            obs=t(self.obs[indices]),
            actions=t(self.actions[indices]),
            rewards=t(self.rewards[indices]),
            next_obs=t(self.next_obs[indices]),
            terminated=t(self.terminated[indices]),
            discounts=t(self.discounts[indices]),
            weights=t(weights.astype(np.float32)),
            indices=indices,
        )

    # ---- checkpointing: plain tensors and ints, loadable with torch.load(weights_only=True) ----
    ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated", "discounts")

    def state_dict(self) -> dict:
        state = {name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in self.ARRAYS}
        state.update(pos=self.pos, size=self.size)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = int(state["size"]), int(state["pos"])
        for name in self.ARRAYS:
            getattr(self, name)[: self.size] = state[name].numpy()
