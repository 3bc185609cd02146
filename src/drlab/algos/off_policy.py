"""The training loop of the replay-based algorithms (DQN, SAC, TD3), in pipeline order:

    act -> env step -> episode bookkeeping -> n-step window -> replay -> update(s) -> target sync -> log

The loop knows nothing of any one algorithm. The learner brings what is its own:

  ``act(obs, step)``           (actions for the envs, actions to store, scalars to log), batched over envs;
  ``update(batch, step)``      one gradient step on a replayed batch; returns its metrics; feeds
                               the TD errors back to ``buffer.update_priorities`` (prioritized replay);
  ``sync_target(before, after)``  target-network updates due between env steps ``before`` and
                               ``after`` (an interval's; learners that average every gradient step do
                               it in ``update``);
  ``buffer``                   its replay (drlab.buffers), ``rng`` (the run's generator: replay sampling),
  ``refill``                   transitions the replay must hold before updates (after a resume without it);
  ``online``                   True: each update learns from the transitions just collected and nothing
                               older (DQN's online variant), no sampling;
  ``next_action_targets``      True: transitions go into the replay one vector step late, with the action
                               taken at s' (SARSA targets; Discrete actions only); -1 where the episode
                               ended at s'.

and from the config: num_envs, n_step, gamma, learning_starts, batch_size, train_freq,
gradient_steps (per train_freq env steps), per_beta and total_steps. The run's clock times each phase
(inference: acting; env: stepping; learn: replay and updates), logged as ``perf/*_fraction``.
"""

from __future__ import annotations

import numpy as np

from drlab.buffers.nstep import NStepWindow
from drlab.buffers.prioritized import PrioritizedReplayBuffer, SymlogSoftmaxReplayBuffer
from drlab.buffers.replay import ReplayBuffer
from drlab.spaces.encoders import stacked_frames
from drlab.optim import crossings


def make_replay(cfg, obs_space, device, action_shape: tuple[int, ...] = (), action_dtype=np.int64,
                next_action_targets: bool = False) -> ReplayBuffer:
    """The replay ``cfg.replay`` names (uniform, per, symlog-softmax; online: room for what one vector
    step can emit), stacked frames stored once."""
    # An episode end flushes up to n_step transitions per env.
    capacity = cfg.num_envs * cfg.n_step if cfg.replay == "online" else cfg.buffer_size
    args = (capacity, obs_space.shape, obs_space.dtype, device)
    # Next-action targets add each transition one vector step late: the frame store keeps each
    # env's recent observations one step longer.
    kwargs = dict(frames=stacked_frames(obs_space), num_envs=cfg.num_envs, n_step=cfg.n_step + next_action_targets,
                  action_shape=action_shape, action_dtype=action_dtype)
    if cfg.replay == "per":
        return PrioritizedReplayBuffer(*args, alpha=cfg.per_alpha, eps=cfg.per_eps, **kwargs)
    if cfg.replay == "symlog-softmax":
        return SymlogSoftmaxReplayBuffer(*args, sort_interval=cfg.sort_interval, **kwargs)
    return ReplayBuffer(*args, **kwargs)


def per_beta(cfg, step: int) -> float:
    """Prioritized replay's importance-weight exponent, annealed linearly from ``cfg.per_beta`` to 1."""
    return cfg.per_beta + (1.0 - cfg.per_beta) * min(1.0, step / cfg.total_steps)


def train_loop(run, learner) -> None:
    cfg, buffer = run.cfg, learner.buffer
    obs = run.reset_envs()
    stored_obs = buffer.observe(obs)  # what the replay stores for obs (for frames: a handle)
    stored_actions = buffer.actions
    window = NStepWindow(cfg.num_envs, cfg.n_step, cfg.gamma, stored_obs.shape[1:], stored_obs.dtype,
                         stored_actions.shape[1:], stored_actions.dtype)
    prev_done = np.zeros(cfg.num_envs, dtype=bool)
    waiting = None  # next-action targets: the last step's transitions, waiting for the action taken at s'
    clock = run.clock
    while run.running():
        clock.lap()
        env_actions, actions, logged = learner.act(obs, run.step)
        clock.lap("inference")
        next_obs, rewards, terminated, truncated, info = run.envs.step(env_actions)
        clock.lap("env")
        done = terminated | truncated
        valid = ~prev_done  # the autoreset step after an episode end is not a transition
        run.episodes.record(rewards, done, valid, info)

        slots = np.zeros(0, dtype=np.int64)
        if waiting is not None:
            transitions, envs, ended = waiting
            slots = buffer.add(*transitions, next_actions=np.where(ended, -1, actions[envs]))
        stored_next_obs = buffer.observe(next_obs)
        transitions = window.push(stored_obs, actions, rewards, stored_next_obs, terminated, done, valid)
        if learner.next_action_targets:  # added next step; an episode that ended at s' takes no next action
            waiting = (transitions, window.envs, done[window.envs])
        else:
            slots = buffer.add(*transitions)

        before, after = run.step, run.step + cfg.num_envs
        metrics = {}
        if after > cfg.learning_starts and learner.online:
            if len(slots):  # the transitions just collected, nothing older
                metrics = learner.update(buffer.gather(slots), before)
        elif after > cfg.learning_starts and len(buffer) >= max(cfg.batch_size, learner.refill):
            beta = per_beta(cfg, after)
            for _ in range(crossings(before, after, cfg.train_freq) * cfg.gradient_steps):
                metrics = learner.update(buffer.sample(cfg.batch_size, learner.rng, beta), before)
        learner.sync_target(before, after)
        clock.lap("learn")  # replay and updates

        obs, stored_obs, prev_done = next_obs, stored_next_obs, done
        run.end_step(cfg.num_envs, {**metrics, **logged})
