"""Uniform experience replay over preallocated ring arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from drlab.buffers.observations import DenseObservations, FrameObservations


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
    next_actions: torch.Tensor | None = None  # SARSA: the action taken at s' (-1: none was)


SaveReplay = Literal["auto", "true", "false"]


def saves_replay(setting: SaveReplay, frames: bool) -> bool:
    """Whether checkpoints hold the replay: ``auto`` saves it for vector observations (small) and not
    for frames, where even stored once 100k transitions are ~0.7 GB in every checkpoint."""
    return setting == "true" or (setting == "auto" and not frames)


def replay_note(buffer: "ReplayBuffer", restored: bool, setting: SaveReplay, wait: int | None) -> str:
    """The line a resumed run prints about its replay; ``wait``: the transitions updates wait for
    when the replay starts empty (None: they do not wait)."""
    if restored:
        return f"restored the replay from the checkpoint ({len(buffer):,} transitions)"
    why = "save_replay false" if setting == "false" else "save_replay auto: not for frames"
    then = f", and updates wait until it holds {wait:,} transitions" if wait else ""
    return f"the checkpoint holds no replay ({why}): it refills from empty{then}"


class ReplayBuffer:
    """Transitions (s, a, r, s', terminated, discount) in fixed arrays; the oldest are overwritten first.
    Actions are indices (Discrete, the default) or vectors of ``action_shape`` and ``action_dtype``
    (float32 for continuous actions).

    ``terminated`` only: a truncated transition is stored as not terminated, so its target
    bootstraps from s' (the true last observation of the episode). ``discount`` is the factor on
    the bootstrap value: gamma for one-step transitions, gamma^m for m-step ones (NStepWindow).
    ``next_action`` is the action the behaviour policy took at s' (for SARSA targets), -1 where it
    took none (the episode ended at s') or none was given.

    Observations are kept by ``self.observations``: as they are, or with ``frames`` (stacked uint8
    frames) each frame once (drlab.buffers.observations). Then what ``add`` takes as obs and
    next_obs are the handles that ``observe`` returned for them; ``num_envs`` and ``n_step`` size
    how long ``observe`` keeps recent handles alive for the n-step window.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype, device: torch.device,
                 frames: bool = False, num_envs: int = 1, n_step: int = 1,
                 action_shape: tuple[int, ...] = (), action_dtype=np.int64):
        self.capacity = int(capacity)
        self.device = device
        if frames:
            self.observations = FrameObservations(self.capacity, obs_shape, num_envs, keep=n_step + 1)
        else:
            self.observations = DenseObservations(self.capacity, obs_shape, obs_dtype)
        self.actions = np.zeros((self.capacity, *action_shape), dtype=action_dtype)  # indices, or float vectors
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.discounts = np.zeros(self.capacity, dtype=np.float32)
        self.next_actions = np.full(self.capacity, -1, dtype=np.int64)
        self.pos = 0  # next slot to write
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def observe(self, obs: np.ndarray) -> np.ndarray:
        """What ``add`` takes for a vector step's observations (see drlab.buffers.observations)."""
        return self.observations.observe(obs)

    def add(self, obs, actions, rewards, next_obs, terminated, discounts, next_actions=None) -> np.ndarray:
        """Store a batch of k transitions; returns the slots they went to. More than the capacity at
        once (one vector step of many envs ending n-step windows): only the newest fit."""
        if next_actions is None:
            next_actions = np.full(len(actions), -1, dtype=np.int64)
        if len(actions) > self.capacity:
            keep = slice(len(actions) - self.capacity, None)
            obs, actions, rewards, next_obs, terminated, discounts, next_actions = (
                x[keep] for x in (obs, actions, rewards, next_obs, terminated, discounts, next_actions))
        k = len(actions)
        slots = (self.pos + np.arange(k)) % self.capacity
        self.observations.write(slots, obs, next_obs)
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.discounts[slots] = discounts
        self.next_actions[slots] = next_actions
        self.pos = int((self.pos + k) % self.capacity)
        self.size = min(self.size + k, self.capacity)
        return slots

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        indices = rng.integers(0, self.size, size=batch_size)
        return self.gather(indices)

    keeps_priorities = False  # update_priorities does something (prioritized replay)

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Uniform replay keeps no priorities."""

    def gather(self, indices: np.ndarray, weights: np.ndarray | None = None) -> Batch:
        """The transitions in ``indices`` as a Batch (unit weights unless given)."""
        if weights is None:
            weights = np.ones(len(indices), dtype=np.float32)
        def t(x):
            return torch.from_numpy(x).to(self.device, non_blocking=True)

        obs, next_obs = self.observations.read(indices)
        return Batch(
            obs=t(obs),
            actions=t(self.actions[indices]),
            rewards=t(self.rewards[indices]),
            next_obs=t(next_obs),
            terminated=t(self.terminated[indices]),
            discounts=t(self.discounts[indices]),
            weights=t(weights.astype(np.float32)),
            indices=indices,
            next_actions=t(self.next_actions[indices]),
        )

    # ---- checkpointing: plain tensors and ints, loadable with torch.load(weights_only=True) ----
    ARRAYS = ("actions", "rewards", "terminated", "discounts", "next_actions")

    def reorder(self, order: np.ndarray) -> None:
        """Slot i now holds the transition slot order[i] held (the first len(order) slots)."""
        self.observations.reorder(order)
        for name in self.ARRAYS:
            array = getattr(self, name)
            array[: len(order)] = array[order]

    @property
    def nbytes(self) -> int:
        """Memory of the stored transitions' arrays."""
        return self.observations.nbytes + sum(getattr(self, name).nbytes for name in self.ARRAYS)

    def state_dict(self) -> dict:
        state = {name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in self.ARRAYS}
        state.update(observations=self.observations.state_dict(self.size), pos=self.pos, size=self.size)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.size, self.pos = int(state["size"]), int(state["pos"])
        for name in self.ARRAYS:
            if name in state:  # checkpoints from before SARSA targets hold no next actions (-1: none)
                getattr(self, name)[: self.size] = state[name].numpy()
        # Checkpoints from before the observation stores held obs and next_obs at the top level.
        observations = state.get("observations") or {"obs": state["obs"], "next_obs": state["next_obs"]}
        self.observations.load_state_dict(observations, self.size)
