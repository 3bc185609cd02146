"""REINFORCE (Williams 1992): Monte-Carlo returns of whole episodes weight log pi(a|s).

N envs are stepped as one batch (the policy runs once per vector step). An update happens once
``episodes_per_update`` episodes have ended; it trains on every step whose episode has ended, in
one batched forward pass. Steps of episodes still running stay in storage and are trained in a
later update, once their episode ends (one update after they were collected, at most a few).

Options: an entropy bonus, a baseline (none, the batch's mean return, or a learned state value
trained alongside), and normalised returns/advantages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from drlab.algos import policy_gradient as pg
from drlab.buffers.episodes import EpisodeStorage
from drlab.config import positive
from drlab.nets import obs_tensor
from drlab.returns import complete_mask, discounted_returns, explained_variance
from drlab.spaces.heads import HEAD_SPACES
from drlab.spaces.encoders import OBSERVATION_SPACES

ACTION_SPACES = HEAD_SPACES
OBSERVATIONS = OBSERVATION_SPACES  # what drlab list says the algorithm observes
VARIANTS = {
    "default": "Monte-Carlo policy gradient; baseline none | mean | learned, entropy bonus, normalised returns",
}


@dataclass
class Config(pg.PGConfig):
    num_envs: int = 8
    shared_body: bool = False
    """One body with policy and value heads (True) or separate actor and critic networks."""
    episodes_per_update: int = 8
    """Finished episodes that trigger an update."""
    baseline: Literal["none", "mean", "learned"] = "mean"
    """What is subtracted from the return before it weighs the log-probabilities: nothing, the batch's
    mean return, or a learned V(s). Without a baseline, returns that are all alike (every failed
    Acrobot episode returns -500) carry no signal once scaled (docs/policy-gradient.md)."""
    normalize_returns: bool = True
    """Divide returns (after the baseline) by their standard deviation over the batch."""

    def validate(self) -> None:
        super().validate()
        positive(self, "episodes_per_update")


def check_env(cfg: Config, envs) -> None:
    pg.check_env("reinforce", cfg, envs)


def make_agent(cfg: Config, obs_space, action_space, device):
    return pg.make_policy_agent(cfg, obs_space, action_space, device, cfg.shared_body)


def reinforce_loss(net, batch: dict, cfg: Config):
    """-(G - b) log pi(a|s) - ent_coef * H, over the steps of finished episodes (mask), plus the
    value regression of a learned baseline. Returns (loss, metrics)."""
    policy, values = net(batch["obs"])
    values = values.squeeze(-1)
    log_pi, entropy = pg.policy_terms(net, policy, batch["actions"])
    mask, returns = batch["mask"], batch["returns"]
    if cfg.baseline == "learned":
        advantages = returns - values.detach()
    elif cfg.baseline == "mean":
        advantages = returns - pg.masked_mean(returns, mask)
    else:
        advantages = returns
    if cfg.normalize_returns:
        advantages = advantages / (pg.masked_std(advantages, mask) + 1e-8)
    policy_loss = -pg.masked_mean(advantages * log_pi, mask)
    entropy = pg.masked_mean(entropy, mask)
    loss = policy_loss - cfg.ent_coef * entropy
    value_loss = pg.masked_mean((returns - values) ** 2, mask)
    if cfg.baseline == "learned":
        loss = loss + cfg.vf_coef * value_loss
    return loss, pg.detached(loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
                             advantage_mean=pg.masked_mean(advantages, mask), advantage_std=pg.masked_std(advantages, mask))


class Learner(pg.PolicyLearner):
    def update(self, storage: EpisodeStorage, step: int) -> dict:
        """Train on every stored step whose episode has ended (``storage.next_obs``: the observation
        after the last stored step, whose value completes a truncated episode's return)."""
        cfg, device = self.cfg, self.agent.device
        data = storage.arrays()
        use = complete_mask(data["terminated"], data["truncated"], data["valid"]) & ~data["trained"]
        T, N = use.shape
        obs = obs_tensor(np.concatenate([data["obs"], storage.next_obs[None]]).reshape((T + 1) * N, *data["obs"].shape[2:]),
                         device)  # frames stay uint8 and keep their shape
        values_all = None
        if cfg.baseline == "learned":  # a truncated episode's return is completed by V(last obs)
            with torch.no_grad():
                values_all = self.agent.net(obs)[1].view(T + 1, N).cpu().numpy()
        values, last_value = (None, None) if values_all is None else (values_all[:-1], values_all[-1])
        returns = discounted_returns(data["rewards"], data["terminated"], data["truncated"], data["valid"], cfg.gamma,
                                     values, last_value)
        actions = data["actions"]
        batch = {"obs": obs[: T * N], "actions": torch.from_numpy(actions.reshape(T * N, *actions.shape[2:])).to(device),
                 "returns": torch.from_numpy(returns.reshape(-1)).to(device),
                 "mask": torch.from_numpy(use.reshape(-1).astype(np.float32)).to(device)}
        lr = self.optimizer.set_progress(step)
        loss, metrics = reinforce_loss(self.agent.net, batch, cfg)
        metrics["grad_norm"] = self.optimizer.step(loss)
        storage.drop_trained(data["trained"] | use, data["valid"])
        self.agent.net.observe(data["obs"][use])
        metrics.update(lr=lr, target_mean=returns[use].mean(), **self.agent.net.head.diagnostics(actions, use))
        if values_all is not None:
            metrics.update(value_mean=values_all[:-1][use].mean(),
                           explained_variance=explained_variance(values_all[:-1][use], returns[use]))
        return metrics


def train_loop(run, learner: Learner) -> None:
    cfg, agent = run.cfg, learner.agent
    storage = EpisodeStorage()
    obs = run.reset_envs()
    prev_done = np.zeros(cfg.num_envs, dtype=bool)
    finished = 0  # episodes ended since the last update
    clock = run.clock
    while run.running():
        clock.lap()
        actions, sent = agent.explore(obs)
        clock.lap("inference")
        next_obs, rewards, terminated, truncated, info = run.envs.step(sent)
        clock.lap("env")
        done = terminated | truncated
        valid = ~prev_done  # the autoreset step after an episode end is not a transition
        run.episodes.record(rewards, done, valid, info)
        storage.append(obs=obs, actions=actions, rewards=rewards, terminated=terminated, truncated=truncated,
                       valid=valid, next_obs=next_obs)
        finished += int((done & valid).sum())

        metrics = {}
        if finished >= cfg.episodes_per_update:
            metrics = learner.update(storage, run.step + cfg.num_envs)
            finished = 0
        clock.lap("learn")  # storage and updates
        obs, prev_done = next_obs, done
        run.end_step(cfg.num_envs, metrics)
