"""PPO (Schulman et al. 2017): clipped surrogate objective on GAE advantages, several epochs of
minibatches per rollout, optional value clipping, learning-rate and clip-range annealing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from drlab.algos import on_policy
from drlab.algos import policy_gradient as pg
from drlab.buffers.rollout import Rollout
from drlab.spaces.heads import HEAD_SPACES
from drlab.config import non_negative, positive
from drlab.errors import DrlabError
from drlab.optim import remaining
from drlab.spaces.encoders import OBSERVATION_SPACES

ACTION_SPACES = HEAD_SPACES
OBSERVATIONS = OBSERVATION_SPACES  # what drlab list says the algorithm observes
VARIANTS = {
    "default": "clipped objective, GAE, minibatch epochs, optional value clipping and annealing",
}


@dataclass
class Config(on_policy.OnPolicyConfig):
    n_steps: int = 128
    """Steps per env in each rollout."""
    batch_size: int = 256
    """Minibatch size; must divide n_steps * num_envs."""
    n_epochs: int = 4
    """Passes over the rollout per update."""
    clip_range: float = 0.2
    """Clip range of the probability ratio (initial, when clip_schedule is linear)."""
    clip_schedule: Literal["constant", "linear"] = "constant"
    """linear: anneal clip_range to 0 over total_steps."""
    clip_range_vf: float = 0.0
    """Clip the value change per update to this range around the rollout's values (0: no clipping)."""
    normalize_advantages: bool = True
    """Normalise advantages per minibatch."""
    target_kl: float = 0.0
    """Stop the update's epochs early once the approximate KL exceeds this (0: never)."""

    def validate(self) -> None:
        super().validate()
        positive(self, "batch_size", "n_epochs", "clip_range")
        non_negative(self, "clip_range_vf", "target_kl")
        rollout = self.n_steps * self.num_envs
        if rollout % self.batch_size:
            raise DrlabError(f"batch_size ({self.batch_size}) must divide the rollout, n_steps * num_envs = "
                             f"{self.n_steps} * {self.num_envs} = {rollout}")


def check_env(cfg: Config, envs) -> None:
    pg.check_env("ppo", cfg, envs)
    on_policy.check_runners(cfg)


def make_agent(cfg: Config, obs_space, action_space, device):
    return pg.make_policy_agent(cfg, obs_space, action_space, device, cfg.shared_body)


def ppo_loss(net, mb: dict, cfg: Config, clip: float):
    """Clipped surrogate + (optionally clipped) value loss - entropy bonus on one minibatch, masked
    to real transitions. Returns (loss, metrics)."""
    policy, values = net(mb["obs"])
    values = values.squeeze(-1)
    log_pi, entropy = pg.policy_terms(net, policy, mb["actions"])
    mask, advantages = mb["valid"], mb["advantages"]
    if cfg.normalize_advantages:
        advantages = pg.masked_normalize(advantages, mask)
    log_ratio = log_pi - mb["log_probs"]
    ratio = log_ratio.exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    policy_loss = -pg.masked_mean(surrogate, mask)
    value_error = (mb["returns"] - values) ** 2
    if cfg.clip_range_vf:
        clipped = mb["values"] + (values - mb["values"]).clamp(-cfg.clip_range_vf, cfg.clip_range_vf)
        value_error = torch.max(value_error, (mb["returns"] - clipped) ** 2)
    value_loss = pg.masked_mean(value_error, mask)
    entropy = pg.masked_mean(entropy, mask)
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    with torch.no_grad():
        approx_kl = pg.masked_mean((ratio - 1) - log_ratio, mask)  # the low-variance k3 estimator
        clip_fraction = pg.masked_mean(((ratio - 1).abs() > clip).float(), mask)
    return loss, pg.detached(loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
                             approx_kl=approx_kl, clip_fraction=clip_fraction)


class Learner(on_policy.OnPolicyLearner):
    @torch.no_grad()
    def rollout_outputs(self, rollout: Rollout):
        """Log-probabilities of the taken actions (T, N) and V of all T + 1 rows (T + 1, N), under
        the network that collected the rollout, in one batched pass (before any update on it)."""
        net = self.agent.net
        policy, values = net(rollout.all_obs(self.agent.device))
        taken = torch.from_numpy(rollout.actions.reshape(rollout.env_steps, *rollout.actions.shape[2:]))
        log_probs, _ = pg.policy_terms(net, policy[: rollout.env_steps], taken.to(self.agent.device))
        return log_probs.view(rollout.length, rollout.num_envs).cpu().numpy(), on_policy.values_of(values, rollout)

    def update(self, rollout: Rollout, step: int) -> dict:
        cfg, device = self.cfg, self.agent.device
        log_probs, values = self.rollout_outputs(rollout)
        advantages, returns = self.advantages_and_returns(rollout, values)
        data = rollout.tensors(device, log_probs=log_probs, advantages=advantages, returns=returns, values=values[:-1])
        lr = self.optimizer.set_progress(step)
        clip = cfg.clip_range * (remaining(step, cfg.total_steps) if cfg.clip_schedule == "linear" else 1.0)
        size = rollout.env_steps
        for _ in range(cfg.n_epochs):
            order = torch.from_numpy(self.rng.permutation(size)).to(device)
            for start in range(0, size, cfg.batch_size):
                index = order[start:start + cfg.batch_size]
                loss, metrics = ppo_loss(self.agent.net, {k: v[index] for k, v in data.items()}, cfg, clip)
                metrics["grad_norm"] = self.optimizer.step(loss)
            if cfg.target_kl and metrics["approx_kl"] > cfg.target_kl:
                break
        return {**metrics, **self.diagnostics(rollout, values, advantages, returns), "lr": lr,
                "clip_range": clip}


train_loop = on_policy.train_loop
