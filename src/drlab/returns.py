"""Returns and advantages of on-policy rollouts from Gymnasium 1.x vector envs (next-step autoreset),
and the small numerical pieces around them (explained variance, running moments, symlog).

All rollout arrays are shaped (T, N): T steps, N parallel envs. For step t of a column:

- ``rewards[t]``, ``terminated[t]``, ``truncated[t]`` are what ``envs.step(actions[t])`` returned.
- ``valid[t]`` is False on an autoreset step, the step right after an episode ended: it is not a
  transition (the env ignored the action and returned the reset observation). Its reward is
  ignored and every output there is 0.
- ``values[t]`` = V(obs[t]). On an autoreset step obs[t] is the final observation of the episode that
  ended at t-1, so a truncation at t-1 bootstraps from ``values[t]``; a truncation on the last row
  bootstraps from ``last_value`` (shape (N,)), V of the observation after step T-1.

The functions loop over T and are vectorized over N; outputs are float32.
"""

import numpy as np


def _as_bool(*arrays):
    return tuple(np.asarray(a, dtype=bool) for a in arrays)


def _next_values(values, last_value):
    """V of the observation after each step: values[t + 1], and last_value after the last row."""
    values = np.asarray(values, dtype=np.float64)
    last_value = np.asarray(last_value, dtype=np.float64)
    return values, np.concatenate([values[1:], last_value[None]], axis=0)


def discounted_returns(rewards, terminated, truncated, valid, gamma, values=None, last_value=None):
    """Discounted return G_t = r_t + gamma * G_{t+1} within each episode, 0 at invalid steps.

    An episode that terminates at t has G_t = r_t. One that is truncated at t, or still running at the
    end of the rollout, continues with the bootstrap V(next obs) (values[t + 1], or last_value on the
    last row); without values/last_value that bootstrap is 0 (plain Monte-Carlo). With them this is
    the n-step bootstrapped value target of A2C.
    """
    if (values is None) != (last_value is None):
        raise ValueError("pass values and last_value together (or neither)")
    terminated, truncated, valid = _as_bool(terminated, truncated, valid)
    rewards = np.asarray(rewards, dtype=np.float64)
    if values is None:
        next_values = np.zeros_like(rewards)
    else:
        _, next_values = _next_values(values, last_value)

    out = np.zeros(rewards.shape, dtype=np.float64)
    future = next_values[-1]  # G_{t+1}; past the last row it is the bootstrap
    for t in reversed(range(len(rewards))):
        future = np.where(truncated[t], next_values[t], future)
        future = np.where(terminated[t], 0.0, future)
        # np.where, not multiplication by a mask: a huge or inf reward of an invalid step must not
        # turn into nan (inf * 0) in the step before it.
        out[t] = np.where(valid[t], rewards[t] + gamma * future, 0.0)
        future = out[t]
    return out.astype(np.float32)


def gae(rewards, values, last_value, terminated, truncated, valid, gamma, lam):
    """Generalized advantage estimation (Schulman et al. 2016); returns (advantages, returns).

    delta_t = r_t + gamma * (1 - terminated_t) * V_next - V(s_t), V_next = values[t + 1] or last_value,
    and A_t = delta_t + gamma * lam * A_{t+1}, with the sum cut at every episode end: a truncated step
    bootstraps through V_next in its delta but does not take in the next episode's advantages.
    returns = advantages + values. Both are 0 at invalid steps. With lam = 1 the returns equal
    discounted_returns(..., values, last_value).
    """
    terminated, truncated, valid = _as_bool(terminated, truncated, valid)
    rewards = np.asarray(rewards, dtype=np.float64)
    values, next_values = _next_values(values, last_value)

    deltas = rewards + gamma * np.where(terminated, 0.0, next_values) - values
    advantages = np.zeros(rewards.shape, dtype=np.float64)
    future = np.zeros(rewards.shape[1:], dtype=np.float64)  # A_{t+1}; 0 past the last row
    for t in reversed(range(len(rewards))):
        # Cut at every episode end. With the autoreset rule the next row is invalid (A = 0) anyway;
        # the explicit cut keeps the definition independent of that.
        future = np.where(terminated[t] | truncated[t], 0.0, future)
        advantages[t] = np.where(valid[t], deltas[t] + gamma * lam * future, 0.0)
        future = advantages[t]
    returns = np.where(valid, advantages + values, 0.0)
    return advantages.astype(np.float32), returns.astype(np.float32)


