"""What acts with options: the Option-Critic network (one body, heads for Q_Omega, the terminations
and the intra-option policies), the agent that keeps each env's active option, and the statistics of
how long options last. Training is in :mod:`drlab.algos.option_critic`; evaluation and the option
pictures use these too."""

from __future__ import annotations

import copy
from typing import Protocol

import numpy as np
import torch
from torch import nn

from drlab.nets import ACTIVATIONS, obs_tensor, orthogonal_init
from drlab.spaces.heads import sample_categorical
from drlab.spaces.encoders import has_images, make_body

class OptionChoiceSettings(Protocol):
    """What the agent reads of Option-Critic's config (drlab.algos.option_critic.Config)."""

    option_choice: str
    option_temperature: float
    eps_end: float


class OptionCriticNet(nn.Module):
    """Shared body -> Q_Omega(s, .) (B, O), beta(s) (B, O), intra-option logits (B, O, A).

    The body is an MLP for vectors, or for stacked frames the Nature CNN (Mnih et al. 2015), as in
    Bacon et al.'s Atari experiments: one conv body shared by Q_Omega, the terminations and the
    intra-option policies, each a linear head on its 512 features (orthogonal init: gain sqrt 2, and
    0.01 on the policy heads so that every option's policy starts near uniform)."""

    def __init__(self, obs_space, num_actions: int, num_options: int, hidden: tuple[int, ...],
                 activation: str = "tanh", temperature: float = 1.0, bf16: bool = False):
        super().__init__()
        self.num_options, self.num_actions, self.temperature = num_options, num_actions, temperature
        self.body, features = make_body(obs_space, hidden, ACTIVATIONS[activation], bf16)
        self.q_head = nn.Linear(features, num_options)
        self.beta_head = nn.Linear(features, num_options)
        self.pi_head = nn.Linear(features, num_options * num_actions)
        if has_images(obs_space):
            orthogonal_init(self, np.sqrt(2))
            orthogonal_init(self.pi_head, 0.01)

    def forward(self, obs: torch.Tensor):
        features = self.body(obs)
        logits = self.pi_head(features).view(-1, self.num_options, self.num_actions) / self.temperature
        return self.q_head(features), torch.sigmoid(self.beta_head(features)), logits


class OptionAgent:
    """Acts with options, batched over envs; keeps each env's active option between calls.

    ``starts`` marks envs whose observation begins an episode: their option is chosen afresh.
    Greedy acting takes argmax decisions throughout (best option, terminate when beta >= 0.5,
    most likely action); otherwise options are chosen epsilon-greedily or by softmax over
    Q_Omega, terminations sampled and actions sampled; ``epsilon`` is the exploration rate of the
    epsilon-greedy choice (None: the config's final one, ``eps_end``).
    """

    def __init__(self, net: OptionCriticNet, cfg: OptionChoiceSettings, obs_space, device: torch.device, rng: np.random.Generator):
        self.net, self.cfg, self.obs_space, self.device = net, cfg, obs_space, device
        self.rng = rng
        self.options = np.zeros(0, dtype=np.int64)  # sized on first use

    @torch.inference_mode()
    def act(self, obs: np.ndarray, greedy: bool = True, starts: np.ndarray | None = None,
            epsilon: float | None = None) -> np.ndarray:
        q, beta, logits = self.net(obs_tensor(obs, self.device))
        q, beta, logits = q.cpu().numpy(), beta.cpu().numpy(), logits.cpu().numpy()
        n = len(obs)
        if len(self.options) != n:
            self.options, starts = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
        elif starts is None:
            starts = np.zeros(n, dtype=bool)
        beta_now = beta[np.arange(n), self.options]
        ends = beta_now >= 0.5 if greedy else self.rng.random(n) < beta_now
        choose = starts | ends
        if choose.any():
            eps = self.cfg.eps_end if epsilon is None else epsilon
            self.options[choose] = self.choose_options(q[choose], greedy, eps)
        option_logits = logits[np.arange(n), self.options]
        return option_logits.argmax(axis=1) if greedy else sample_categorical(option_logits, self.rng)

    @property
    def num_options(self) -> int:
        return self.net.num_options

    def fork(self) -> OptionAgent:
        """A copy acting with active options of its own."""
        forked = copy.copy(self)
        forked.options = self.options.copy()
        return forked

    def choose_options(self, q: np.ndarray, greedy: bool, epsilon: float) -> np.ndarray:
        if greedy:
            return q.argmax(axis=1)
        if self.cfg.option_choice == "softmax":
            return sample_categorical(q / self.cfg.option_temperature, self.rng)
        options = q.argmax(axis=1)
        explore = self.rng.random(len(q)) < epsilon
        options[explore] = self.rng.integers(0, q.shape[1], int(explore.sum()))
        return options

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)


class OptionStats:
    """Option usage shares and mean option duration (steps between switches) over a logging window."""

    def __init__(self, num_envs: int, num_options: int):
        self.usage = np.zeros(num_options, dtype=np.int64)
        self.durations: list[int] = []
        self.running = np.zeros(num_envs, dtype=np.int64)
        self.previous = np.full(num_envs, -1, dtype=np.int64)

    def update(self, options: np.ndarray, starts: np.ndarray, valid: np.ndarray) -> None:
        options_valid = options[valid]
        self.usage += np.bincount(options_valid, minlength=len(self.usage))
        switched = valid & ((options != self.previous) | starts)
        self.durations.extend(self.running[switched & (self.running > 0)].tolist())
        self.running[switched] = 0
        self.running += valid
        self.previous = np.where(valid, options, self.previous)

    def close_spells(self) -> None:
        """Count the options still running as ended (at the end of an evaluation)."""
        self.durations.extend(self.running[self.running > 0].tolist())
        self.running[:] = 0

    def metrics(self) -> dict:
        total = max(1, int(self.usage.sum()))
        out = {f"option_share_{w}": self.usage[w] / total for w in range(len(self.usage))}
        if self.durations:
            out["option_duration"] = float(np.mean(self.durations))
        self.usage[:] = 0
        self.durations.clear()
        return out
