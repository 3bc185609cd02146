"""Actor-critic networks and the agent that acts from them (REINFORCE, Actor-Critic, A2C, PPO).

One network class covers the shared and the separate layouts: ``forward(obs) -> (logits, values)``.
``values`` has one column for a state-value critic (V) and one per action for a Q critic.
Images (stacked frames, or an image part of any observation) get a CNN body, shared by the policy and value heads.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from drlab.nets import ACTIVATIONS, ObsNormalizer, obs_tensor, orthogonal_init
from drlab.spaces.encoders import has_images, make_body, mlp_on


class ActorCritic(nn.Module):
    """Policy logits and value outputs, from one shared body (an MLP, or a CNN for images) or from
    two separate MLPs. The observation space picks the body (drlab.spaces.encoders)."""

    def __init__(self, obs_space, num_actions: int, hidden: tuple[int, ...], activation: str = "tanh",
                 shared_body: bool = False, value_outputs: int = 1, ortho_init: bool = True,
                 normalize_obs: bool = False, bf16: bool = False, head_init: str = "small"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.obs_norm = ObsNormalizer(int(np.prod(obs_space.shape))) if normalize_obs else None
        self.shared_body = shared_body or has_images(obs_space)  # a CNN is shared by the heads
        if self.shared_body:
            self.body, features = make_body(obs_space, hidden, act, bf16)
            self.policy_head = nn.Linear(features, num_actions)
            self.value_head = nn.Linear(features, value_outputs)
        else:
            self.actor = mlp_on(obs_space, hidden, num_actions, act)
            self.critic = mlp_on(obs_space, hidden, value_outputs, act)
        if ortho_init:  # sqrt 2 inside; the usual PPO/A2C heads are small policy outputs, unit value outputs
            orthogonal_init(self, math.sqrt(2))
            if head_init == "small":
                orthogonal_init(self.policy_head if self.shared_body else self.actor[-1], 0.01)
                orthogonal_init(self.value_head if self.shared_body else self.critic[-1], 1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, values) of a batch of observations (float vectors, or uint8 frames)."""
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        if self.shared_body:
            features = self.body(obs)
            return self.policy_head(features), self.value_head(features)
        return self.actor(obs), self.critic(obs)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        return self.policy_head(self.body(obs)) if self.shared_body else self.actor(obs)

    def observe(self, obs: np.ndarray) -> None:
        """Fold training observations into the normalizer's statistics (no-op without one)."""
        if self.obs_norm is not None:
            device = self.obs_norm.mean.device
            self.obs_norm.update(torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(len(obs), -1))


def sample_categorical(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row from softmax(logits) over the last axis, by Gumbel-max: argmax(logits +
    Gumbel noise), two NumPy ops instead of a softmax and a cumulative search."""
    return (logits - np.log(-np.log(rng.random(logits.shape)))).argmax(axis=-1)


class PolicyAgent:
    """Acts from an ActorCritic: greedy (argmax of the logits) or sampled, batched over envs."""

    def __init__(self, net: ActorCritic, obs_space, device: torch.device, seed: int):
        self.net, self.obs_space, self.device = net, obs_space, device
        self.rng = np.random.default_rng(seed)

    @torch.inference_mode()
    def act(self, obs: np.ndarray, greedy: bool = True, starts: np.ndarray | None = None) -> np.ndarray:
        """Actions for a batch of observations (``starts`` does not matter to a memoryless policy)."""
        logits = self.net.logits(obs_tensor(obs, self.device)).cpu().numpy()
        return logits.argmax(axis=1) if greedy else sample_categorical(logits, self.rng)

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)
