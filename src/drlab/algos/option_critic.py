"""Option-Critic (Bacon, Harb and Precup, AAAI 2017).

One body (an MLP for vectors, the Nature CNN for stacked frames), three heads: option values
Q_Omega(s, w), intra-option policies pi_w(a|s) (softmax of logits / temperature) and terminations
beta_w(s) (sigmoid). Each env keeps an active option; at
every step the option ends with probability beta_w(s) and a new one is chosen (epsilon-greedy or
softmax over Q_Omega); an episode start always chooses afresh.

* Critic (off-policy, from replay, with a target network): TD on Q_Omega(s, w) towards
  r + gamma * U(s', w), the utility upon arrival
  U(s', w) = (1 - beta_w(s')) Q_Omega(s', w) + beta_w(s') V(s'),  V(s') = max_w' Q_Omega(s', w').
* Actor (on-policy, the transitions collected since the last update): the intra-option policy
  gradient with advantage G - Q_Omega(s, w) and an entropy bonus, where G is the one-step target
  r + gamma * U(s', w) (actor_return = "one-step") or the discounted return to the end of the update
  window, bootstrapped with U there ("rollout": n-step, as in A2OC, Harb et al. 2018; the return
  of the call-and-return behaviour, option switches included, estimates Q_U(s, w, a)); the
  termination gradient beta_w(s') * (A(s', w) + xi), masked at episode ends (an option cannot
  continue past one), with the termination advantage A(s', w) = Q_Omega(s', w) - V(s'). Raw, A is
  in the units of the values (50-80 on CartPole), so a small fixed xi weighs nothing against it.
  termination_advantage = "scaled" divides A by its std over the batch, so that xi is the margin
  (in stds) by which another option must be better for this one to end; "normalized" also centres
  it: an option ends where it is worse than usual. How long options last under each: docs/option-critic.md.

The actor and the critic learn at their own rates, each with an optimizer of its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from drlab.algos import check_action_space
from drlab.algos.option_agent import OptionAgent, OptionCriticNet, OptionStats
from drlab.algos.policy_gradient import masked_mean, masked_normalize, masked_std
from drlab.buffers.replay import Batch, ReplayBuffer, SaveReplay, replay_note, saves_replay
from drlab.config import RunConfig, batch_fits_buffer, hidden_sizes, in_unit_interval, non_negative, positive
from drlab.errors import DrlabError
from drlab.nets import obs_tensor
from drlab.optim import adam, crossings, gradient_step, linear_schedule
from drlab.returns import discounted_returns
from drlab.spaces.encoders import OBSERVATION_SPACES, stacked_frames

ACTION_SPACES = (gym.spaces.Discrete,)
OBSERVATIONS = OBSERVATION_SPACES  # what drlab list says the algorithm observes
VARIANTS = {
    "default": "options with intra-option policies and learned terminations; epsilon-greedy or softmax over options",
}



@dataclass
class Config(RunConfig):
    num_envs: int = 8
    num_options: int = 2
    """Number of options."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the shared MLP body (frames get the Nature CNN body instead)."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Hidden-layer activation."""
    temperature: float = 1.0
    """Softmax temperature of the intra-option policies."""
    option_choice: Literal["epsilon-greedy", "softmax"] = "epsilon-greedy"
    """How a new option is chosen from Q_Omega."""
    option_temperature: float = 1.0
    """Temperature of the softmax over Q_Omega (option_choice = softmax)."""
    eps_start: float = 1.0
    """Initial epsilon of the epsilon-greedy choice of options."""
    eps_end: float = 0.05
    """Final epsilon."""
    exploration_fraction: float = 0.1
    """Fraction of total_steps over which epsilon decays linearly."""
    xi: float = 0.01
    """Termination regulariser, added to the termination advantage (larger: longer options)."""
    deliberation_cost: float = 0.0
    """Cost eta paid at each option switch (Harb et al. 2018, "When waiting is not an option"), in reward
    units: the critic's and the actor's targets pay beta_w(s') eta, and the termination gradient's
    advantage becomes A(s', w) + eta, put on the scale termination_advantage chooses. Larger: options last longer."""
    termination_advantage: Literal["raw", "scaled", "normalized"] = "raw"
    """Q_Omega(s', w) - V(s') as it is, divided by its std over the batch (scaled), or also centred
    (normalized: an option ends where it is worse than usual); scaled and normalized put xi in std units."""
    ent_coef: float = 0.01
    """Weight of the intra-option policies' entropy bonus."""
    actor_return: Literal["one-step", "rollout"] = "one-step"
    """The actor's estimate of Q_U(s, w, a): r + gamma * U(s', w), or the discounted return to the end
    of the update window bootstrapped with U there (n-step: faster credit assignment on pixels)."""
    normalize_advantages: bool = False
    """Normalise the intra-option policy's advantage over each actor batch (zero mean, unit std), as
    PPO does: the policy gradient keeps its size against the entropy bonus when rewards are small
    (clipped Atari rewards)."""
    actor_lr: float = 1e-3
    """Learning rate of the actor (intra-option policies and terminations)."""
    critic_lr: float = 1e-3
    """Learning rate of the critic (Q_Omega)."""
    gamma: float = 0.99
    """Discount factor."""
    buffer_size: int = 50_000
    """Replay capacity in transitions."""
    batch_size: int = 128
    """Transitions per critic step."""
    update_interval: int = 16
    """Vector steps between updates (the actor learns from the transitions of these steps)."""
    critic_updates: int = 4
    """Critic gradient steps per update."""
    learning_starts: int = 1_000
    """Environment steps before the first update."""
    target_update_interval: int = 1_000
    """Environment steps between copies of the critic into its target network."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip for both optimizers (0 disables it)."""
    bf16: bool = False
    """Run the CNN body (frame observations) under bfloat16 autocast, weights and loss in float32:
    faster on CPUs with bfloat16 matrix units (AMX, AVX512-BF16; docs/pixels.md)."""
    save_replay: SaveReplay = "auto"
    """Keep the replay in checkpoints (auto: for vector observations, not for frames; a resumed run
    without it refills the replay before updating again)."""

    def validate(self) -> None:
        super().validate()
        positive(self, "num_options", "temperature", "option_temperature", "actor_lr", "critic_lr",
                 "buffer_size", "batch_size", "update_interval", "critic_updates", "target_update_interval")
        non_negative(self, "xi", "deliberation_cost", "ent_coef", "learning_starts", "max_grad_norm")
        in_unit_interval(self, "gamma", "eps_start", "eps_end", "exploration_fraction")
        if self.deliberation_cost and self.actor_return == "rollout":
            # The rollout's return would have to pay eta at each switch inside the window; only U does now.
            raise DrlabError("deliberation_cost works with actor_return one-step; with rollout the switches "
                             "inside the update window would go unpaid")
        hidden_sizes(self, linear_ok=True)
        batch_fits_buffer(self)


def check_env(cfg: Config, envs) -> None:
    check_action_space("option-critic", cfg.env_id, envs.single_action_space)


def make_agent(cfg: Config, obs_space, action_space, device) -> OptionAgent:
    net = OptionCriticNet(obs_space, int(action_space.n), cfg.num_options, tuple(cfg.hidden),
                          cfg.activation, cfg.temperature, cfg.bf16).to(device)
    return OptionAgent(net, cfg, obs_space, device, np.random.default_rng(cfg.seed))


# ---- the losses -------------------------------------------------------------------------------

def utility_upon_arrival(q_next: torch.Tensor, beta_next: torch.Tensor, options: torch.Tensor,
                         cost: float = 0.0) -> torch.Tensor:
    """U(s', w) = (1 - beta_w(s')) Q(s', w) + beta_w(s') (max_w' Q(s', w') - cost): a switch pays the
    deliberation cost."""
    q_w = q_next.gather(1, options[:, None]).squeeze(1)
    beta_w = beta_next.gather(1, options[:, None]).squeeze(1)
    return (1 - beta_w) * q_w + beta_w * (q_next.max(1).values - cost)


def critic_loss(net, target_net, batch: Batch, cost: float = 0.0):
    """TD loss of Q_Omega(s, w) on a replay batch, switches paying ``cost``. Returns (loss, metrics)."""
    options = batch.actions  # the replay's action column holds the option each transition followed
    q = net(batch.obs)[0].gather(1, options[:, None]).squeeze(1)
    with torch.no_grad():
        q_next, beta_next, _ = target_net(batch.next_obs)
        utility = utility_upon_arrival(q_next, beta_next, options, cost)
        target = batch.rewards + batch.discounts * (1 - batch.terminated) * utility
    loss = F.mse_loss(q, target)
    return loss, {"critic_loss": loss.detach(), "q_mean": q.detach().mean()}


@dataclass
class ActorBatch:
    """The on-policy transitions since the last update, for the actor. The observations go through
    the network once: ``observations`` holds every step's obs and then the last step's next obs
    ((T + 1) N rows: a step's next obs is the next step's obs, under next-step autoreset too).
    Transition i starts at row ``rows[i]`` and arrives at row ``next_rows[i]``. ``window`` keeps the
    window's (T, N) rewards, terminated, truncated and valid arrays, for the rollout return."""

    observations: torch.Tensor
    rows: torch.Tensor
    next_rows: torch.Tensor
    options: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    done: torch.Tensor  # terminated or truncated: the option cannot go on past s'
    window: dict | None = None

    def __len__(self) -> int:
        return len(self.options)


def actor_targets(target_net, batch: ActorBatch, cfg: Config) -> torch.Tensor:
    """The actor's estimate G of Q_U(s, w, a), from the target network: r + gamma U(s', w), or the
    window's return bootstrapped with U (actor_return = "rollout")."""
    with torch.no_grad():
        q_next, beta_next, _ = target_net(batch.observations[batch.next_rows])
        utility_next = utility_upon_arrival(q_next, beta_next, batch.options, cfg.deliberation_cost)
    if cfg.actor_return == "rollout":
        return rollout_targets(batch.window, batch.rows, utility_next, cfg.gamma)
    return batch.rewards + cfg.gamma * (1 - batch.terminated) * utility_next


def actor_loss(net, batch: ActorBatch, target: torch.Tensor, cfg: Config):
    """Intra-option policy gradient with advantage G - Q_Omega(s, w) (``target``: G), entropy bonus,
    and termination gradient beta_w(s') (A(s', w) + xi) where the option can go on. Returns (loss, metrics)."""
    options = batch.options[:, None]
    q_all, beta_all, logits_all = net(batch.observations)
    with torch.no_grad():
        policy_advantage = target - q_all[batch.rows].gather(1, options).squeeze(1)
        advantage_mean = policy_advantage.mean()  # reported before any normalisation
        if cfg.normalize_advantages:
            policy_advantage = masked_normalize(policy_advantage, torch.ones_like(policy_advantage), eps=1e-6)
        q_next = q_all[batch.next_rows]
        going_on = 1 - batch.done
        termination_advantage = on_value_scale(q_next.gather(1, options).squeeze(1) - q_next.max(1).values, going_on,
                                               cfg.termination_advantage, shift=cfg.deliberation_cost) + cfg.xi
    logits = logits_all[batch.rows]  # (B, options, actions): the policy of the option followed
    log_pi = F.log_softmax(logits.gather(1, options[:, :, None].expand(-1, 1, logits.shape[-1])).squeeze(1), dim=1)
    entropy = -(log_pi.exp() * log_pi).sum(1).mean()
    policy_loss = -(log_pi.gather(1, batch.actions[:, None]).squeeze(1) * policy_advantage).mean()
    beta_w_next = beta_all[batch.next_rows].gather(1, options).squeeze(1)
    termination_loss = (beta_w_next * termination_advantage * going_on).mean()
    loss = policy_loss + termination_loss - cfg.ent_coef * entropy
    return loss, {"actor_loss": loss.detach(), "policy_loss": policy_loss.detach(),
                  "termination_loss": termination_loss.detach(), "entropy": entropy.detach(),
                  "advantage_mean": advantage_mean}


def on_value_scale(advantage: torch.Tensor, mask: torch.Tensor, kind: str, shift: float = 0.0) -> torch.Tensor:
    """The termination advantage plus ``shift`` (the deliberation cost, in reward units) as it is
    ("raw"), divided by the advantage's std over the masked batch ("scaled": A <= 0, so xi is the
    margin, in stds, by which another option must be better for this one to end), or also centred
    ("normalized": ends where worse than usual; the shift is added after centring, which
    would otherwise remove it)."""
    if kind == "raw":
        return advantage + shift if shift else advantage
    centred = advantage - masked_mean(advantage, mask) if kind == "normalized" else advantage
    return (centred + shift) / (masked_std(advantage, mask) + 1e-6)


def rollout_targets(window: dict, rows: torch.Tensor, utility_next: torch.Tensor, gamma: float) -> torch.Tensor:
    """The discounted return of each transition to the end of the update window, bootstrapped with
    U(s', w) of the step where the window or a truncated episode ends (0 past a termination), by
    drlab.returns.discounted_returns. ``window`` holds the (T, N) rewards, terminated, truncated and
    valid arrays; ``utility_next`` is U(s'_t, w_t) of the valid transitions, at ``rows`` of the window."""
    rows = rows.cpu().numpy()
    steps, num_envs = window["rewards"].shape
    utility = np.zeros(steps * num_envs)
    utility[rows] = utility_next.float().cpu().numpy()
    utility = utility.reshape(steps, num_envs)  # utility[t] = U(s'_t, w_t): values[t + 1] in discounted_returns
    values = np.concatenate([np.zeros((1, num_envs)), utility[:-1]])
    returns = discounted_returns(window["rewards"], window["terminated"], window["truncated"], window["valid"],
                                 gamma, values, utility[-1])
    return torch.from_numpy(returns.reshape(-1)[rows]).to(utility_next.device)


# ---- the learner ------------------------------------------------------------------------------

class Learner:
    def __init__(self, cfg: Config, agent: OptionAgent, rng):
        self.cfg, self.agent, self.rng = cfg, agent, rng
        self.net = agent.net
        # Training acts through an agent of its own: evaluations during training use the run's agent,
        # and each keeps its own active options. Its randomness is the run's (saved in checkpoints).
        self.behaviour = OptionAgent(self.net, cfg, agent.obs_space, agent.device, rng)
        self.target_net = copy.deepcopy(self.net).requires_grad_(False)
        self.params = list(self.net.parameters())
        # Two optimizers, each with its own learning rate, each stepping on its own loss's gradient.
        self.critic_opt = adam(self.params, cfg.critic_lr)
        self.actor_opt = adam(self.params, cfg.actor_lr)
        # The critic's "action" is the option: Q_Omega(s, w) is learned from (s, w, r, s').
        # Stacked frames stay uint8, each stored once; other observations as they are packed.
        frames = stacked_frames(agent.obs_space)
        self.buffer = ReplayBuffer(cfg.buffer_size, agent.obs_space.shape, agent.obs_space.dtype,
                                   agent.device, frames=frames, num_envs=cfg.num_envs)
        self.save_replay = saves_replay(cfg.save_replay, frames)
        self.refill = 0  # transitions the replay must hold before updates (after a resume without it)

    def update(self, recent: ActorBatch, step: int) -> dict:
        """Critic steps on replay batches, then one actor step on ``recent``, the on-policy
        transitions since the last update."""
        metrics = {}
        for _ in range(self.cfg.critic_updates):
            batch = self.buffer.sample(self.cfg.batch_size, self.rng)
            loss, metrics = critic_loss(self.net, self.target_net, batch, self.cfg.deliberation_cost)
            metrics["critic_grad_norm"] = gradient_step(self.critic_opt, self.params, loss, self.cfg.max_grad_norm)
        if not len(recent):  # every step since the last update was an autoreset step
            return metrics
        loss, actor_metrics = actor_loss(self.net, recent, actor_targets(self.target_net, recent, self.cfg), self.cfg)
        actor_metrics["actor_grad_norm"] = gradient_step(self.actor_opt, self.params, loss, self.cfg.max_grad_norm)
        return {**metrics, **actor_metrics}

    def sync_target(self) -> None:
        self.target_net.load_state_dict(self.net.state_dict())

    def state_dict(self) -> dict:
        state = {"agent": self.agent.state_dict(), "target": self.target_net.state_dict(),
                 "critic_opt": self.critic_opt.state_dict(), "actor_opt": self.actor_opt.state_dict()}
        if self.save_replay:
            state["buffer"] = self.buffer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> str:
        """Restore; returns a line saying what became of the replay."""
        self.agent.load_state_dict(state["agent"])
        self.target_net.load_state_dict(state["target"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
        else:  # the actor waits too: its termination and policy advantages come from the critic
            self.refill = min(self.cfg.learning_starts, self.buffer.capacity)
        return replay_note(self.buffer, "buffer" in state, self.cfg.save_replay, max(self.cfg.batch_size, self.refill))


# ---- the training loop ------------------------------------------------------------------------

def train_loop(run, learner: Learner) -> None:
    cfg, agent, buffer = run.cfg, learner.behaviour, learner.buffer
    obs = run.reset_envs()
    stored_obs = buffer.observe(obs)  # what the replay stores for obs (for frames: a handle)
    prev_done = np.zeros(cfg.num_envs, dtype=bool)
    starts = np.ones(cfg.num_envs, dtype=bool)  # this obs begins an episode: choose the option afresh
    stats = OptionStats(cfg.num_envs, cfg.num_options)
    recent: list[tuple] = []
    clock = run.clock
    while run.running():
        epsilon = linear_schedule(cfg.eps_start, cfg.eps_end, run.step, int(cfg.exploration_fraction * cfg.total_steps))
        clock.lap()
        actions = agent.act(obs, greedy=False, starts=starts, epsilon=epsilon)
        options = agent.options.copy()
        clock.lap("inference")
        next_obs, rewards, terminated, truncated, info = run.envs.step(actions)
        clock.lap("env")
        done = terminated | truncated
        valid = ~prev_done  # the autoreset step after an episode end is not a transition
        run.episodes.record(rewards, done, valid, info)
        stats.update(options, starts, valid)

        v = valid
        stored_next_obs = buffer.observe(next_obs)
        buffer.add(stored_obs[v], options[v], rewards[v], stored_next_obs[v], terminated[v], np.full(int(v.sum()), cfg.gamma))
        recent.append((obs.copy(), options, actions, rewards, terminated, done, valid))

        before, after = run.step, run.step + cfg.num_envs
        metrics = {}
        if len(recent) >= cfg.update_interval:
            if after > cfg.learning_starts and len(buffer) >= max(cfg.batch_size, learner.refill):
                metrics = learner.update(recent_batch(recent, next_obs, agent.device), run.step)
                metrics.update(stats.metrics(), epsilon=epsilon)
            recent = []
        if crossings(before, after, cfg.target_update_interval):
            learner.sync_target()
        clock.lap("learn")  # replay and updates

        obs, stored_obs, starts, prev_done = next_obs, stored_next_obs, prev_done, done  # next obs is a reset obs iff this step was an autoreset
        run.end_step(cfg.num_envs, metrics)


def recent_batch(recent: list[tuple], last_next_obs: np.ndarray, device) -> ActorBatch:
    """The on-policy transitions of ``recent`` (one tuple per vector step: obs, options, actions,
    rewards, terminated, done, valid) as an :class:`ActorBatch`: each step's obs, then the last
    step's next obs; the valid transitions' s at their own rows, s' N rows later."""
    obs, options, actions, rewards, terminated, done, valid = (np.concatenate(column) for column in zip(*recent))
    rows = torch.from_numpy(np.flatnonzero(valid)).to(device)
    shape = (len(recent), len(last_next_obs))
    window = {"rewards": rewards.reshape(shape), "terminated": terminated.reshape(shape),
              "truncated": (done & ~terminated).reshape(shape), "valid": valid.reshape(shape)}
    column = lambda array, dtype=None: torch.from_numpy(array[valid]).to(device, dtype)  # noqa: E731
    return ActorBatch(observations=obs_tensor(np.concatenate([obs, last_next_obs]), device), rows=rows,
                      next_rows=rows + len(last_next_obs), options=column(options), actions=column(actions),
                      rewards=column(rewards, torch.float32), terminated=column(terminated, torch.float32),
                      done=column(done, torch.float32), window=window)
