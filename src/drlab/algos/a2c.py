"""A2C (Mnih et al. 2016, synchronous): N envs, n-step rollouts, one gradient step per rollout.

Value targets are n-step returns that stop at episode ends and bootstrap on truncation and at the
end of the rollout; gae_lambda < 1 uses GAE advantages instead (lambda = 1 is the n-step case).
"""

from __future__ import annotations

from dataclasses import dataclass

from drlab.algos import on_policy
from drlab.algos import policy_gradient as pg
from drlab.buffers.rollout import Rollout
from drlab.spaces.heads import HEAD_SPACES
from drlab.spaces.encoders import OBSERVATION_SPACES

ACTION_SPACES = HEAD_SPACES
OBSERVATIONS = OBSERVATION_SPACES  # what drlab list says the algorithm observes
VARIANTS = {
    "default": "separate or shared actor/critic, n-step targets or GAE, Adam or RMSProp",
}


@dataclass
class Config(on_policy.OnPolicyConfig):
    n_steps: int = 5
    """Steps per env in each rollout (the n of the n-step targets)."""
    gae_lambda: float = 1.0
    """GAE lambda; 1 gives plain n-step advantages."""


def check_env(cfg: Config, envs) -> None:
    pg.check_env("a2c", cfg, envs)
    on_policy.check_runners(cfg)


def make_agent(cfg: Config, obs_space, action_space, device):
    return pg.make_policy_agent(cfg, obs_space, action_space, device, cfg.shared_body)


def a2c_loss(net, batch: dict, cfg: Config, outputs=None):
    """Policy gradient with advantages, value regression to the targets, entropy bonus; masked to
    real transitions. ``outputs``: the network's (policy outputs, values) of the batch if already
    computed. Returns (loss, metrics)."""
    policy, values = net(batch["obs"]) if outputs is None else outputs
    values = values.squeeze(-1)
    log_pi, entropy = pg.policy_terms(net, policy, batch["actions"])
    mask, advantages = batch["valid"], batch["advantages"]
    if cfg.normalize_advantages:
        advantages = pg.masked_normalize(advantages, mask)
    policy_loss = -pg.masked_mean(advantages * log_pi, mask)
    value_loss = pg.masked_mean((batch["returns"] - values) ** 2, mask)
    entropy = pg.masked_mean(entropy, mask)
    loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    return loss, pg.detached(loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy)


class Learner(on_policy.OnPolicyLearner):
    def update(self, rollout: Rollout, step: int) -> dict:
        cfg, net, device = self.cfg, self.agent.net, self.agent.device
        # One forward pass with gradients over all T + 1 observations serves the advantages (its
        # values, detached; the last row is the bootstrap) and the loss: A2C takes a single step per
        # rollout, so the network is still the one that collected. One batch of (T + 1) * N is
        # cheaper than a batch of T * N plus a separate pass over the last N.
        policy, values = net(rollout.all_obs(device))
        v = on_policy.values_of(values, rollout)
        advantages, returns = self.advantages_and_returns(rollout, v)
        batch = rollout.tensors(device, obs=False, advantages=advantages, returns=returns)
        lr = self.optimizer.set_progress(step)
        rows = rollout.env_steps  # the loss is over the first T rows
        loss, metrics = a2c_loss(net, batch, cfg, (policy[:rows], values[:rows]))
        metrics["grad_norm"] = self.optimizer.step(loss)
        return {**metrics, **self.diagnostics(rollout, v, advantages, returns), "lr": lr}


train_loop = on_policy.train_loop
