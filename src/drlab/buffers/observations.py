"""How a replay buffer stores its transitions' observations (s and s').

:class:`DenseObservations` keeps both as they are. :class:`FrameObservations` is for stacked frames
((4, 84, 84) uint8): consecutive stacks of one env share three of their four frames, and a
transition's s' is the next transition's s, so storing s and s' as stacks keeps every frame eight
times (~5.6 GB for 100k Atari transitions). It keeps each frame once instead, in a pool of single
frames, and a stack is four indices into the pool (a *handle*); stacks are rebuilt from the pool at
sample time.

Both have the same interface. The training loop turns each observation it gets from the envs into
what the buffer stores with ``observe`` (the observation itself, or its handle) and passes that to
``ReplayBuffer.add`` and the n-step window, so the rest of the pipeline does not know which it is.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch


class DenseObservations:
    """s and s' in two preallocated arrays."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype):
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros_like(self.obs)

    def observe(self, obs: np.ndarray) -> np.ndarray:
        return obs

    def write(self, slots: np.ndarray, obs: np.ndarray, next_obs: np.ndarray) -> None:
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.obs[indices], self.next_obs[indices]

    def reorder(self, order: np.ndarray) -> None:
        """Slot i now holds what slot order[i] held (the first len(order) slots)."""
        for array in (self.obs, self.next_obs):
            array[: len(order)] = array[order]

    @property
    def nbytes(self) -> int:
        return self.obs.nbytes + self.next_obs.nbytes

    def state_dict(self, size: int) -> dict:
        return {"obs": torch.from_numpy(self.obs[:size].copy()), "next_obs": torch.from_numpy(self.next_obs[:size].copy())}

    def load_state_dict(self, state: dict, size: int) -> None:
        self.obs[:size] = state["obs"].numpy()
        self.next_obs[:size] = state["next_obs"].numpy()


