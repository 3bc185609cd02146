"""Actor-critic networks and the agent that acts from them (REINFORCE, Actor-Critic, A2C, PPO).

One network class covers the shared and the separate layouts: ``forward(obs) -> (outputs, values)``.
``outputs`` are the policy's distribution parameters, read by the network's action head
(drlab.spaces.heads: logits of a categorical, the mean of a Gaussian, ...). ``values`` has one
column for a state-value critic (V) and one per action for a Q critic. Images (stacked frames, or
an image part of any observation) get a CNN body, shared by the policy and value heads.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from drlab.algos.protocol import Memoryless
from drlab.nets import ACTIVATIONS, ObsNormalizer, obs_tensor, orthogonal_init
from drlab.spaces.encoders import has_images, make_body, mlp_on
from drlab.spaces.heads import ActionHead


class ActorCritic(nn.Module):
    """Policy outputs and value outputs, from one shared body (an MLP, or a CNN for images) or from
    two separate MLPs. The observation space picks the body (drlab.spaces.encoders), the action
    head (``head``, a submodule: a Gaussian's log-std is a parameter of it) the policy's outputs."""

    def __init__(self, obs_space, head: ActionHead, hidden: tuple[int, ...], activation: str = "tanh",
                 shared_body: bool = False, value_outputs: int = 1, ortho_init: bool = True,
                 normalize_obs: bool = False, bf16: bool = False, head_init: str = "small"):
        super().__init__()
        act = ACTIVATIONS[activation]
        num_actions = head.num_inputs
        self.obs_norm = ObsNormalizer(int(np.prod(obs_space.shape))) if normalize_obs else None
        self.shared_body = shared_body or has_images(obs_space)  # a CNN is shared by the heads
        if self.shared_body:
            self.body, features = make_body(obs_space, hidden, act, bf16)
            self.policy_head = nn.Linear(features, num_actions)
            self.value_head = nn.Linear(features, value_outputs)
        else:
            self.actor = mlp_on(obs_space, hidden, num_actions, act)
            self.critic = mlp_on(obs_space, hidden, value_outputs, act)
            features = self.actor[-1].in_features
        if head.uses_features:  # gSDE: the head's noise matrices act on these features
            head.set_feature_size(features)
        if ortho_init:  # sqrt 2 inside; the usual PPO/A2C heads are small policy outputs, unit value outputs
            orthogonal_init(self, math.sqrt(2))
            if head_init == "small":
                orthogonal_init(self.policy_head if self.shared_body else self.actor[-1], 0.01)
                orthogonal_init(self.value_head if self.shared_body else self.critic[-1], 1.0)
        self.head = head  # after the initialisation: a log-std keeps its initial value

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy outputs, values) of a batch of observations (float vectors, or uint8 frames)."""
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        if self.shared_body:
            features = self.body(obs)
            return self._policy_head(features), self.value_head(features)
        return self._actor(obs), self.critic(obs)

    def policy_outputs(self, obs: torch.Tensor) -> torch.Tensor:
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        return self._policy_head(self.body(obs)) if self.shared_body else self._actor(obs)

    # gSDE (head.uses_features): the policy's outputs are followed by the last hidden features they
    # come from, detached (the noise's scale learns through the head's log-std, not the features).
    def _policy_head(self, features: torch.Tensor) -> torch.Tensor:
        outputs = self.policy_head(features)
        return torch.cat([outputs, features.detach()], dim=-1) if self.head.uses_features else outputs

    def _actor(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.head.uses_features:
            return self.actor(obs)
        *hidden, last = self.actor
        for layer in hidden:
            obs = layer(obs)
        return torch.cat([last(obs), obs.detach()], dim=-1)

    def observe(self, obs: np.ndarray) -> None:
        """Fold training observations into the normalizer's statistics (no-op without one)."""
        if self.obs_norm is not None:
            device = self.obs_norm.mean.device
            self.obs_norm.update(torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(len(obs), -1))


class PolicyAgent(Memoryless):
    """Acts from an ActorCritic: greedy (the mode of the policy's distribution) or sampled, batched
    over envs."""

    def __init__(self, net: ActorCritic, obs_space, device: torch.device, seed: int):
        self.net, self.obs_space, self.device = net, obs_space, device
        self.rng = np.random.default_rng(seed)
        self.rows_of_batch: tuple[int, slice] | None = None  # see act_as_rows

    def act_as_rows(self, num_rows: int, rows: slice, rng) -> None:
        """From now on act as ``rows`` of a batch of ``num_rows`` envs, drawing from ``rng`` (a Ray
        runner's share of the learner's envs; ``rng`` draws for the whole batch and keeps the rows)."""
        self.rows_of_batch, self.rng = (num_rows, rows), rng

    @torch.inference_mode()
    def outputs(self, obs: np.ndarray) -> np.ndarray:
        """The policy's outputs for a batch of observations. A Ray runner that holds ``rows`` of a
        batch of ``num_rows`` envs computes them in a batch of that size, its rows in place: a
        matrix product's float rounding depends on the batch size, and a Gaussian sample carries
        any difference (a categorical's argmax does not), so the runner's actions would otherwise
        differ from the learner process's in the last bits."""
        if self.rows_of_batch is not None and self.net.head.continuous:
            num_rows, rows = self.rows_of_batch
            padded = np.zeros((num_rows, *obs.shape[1:]), dtype=obs.dtype)
            padded[rows] = obs
            return self.net.policy_outputs(obs_tensor(padded, self.device)).cpu().numpy()[rows]
        return self.net.policy_outputs(obs_tensor(obs, self.device)).cpu().numpy()

    def act(self, obs: np.ndarray, greedy: bool = True, starts: np.ndarray | None = None) -> np.ndarray:
        """Env actions for a batch of observations (``starts`` does not matter to a memoryless policy)."""
        head, outputs = self.net.head, self.outputs(obs)
        return head.to_env(head.mode(outputs) if greedy else head.sample(outputs, self.rng))

    def explore(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(samples as stored and scored, the actions sent to the envs) for a batch of observations:
        for a Gaussian the sample before clipping to the bounds, for the others the same actions
        (up to a space's ``start``)."""
        head = self.net.head
        samples = head.sample(self.outputs(obs), self.rng)
        return samples, head.to_env(samples)

    def state_dict(self) -> dict:
        return self.net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state)
