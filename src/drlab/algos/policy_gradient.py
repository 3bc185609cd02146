"""What the policy-gradient family (REINFORCE, Actor-Critic, A2C, PPO) shares: config fields, the
agent, the learner's optimizer and checkpointing, masked means and the policy terms of the losses.

Each algorithm adds its own fields, loss and update; A2C, PPO and Actor-Critic share the rollout
loop of :mod:`drlab.algos.on_policy`, REINFORCE has its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from drlab.algos import check_action_space
from drlab.config import RunConfig, hidden_sizes, in_unit_interval, non_negative, positive
from drlab.errors import DrlabError
from drlab.optim import Optimizer
from drlab.policies import ActorCritic, PolicyAgent
from drlab.spaces.encoders import check_normalizable
from drlab.spaces.heads import make_head


@dataclass
class PGConfig(RunConfig):
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes (of each network, or of the shared body)."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Hidden-layer activation."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt 2 inside; the output layers as head_init says)."""
    head_init: Literal["small", "sqrt2"] = "small"
    """Gains of the output layers under ortho_init: small (0.01 on the policy, 1 on the value, as
    SB3 and Andrychowicz et al. 2021) or sqrt2 (both, as the course notebooks' Atari A2C)."""
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
    """Run the CNN body (frame observations) under bfloat16 autocast, weights and loss in float32:
    faster on CPUs with bfloat16 matrix units (AMX, AVX512-BF16; docs/pixels.md)."""
    log_std_init: float = 0.0
    """Box actions: initial log standard deviation of the Gaussian policy (state-independent, learned)."""
    squash_actions: bool = False
    """Box actions: send tanh of the Gaussian sample, rescaled to the bounds, instead of the sample
    clipped to them (the log-prob gets the tanh log-det correction); needs finite bounds."""

    def validate(self) -> None:
        super().validate()
        positive(self, "lr", "optim_eps")
        non_negative(self, "ent_coef", "vf_coef", "max_grad_norm")
        in_unit_interval(self, "gamma", "rmsprop_alpha")
        hidden_sizes(self, linear_ok=True)

    def noise_interval(self) -> int | None:
        """Steps between gSDE's noise draws, or None without gSDE (only rollout algorithms have it)."""
        return None


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
    sde: bool = False
    """Box actions: generalized state-dependent exploration (gSDE, Raffin et al. 2022). The noise is
    the policy's last hidden features times a random matrix held for sde_sample_freq steps, so it
    is smooth in time and depends on the state; log_std_init is then the log-std of that matrix's
    entries. As rl-baselines3-zoo's `use_sde`."""
    sde_sample_freq: int = -1
    """With sde: draw new noise matrices every this many steps; -1: at the start of each rollout.
    Must divide n_steps, so that every rollout starts with new ones."""

    def validate(self) -> None:
        super().validate()
        positive(self, "n_steps")
        in_unit_interval(self, "gae_lambda")
        if self.sde_sample_freq != -1 and (self.sde_sample_freq < 1 or self.n_steps % self.sde_sample_freq):
            raise DrlabError(f"sde_sample_freq must be -1 or a divisor of n_steps ({self.n_steps}), "
                             f"got {self.sde_sample_freq}")

    def noise_interval(self) -> int | None:
        """Steps between gSDE's noise draws, or None without gSDE."""
        if not self.sde:
            return None
        return self.n_steps if self.sde_sample_freq == -1 else self.sde_sample_freq


def check_env(algo: str, cfg: PGConfig, envs) -> None:
    """An action space the algorithm takes (and, for squashing, finite bounds); observation
    normalisation only on vectors."""
    check_action_space(algo, cfg.env_id, envs.single_action_space)
    make_head(envs.single_action_space, cfg.squash_actions, sde_sample_freq=cfg.noise_interval())
    if cfg.normalize_obs:
        check_normalizable(algo, cfg.env_id, envs.single_observation_space)


def make_policy_agent(cfg: PGConfig, obs_space, action_space, device, shared_body: bool,
                      value_outputs: int = 1) -> PolicyAgent:
    head = make_head(action_space, cfg.squash_actions, cfg.log_std_init, cfg.noise_interval())
    net = ActorCritic(obs_space, head, tuple(cfg.hidden), cfg.activation,
                      shared_body, value_outputs, cfg.ortho_init, cfg.normalize_obs, cfg.bf16, cfg.head_init).to(device)
    return PolicyAgent(net, obs_space, device, cfg.seed)


class PolicyLearner:
    """What every policy-gradient learner has: the agent, the run's random generator, the optimizer
    of the agent's network (with the config's schedule and clipping), and checkpointing of those.
    Subclasses add their ``update(data, step) -> metrics``."""

    reward_scaler = None  # returns.RewardScaler where rewards are normalised

    def __init__(self, cfg: PGConfig, agent: PolicyAgent, rng):
        self.cfg, self.agent, self.rng = cfg, agent, rng
        net, critic_lr = agent.net, getattr(cfg, "critic_lr", None)
        params = net.parameters()
        if critic_lr is not None:  # two networks, two optimizers (as the course's A2C)
            if net.shared_body:
                raise DrlabError("critic_lr needs separate actor and critic networks (shared_body false, and "
                                 "vector observations: frames always share the CNN body)")
            params = [([*net.actor.parameters(), *net.head.parameters()], cfg.lr),
                      (list(net.critic.parameters()), critic_lr)]
        self.optimizer = Optimizer(params, cfg.optimizer, cfg.lr, cfg.optim_eps, cfg.rmsprop_alpha,
                                   cfg.max_grad_norm, cfg.total_steps if cfg.lr_schedule == "linear" else None)

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


def detached(**metrics: torch.Tensor) -> dict[str, torch.Tensor]:
    """Loss terms as metrics: cut from the graph, converted to floats only when logged."""
    return {name: value.detach() for name, value in metrics.items()}


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def masked_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return masked_mean((x - masked_mean(x, mask)) ** 2, mask).sqrt()


def masked_normalize(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / (std + eps) over the entries where ``mask`` is 1."""
    return (x - masked_mean(x, mask)) / (masked_std(x, mask) + eps)


def policy_terms(net, outputs: torch.Tensor, actions: torch.Tensor):
    """(log pi(a|s) of the taken actions, entropy of pi(.|s)) per sample, from the network's action head."""
    return net.head.log_prob_entropy(outputs, actions)
