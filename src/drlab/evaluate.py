"""Playing a trained agent: greedy or stochastic evaluation over exactly N episodes, and one
episode in one env (for videos and pictures)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from drlab.envs import make_vec_env
from drlab.envs.autoreset import EpisodeStats, game_signals

MAX_EVAL_ENVS = 16


def eval_env_seed(seed: int) -> int:
    """The seed the evaluation envs are reset with (env i gets it + i): blocks of MAX_EVAL_ENVS
    seeds, one per evaluation seed, below 2**31 (ALE's vector env takes a 32-bit int)."""
    return seed * MAX_EVAL_ENVS % 2**31


def evaluate(agent, env_id: str, episodes: int, seed: int, greedy: bool = True,
             max_episode_steps: int | None = None, frame_stack: int = 1) -> dict:
    """Mean and std of raw returns over exactly ``episodes`` episodes (truncated after
    ``max_episode_steps`` when given, else at the env's own time limit; observations stacked as
    the agent was trained, ``frame_stack``).

    The episodes run on up to 16 envs at once. Each env is given a fixed quota of episodes
    up front; taking "the first N episodes to finish" instead would favour short episodes.
    ``seed`` picks the episodes: the envs are reset with seed x 16 (env i with that + i, as
    Gymnasium seeds vector envs), so evaluations with different seeds share no env's episodes
    (with seed + i, runs of consecutive seeds would be scored on nearly the same episodes).
    For an agent with options the result also holds ``options``: the mean duration of an option
    (steps from its choice to the next choice of another option or the episode's end) and each
    option's share of the steps, over the evaluated episodes.
    """
    n = min(episodes, MAX_EVAL_ENVS)
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    envs = make_vec_env(env_id, n, max_episode_steps=max_episode_steps, frame_stack=frame_stack)
    option_stats = None
    if agent.num_options:
        from drlab.algos.option_agent import OptionStats

        option_stats = OptionStats(n, agent.num_options)
    try:
        obs, _ = envs.reset(seed=eval_env_seed(seed))
        stats = EpisodeStats(n)
        finished = np.zeros(n, dtype=np.int64)
        prev_done = np.zeros(n, dtype=bool)
        starts = np.ones(n, dtype=bool)  # envs whose observation begins an episode (agents with options care)
        returns: list[float] = []
        while (finished < quota).any():
            actions = agent.act(obs, greedy=greedy, starts=starts)
            valid = ~prev_done
            if option_stats is not None:  # steps of the episodes that count: envs still under quota
                option_stats.update(agent.options, starts, valid & (finished < quota))
            obs, rewards, terminated, truncated, info = envs.step(actions)
            done = terminated | truncated
            starts = prev_done  # this step was an autoreset step: obs is a reset observation
            rewards, game_over, game_step = game_signals(rewards, done, valid, info)
            ended = np.flatnonzero(game_over & game_step)
            episode_returns, _ = stats.update(rewards, game_over, game_step)
            for env_index, ret in zip(ended, episode_returns):
                if finished[env_index] < quota[env_index]:
                    returns.append(float(ret))
                    finished[env_index] += 1
            prev_done = done
    finally:
        envs.close()
    result = {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "episodes": len(returns), "greedy": greedy}
    if option_stats is not None:
        option_stats.close_spells()
        stats = option_stats.metrics()
        result["options"] = {"mean_duration": stats.get("option_duration"),
                             "shares": [float(stats[f"option_share_{w}"]) for w in range(agent.num_options)]}
    return result


@dataclass
class Episode:
    """What :func:`play_episode` saw: the observation each action was taken from, the active option
    at each step (agents with options), the raw reward of each step, the rendered frames (one more
    than the steps: the final state too) and the raw return."""

    observations: list = field(default_factory=list)
    options: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    frames: list = field(default_factory=list)
    total: float = 0.0

    @property
    def length(self) -> int:
        return len(self.observations)


def play_episode(agent, env: gym.Env, seed: int, greedy: bool = True, max_steps: int = 10_000,
                 render: bool = False) -> Episode:
    """One episode of ``agent`` in the single env ``env`` (at most ``max_steps`` steps)."""
    obs, _ = env.reset(seed=seed)
    episode = Episode()
    if render:
        episode.frames.append(env.render())
    for step in range(max_steps):
        action = agent.act(obs[None], greedy=greedy, starts=np.array([step == 0]))[0]
        episode.observations.append(obs)
        if agent.num_options:
            episode.options.append(int(agent.options[0]))
        obs, reward, terminated, truncated, _ = env.step(action)
        episode.rewards.append(float(reward))
        episode.total += float(reward)
        if render:
            episode.frames.append(env.render())
        if terminated or truncated:
            break
    return episode