class FrameObservations:
    """Stacked frames with each frame stored once: a pool of single frames, and per stored
    transition the handles (four pool indices each) of s and s'.

    ``observe(obs)`` takes one vector step's stacks (N, K, H, W). For each env whose new stack is
    its previous one shifted by a frame (the first K-1 frames equal, byte for byte, the previous
    stack's last K-1), only the newest frame enters the pool and the handle reuses the previous
    three; any other stack (an episode start, whatever the env pads it with) enters whole. A stack
    rebuilt from its handle is therefore always, byte for byte, the observation the env gave (a
    new episode's stack never reuses the last one's frames unless the env itself carried them over,
    as Atari does after a lost life), and a sampled batch is the one a buffer of whole stacks would
    return for the same history.

    Pool slots are reference counted: stored transitions hold their frames, and the handles of the
    last ``keep`` observations of every env are held too (they may still be in the n-step window,
    not yet stored). A slot whose count drops to zero is reused, so eviction in any order works,
    including the symlog-softmax replay's lowest-priority-first. The pool grows if it ever runs
    out: first-in-first-out eviction keeps about one frame per transition when episodes are long;
    the symlog-softmax replay's scattered survivors share fewer frames (up to five each).
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], num_envs: int = 1, keep: int = 2):
        self.stack, *self.frame_shape = obs_shape
        self.num_envs = num_envs
        self.obs = np.zeros((capacity, self.stack), dtype=np.int64)  # handles of s
        self.next_obs = np.zeros_like(self.obs)  # handles of s'
        self.stored = np.zeros(capacity, dtype=bool)  # slot holds a transition (whose frames it holds)
        # Room for ~1/8 more frames than transitions (the extra frames of episode starts) before the
        # pool must grow; np.zeros pages that are never written take no memory.
        pool = capacity + capacity // 8 + 2 * self.stack * num_envs * (keep + 1)
        self.frames = np.zeros((pool, *self.frame_shape), dtype=np.uint8)
        self.refs = np.zeros(pool, dtype=np.int64)
        self.free = np.arange(pool - 1, -1, -1, dtype=np.int64)  # a stack: the lowest slots go first
        self.free_top = pool
        self.current = np.zeros((0, self.stack), dtype=np.int64)  # each env's latest handle
        self.held: deque[np.ndarray] = deque()  # the last ``keep`` observations' handles
        self.keep = keep

    # ---- the pool ------------------------------------------------------------------------------

    def _allocate(self, count: int) -> np.ndarray:
        if count > self.free_top:
            self._grow(count)
        self.free_top -= count
        return self.free[self.free_top: self.free_top + count][::-1].copy()

    def _grow(self, count: int) -> None:
        """Room for at least ``count`` more frames (and 25% more): a new pool with the old one copied
        in (both exist for a moment), its new slots untouched in memory until used."""
        old = len(self.frames)
        new = max(old + count, int(old * 1.25) + 1)
        frames = np.zeros((new, *self.frame_shape), dtype=np.uint8)
        frames[:old] = self.frames
        self.frames = frames
        self.refs = np.concatenate([self.refs, np.zeros(new - old, dtype=np.int64)])
        free = np.empty(new, dtype=np.int64)  # as long as the pool: every slot can be free at once
        free[: self.free_top] = self.free[: self.free_top]
        free[self.free_top: self.free_top + new - old] = np.arange(new - 1, old - 1, -1)
        self.free = free
        self.free_top += new - old

    def _hold(self, handles: np.ndarray) -> None:
        np.add.at(self.refs, handles.ravel(), 1)

    def _release(self, handles: np.ndarray) -> None:
        ids = handles.ravel()
        np.subtract.at(self.refs, ids, 1)
        unused = np.unique(ids[self.refs[ids] == 0])
        self.free[self.free_top: self.free_top + len(unused)] = unused
        self.free_top += len(unused)

    # ---- the buffer's interface ----------------------------------------------------------------

    def observe(self, obs: np.ndarray) -> np.ndarray:
        """The handles (N, K) of one vector step's stacks (N, K, H, W), their new frames pooled."""
        n, k = obs.shape[0], self.stack
        if len(self.current) != n:  # the first observation (or a new run after a resume)
            shifted = np.zeros(n, dtype=bool)
        else:
            shifted = (obs[:, :-1] == self.frames[self.current[:, 1:]]).reshape(n, -1).all(axis=1)
        handles = np.empty((n, k), dtype=np.int64)
        if shifted.any():
            handles[shifted, :-1] = self.current[shifted, 1:]
            handles[shifted, -1] = self._allocate(int(shifted.sum()))
            self.frames[handles[shifted, -1]] = obs[shifted, -1]
        whole = np.flatnonzero(~shifted)
        if len(whole):
            handles[whole] = self._allocate(len(whole) * k).reshape(len(whole), k)
            self.frames[handles[whole]] = obs[whole]
        self._hold(handles)
        self.held.append(handles)
        if len(self.held) > self.keep:
            self._release(self.held.popleft())
        self.current = handles
        return handles

    def write(self, slots: np.ndarray, obs: np.ndarray, next_obs: np.ndarray) -> None:
        self._hold(obs)
        self._hold(next_obs)
        overwritten = slots[self.stored[slots]]
        if len(overwritten):
            self._release(np.concatenate([self.obs[overwritten], self.next_obs[overwritten]]))
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs
        self.stored[slots] = True

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.frames[self.obs[indices]], self.frames[self.next_obs[indices]]

    def reorder(self, order: np.ndarray) -> None:
        for array in (self.obs, self.next_obs, self.stored):
            array[: len(order)] = array[order]

    @property
    def frames_in_use(self) -> int:
        return len(self.frames) - self.free_top

    @property
    def nbytes(self) -> int:
        """Bytes of the pool's frames in use and of the handles (the pool's free slots are
        allocated too, but a free slot that was never written is never touched in memory)."""
        return self.frames_in_use * int(np.prod(self.frame_shape)) + self.obs.nbytes + self.next_obs.nbytes

    # ---- checkpoints: only the frames the stored transitions use, renumbered -------------------

    def state_dict(self, size: int) -> dict:
        handles = np.concatenate([self.obs[:size], self.next_obs[:size]])
        used, renumbered = np.unique(handles, return_inverse=True)
        renumbered = renumbered.reshape(handles.shape)
        return {"frames": torch.from_numpy(self.frames[used]),
                "obs": torch.from_numpy(renumbered[:size].copy()), "next_obs": torch.from_numpy(renumbered[size:].copy())}

    def load_state_dict(self, state: dict, size: int) -> None:
        if "frames" not in state:  # a checkpoint of whole stacks (drlab before the frame replay)
            stacks = np.concatenate([state["obs"].numpy(), state["next_obs"].numpy()])
            handles = np.arange(len(stacks) * self.stack).reshape(len(stacks), self.stack)
            state = {"frames": torch.from_numpy(stacks.reshape(-1, *self.frame_shape)),
                     "obs": torch.from_numpy(handles[:size]), "next_obs": torch.from_numpy(handles[size:])}
        frames = state["frames"].numpy()
        if len(frames) > len(self.frames):
            self._grow(len(frames) - len(self.frames))
        self.frames[: len(frames)] = frames
        self.obs[:size] = state["obs"].numpy()
        self.next_obs[:size] = state["next_obs"].numpy()
        self.stored[:] = False
        self.stored[:size] = True
        self.refs[:] = 0
        self._hold(self.obs[:size])
        self._hold(self.next_obs[:size])
        unused = np.flatnonzero(self.refs == 0)[::-1]
        self.free[: len(unused)] = unused
        self.free_top = len(unused)
        self.current = np.zeros((0, self.stack), dtype=np.int64)  # envs restart after a resume
        self.held.clear()
