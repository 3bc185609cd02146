"""The rollout loop of A2C, PPO and Actor-Critic, and what A2C and PPO share on top of it.

The loop reads in pipeline order: act -> env step -> episode bookkeeping -> rollout storage, T
times; then update -> observation statistics -> log. Only the policy runs while collecting:
log-probabilities and values come from one batched pass over the whole rollout in the update,
the same numbers at a fraction of the cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from drlab.algos.collect import LocalCollection, rollout_for
from drlab.algos.policy_gradient import PolicyLearner, RolloutConfig
from drlab.algos.runners import RunnerGroup
from drlab.buffers.rollout import Rollout
from drlab.errors import DrlabError
from drlab.returns import RewardScaler, explained_variance, gae


def train_loop(run, learner) -> None:
    """Collect a rollout of ``n_steps`` from every env (here, or on Ray actors with ``--runners``),
    update on it, log; until the run is over."""
    cfg, agent = run.cfg, learner.agent
    rollout = rollout_for(agent, cfg.n_steps, cfg.num_envs)
    source = RunnerGroup(run, agent) if getattr(cfg, "runners", 0) else LocalCollection(run, agent)
    try:
        while run.running():
            source.collect(rollout)

            run.clock.lap()
            metrics = learner.update(rollout, run.step)
            run.clock.lap("learn")
            # After the update: collection, log-probabilities and the update all saw the same statistics.
            agent.net.observe(rollout.obs[:-1][rollout.valid])
            run.end_step(rollout.env_steps, metrics)
    finally:
        source.close()


def check_runners(cfg) -> None:
    """With --runners: Ray installed and the cluster's address reachable, checked before the run
    directory gets anything."""
    if cfg.runners:
        from drlab.ray_cluster import check_reachable, import_ray

        import_ray()
        check_reachable(cfg.address)


@dataclass
class OnPolicyConfig(RolloutConfig):
    """A2C and PPO: actor and state-value critic both learn from the rollout just collected."""

    shared_body: bool = False
    """One body with policy and value heads (True) or separate actor and critic networks."""
    critic_lr: float | None = None
    """Learning rate of the critic, with its own optimizer (separate networks only; None: lr for both)."""

    normalize_rewards: bool = False
    """Divide training rewards by the running std of the discounted return (reported returns stay raw)."""
    runners: int = 0
    """Step the envs on this many Ray actors, num_envs / runners each (0: in this process). Needs drlab[ray]."""
    address: str | None = None
    """The Ray cluster the runners join (e.g. 10.0.0.1:6379, or local: a Ray of the run's own); default: one started on this machine with `ray start --head`, else a Ray of the run's own."""

    def validate(self) -> None:
        super().validate()
        if self.critic_lr is not None and self.critic_lr <= 0:
            raise DrlabError(f"critic_lr must be > 0 (got {self.critic_lr})")
        if self.runners < 0 or (self.runners and self.num_envs % self.runners):
            raise DrlabError(f"runners must be 0 or divide num_envs ({self.num_envs}; got {self.runners})")
        if self.address is not None and not self.runners:
            raise DrlabError("address is where the runners run: give --runners K with it")


class OnPolicyLearner(PolicyLearner):
    """A2C's and PPO's learner: the optimizer (from PolicyLearner) and the optional reward scale."""

    def __init__(self, cfg: OnPolicyConfig, agent, rng):
        super().__init__(cfg, agent, rng)
        self.reward_scaler = RewardScaler(cfg.num_envs, cfg.gamma) if cfg.normalize_rewards else None

    def advantages_and_returns(self, rollout: Rollout, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GAE advantages and value targets (lambda = 1: n-step returns) from V of the rollout's
        T + 1 rows of observations, (T + 1, N); rewards rescaled first when they are normalised."""
        r = rollout
        rewards = r.rewards if self.reward_scaler is None else self.reward_scaler(r.rewards, r.terminated, r.truncated,
                                                                                  r.valid)
        return gae(rewards, values[:-1], values[-1], r.terminated, r.truncated, r.valid, self.cfg.gamma,
                   self.cfg.gae_lambda)

    def diagnostics(self, rollout: Rollout, values: np.ndarray, advantages: np.ndarray, returns: np.ndarray) -> dict:
        """The rollout's value and advantage statistics and what the action head reports."""
        return {**rollout_diagnostics(rollout, values, advantages, returns),
                **self.agent.net.head.diagnostics(rollout.actions, rollout.valid)}


def rollout_diagnostics(rollout: Rollout, values: np.ndarray, advantages: np.ndarray, returns: np.ndarray) -> dict:
    """Value predictions vs targets and advantage statistics over the rollout's real transitions
    (``values``: V of the T + 1 rows)."""
    valid = rollout.valid
    if not valid.any():
        return {}
    predictions, targets, adv = values[:-1][valid], returns[valid], advantages[valid]
    with np.errstate(all="ignore"):  # inf/NaN from a diverging run are reported (and stop it), not warned about
        return {"explained_variance": explained_variance(predictions, targets), "value_mean": predictions.mean(),
                "target_mean": targets.mean(), "advantage_mean": adv.mean(), "advantage_std": adv.std()}


def values_of(net_values: torch.Tensor, rollout: Rollout) -> np.ndarray:
    """A V critic's outputs for the rollout's T + 1 rows, as a (T + 1, N) array."""
    return net_values.detach().view(rollout.length + 1, rollout.num_envs).cpu().numpy()
