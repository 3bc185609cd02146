"""What SAC and TD3 share on top of the off-policy loop (drlab.algos.off_policy): the config, twin Q
critics evaluated in one batched pass, actions kept in [-1, 1] and rescaled to the env's bounds, uniform
random actions before ``learning_starts``, the replay and the checkpoints.

Actions: the actor works in [-1, 1]^d (a tanh at its end); the replay stores that action and the
critics score it; the env gets it rescaled affinely to [low, high]. So the bounds never enter a loss,
and every env's actions have the same scale for the exploration noise and the target smoothing.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from drlab.algos import check_action_space, off_policy
from drlab.algos.protocol import Memoryless
from drlab.buffers.replay import SaveReplay, replay_note, saves_replay
from drlab.config import RunConfig, batch_fits_buffer, hidden_sizes, in_unit_interval, non_negative, positive
from drlab.errors import DrlabError
from drlab.nets import bf16_autocast
from drlab.spaces.encoders import ObservationEncoder, has_images, is_flat_vector, parts_of

ACTION_SPACES = (gym.spaces.Box,)
OBSERVATIONS = "Box of any rank, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple of those (no images yet)"
VARIANTS = {
    "uniform": "uniform experience replay",
    "per": "proportional prioritized replay, sum tree, importance weights (Schaul et al. 2016)",
}


@dataclass
class Config(RunConfig):
    replay: Literal["uniform", "per"] = "uniform"
    """Replay variant (see `drlab list`)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor and of each critic."""
    lr: float = 3e-4
    """Adam learning rate of the actor and the critics."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 1
    """Rewards summed before bootstrapping (n-step returns)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 100
    """Environment steps of uniform random actions before the actor acts and the first update."""
    train_freq: int = 1
    """Environment steps between updates."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    tau: float = 0.005
    """Polyak rate of the target networks: target <- (1 - tau) target + tau online."""
    max_grad_norm: float = 0.0
    """Gradient-norm clip (0 disables clipping; the norms are logged either way)."""
    per_alpha: float = 0.6
    """PER: priority exponent."""
    per_beta: float = 0.4
    """PER: initial importance-weight exponent, annealed linearly to 1."""
    per_eps: float = 1e-6
    """PER: added to |TD| so that no priority is zero."""
    save_replay: SaveReplay = "auto"
    """Keep the replay in checkpoints (a resumed run without it refills the replay before updating again)."""
    bf16: bool = False
    """Hidden layers of the actor and the critics under bfloat16 autocast (their outputs, the losses, weights
    and gradients stay float32): 1.04-1.15x the env steps per second with 256-unit layers on a CPU with
    AVX512-BF16; ignored, with a note, on a CPU without."""

    def validate(self) -> None:
        super().validate()
        positive(self, "lr", "batch_size", "buffer_size", "train_freq", "gradient_steps", "tau", "n_step")
        non_negative(self, "learning_starts", "max_grad_norm", "per_alpha", "per_eps")
        in_unit_interval(self, "gamma", "tau", "per_beta")
        hidden_sizes(self)
        batch_fits_buffer(self)


def check_env(algo: str, cfg: Config, envs) -> None:
    """A Box action space with finite bounds, and observations without images."""
    space = envs.single_action_space
    check_action_space(algo, cfg.env_id, space)
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise DrlabError(f"{algo} rescales its actions to the bounds, which must be finite, but {cfg.env_id} has {space}; "
                         f"ppo and a2c take unbounded Box actions")
    if has_images(envs.single_observation_space):
        raise DrlabError(f"{algo} has no image encoder yet, and {cfg.env_id}'s observations hold images; "
                         f"ppo, a2c and dqn (Discrete actions) take them")


def features(obs_space: gym.Space) -> tuple[nn.Module, int]:
    """(module, size) turning observations into a flat vector: vectors as they are, other spaces
    through the observation encoders (one-hot for discrete parts, concatenated)."""
    if is_flat_vector(obs_space):
        return nn.Flatten(1), int(np.prod(obs_space.shape))
    encoder = ObservationEncoder(parts_of(obs_space))
    return encoder, encoder.out_dim


