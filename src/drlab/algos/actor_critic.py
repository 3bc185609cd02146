"""Shared-body Actor-Critic with a Q critic learned from replay (the course notebooks' algorithm).

One body with two heads: policy logits and Q(s, .). Each iteration collects a short rollout from
N envs with the current policy and stores its transitions in a replay buffer. Then:

* the critic takes ``critic_updates`` gradient steps on random replay batches (off-policy): TD on
  Q(s, a) towards r + gamma * sum_a' pi(a'|s') Q_target(s', a') (expected SARSA under the current
  policy; a terminated transition has no future, a truncated one bootstraps);
* the actor takes one step on the rollout just collected (on-policy), with GAE advantages of the
  rollout's rewards under the critic's V(s) = sum_a pi(a|s) Q(s, a) (or, with advantage = "q", the
  critic's Q(s, a) - V(s) alone), plus an entropy bonus.

The replay keeps ``buffer_size`` transitions and the Q head has one output per action (where the
course notebooks' version differs: docs/policy-gradient.md). ``symlog_values`` makes the Q head
predict symlog(Q) (DreamerV3's squashing): targets are compared in symlog space, Q = symexp(head).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from drlab.algos import on_policy
from drlab.algos import policy_gradient as pg
from drlab.buffers.replay import Batch, ReplayBuffer
from drlab.buffers.rollout import Rollout
from drlab.config import batch_fits_buffer, in_unit_interval, non_negative, positive
from drlab.optim import polyak_update
from drlab.returns import explained_variance, gae, symexp, symlog
from drlab.spaces.encoders import OBSERVATION_SPACES

ACTION_SPACES = (gym.spaces.Discrete,)
OBSERVATIONS = OBSERVATION_SPACES  # what drlab list says the algorithm observes
VARIANTS = {
    "default": "shared body, policy + Q heads; on-policy actor, off-policy critic from replay; symlog option",
}


@dataclass
class Config(pg.RolloutConfig):
    n_steps: int = 16
    """Steps per env in each rollout (the actor's on-policy batch is n_steps * num_envs)."""
    buffer_size: int = 50_000
    """Replay capacity in transitions."""
    batch_size: int = 128
    """Transitions per critic step."""
    critic_updates: int = 4
    """Critic gradient steps per actor step."""
    learning_starts: int = 1_000
    """Environment steps before the first update."""
    tau: float = 0.01
    """Polyak rate of the critic's target network per critic step (1: no target network)."""
    symlog_values: bool = False
    """The Q head predicts symlog(Q); TD errors are taken in symlog space."""
    advantage: Literal["gae", "q"] = "gae"
    """The actor's advantage: GAE over the rollout with the critic's V(s) = sum_a pi(a|s) Q(s, a), or
    the critic's Q(s, a) - V(s) alone."""
    normalize_advantages: bool = True
    """Normalise the actor's advantages over the rollout."""

    def validate(self) -> None:
        super().validate()
        positive(self, "buffer_size", "batch_size", "critic_updates", "tau")
        non_negative(self, "learning_starts")
        in_unit_interval(self, "tau")
        batch_fits_buffer(self)



def check_env(cfg: Config, envs) -> None:
    pg.check_env("actor-critic", cfg, envs)


def make_agent(cfg: Config, obs_space, action_space, device):
    return pg.make_policy_agent(cfg, obs_space, action_space, device, shared_body=True,
                                value_outputs=int(action_space.n))


def q_values(head: torch.Tensor, cfg: Config) -> torch.Tensor:
    return symexp(head) if cfg.symlog_values else head


def critic_loss(net, target_net, batch: Batch, cfg: Config):
    """Expected-SARSA TD loss of the Q head on a replay batch. Returns (loss, metrics)."""
    head = net(batch.obs)[1].gather(1, batch.actions[:, None]).squeeze(1)
    with torch.no_grad():
        next_logits, next_head = target_net(batch.next_obs)
        next_v = (F.softmax(next_logits, dim=1) * q_values(next_head, cfg)).sum(1)
        target = batch.rewards + batch.discounts * (1.0 - batch.terminated) * next_v
    squashed_target = symlog(target) if cfg.symlog_values else target
    loss = F.mse_loss(head, squashed_target)
    q_sa = q_values(head.detach(), cfg)
    return loss, {"value_loss": loss.detach(), "value_mean": q_sa.mean(), "target_mean": target.mean(),
                  "explained_variance": explained_variance(q_sa, target)}


def state_values(net, obs: torch.Tensor, cfg: Config):
    """(logits, Q(s, .), V(s) = sum_a pi(a|s) Q(s, a)) for a batch of observations."""
    logits, head = net(obs)
    q = q_values(head, cfg)
    return logits, q, (F.softmax(logits, dim=-1) * q).sum(-1)


def actor_loss(net, batch: dict, cfg: Config):
    """On-policy policy gradient on the rollout, with batch["advantages"] from the rollout's returns
    (advantage = "gae") or the critic's Q(s, a) - V(s) (advantage = "q"). Returns (loss, metrics)."""
    logits, q, v = state_values(net, batch["obs"], cfg)
    log_pi, entropy = pg.policy_terms(net, logits, batch["actions"])
    mask = batch["valid"]
    with torch.no_grad():  # the critic is a fixed judge here
        if cfg.advantage == "q":
            advantages = q.gather(1, batch["actions"][:, None]).squeeze(1) - v
        else:
            advantages = batch["advantages"]
        if cfg.normalize_advantages:
            advantages = pg.masked_normalize(advantages, mask)
    policy_loss = -pg.masked_mean(advantages * log_pi, mask)
    entropy = pg.masked_mean(entropy, mask)
    loss = policy_loss - cfg.ent_coef * entropy
    return loss, pg.detached(policy_loss=policy_loss, entropy=entropy, advantage_mean=pg.masked_mean(advantages, mask),
                             advantage_std=pg.masked_mean(advantages ** 2, mask).sqrt())


class Learner(pg.PolicyLearner):
    def __init__(self, cfg: Config, agent, rng):
        super().__init__(cfg, agent, rng)
        self.target_net = copy.deepcopy(agent.net).requires_grad_(False) if cfg.tau < 1 else agent.net
        self.buffer = ReplayBuffer(cfg.buffer_size, agent.obs_space.shape, agent.obs_space.dtype, agent.device)

    def store(self, rollout: Rollout) -> None:
        """The rollout's real transitions into the replay buffer (obs[t + 1] is each one's next obs)."""
        r, valid = rollout, rollout.valid
        self.buffer.add(r.obs[:-1][valid], r.actions[valid], r.rewards[valid], r.obs[1:][valid],
                        r.terminated[valid], np.full(int(valid.sum()), self.cfg.gamma, dtype=np.float32))

    def update(self, rollout: Rollout, step: int) -> dict:
        cfg = self.cfg
        self.store(rollout)
        if step < cfg.learning_starts or len(self.buffer) < cfg.batch_size:
            return {}
        lr = self.optimizer.set_progress(step)
        for _ in range(cfg.critic_updates):
            loss, metrics = critic_loss(self.agent.net, self.target_net, self.buffer.sample(cfg.batch_size, self.rng), cfg)
            metrics["critic_grad_norm"] = self.optimizer.step(cfg.vf_coef * loss)
            if self.target_net is not self.agent.net:
                polyak_update(self.target_net, self.agent.net, cfg.tau)
        loss, actor_metrics = actor_loss(self.agent.net, self.actor_batch(rollout), cfg)
        actor_metrics["grad_norm"] = self.optimizer.step(loss)
        return {**metrics, **actor_metrics, "loss": actor_metrics["policy_loss"] + cfg.vf_coef * metrics["value_loss"],
                "lr": lr}

    @torch.no_grad()
    def actor_batch(self, rollout: Rollout) -> dict:
        """The rollout as tensors, with GAE advantages from the critic's V(s) = sum_a pi(a|s) Q(s, a)."""
        r, device = rollout, self.agent.device
        v = on_policy.values_of(state_values(self.agent.net, r.all_obs(device), self.cfg)[2], r)
        advantages, _ = gae(r.rewards, v[:-1], v[-1], r.terminated, r.truncated, r.valid, self.cfg.gamma,
                            self.cfg.gae_lambda)
        return r.tensors(device, advantages=advantages)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "target": self.target_net.state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.target_net.load_state_dict(state["target"])
        self.buffer.load_state_dict(state["buffer"])


train_loop = on_policy.train_loop
