"""On-policy rollout storage: T steps of N envs in preallocated (T, N) arrays.

``collect`` steps the envs T times with the agent's sampled actions. Row t holds the observation
the action was taken from, the action and what the env returned; ``evaluate`` then adds the
action's log-probability and the critic's output. ``valid[t]`` is False on the autoreset step after an episode end (not a transition);
``obs[T]`` is the observation after the last step. Under next-step autoreset ``obs[t + 1]`` is the
true next observation of every valid step t, the final one of a finished episode included, which
is what a truncated episode bootstraps from.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from drlab.returns import gae


class Rollout:
    def __init__(self, num_steps: int, num_envs: int, obs_shape: tuple[int, ...], obs_dtype, value_outputs: int = 1):
        T, N = num_steps, num_envs
        self.num_steps, self.num_envs = T, N
        self.obs = np.zeros((T + 1, N, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((T, N), dtype=np.int64)
        self.log_probs = np.zeros((T, N), dtype=np.float32)
        self.values = np.zeros((T + 1, N, value_outputs), dtype=np.float32)  # row T: of obs[T]
        self.rewards = np.zeros((T, N), dtype=np.float32)
        self.terminated = np.zeros((T, N), dtype=bool)
        self.truncated = np.zeros((T, N), dtype=bool)
        self.valid = np.zeros((T, N), dtype=bool)
        self.prev_done = np.zeros(N, dtype=bool)  # carried across rollouts: was the last step an episode end?

    def collect(self, run, agent, obs: np.ndarray) -> np.ndarray:
        """Step the envs T times from ``obs`` with sampled actions; returns the observation to continue
        from. Only the policy runs here; log-probabilities and values come from one batched pass
        over the whole rollout afterwards, the same numbers at a fraction of the cost."""
        clock = time.perf_counter
        for t in range(self.num_steps):
            self.obs[t] = obs
            start = clock()
            actions = agent.act(obs, greedy=False)
            stepped = clock()
            obs, rewards, terminated, truncated, info = run.envs.step(actions)
            run.seconds["inference"] += stepped - start
            run.seconds["env"] += clock() - stepped
            done = terminated | truncated
            self.valid[t] = ~self.prev_done
            run.record_episodes(rewards, done, self.valid[t], info)
            self.actions[t], self.rewards[t] = actions, rewards
            self.terminated[t], self.truncated[t] = terminated, truncated
            self.prev_done = done
        self.obs[-1] = obs
        return obs

    @torch.no_grad()
    def evaluate(self, net, device: torch.device) -> None:
        """Log-probabilities of the taken actions and critic outputs of all T + 1 observations, under
        the network that collected the rollout (call before any update on it)."""
        T, N = self.num_steps, self.num_envs
        obs = torch.from_numpy(self.obs.reshape((T + 1) * N, *self.obs.shape[2:])).to(device)
        logits, values = net(obs)
        log_pi = torch.log_softmax(logits[: T * N], dim=-1)
        taken = torch.from_numpy(self.actions.reshape(-1)).to(device)
        self.log_probs[:] = log_pi.gather(1, taken[:, None]).view(T, N).cpu().numpy()
        self.values[:] = values.view(T + 1, N, -1).cpu().numpy()

    def advantages_and_returns(self, gamma: float, lam: float, scaler=None) -> tuple[np.ndarray, np.ndarray]:
        """GAE advantages and value targets (lam = 1: n-step returns) from a V critic's values;
        ``scaler`` (returns.RewardScaler) rescales the rewards first."""
        values = self.values[..., 0]
        rewards = self.rewards if scaler is None else scaler(self.rewards, self.terminated, self.truncated, self.valid)
        return gae(rewards, values[:-1], values[-1], self.terminated, self.truncated, self.valid, gamma, lam)

    @property
    def steps(self) -> int:
        return self.num_steps * self.num_envs

    def tensors(self, device: torch.device, obs: bool = True, **extra: np.ndarray) -> dict[str, torch.Tensor]:
        """The first T rows, flattened to T*N samples, as tensors (plus ``extra`` (T, N) arrays).
        Observations keep their dtype (frames stay uint8)."""
        T, N = self.num_steps, self.num_envs

        def flat(x):
            return torch.from_numpy(np.ascontiguousarray(x[:T]).reshape(T * N, *x.shape[2:])).to(device)

        out = {"obs": flat(self.obs)} if obs else {}
        out.update({"actions": flat(self.actions), "log_probs": flat(self.log_probs),
                    "valid": flat(self.valid.astype(np.float32))})
        out.update({name: flat(np.asarray(array, dtype=np.float32)) for name, array in extra.items()})
        return out
