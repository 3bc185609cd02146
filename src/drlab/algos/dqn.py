"""DQN (Mnih et al. 2015) and its variants from the course notebooks: online, uniform replay, and
two kinds of prioritized replay.

Variants are settings of one algorithm:
  replay = "online"          one update on the transitions just collected, no buffer (the notebook's first DQN)
  replay = "uniform"         experience replay from a ring buffer, target network
  replay = "symlog-softmax"  the notebook's prioritized replay: softmax(symlog |TD|), sorted eviction
  replay = "per"             proportional PER with a sum tree and importance weights (Schaul et al. 2016)
plus a target network (hard or Polyak; none when target_update_interval = 0), Huber or MSE loss,
the notebook's optional penalty on |Q(s, a)|, and the value the TD target bootstraps from at s':
  target = "max"             max_a' Q_target(s', a'): Q-learning (Watkins 1989), DQN
  target = "double"          Q_target(s', argmax_a' Q(s', a')): double DQN (van Hasselt et al. 2016)
  target = "sarsa"           Q_target(s', a') of the action a' the behaviour policy took at s'
                             (Rummery and Niranjan 1994): the replay stores that next action
  target = "expected-sarsa"  sum_a' pi(a'|s') Q_target(s', a') under the current epsilon-greedy
                             policy pi (greedy with respect to the online Q), van Seijen et al. 2009
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
from drlab.algos.off_policy import make_replay
from drlab.algos.protocol import Memoryless
from drlab.buffers.replay import Batch, SaveReplay, replay_note, saves_replay
from drlab.config import RunConfig, batch_fits_buffer, hidden_sizes, in_unit_interval, non_negative, positive
from drlab.nets import obs_tensor, orthogonal_init
from drlab.spaces.encoders import OBSERVATION_SPACES, has_images, is_lone_image, make_body, mlp_on, stacked_frames
from drlab.optim import adam, crossings, gradient_step, linear_schedule, polyak_update

ACTION_SPACES = (gym.spaces.Discrete,)
OBSERVATIONS = OBSERVATION_SPACES  # what drlab list says the algorithm observes
VARIANTS = {
    "online": "one gradient step on each new transition, no replay (the DQN notebook's first agent)",
    "uniform": "uniform experience replay + target network",
    "symlog-softmax": "the DQN notebook's prioritized replay: softmax(symlog|TD|), sorted eviction",
    "per": "proportional prioritized replay, sum tree, importance weights (Schaul et al. 2016)",
}


Target = Literal["max", "double", "sarsa", "expected-sarsa"]


@dataclass
class Config(RunConfig):
    replay: Literal["online", "uniform", "symlog-softmax", "per"] = "uniform"
    """Replay variant (see `drlab list`)."""
    hidden: tuple[int, ...] = (128, 128)
    """Hidden layer sizes of the Q network."""
    lr: float = 1e-3
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 1
    """Rewards summed before bootstrapping (n-step returns; 1 is plain DQN)."""
    buffer_size: int = 50_000
    """Replay capacity in transitions."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Environment steps before the first update."""
    train_freq: int = 1
    """Environment steps between updates."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    target_update_interval: int = 500
    """Environment steps between target-network updates (0: no target network)."""
    tau: float = 1.0
    """Target update rate: 1 copies the weights, < 1 is Polyak averaging."""
    target: Target = "max"
    """What the TD target bootstraps from at s': max (Q-learning), double (double DQN), sarsa (the
    action taken next) or expected-sarsa (the expectation under the epsilon-greedy policy)."""
    loss: Literal["huber", "mse"] = "mse"
    """TD loss: mse (squared error) or huber (squared within 1 of the target, linear beyond, so that a
    few large errors do not dominate a step). Why mse is the default: docs/dqn.md."""
    q_penalty: float = 0.0
    """Weight of a penalty on |Q(s, a)| added to the TD loss, which keeps Q-values from growing
    without bound when there is no target network (0: none)."""
    max_grad_norm: float = 10.0
    """Gradient-norm clip (0 disables clipping; the norm is logged either way)."""
    eps_start: float = 1.0
    """Initial epsilon of epsilon-greedy exploration."""
    eps_end: float = 0.05
    """Final epsilon (also used for stochastic evaluation)."""
    exploration_fraction: float = 0.2
    """Fraction of total_steps over which epsilon decays linearly."""
    per_alpha: float = 0.6
    """PER: priority exponent."""
    per_beta: float = 0.4
    """PER: initial importance-weight exponent, annealed linearly to 1."""
    per_eps: float = 1e-6
    """PER: added to |TD| so that no priority is zero."""
    sort_interval: int = 1_000
    """symlog-softmax: transitions added between sorts of the buffer by priority."""
    bf16: bool = False
    """Run the CNN body (frame observations) under bfloat16 autocast, weights and loss in float32:
    faster on CPUs with bfloat16 matrix units (AMX, AVX512-BF16; docs/pixels.md)."""
    save_replay: SaveReplay = "auto"
    """Keep the replay in checkpoints (auto: for vector observations, not for frames; a resumed run
    without it refills the replay before updating again)."""

    def validate(self) -> None:
        super().validate()
        positive(self, "lr", "batch_size", "buffer_size", "train_freq", "gradient_steps", "tau", "sort_interval", "n_step")
        non_negative(self, "learning_starts", "target_update_interval", "q_penalty", "max_grad_norm", "per_alpha", "per_eps")
        in_unit_interval(self, "gamma", "tau", "eps_start", "eps_end", "exploration_fraction", "per_beta")
        hidden_sizes(self, linear_ok=True)
        if self.replay != "online":
            batch_fits_buffer(self)


def check_env(cfg: Config, envs) -> None:
    check_action_space("dqn", cfg.env_id, envs.single_action_space)


class QAgent(Memoryless):
    """Acts from a Q network: greedy (argmax) or epsilon-greedy, batched over envs."""

    def __init__(self, q_net: nn.Module, obs_space, num_actions: int, device: torch.device, epsilon: float, seed: int):
        self.q_net, self.obs_space, self.num_actions, self.device = q_net, obs_space, num_actions, device
        self.epsilon = epsilon  # for act(greedy=False)
        self.rng = np.random.default_rng(seed)

    @torch.inference_mode()
    def q_values(self, obs: np.ndarray) -> torch.Tensor:
        return self.q_net(obs_tensor(obs, self.device))

    def act(self, obs: np.ndarray, greedy: bool = True, epsilon: float | None = None, rng=None,
            starts: np.ndarray | None = None) -> np.ndarray:
        """Actions for a batch of observations (``starts``, the envs beginning an episode, does not
        matter to a memoryless agent)."""
        actions = self.q_values(obs).argmax(dim=1).cpu().numpy()
        if greedy:
            return actions
        rng = self.rng if rng is None else rng
        eps = self.epsilon if epsilon is None else epsilon
        explore = rng.random(len(actions)) < eps
        if explore.any():
            actions[explore] = rng.integers(0, self.num_actions, int(explore.sum()))
        return actions

    def state_dict(self) -> dict:
        return self.q_net.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.q_net.load_state_dict(state)


def make_agent(cfg: Config, obs_space, action_space, device: torch.device) -> QAgent:
    if is_lone_image(obs_space):  # frames: a CNN body (Nature CNN), one linear Q head
        body, features = make_body(obs_space, tuple(cfg.hidden), nn.ReLU, cfg.bf16)
        q_net = nn.Sequential(body, nn.Linear(features, int(action_space.n)))
    else:  # an MLP on the encoded observations (the plain MLP for vectors)
        q_net = mlp_on(obs_space, tuple(cfg.hidden), int(action_space.n), bf16=cfg.bf16)
    if has_images(obs_space):
        orthogonal_init(q_net, math.sqrt(2))
    q_net = q_net.to(device)
    return QAgent(q_net, obs_space, int(action_space.n), device, cfg.eps_end, cfg.seed)


# ---- the loss ---------------------------------------------------------------------------------

def dqn_loss(q_net: nn.Module, target_net: nn.Module, batch: Batch, cfg: Config, epsilon: float = 0.0):
    """TD loss on a batch. Returns (loss, td_errors, metrics); td_errors feed the priorities.
    ``epsilon``: the behaviour policy's current epsilon (expected SARSA's expectation)."""
    n = batch.obs.shape[0]
    if cfg.target in ("double", "expected-sarsa", "sarsa"):
        # The online net's greedy action at s'. One forward pass for s and s': per-call overhead
        # dominates small nets. (SARSA needs it only where no next action was taken: a truncation.)
        q_both = q_net(torch.cat([batch.obs, batch.next_obs]))
        q, next_q_online = q_both[:n], q_both[n:].detach()
    else:
        q = q_net(batch.obs)
    q_sa = q.gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        next_q = target_net(batch.next_obs)
        if cfg.target == "max":
            next_v = next_q.max(1).values
        else:
            greedy_v = next_q.gather(1, next_q_online.argmax(1, keepdim=True)).squeeze(1)
            if cfg.target == "double":
                next_v = greedy_v
            else:  # expected SARSA: greedy w.p. 1 - epsilon, uniform w.p. epsilon
                next_v = (1 - epsilon) * greedy_v + epsilon * next_q.mean(1)
                if cfg.target == "sarsa":
                    # The action taken at s'; a truncated episode's last transitions have none (the
                    # episode ended there) and take the expectation of the action SARSA would draw.
                    taken = batch.next_actions
                    sarsa_v = next_q.gather(1, taken.clamp(min=0).unsqueeze(1)).squeeze(1)
                    next_v = torch.where(taken >= 0, sarsa_v, next_v)
        # Terminated: no future. Truncated transitions are stored as not terminated and bootstrap.
        # discounts = gamma^m for an m-step transition (gamma for one-step ones).
        target = batch.rewards + batch.discounts * (1.0 - batch.terminated) * next_v
    td = target - q_sa
    if cfg.loss == "huber":
        per_sample = F.huber_loss(q_sa, target, reduction="none")
    else:
        per_sample = td.pow(2)
    loss = (batch.weights * per_sample).mean()  # importance weights on every loss path
    if cfg.q_penalty:
        loss = loss + cfg.q_penalty * q_sa.abs().mean()
    metrics = {"loss": loss.detach(), "q_mean": q_sa.detach().mean(), "td_error_abs": td.detach().abs().mean()}
    return loss, td, metrics


# ---- the learner: networks, optimizer, buffer --------------------------------------------------

class Learner:
    """DQN's part of the shared off-policy loop (drlab.algos.off_policy): epsilon-greedy acting, the TD
    update, the target network."""

    def __init__(self, cfg: Config, agent: QAgent, rng: np.random.Generator):
        self.cfg, self.agent, self.rng = cfg, agent, rng  # rng: exploration and replay sampling
        self.q_net = agent.q_net
        # Without a target network (the notebook's online DQN) targets come from the online net itself.
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False) if cfg.target_update_interval else self.q_net
        self.params = list(self.q_net.parameters())
        self.optimizer = adam(self.params, cfg.lr)
        self.online = cfg.replay == "online"
        self.next_action_targets = cfg.target == "sarsa"
        self.buffer = make_replay(cfg, agent.obs_space, agent.device, next_action_targets=self.next_action_targets)
        self.save_replay = saves_replay(cfg.save_replay, stacked_frames(agent.obs_space))
        self.refill = 0  # transitions the replay must hold before updates (after a resume without it)

    def epsilon(self, step: int) -> float:
        cfg = self.cfg
        return linear_schedule(cfg.eps_start, cfg.eps_end, step, int(cfg.exploration_fraction * cfg.total_steps))

    def act(self, obs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, dict]:
        epsilon = self.epsilon(step)
        actions = self.agent.act(obs, greedy=False, epsilon=epsilon, rng=self.rng)
        return actions, actions, {"epsilon": epsilon}

    def update(self, batch: Batch, step: int) -> dict:
        loss, td, metrics = dqn_loss(self.q_net, self.target_net, batch, self.cfg, self.epsilon(step))
        metrics["grad_norm"] = gradient_step(self.optimizer, self.params, loss, self.cfg.max_grad_norm)
        self.buffer.update_priorities(batch.indices, td.detach().cpu().numpy())
        return metrics

    def sync_target(self, before: int, after: int) -> None:
        if self.target_net is not self.q_net and crossings(before, after, self.cfg.target_update_interval):
            polyak_update(self.target_net, self.q_net, self.cfg.tau)

    def state_dict(self) -> dict:
        state = {"agent": self.agent.state_dict(), "target": self.target_net.state_dict(),
                 "optimizer": self.optimizer.state_dict()}
        if self.save_replay:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> str:
        """Restore; returns a line saying what became of the replay."""
        self.agent.load_state_dict(state["agent"])
        self.target_net.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
        elif self.cfg.replay != "online":  # online DQN learns from each new transition: nothing to refill
            self.refill = min(self.cfg.learning_starts, self.buffer.capacity)
        wait = max(self.cfg.batch_size, self.refill) if self.cfg.replay != "online" else None
        return replay_note(self.buffer, "buffer" in state, self.cfg.save_replay, wait)


# ---- the training loop: the shared off-policy loop ---------------------------------------------

train_loop = off_policy.train_loop
