"""Test envs with Box, MultiDiscrete and MultiBinary actions, registered on import (a module that
Ray workers import too: ``env_packages=("tests.action_space_envs",)``)."""

import gymnasium as gym
import numpy as np


class Target(gym.Env):
    """obs: a random target in [-1, 1]^k, new at every step; reward: how close tanh of a Box action
    comes to it, or the fraction of entries (0/1) that match the target's signs. Episodes terminate
    after 4 steps, so that rollouts cross episode ends."""

    def __init__(self, action_space):
        self.action_space = action_space
        k = int(np.prod(getattr(action_space, "shape", ()) or (1,)))
        self.observation_space = gym.spaces.Box(-1, 1, (k,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.target = self.np_random.uniform(-1, 1, self.observation_space.shape).astype(np.float32)
        return self.target, {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)), action
        a = np.asarray(action, dtype=np.float32).reshape(-1)
        reward = -float(np.abs(np.tanh(a) - self.target).mean()) if isinstance(self.action_space, gym.spaces.Box) \
            else float(((a > 0.5) == (self.target > 0)).mean())
        self.t += 1
        self.target = self.np_random.uniform(-1, 1, self.observation_space.shape).astype(np.float32)
        return self.target, reward, self.t == 4, False, {}


SPACES = {
    "DrlabTestBoxTarget-v0": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    "DrlabTestMultiDiscreteTarget-v0": gym.spaces.MultiDiscrete([2, 2, 2]),
    "DrlabTestMultiBinaryTarget-v0": gym.spaces.MultiBinary(3),
    "DrlabTestShiftedDiscreteTarget-v0": gym.spaces.Discrete(2, start=-1),
}
for env_id, space in SPACES.items():
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=Target, kwargs={"action_space": space}, max_episode_steps=10)
