"""TD3, Twin Delayed DDPG (Fujimoto, van Hoof and Meger 2018): a deterministic actor explored with
Gaussian noise, twin Q critics whose smaller value is the target, target policy smoothing (clipped
noise on the target action), and the actor and the targets updated every ``policy_delay`` critic steps.

Trained on the shared off-policy loop (drlab.algos.off_policy); the critics, the action rescaling and
the checkpoints are shared with SAC (drlab.algos.twin_critics). Actions live in [-1, 1] (rescaled to the
env's bounds when sent), so the noise scales below are fractions of half the bounds' range.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from drlab.algos import off_policy, twin_critics
from drlab.algos.twin_critics import ACTION_SPACES, OBSERVATIONS, VARIANTS, BoxActions, TwinQ, features  # noqa: F401
from drlab.buffers.replay import Batch
from drlab.config import non_negative, positive
from drlab.nets import bf16_autocast, mlp, obs_tensor
from drlab.optim import adam, gradient_step, polyak_update


@dataclass
class Config(twin_critics.Config):
    action_noise: float = 0.1
    """Std of the Gaussian exploration noise added to the actor's action (in [-1, 1] units: a fraction
    of half the bounds' range)."""
    policy_delay: int = 2
    """Critic updates per actor and target update."""
    target_policy_noise: float = 0.2
    """Std of the noise on the target action (target policy smoothing)."""
    target_noise_clip: float = 0.5
    """The target action's noise is clipped to +-this."""

    def validate(self) -> None:
        super().validate()
        positive(self, "policy_delay")
        non_negative(self, "action_noise", "target_policy_noise", "target_noise_clip")


def check_env(cfg: Config, envs) -> None:
    twin_critics.check_env("td3", cfg, envs)


class DeterministicActor(nn.Module):
    """mu(s) = tanh(MLP(s)), in [-1, 1]."""

    def __init__(self, obs_space, action_dim: int, hidden: tuple[int, ...], bf16: bool = False):
        super().__init__()
        self.encode, obs_dim = features(obs_space)
        self.net = mlp(obs_dim, hidden, action_dim)
        self.bf16 = bf16

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.encode(obs.float())
        with bf16_autocast(x.device, self.bf16):
            h = self.net[:-1](x)
        return torch.tanh(self.net[-1](h.float()))


class TD3Agent(twin_critics.ActorAgent):
    """Acts with the actor: greedy is mu(s); exploring adds N(0, action_noise^2) and clips to [-1, 1]."""

    def __init__(self, actor: DeterministicActor, obs_space, actions: BoxActions, device, noise: float, seed: int):
        super().__init__(actor, obs_space, actions, device, seed)
        self.noise = noise

    @torch.inference_mode()
    def unit_actions(self, obs: np.ndarray, greedy: bool, rng: np.random.Generator) -> np.ndarray:
        actions = self.actor(obs_tensor(obs, self.device)).cpu().numpy()
        if greedy:
            return actions
        return np.clip(actions + self.noise * rng.standard_normal(actions.shape), -1.0, 1.0).astype(np.float32)


def make_agent(cfg: Config, obs_space, action_space, device) -> TD3Agent:
    actions = BoxActions(action_space)
    actor = DeterministicActor(obs_space, actions.dim, tuple(cfg.hidden), cfg.bf16).to(device)
    return TD3Agent(actor, obs_space, actions, device, cfg.action_noise, cfg.seed)


# ---- the losses --------------------------------------------------------------------------------

def critic_loss(critic: TwinQ, critic_target: TwinQ, actor_target: DeterministicActor, batch: Batch,
                noise_std: float, noise_clip: float) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """TD loss of both critics against y = r + discount (1 - terminated) min_i Q'_i(s', a'), with the
    smoothed target action a' = clip(mu'(s') + clip(N(0, noise_std^2), -noise_clip, noise_clip), -1, 1).
    Returns (loss, |TD error| averaged over the critics for the priorities, metrics)."""
    with torch.no_grad():
        next_mu = actor_target(batch.next_obs)
        noise = (torch.randn_like(next_mu) * noise_std).clamp(-noise_clip, noise_clip)
        next_v = critic_target(batch.next_obs, (next_mu + noise).clamp(-1.0, 1.0)).min(0).values
        target = batch.rewards + batch.discounts * (1.0 - batch.terminated) * next_v
    q = critic(batch.obs, batch.actions)  # (2, batch)
    td = target - q
    loss = (batch.weights * td.pow(2)).mean(1).sum()
    metrics = {"critic_loss": loss.detach(), "q1_mean": q[0].detach().mean(), "q2_mean": q[1].detach().mean()}
    return loss, td.detach().abs().mean(0), metrics


def actor_loss(actor: DeterministicActor, critic: TwinQ, obs: torch.Tensor) -> torch.Tensor:
    """-Q_1(s, mu(s)), the first critic only (as in the paper; the second is not computed), the critics frozen."""
    return -critic(obs, actor(obs), frozen=True, critics=1)[0].mean()


# ---- the learner -------------------------------------------------------------------------------

class Learner(twin_critics.Learner):
    def __init__(self, cfg: Config, agent: TD3Agent, rng: np.random.Generator):
        super().__init__(cfg, agent, rng)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.actor_params, self.critic_params = list(self.actor.parameters()), list(self.critic.parameters())
        self.actor_optimizer = adam(self.actor_params, cfg.lr)
        self.critic_optimizer = adam(self.critic_params, cfg.lr)
        self.last_actor_metrics: dict = {}

    def explore(self, obs: np.ndarray) -> np.ndarray:
        return self.agent.unit_actions(obs, greedy=False, rng=self.rng)

    def update(self, batch: Batch, step: int) -> dict:
        """A critic step; every ``policy_delay``-th, an actor step and the targets of both."""
        cfg = self.cfg
        loss, td_abs, metrics = critic_loss(self.critic, self.critic_target, self.actor_target, batch,
                                            cfg.target_policy_noise, cfg.target_noise_clip)
        metrics["critic_grad_norm"] = gradient_step(self.critic_optimizer, self.critic_params, loss, cfg.max_grad_norm)
        self.updates += 1
        if self.updates % cfg.policy_delay == 0:
            policy_loss = actor_loss(self.actor, self.critic, batch.obs)
            grad_norm = gradient_step(self.actor_optimizer, self.actor_params, policy_loss, cfg.max_grad_norm)
            self.last_actor_metrics = {"actor_loss": policy_loss.detach(), "actor_grad_norm": grad_norm}
            polyak_update(self.critic_target, self.critic, cfg.tau)
            polyak_update(self.actor_target, self.actor, cfg.tau)
        if self.buffer.keeps_priorities:
            self.buffer.update_priorities(batch.indices, td_abs.cpu().numpy())
        return {**metrics, **self.last_actor_metrics}

    def networks(self) -> dict:
        return {"critic": self.critic, "actor_target": self.actor_target}

    def state_dict(self) -> dict:
        # The actor's last metrics are logged until its next step: a resumed run logs them as well.
        return {**super().state_dict(), "last_actor_metrics": {k: float(v) for k, v in self.last_actor_metrics.items()}}

    def load_state_dict(self, state: dict) -> str:
        self.last_actor_metrics = {k: torch.tensor(v) for k, v in state.get("last_actor_metrics", {}).items()}
        return super().load_state_dict(state)

    def optimizers(self) -> dict:
        return {"actor": self.actor_optimizer, "critic": self.critic_optimizer}


train_loop = off_policy.train_loop