class TwinQ(nn.Module):
    """``n`` Q critics Q_i(s, a) as one network with stacked weights: each layer is one batched
    matrix product over the critics (torch.baddbmm) instead of n, and the observation encoding is
    shared. Returns Q of shape (n, batch). Initialised as ``nn.Linear`` initialises each critic."""

    def __init__(self, obs_space: gym.Space, action_dim: int, hidden: tuple[int, ...], n: int = 2,
                 bf16: bool = False):
        super().__init__()
        self.encode, obs_dim = features(obs_space)
        dims = [obs_dim + action_dim, *hidden, 1]
        self.n, self.bf16 = n, bf16
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(dims, dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            self.weights.append(nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, frozen: bool = False,
                critics: int | None = None) -> torch.Tensor:
        """Q of every critic, or of the first ``critics`` only (shape (critics, batch)); ``frozen``: no
        gradient reaches the critics' weights (the actor's loss)."""
        n = self.n if critics is None else critics
        x = torch.cat([self.encode(obs.float()), actions], dim=-1)
        h = x.unsqueeze(0).expand(n, -1, -1)
        weights, biases = list(self.weights), list(self.biases)
        if frozen:
            weights, biases = [w.detach() for w in weights], [b.detach() for b in biases]
        if n < self.n:  # views of the first n critics' weights: no work for the others
            weights, biases = [w[:n] for w in weights], [b[:n] for b in biases]
        with bf16_autocast(x.device, self.bf16):
            for w, b in zip(weights[:-1], biases[:-1]):
                h = F.relu(torch.baddbmm(b, h, w))
        return torch.baddbmm(biases[-1], h.float(), weights[-1]).squeeze(-1)  # Q in float32


class BoxActions:
    """[-1, 1] actions <-> the env's bounds, and the uniform random actions before learning starts."""

    def __init__(self, space: gym.spaces.Box):
        self.low = space.low.astype(np.float32)
        self.high = space.high.astype(np.float32)
        self.scale = ((space.high - space.low) / 2.0).astype(np.float32)
        self.shape, self.dtype = space.shape, space.dtype
        self.dim = int(np.prod(space.shape))

    def to_env(self, unit_actions: np.ndarray) -> np.ndarray:
        actions = self.low + (unit_actions.reshape(-1, *self.shape) + 1.0) * self.scale
        return np.clip(actions, self.low, self.high).astype(self.dtype)  # clip: float rounding past a bound

    def uniform(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=(n, self.dim)).astype(np.float32)


class ActorAgent(Memoryless):
    """What SAC's and TD3's agents share: act in the env's bounds from the actor's [-1, 1] actions
    (``unit_actions(obs, greedy, rng)``, the subclass's), exploration noise from a generator of
    its own, and the actor as its state."""

    def __init__(self, actor: nn.Module, obs_space: gym.Space, actions: BoxActions, device: torch.device, seed: int):
        self.actor, self.obs_space, self.actions, self.device = actor, obs_space, actions, device
        self.rng = np.random.default_rng(seed)

    def unit_actions(self, obs: np.ndarray, greedy: bool, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: np.ndarray, greedy: bool = True, starts: np.ndarray | None = None) -> np.ndarray:
        return self.actions.to_env(self.unit_actions(obs, greedy, self.rng))

    def state_dict(self) -> dict:
        return self.actor.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state)


class Learner:
    """The parts SAC's and TD3's learners share: networks' targets, replay, acting with uniform random
    actions before ``learning_starts``, checkpoints. Subclasses set ``self.actor_optimizer``... and
    implement ``explore(obs)`` (the [-1, 1] actions of the behaviour policy) and ``update``."""

    online = False  # always replays
    next_action_targets = False

    def __init__(self, cfg: Config, agent, rng: np.random.Generator):
        self.cfg, self.agent, self.rng = cfg, agent, rng  # rng: exploration noise, random actions, replay sampling
        self.actor = agent.actor
        self.critic = TwinQ(agent.obs_space, agent.actions.dim, tuple(cfg.hidden), bf16=cfg.bf16).to(agent.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.buffer = off_policy.make_replay(cfg, agent.obs_space, agent.device, (agent.actions.dim,), np.float32)
        self.save_replay = saves_replay(cfg.save_replay, False)
        self.refill = 0  # transitions the replay must hold before updates (after a resume without it)
        self.updates = 0  # gradient steps taken (TD3's delay counts them)

    def act(self, obs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, dict]:
        if step < self.cfg.learning_starts:
            actions = self.agent.actions.uniform(len(obs), self.rng)
        else:
            actions = self.explore(obs)
        return self.agent.actions.to_env(actions), actions, {}

    def explore(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sync_target(self, before: int, after: int) -> None:
        """Targets follow their networks by Polyak averaging in ``update``, gradient step by gradient step."""

    def networks(self) -> dict:
        """Name -> module of what the checkpoint holds besides the agent (the actor) and the critic target."""
        return {"critic": self.critic}

    def optimizers(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        state = {"agent": self.agent.state_dict(), "target": self.critic_target.state_dict(),
                 **{name: net.state_dict() for name, net in self.networks().items()},
                 "optimizers": {name: opt.state_dict() for name, opt in self.optimizers().items()},
                 "updates": self.updates}
        if self.save_replay:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> str:
        self.agent.load_state_dict(state["agent"])
        self.critic_target.load_state_dict(state["target"])
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        for name, opt in self.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.updates = int(state["updates"])
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
        else:
            self.refill = min(self.cfg.learning_starts, self.buffer.capacity)
        return replay_note(self.buffer, "buffer" in state, self.cfg.save_replay, max(self.cfg.batch_size, self.refill))
