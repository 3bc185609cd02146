"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"): a
squashed Gaussian actor, twin Q critics with Polyak-averaged targets, and the entropy temperature
alpha tuned automatically towards a target entropy (-|A| by default).

Trained on the shared off-policy loop (drlab.algos.off_policy); the critics, the action rescaling and
the checkpoints are shared with TD3 (drlab.algos.twin_critics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from drlab.algos import off_policy, twin_critics
from drlab.algos.twin_critics import ACTION_SPACES, OBSERVATIONS, VARIANTS, BoxActions, TwinQ, features  # noqa: F401
from drlab.buffers.replay import Batch
from drlab.config import positive
from drlab.nets import bf16_autocast, mlp_body, obs_tensor
from drlab.optim import adam, gradient_step, polyak_update
from drlab.spaces.heads import tanh_log_det

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # the actor's log-std is clamped to this range (as in the paper's code)


@dataclass
class Config(twin_critics.Config):
    alpha_init: float = 1.0
    """Initial entropy temperature alpha."""
    autotune_alpha: bool = True
    """Tune alpha towards the target entropy (false: alpha stays at alpha_init)."""
    target_entropy: float | None = None
    """The entropy alpha's tuning aims at; None: -(number of action dimensions)."""

    def validate(self) -> None:
        super().validate()
        positive(self, "alpha_init")


def check_env(cfg: Config, envs) -> None:
    twin_critics.check_env("sac", cfg, envs)


class SquashedGaussianActor(nn.Module):
    """pi(a|s) = tanh(u), u ~ N(mean(s), std(s)^2): the mean and log-std from one MLP."""

    def __init__(self, obs_space, action_dim: int, hidden: tuple[int, ...], bf16: bool = False):
        super().__init__()
        self.encode, obs_dim = features(obs_space)
        self.body = mlp_body(obs_dim, hidden, nn.ReLU)
        self.out = nn.Linear(hidden[-1], 2 * action_dim)
        self.bf16 = bf16

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.encode(obs.float())
        with bf16_autocast(x.device, self.bf16):
            h = self.body(x)
        mean, log_std = self.out(h.float()).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a in (-1, 1), log pi(a|s)) with the reparameterisation trick: log N(u) - log |det da/du|."""
        mean, log_std = self(obs)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1) - tanh_log_det(u)
        return torch.tanh(u), log_prob


class SACAgent(twin_critics.ActorAgent):
    """Acts with the actor: greedy is tanh of the mean; exploring samples (noise from ``rng``)."""

    @torch.inference_mode()
    def unit_actions(self, obs: np.ndarray, greedy: bool, rng: np.random.Generator) -> np.ndarray:
        mean, log_std = self.actor(obs_tensor(obs, self.device))
        if greedy:
            return torch.tanh(mean).cpu().numpy()
        noise = torch.from_numpy(rng.standard_normal(mean.shape).astype(np.float32)).to(self.device)
        return torch.tanh(mean + log_std.exp() * noise).cpu().numpy()


def make_agent(cfg: Config, obs_space, action_space, device) -> SACAgent:
    actions = BoxActions(action_space)
    actor = SquashedGaussianActor(obs_space, actions.dim, tuple(cfg.hidden), cfg.bf16).to(device)
    return SACAgent(actor, obs_space, actions, device, cfg.seed)


# ---- the losses --------------------------------------------------------------------------------

def critic_loss(critic: TwinQ, critic_target: TwinQ, actor: SquashedGaussianActor, alpha: torch.Tensor,
                batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Soft TD loss of both critics: y = r + discount (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s')),
    a' ~ pi(s'). Returns (loss, |TD error| averaged over the critics for the priorities, metrics)."""
    with torch.no_grad():
        next_actions, next_log_prob = actor.sample(batch.next_obs)
        next_v = critic_target(batch.next_obs, next_actions).min(0).values - alpha * next_log_prob
        target = batch.rewards + batch.discounts * (1.0 - batch.terminated) * next_v
    q = critic(batch.obs, batch.actions)  # (2, batch)
    td = target - q
    loss = 0.5 * (batch.weights * td.pow(2)).mean(1).sum()
    metrics = {"critic_loss": loss.detach(), "q1_mean": q[0].detach().mean(), "q2_mean": q[1].detach().mean()}
    return loss, td.detach().abs().mean(0), metrics