def complete_mask(terminated, truncated, valid):
    """Bool (T, N): valid steps whose episode ends within the rollout (their Monte-Carlo return is
    complete), i.e. followed, at that step or later in the same column, by an episode end."""
    terminated, truncated, valid = _as_bool(terminated, truncated, valid)
    ends = terminated | truncated
    # "Some end at or after t" is a cumulative OR taken from the bottom of each column.
    ended_later = np.logical_or.accumulate(ends[::-1], axis=0)[::-1]
    return ended_later & valid


def explained_variance(predictions, targets):
    """1 - Var(targets - predictions) / Var(targets) of 1-D numpy arrays or torch tensors; NaN when
    Var(targets) == 0. 1 is a perfect critic, 0 is no better than predicting the mean."""

    def to_numpy(x):
        if hasattr(x, "detach"):  # torch tensor, without importing torch here
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=np.float64)

    predictions, targets = to_numpy(predictions), to_numpy(targets)
    with np.errstate(all="ignore"):  # a diverging critic gives inf/NaN: reported, not warned about
        variance = np.var(targets)
        if variance == 0:
            return float("nan")
        return float(1.0 - np.var(targets - predictions) / variance)


class RewardScaler:
    """Training rewards divided by the running standard deviation of a discounted return.

    Each env keeps G = gamma * G + r over its real steps (reset at episode ends); the running
    variance of G across all envs and steps sets the scale, as in SB3's VecNormalize(norm_reward).
    It keeps the value targets near unit scale whatever the env's reward units. Only the learner
    sees scaled rewards: every reported return stays raw.
    """

    def __init__(self, num_envs: int, gamma: float, eps: float = 1e-8):
        self.gamma, self.eps = gamma, eps
        self.discounted = np.zeros(num_envs, dtype=np.float64)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __call__(self, rewards, terminated, truncated, valid) -> np.ndarray:
        """Scaled (T, N) rewards; folds this rollout into the statistics first."""
        terminated, truncated, valid = _as_bool(terminated, truncated, valid)
        rewards = np.asarray(rewards, dtype=np.float64)
        seen = []
        for t in range(len(rewards)):
            self.discounted = np.where(valid[t], self.gamma * self.discounted + rewards[t], self.discounted)
            seen.append(self.discounted[valid[t]])
            self.discounted = np.where(terminated[t] | truncated[t], 0.0, self.discounted)
        self._update(np.concatenate(seen))
        return (np.where(valid, rewards, 0.0) / np.sqrt(self.var + self.eps)).astype(np.float32)

    def _update(self, x: np.ndarray) -> None:
        if len(x):
            self.mean, self.var, self.count = combine_moments(self.mean, self.var, self.count, x.mean(), x.var(), len(x))

    def state_dict(self) -> dict:
        # Plain floats: NumPy scalars would make the checkpoint unreadable under weights_only loading.
        return {"discounted": self.discounted.tolist(), "mean": float(self.mean), "var": float(self.var),
                "count": float(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.discounted = np.asarray(state["discounted"], dtype=np.float64)
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), float(state["count"])


def combine_moments(mean, var, count, batch_mean, batch_var, batch_count):
    """Mean, variance and count of two samples together, from each one's (Chan et al. 1979): the
    running statistics of observation and reward normalisation. Works on floats, NumPy arrays and
    torch tensors alike."""
    total = count + batch_count
    delta = batch_mean - mean
    new_mean = mean + delta * batch_count / total
    new_var = (var * count + batch_var * batch_count + delta ** 2 * count * batch_count / total) / total
    return new_mean, new_var, total


def symlog(x):
    """sign(x) log(1 + |x|) of a NumPy array or a torch tensor (DreamerV3's squashing)."""
    if isinstance(x, np.ndarray):
        return np.sign(x) * np.log1p(np.abs(x))
    return x.sign() * x.abs().log1p()


def symexp(x):
    """The inverse of :func:`symlog`: sign(x) (exp(|x|) - 1)."""
    if isinstance(x, np.ndarray):
        return np.sign(x) * np.expm1(np.abs(x))
    return x.sign() * x.abs().expm1()
