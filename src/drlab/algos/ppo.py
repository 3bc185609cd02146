"""PPO (Schulman et al. 2017): clipped surrogate objective on GAE advantages, several epochs of
minibatches per rollout, optional value clipping, learning-rate and clip-range annealing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from drlab.algos import policy_gradient as pg
from drlab.buffers.rollout import Rollout
from drlab.returns import RewardScaler
from drlab.config import non_negative, positive
from drlab.errors import DrlabError

VARIANTS = {
    "default": "clipped objective, GAE, minibatch epochs, optional value clipping and annealing",
}


@dataclass
class Config(pg.RolloutConfig):
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
    pg.check_env("ppo", cfg, envs, images=True)


def make_agent(cfg: Config, obs_space, action_space, device):
    return pg.make_policy_agent(cfg, obs_space, action_space, device)


def ppo_loss(net, mb: dict, cfg: Config, clip: float):
    """Clipped surrogate + (optionally clipped) value loss - entropy bonus on one minibatch, masked
    to real transitions. Returns (loss, metrics)."""
    logits, values = net(mb["obs"])
    values = values.squeeze(-1)
    log_pi, entropy = pg.policy_terms(logits, mb["actions"])
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


class Learner(pg.PolicyLearner):
    def __init__(self, cfg: Config, agent, obs_space, rng):
        self.cfg, self.agent, self.rng = cfg, agent, rng
        self.optimizer = pg.Optimizer(cfg, agent.net.parameters())
        self.rollout = Rollout(cfg.n_steps, cfg.num_envs, obs_space.shape, obs_space.dtype)
        self.reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma) if cfg.normalize_rewards else None

    def update(self, step: int) -> dict:
        cfg, r = self.cfg, self.rollout
        r.evaluate(self.agent.net, self.agent.device)
        advantages, returns = r.advantages_and_returns(cfg.gamma, cfg.gae_lambda, self.reward_scaler)
        data = r.tensors(self.agent.device, advantages=advantages, returns=returns, values=r.values[:-1, :, 0])
        lr = self.optimizer.set_progress(step)
        clip = cfg.clip_range * (pg.remaining(step, cfg.total_steps) if cfg.clip_schedule == "linear" else 1.0)
        size = r.steps
        for _ in range(cfg.n_epochs):
            order = torch.from_numpy(self.rng.permutation(size)).to(self.agent.device)
            for start in range(0, size, cfg.batch_size):
                index = order[start:start + cfg.batch_size]
                loss, metrics = ppo_loss(self.agent.net, {k: v[index] for k, v in data.items()}, cfg, clip)
                metrics["grad_norm"] = self.optimizer.step(loss)
            if cfg.target_kl and metrics["approx_kl"] > cfg.target_kl:
                break
        return {**metrics, **pg.rollout_diagnostics(r, advantages, returns), "lr": lr, "clip_range": clip}


def make_learner(cfg: Config, agent, obs_space, action_space, rng) -> Learner:
    return Learner(cfg, agent, obs_space, rng)


train_loop = pg.rollout_train_loop
