"""What the policy-gradient algorithms share: config fields, the agent, the optimizer and its
learning-rate schedule, masked means and the policy terms of the loss.

REINFORCE, Actor-Critic, A2C and PPO each add their own fields, loss and loop on top.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from drlab.config import RunConfig, in_unit_interval, non_negative, positive
from drlab.envs import check_discrete_actions, check_vector_observations
from drlab.errors import DrlabError
from drlab.nets import clip_grad_norm
from drlab.policies import ActorCritic, PolicyAgent
from drlab.returns import explained_variance


@dataclass
class PGConfig(RunConfig):
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes (of each network, or of the shared body)."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Hidden-layer activation."""
    shared_body: bool = False
    """One body with policy and value heads (True) or separate actor and critic networks."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt 2; 0.01 on the policy output, 1 on the value output)."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Optimizer."""
    lr: float = 1e-3
    """Learning rate (initial, when lr_schedule is linear)."""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """linear: decay the learning rate to 0 over total_steps."""
    optim_eps: float = 1e-5
    """Epsilon of Adam / RMSProp."""
    rmsprop_alpha: float = 0.99
    """RMSProp smoothing constant."""
    gamma: float = 0.99
    """Discount factor."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip (0 disables clipping; the norm before clipping is logged either way)."""
    normalize_obs: bool = False
    """Normalise observations by running mean and std (kept with the weights; updated after each update)."""
    bf16: bool = False
    """Run the CNN body (frame observations) under bfloat16 autocast: ~1.7x faster on CPUs with AMX."""

    def validate(self) -> None:
        super().validate()
        positive(self, "lr", "optim_eps")
        non_negative(self, "ent_coef", "vf_coef", "max_grad_norm")
        in_unit_interval(self, "gamma", "rmsprop_alpha")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise DrlabError(f"hidden sizes must be >= 1 (got {self.hidden})")


@dataclass
class RolloutConfig(PGConfig):
    """Settings of the algorithms that learn from fixed-length rollouts (Actor-Critic, A2C, PPO)."""

    num_envs: int = 8
    n_steps: int = 5
    """Steps per env in each rollout."""
    gae_lambda: float = 0.95
    """GAE lambda (1: n-step advantages, bootstrapped at the end of the rollout)."""
    normalize_advantages: bool = False
    """Normalise advantages (over the rollout; per minibatch in PPO)."""
    normalize_rewards: bool = False
    """Divide training rewards by the running std of the discounted return (reported returns stay raw)."""

    def validate(self) -> None:
        super().validate()
        positive(self, "n_steps")
        in_unit_interval(self, "gae_lambda")


def check_env(algo: str, cfg: PGConfig, envs, images: bool = False) -> None:
    """Discrete actions; flat observations, or also frames (``images``) for the algorithms with a CNN body."""
    check_discrete_actions(algo, cfg.env_id, envs)
    check_vector_observations(algo, cfg.env_id, envs, images)


def make_policy_agent(cfg: PGConfig, obs_space, action_space, device, value_outputs: int = 1) -> PolicyAgent:
    net = ActorCritic(obs_space.shape, int(action_space.n), tuple(cfg.hidden), cfg.activation,
                      cfg.shared_body, value_outputs, cfg.ortho_init, cfg.normalize_obs, cfg.bf16).to(device)
    return PolicyAgent(net, device, cfg.seed)


def remaining(step: int, total: int) -> float:
    """The fraction of training still to go: the factor of a linear decay to 0."""
    return max(0.0, 1.0 - step / total)


class Optimizer:
    """The optimizer, its learning-rate schedule and the clipped step, written once."""

    def __init__(self, cfg: PGConfig, params):
        self.cfg, self.params = cfg, list(params)
        if cfg.optimizer == "rmsprop":
            self.opt = torch.optim.RMSprop(self.params, lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.optim_eps)
        else:
            self.opt = torch.optim.Adam(self.params, lr=cfg.lr, eps=cfg.optim_eps, fused=True)

    def set_progress(self, step: int) -> float:
        """Set the learning rate for ``step`` of total_steps; returns it."""
        lr = self.cfg.lr * (remaining(step, self.cfg.total_steps) if self.cfg.lr_schedule == "linear" else 1.0)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def step(self, loss: torch.Tensor) -> torch.Tensor:
        """One gradient step on ``loss``; returns the gradient norm before clipping."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = clip_grad_norm(self.params, self.cfg.max_grad_norm)
        self.opt.step()
        return grad_norm

    def state_dict(self) -> dict:
        return self.opt.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state)


class PolicyLearner:
    """Checkpointing of what every policy-gradient learner has: the agent's network and the optimizer."""

    agent: PolicyAgent
    optimizer: Optimizer

    reward_scaler = None

    def state_dict(self) -> dict:
        state = {"agent": self.agent.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.reward_scaler is not None:
            state["reward_scaler"] = self.reward_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.reward_scaler is not None:
            self.reward_scaler.load_state_dict(state["reward_scaler"])


def rollout_train_loop(run, learner) -> None:
    """A2C and PPO: collect a rollout from the envs, update on it, log; until the run is over."""
    obs = run.reset_envs()
    while run.running():
        rollout = learner.rollout
        obs = rollout.collect(run, learner.agent, obs)
        start = time.perf_counter()
        metrics = learner.update(run.step)
        run.seconds["learn"] += time.perf_counter() - start
        # After the update: collection, log-probabilities and the update all saw the same statistics.
        learner.agent.net.observe(rollout.obs[:-1][rollout.valid])
        run.end_step(rollout.steps, metrics)


def rollout_diagnostics(r, advantages: np.ndarray, returns: np.ndarray) -> dict:
    """Value predictions vs targets and advantage statistics over the rollout's real transitions."""
    valid = r.valid
    if not valid.any():
        return {}
    predictions, targets, adv = r.values[:-1, :, 0][valid], returns[valid], advantages[valid]
    return {"explained_variance": explained_variance(predictions, targets), "value_mean": predictions.mean(),
            "target_mean": targets.mean(), "advantage_mean": adv.mean(), "advantage_std": adv.std()}


def detached(**metrics: torch.Tensor) -> dict[str, torch.Tensor]:
    """Loss terms as metrics: cut from the graph, converted to floats only when logged."""
    return {name: value.detach() for name, value in metrics.items()}


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def policy_terms(logits: torch.Tensor, actions: torch.Tensor):
    """(log pi(a|s) of the taken actions, entropy of pi(.|s)) per sample."""
    log_pi = F.log_softmax(logits, dim=-1)
    entropy = -(log_pi.exp() * log_pi).sum(-1)
    return log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1), entropy


def masked_normalize(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std over the entries where ``mask`` is 1."""
    return (x - masked_mean(x, mask)) / (masked_std(x, mask) + 1e-8)


def masked_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return masked_mean((x - masked_mean(x, mask)) ** 2, mask).sqrt()