def actor_loss(critic: TwinQ, alpha: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor,
               log_prob: torch.Tensor) -> torch.Tensor:
    """E[alpha log pi(a|s) - min_i Q_i(s, a)] over a ~ pi(s) (reparameterised), the critics frozen."""
    return (alpha * log_prob - critic(obs, actions, frozen=True).min(0).values).mean()


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-log alpha (log pi(a|s) + target entropy): its gradient raises alpha while the policy's entropy
    is below the target and lowers it above."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


# ---- the learner -------------------------------------------------------------------------------

class Learner(twin_critics.Learner):
    def __init__(self, cfg: Config, agent: SACAgent, rng: np.random.Generator):
        super().__init__(cfg, agent, rng)
        self.log_alpha = torch.tensor(math.log(cfg.alpha_init), device=agent.device, requires_grad=cfg.autotune_alpha)
        self.target_entropy = -float(agent.actions.dim) if cfg.target_entropy is None else cfg.target_entropy
        self.actor_params, self.critic_params = list(self.actor.parameters()), list(self.critic.parameters())
        self.actor_optimizer = adam(self.actor_params, cfg.lr)
        self.critic_optimizer = adam(self.critic_params, cfg.lr)
        self.alpha_optimizer = adam([self.log_alpha], cfg.lr)

    def explore(self, obs: np.ndarray) -> np.ndarray:
        return self.agent.unit_actions(obs, greedy=False, rng=self.rng)

    def update(self, batch: Batch, step: int) -> dict:
        """One gradient step of the temperature, the critics and the actor (in that order, all with this
        step's alpha), then the critics' targets."""
        cfg = self.cfg
        actions, log_prob = self.actor.sample(batch.obs)  # the policy's actions at s, reparameterised
        alpha = self.log_alpha.detach().exp()
        metrics = {"alpha": alpha, "entropy": -log_prob.detach().mean()}
        if cfg.autotune_alpha:
            alpha_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy)
            gradient_step(self.alpha_optimizer, [self.log_alpha], alpha_loss, 0.0)
            metrics["alpha_loss"] = alpha_loss.detach()
        loss, td_abs, critic_metrics = critic_loss(self.critic, self.critic_target, self.actor, alpha, batch)
        metrics["critic_grad_norm"] = gradient_step(self.critic_optimizer, self.critic_params, loss, cfg.max_grad_norm)
        policy_loss = actor_loss(self.critic, alpha, batch.obs, actions, log_prob)
        metrics["actor_grad_norm"] = gradient_step(self.actor_optimizer, self.actor_params, policy_loss, cfg.max_grad_norm)
        metrics.update(critic_metrics, actor_loss=policy_loss.detach())
        polyak_update(self.critic_target, self.critic, cfg.tau)
        if self.buffer.keeps_priorities:
            self.buffer.update_priorities(batch.indices, td_abs.cpu().numpy())
        self.updates += 1
        return metrics

    def networks(self) -> dict:
        return {"critic": self.critic, "log_alpha": _Scalar(self.log_alpha)}

    def optimizers(self) -> dict:
        return {"actor": self.actor_optimizer, "critic": self.critic_optimizer, "alpha": self.alpha_optimizer}


class _Scalar:
    """A tensor saved and restored in place, as a module's state would be."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor

    def state_dict(self) -> dict:
        return {"value": self.tensor.detach().clone()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.tensor.copy_(state["value"])


train_loop = off_policy.train_loop
