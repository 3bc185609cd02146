"""The frame replay (each frame stored once) against the brute-force reference: a replay of whole
stacks fed the same history. Sampled batches must be identical, across episode ends inside a stack,
next-step autoreset, n-step windows, wrap-around and every replay variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drlab.buffers.nstep import NStepWindow
from drlab.buffers.prioritized import PrioritizedReplayBuffer, SymlogSoftmaxReplayBuffer
from drlab.buffers.replay import ReplayBuffer

CPU = torch.device("cpu")
STACK, H, W = 4, 5, 6


class StackedFrameEnvs:
    """N envs of random frames under a K-frame stack and next-step autoreset, with short episodes
    (terminated or truncated); a reset stack pads with zeros or repeats the first frame. Some
    episode ends are "life losses" that keep the stack going, as Atari training does."""

    def __init__(self, num_envs: int, seed: int, padding: str):
        self.rng = np.random.default_rng(seed)
        self.n, self.padding = num_envs, padding
        self.stacks = np.stack([self._reset_stack() for _ in range(num_envs)])
        self.after_end = np.zeros(num_envs, dtype=bool)

    def _frame(self):
        return self.rng.integers(0, 256, (H, W), dtype=np.uint8)

    def _reset_stack(self):
        first = self._frame()
        if self.padding == "zeros":
            return np.stack([np.zeros_like(first)] * (STACK - 1) + [first])
        return np.stack([first] * STACK)

    def step(self):
        terminated = np.zeros(self.n, dtype=bool)
        truncated = np.zeros(self.n, dtype=bool)
        for i in range(self.n):
            if self.after_end[i] and self.rng.random() < 0.7:  # autoreset (else: a life loss, the game goes on)
                self.stacks[i] = self._reset_stack()
            else:
                self.stacks[i] = np.concatenate([self.stacks[i, 1:], self._frame()[None]])
                end = self.rng.random()
                terminated[i], truncated[i] = end < 0.08, 0.08 <= end < 0.12
        self.after_end = terminated | truncated
        rewards = self.rng.normal(size=self.n).astype(np.float32)
        return self.stacks.copy(), rewards, terminated, truncated


def feed(buffers, num_envs: int, steps: int, n_step: int, seed: int, padding: str, after_add=None):
    """The same history into each buffer, through an n-step window of its own."""
    envs = StackedFrameEnvs(num_envs, seed, padding)
    actions_rng = np.random.default_rng(seed + 1)
    obs = envs.stacks.copy()
    stored = [b.observe(obs) for b in buffers]
    windows = [NStepWindow(num_envs, n_step, 0.9, s.shape[1:], s.dtype) for s in stored]
    prev_done = np.zeros(num_envs, dtype=bool)
    for _ in range(steps):
        actions = actions_rng.integers(0, 3, num_envs)
        next_obs, rewards, terminated, truncated = envs.step()
        done, valid = terminated | truncated, ~prev_done
        for i, buffer in enumerate(buffers):
            stored_next = buffer.observe(next_obs)
            slots = buffer.add(*windows[i].push(stored[i], actions, rewards, stored_next, terminated, done, valid))
            stored[i] = stored_next
            if after_add is not None:
                after_add(buffer, slots)
        prev_done = done


def assert_same_batch(a, b):
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "discounts", "weights"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(a.indices, b.indices)


def pair(cls, capacity, num_envs, n_step, **kwargs):
    shape = (STACK, H, W)
    naive = cls(capacity, shape, np.uint8, CPU, **kwargs)
    frames = cls(capacity, shape, np.uint8, CPU, frames=True, num_envs=num_envs, n_step=n_step, **kwargs)
    return naive, frames


@pytest.mark.parametrize("n_step", [1, 3, 6])
@pytest.mark.parametrize("padding", ["zeros", "repeat"])
def test_uniform_matches_whole_stacks(n_step, padding):
    naive, frames = pair(ReplayBuffer, 97, 3, n_step)  # wraps around several times
    feed([naive, frames], num_envs=3, steps=400, n_step=n_step, seed=n_step, padding=padding)
    assert len(naive) == len(frames) == 97 and naive.pos == frames.pos
    for draw in range(5):
        assert_same_batch(naive.sample(32, np.random.default_rng(draw)), frames.sample(32, np.random.default_rng(draw)))
    assert_same_batch(naive.gather(np.arange(97)), frames.gather(np.arange(97)))
    # Each frame once: about one frame per transition, not eight.
    assert frames.observations.frames_in_use < 97 * 2


def test_prioritized_matches_whole_stacks():
    naive, frames = pair(PrioritizedReplayBuffer, 64, 2, 3, alpha=0.6)
    feed([naive, frames], num_envs=2, steps=300, n_step=3, seed=7, padding="zeros")
    for draw in range(5):
        a = naive.sample(16, np.random.default_rng(draw), beta=0.5)
        b = frames.sample(16, np.random.default_rng(draw), beta=0.5)
        assert_same_batch(a, b)
        td = np.random.default_rng(100 + draw).normal(size=16)
        naive.update_priorities(a.indices, td)
        frames.update_priorities(b.indices, td)


def test_symlog_softmax_sorted_eviction_matches_whole_stacks():
    """Lowest-priority-first eviction frees frames out of order; the pool must keep exactly the
    frames that surviving transitions use."""
    naive, frames = pair(SymlogSoftmaxReplayBuffer, 50, 2, 2, sort_interval=10)
    rng = np.random.default_rng(3)

    def prioritise(buffer, slots):  # the same random priorities in both, as TD errors would give
        if len(slots):
            buffer.update_priorities(slots, rng_for[id(buffer)].normal(size=len(slots)) * 5)

    rng_for = {id(naive): np.random.default_rng(11), id(frames): np.random.default_rng(11)}
    feed([naive, frames], num_envs=2, steps=500, n_step=2, seed=5, padding="repeat", after_add=prioritise)
    for draw in range(5):
        assert_same_batch(naive.sample(20, np.random.default_rng(draw)), frames.sample(20, np.random.default_rng(draw)))
    pool = frames.observations
    used = np.unique(np.concatenate([pool.obs[:50], pool.next_obs[:50]]))
    assert (pool.refs[used] > 0).all()


def test_checkpoint_round_trip_keeps_only_used_frames():
    naive, frames = pair(ReplayBuffer, 40, 2, 1)
    feed([naive, frames], num_envs=2, steps=150, n_step=1, seed=9, padding="zeros")
    state = frames.state_dict()
    assert len(state["observations"]["frames"]) <= 40 * 2 + 8  # frames, not stacks
    restored = ReplayBuffer(40, (STACK, H, W), np.uint8, CPU, frames=True, num_envs=2)
    restored.load_state_dict(state)
    assert_same_batch(frames.gather(np.arange(40)), restored.gather(np.arange(40)))
    # The restored buffer goes on storing correctly (the envs start fresh after a resume).
    naive_2, _ = pair(ReplayBuffer, 40, 2, 1)
    naive_2.load_state_dict(naive.state_dict())
    feed([naive_2, restored], num_envs=2, steps=30, n_step=1, seed=10, padding="zeros")
    assert_same_batch(naive_2.gather(np.arange(40)), restored.gather(np.arange(40)))


def test_pool_grows_when_transitions_share_no_frames():
    """n-step with n > stack: s and s' share no frame; scattered survivors can need more frames
    than the initial pool; it grows instead of failing."""
    naive, frames = pair(SymlogSoftmaxReplayBuffer, 30, 1, 8, sort_interval=5)
    rng_for = {id(naive): np.random.default_rng(1), id(frames): np.random.default_rng(1)}

    def prioritise(buffer, slots):
        if len(slots):
            buffer.update_priorities(slots, rng_for[id(buffer)].normal(size=len(slots)) * 5)

    feed([naive, frames], num_envs=1, steps=1500, n_step=8, seed=2, padding="zeros", after_add=prioritise)
    assert_same_batch(naive.gather(np.arange(30)), frames.gather(np.arange(30)))


def test_pool_grows_and_then_frees_into_the_grown_part():
    """Stacks that share no frames (8 per transition) outgrow the pool; once stacks shift again,
    frames are freed, also slots of the grown part."""
    naive, frames = pair(ReplayBuffer, 8, 1, 1)
    initial = len(frames.observations.frames)
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (1, STACK, H, W), dtype=np.uint8)
    stored = [b.observe(stack) for b in (naive, frames)]
    for step in range(120):
        if step < 40:  # unrelated stacks: each enters the pool whole
            new = rng.integers(0, 256, (1, STACK, H, W), dtype=np.uint8)
        else:  # shifted stacks: one new frame each
            new = np.concatenate([stack[:, 1:], rng.integers(0, 256, (1, 1, H, W), dtype=np.uint8)], axis=1)
        for i, buffer in enumerate((naive, frames)):
            stored_new = buffer.observe(new)
            buffer.add(stored[i], np.zeros(1, np.int64), np.zeros(1), stored_new, np.zeros(1), np.full(1, 0.9))
            stored[i] = stored_new
        stack = new
        assert_same_batch(naive.gather(np.arange(naive.size)), frames.gather(np.arange(frames.size)))
    pool = frames.observations
    assert len(pool.frames) > initial  # it grew
    assert len(pool.free) == len(pool.frames) and pool.free_top == np.sum(pool.refs == 0)
    assert pool.frames_in_use <= 8 + STACK + 2  # back to about one frame per transition


def test_more_transitions_than_capacity_in_one_add_keeps_the_newest():
    """16 envs ending 5-step windows at once emit up to 80 transitions into a buffer of 64."""
    naive, frames = pair(ReplayBuffer, 6, 12, 5)
    full_adds = []
    feed([naive, frames], num_envs=12, steps=60, n_step=5, seed=4, padding="zeros",
         after_add=lambda buffer, slots: full_adds.append(len(slots) == 6))
    assert sum(full_adds) > 10  # most steps emit more than 6 transitions
    assert_same_batch(naive.gather(np.arange(6)), frames.gather(np.arange(6)))
    pool = frames.observations
    used = np.concatenate([pool.obs, pool.next_obs]).ravel()
    held = np.concatenate(list(pool.held)).ravel()
    np.testing.assert_array_equal(pool.refs, np.bincount(np.concatenate([used, held]), minlength=len(pool.refs)))


def test_checkpoint_of_whole_stacks_loads_into_the_frame_pool():
    """Checkpoints written before the frame replay held obs and next_obs as stacks."""
    naive, frames = pair(ReplayBuffer, 30, 2, 1)
    feed([naive, frames], num_envs=2, steps=50, n_step=1, seed=6, padding="repeat")
    state = naive.state_dict()
    legacy = {k: v for k, v in state.items() if k != "observations"}
    legacy.update(state["observations"])
    restored = ReplayBuffer(30, (STACK, H, W), np.uint8, CPU, frames=True, num_envs=2)
    restored.load_state_dict(legacy)
    assert_same_batch(naive.gather(np.arange(30)), restored.gather(np.arange(30)))
