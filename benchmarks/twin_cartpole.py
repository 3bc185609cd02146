"""Twin CartPole: two independent CartPole-v1 systems balanced at once, for testing factored actions.

The observation is both carts' states side by side (8 floats); the episode terminates when either
pole falls or either cart leaves the track, and is truncated at 500 steps; each step pays +1, so the
scale is CartPole's (475 = solved). The same task is registered with three action spaces:

- ``TwinCartPoleMultiBinary-v0``: MultiBinary(2), bit i pushes cart i right (1) or left (0);
- ``TwinCartPoleMultiDiscrete-v0``: MultiDiscrete([2, 2]), the same choice as two categoricals;
- ``TwinCartPoleDiscrete-v0``: Discrete(4), the four joint actions (2 * a0 + a1) as one categorical.

Why it is a fair test of a factored action head: the best policy is known to factor (each cart
needs only its own state), the task is exactly as hard under the three spaces, and the Discrete(4)
version is solved by the categorical head that already solves CartPole, so any gap between the
three is the head's. Use it from the repository root:

    PYTHONPATH=benchmarks drlab train reinforce twin_cartpole:TwinCartPoleMultiBinary-v0
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import CartPoleEnv


class TwinCartPole(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, action_space: str = "multibinary", render_mode: str | None = None):
        self.carts = [CartPoleEnv(render_mode=render_mode), CartPoleEnv(render_mode=render_mode)]
        self.kind, self.render_mode = action_space, render_mode
        self.action_space = {"multibinary": gym.spaces.MultiBinary(2),
                             "multidiscrete": gym.spaces.MultiDiscrete([2, 2]),
                             "discrete": gym.spaces.Discrete(4)}[action_space]
        high = np.concatenate([self.carts[0].observation_space.high] * 2)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)

    def _pushes(self, action) -> tuple[int, int]:
        if self.kind == "discrete":
            return int(action) // 2, int(action) % 2
        a = np.asarray(action).reshape(-1)
        return int(a[0]), int(a[1])

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        # Each cart gets its own start drawn from this env's generator, so one seed fixes both.
        starts = [cart.reset(seed=int(self.np_random.integers(2**31)))[0] for cart in self.carts]
        return np.concatenate(starts).astype(np.float32), {}

    def step(self, action):
        steps = [cart.step(push) for cart, push in zip(self.carts, self._pushes(action))]
        obs = np.concatenate([s[0] for s in steps]).astype(np.float32)
        terminated = any(s[2] for s in steps)
        return obs, 1.0, terminated, False, {}

    def render(self):
        if self.render_mode == "rgb_array":  # the two carts one above the other
            return np.concatenate([cart.render() for cart in self.carts], axis=0)
        return None

    def close(self):
        for cart in self.carts:
            cart.close()


for _kind, _name in (("multibinary", "MultiBinary"), ("multidiscrete", "MultiDiscrete"), ("discrete", "Discrete")):
    if f"TwinCartPole{_name}-v0" not in gym.registry:
        gym.register(f"TwinCartPole{_name}-v0", entry_point=TwinCartPole, kwargs={"action_space": _kind},
                     max_episode_steps=500, reward_threshold=475.0)
