"""On-policy rollout storage: T steps of N envs in preallocated (T, N) arrays.

Row t holds the observation an action was taken from, the action and what the env returned for
it; ``valid[t]`` is False on the autoreset step after an episode end (not a transition).
``obs[T]`` is the observation after the last step. Under next-step autoreset ``obs[t + 1]`` is the
true next observation of every valid step t, the final one of a finished episode included, which
is what a truncated episode bootstraps from. The loop that fills it is
:func:`drlab.algos.on_policy.train_loop`.
"""

from __future__ import annotations

import numpy as np
import torch


class Rollout:
    def __init__(self, length: int, num_envs: int, obs_shape: tuple[int, ...], obs_dtype,
                 action_shape: tuple[int, ...] = (), action_dtype=np.int64):
        T, N = length, num_envs
        self.length, self.num_envs = T, N
        self.obs = np.zeros((T + 1, N, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((T, N, *action_shape), dtype=action_dtype)  # as the action head samples them
        self.rewards = np.zeros((T, N), dtype=np.float32)
        self.terminated = np.zeros((T, N), dtype=bool)
        self.truncated = np.zeros((T, N), dtype=bool)
        self.valid = np.zeros((T, N), dtype=bool)

    @property
    def env_steps(self) -> int:
        """Environment steps in the rollout, T * N."""
        return self.length * self.num_envs

    def store(self, t: int, obs, actions, rewards, terminated, truncated, valid) -> None:
        """Row ``t``: the observation acted on, the actions and what the env returned."""
        self.obs[t], self.actions[t], self.rewards[t] = obs, actions, rewards
        self.terminated[t], self.truncated[t], self.valid[t] = terminated, truncated, valid

    def all_obs(self, device: torch.device) -> torch.Tensor:
        """All T + 1 rows of observations as one batch of (T + 1) * N, for one network pass that
        also gives the bootstrap row. Frames stay uint8."""
        return torch.from_numpy(self.obs.reshape(-1, *self.obs.shape[2:])).to(device)

    def tensors(self, device: torch.device, obs: bool = True, **extra: np.ndarray) -> dict[str, torch.Tensor]:
        """The first T rows, flattened to T*N samples, as tensors (plus ``extra`` (T, N) arrays as
        float32). Observations keep their dtype (frames stay uint8)."""
        T, N = self.length, self.num_envs

        def flat(x):
            return torch.from_numpy(np.ascontiguousarray(x[:T]).reshape(T * N, *x.shape[2:])).to(device)

        out = {"obs": flat(self.obs)} if obs else {}
        out.update({"actions": flat(self.actions), "valid": flat(self.valid.astype(np.float32))})
        out.update({name: flat(np.asarray(array, dtype=np.float32)) for name, array in extra.items()})
        return out
