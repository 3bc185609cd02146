"""n-step transitions from N envs stepped together, under next-step autoreset."""

from __future__ import annotations

import numpy as np


class NStepWindow:
    """Holds each env's last (up to n) real steps and emits n-step transitions.

    For a step t of an episode of length L, the emitted transition is
        (s_t, a_t, R = sum_{k<m} gamma^k r_{t+k}, s_{t+m}, terminated, discount = gamma^m),
    with m = min(n, L - t). ``terminated`` is true only when the window reaches the end of a
    terminated episode; a truncated episode's last transitions bootstrap from its true last
    observation. The TD target is then R + discount * (1 - terminated) * V(s_{t+m}).
    With n = 1 these are the ordinary one-step transitions (discount = gamma).

    Envs whose step is not ``valid`` (the autoreset step after an episode end) are ignored. The
    window is episode state, not learner state: after a resume it starts empty, as the envs do.
    After each push, ``envs`` holds the env of each emitted transition (SARSA needs the action
    that env takes next).
    """

    def __init__(self, num_envs: int, n: int, gamma: float, obs_shape: tuple[int, ...], obs_dtype,
                 action_shape: tuple[int, ...] = (), action_dtype=np.int64):
        self.n = int(n)
        self.obs = np.zeros((num_envs, self.n, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((num_envs, self.n, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros((num_envs, self.n), dtype=np.float64)
        self.count = np.zeros(num_envs, dtype=np.int64)
        self.powers = gamma ** np.arange(self.n + 1)
        self.envs = np.zeros(0, dtype=np.int64)

    def push(self, obs, actions, rewards, next_obs, terminated, done, valid):
        """Add one vector step; returns (obs, actions, returns, next_obs, terminated, discounts)."""
        if self.n == 1:  # the definition with m = 1, without the window bookkeeping (the hot path)
            self.envs = np.flatnonzero(valid)
            return (obs[valid], actions[valid], rewards[valid], next_obs[valid], terminated[valid],
                    np.full(int(valid.sum()), self.powers[1]))
        envs = np.flatnonzero(valid)
        at = self.count[envs]
        self.obs[envs, at] = obs[envs]
        self.actions[envs, at] = actions[envs]
        self.rewards[envs, at] = rewards[envs]
        self.count[envs] += 1
        parts, envs_out = [], []

        # Full windows of running episodes: emit the oldest step, slide the window by one.
        full = np.flatnonzero(valid & ~done & (self.count == self.n))
        if full.size:
            parts.append((self.obs[full, 0].copy(), self.actions[full, 0].copy(),
                          self.rewards[full] @ self.powers[: self.n], next_obs[full],
                          np.zeros(full.size, dtype=bool), np.full(full.size, self.powers[self.n])))
            envs_out.append(full)
            for array in (self.obs, self.actions, self.rewards):
                array[full, :-1] = array[full, 1:]
            self.count[full] -= 1

        # Episodes that ended: every step still in the window gets its (shorter) return.
        for env in np.flatnonzero(valid & done):
            k = int(self.count[env])
            returns = np.array([self.rewards[env, j:k] @ self.powers[: k - j] for j in range(k)])
            parts.append((self.obs[env, :k].copy(), self.actions[env, :k].copy(), returns,
                          np.repeat(next_obs[env][None], k, axis=0), np.full(k, bool(terminated[env])),
                          self.powers[k - np.arange(k)]))
            envs_out.append(np.full(k, env))
            self.count[env] = 0

        self.envs = np.concatenate(envs_out) if envs_out else np.zeros(0, dtype=np.int64)
        if not parts:
            return self._empty(next_obs)
        return tuple(np.concatenate(column) for column in zip(*parts))

    def _empty(self, next_obs):
        return (self.obs[:0, 0], self.actions[:0, 0], np.zeros(0), next_obs[:0], np.zeros(0, dtype=bool), np.zeros(0))
