"""Collecting rollouts: the one act -> env step -> episode bookkeeping -> storage loop, run by the
learner's process (``LocalCollection``) and by every Ray runner (drlab.algos.runners)."""

from __future__ import annotations

import numpy as np

from drlab.buffers.rollout import Rollout
from drlab.run.clock import PhaseClock


def rollout_for(agent, length: int, num_envs: int) -> Rollout:
    """Empty rollout storage for ``agent``'s observations and action samples."""
    head = agent.net.head
    return Rollout(length, num_envs, agent.obs_space.shape, agent.obs_space.dtype, head.sample_shape, head.sample_dtype)


def collect(agent, envs, rollout: Rollout, obs: np.ndarray, prev_done: np.ndarray, clock: PhaseClock,
            record_episodes) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``rollout`` with T steps of ``envs`` from ``obs``: act -> env step -> episode
    bookkeeping (``record_episodes(rewards, dones, valid, info)``) -> storage, timing acting and
    stepping on ``clock``. Returns the observation and the done flags to carry on from. The same
    code runs in the learner's process and in each Ray runner."""
    for t in range(rollout.length):
        clock.lap()
        actions, sent = agent.explore(obs)  # the sample is stored; sent: clipped to a Box's bounds
        clock.lap("inference")
        next_obs, rewards, terminated, truncated, info = envs.step(sent)
        clock.lap("env")
        done = terminated | truncated
        valid = ~prev_done  # the autoreset step after an episode end is not a transition
        record_episodes(rewards, done, valid, info)
        rollout.store(t, obs, actions, rewards, terminated, truncated, valid)
        obs, prev_done = next_obs, done
    rollout.obs[-1] = obs
    return obs, prev_done


class LocalCollection:
    """Rollouts from the run's own envs, in the learner's process."""

    def __init__(self, run, agent):
        self.run, self.agent = run, agent
        self.obs = run.reset_envs()
        self.prev_done = np.zeros(run.cfg.num_envs, dtype=bool)

    def collect(self, rollout: Rollout) -> None:
        self.obs, self.prev_done = collect(self.agent, self.run.envs, rollout, self.obs, self.prev_done,
                                           self.run.clock, self.run.episodes.record)

    def close(self) -> None:
        pass
