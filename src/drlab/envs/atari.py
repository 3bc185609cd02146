"""Atari (ale-py), preprocessed for a Nature-CNN agent.

Training envs run on ale-py's C++ vector env (``AtariVectorEnv``): emulation, frame skip 4 with a
max over the last two frames, 84x84 grayscale resize, 4-frame stack, up to 30 no-ops and FIRE at
reset all happen in C++ threads, without the GIL. On this project's 2-core machine, 12
SpaceInvaders envs with random actions step at 2,003 env steps/s against 1,016 for Gymnasium's
``AtariPreprocessing`` + ``FrameStackObservation`` in a ``SyncVectorEnv`` and 733 for SB3's wrappers
(one run of benchmarks/pixels.py; 1,225 / 658 / 540 in a slower spell of the shared host).

Two things are training-only and live in :class:`AtariTrainingSignals` on top:

- a lost life ends the *training* episode (terminated), the game goes on: the next step is
  treated like an autoreset step (the agent's action is replaced by NOOP and the step is not a
  transition), as in DeepMind's EpisodicLifeEnv;
- rewards are clipped to their sign.

The game's own reward and episode end stay in ``info`` ("raw_reward", "game_over",
"game_step"); :func:`drlab.envs.autoreset.game_signals` hands them to the episode bookkeeping, so
every return drlab reports (progress bar, reward_mean_100, evaluation) is the raw full-game return.

Video (``drlab record``) needs the native 210x160 RGB screen, which the vector env does not give:
it plays in one ``gymnasium.make`` env under ``AtariPreprocessing`` + ``FrameStackObservation``,
the same preprocessing in Python (OpenCV's area resize, as in C++).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from drlab.envs.frames import FRAME_SIZE, FRAME_SKIP, STACK

NOOP_MAX = 30
MAX_EPISODE_FRAMES = 108_000  # 30 minutes of play at 60 Hz, the usual Atari cap


def is_atari(spec: gym.envs.registration.EnvSpec) -> bool:
    return isinstance(spec.entry_point, str) and spec.entry_point.startswith("ale_py")


def episode_frames(spec, max_episode_steps: int | None) -> int:
    """ALE's cap on emulator frames per game: ``max_episode_steps`` agent steps of FRAME_SKIP frames
    each when given, else the env's own cap (or MAX_EPISODE_FRAMES)."""
    if max_episode_steps:
        return int(max_episode_steps) * FRAME_SKIP
    return int(spec.kwargs.get("max_num_frames_per_episode") or MAX_EPISODE_FRAMES)


def make_atari_vec_env(spec, num_envs: int, training: bool, threads: int = 0,
                       max_episode_steps: int | None = None) -> gym.vector.VectorEnv:
    """``num_envs`` games of ``spec`` on ale-py's vector env (training signals on top when ``training``)."""
    from ale_py.vector_env import AtariVectorEnv

    envs = AtariVectorEnv(
        spec.kwargs["game"], num_envs,
        num_threads=threads,
        repeat_action_probability=float(spec.kwargs.get("repeat_action_probability", 0.0)),
        full_action_space=bool(spec.kwargs.get("full_action_space", False)),
        max_num_frames_per_episode=episode_frames(spec, max_episode_steps),
        img_height=FRAME_SIZE, img_width=FRAME_SIZE, grayscale=True, stack_num=STACK,
        frameskip=FRAME_SKIP, maxpool=True, noop_max=NOOP_MAX, use_fire_reset=True,
        episodic_life=False,  # ale-py's episodic_life restarts the whole game; see AtariTrainingSignals
        reward_clipping=False,  # clipped below, for training only
    )
    envs.spec = spec
    return AtariTrainingSignals(envs) if training else envs


class AtariTrainingSignals(gym.vector.VectorWrapper):
    """Life loss as the end of a training episode and sign-clipped rewards, over a vector env
    that reports full games with raw rewards and ``info["lives"]``; the raw game goes in ``info``."""

    NOOP = 0  # action 0 is NOOP in every game's minimal action set

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        n = env.num_envs
        self.lives = np.zeros(n, dtype=np.int64)
        self.after_life_loss = np.zeros(n, dtype=bool)  # this step continues the game after a lost life
        self.after_game_over = np.zeros(n, dtype=bool)  # this step is the inner env's autoreset step

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.lives = np.asarray(info["lives"], dtype=np.int64).copy()
        self.after_life_loss[:] = False
        self.after_game_over[:] = False
        return obs, info

    def step(self, actions):
        actions = np.where(self.after_life_loss, self.NOOP, np.asarray(actions)).astype(np.int64)
        obs, raw_rewards, game_terminated, game_truncated, info = self.env.step(actions)
        game_over = np.asarray(game_terminated | game_truncated, dtype=bool)
        game_step = ~self.after_game_over
        lives = np.asarray(info["lives"], dtype=np.int64)
        lost_life = game_step & (lives < self.lives) & ~game_over
        # The step after a lost life stands in for an autoreset step: no transition, no reward.
        rewards = np.where(self.after_life_loss, 0.0, np.sign(raw_rewards)).astype(np.float32)
        info = dict(info, raw_reward=np.where(game_step, raw_rewards, 0.0), game_over=game_over & game_step,
                    game_step=game_step)
        self.lives = lives
        self.after_life_loss = lost_life
        self.after_game_over = game_over
        return obs, rewards, game_terminated | lost_life, game_truncated, info


def make_atari_env(spec, render_mode: str | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """One game for video: full games, raw rewards, the vector env's preprocessing in Python."""
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    kwargs = dict(render_mode=render_mode, frameskip=1,
                  max_num_frames_per_episode=episode_frames(spec, max_episode_steps) if max_episode_steps
                  else MAX_EPISODE_FRAMES)
    env = gym.make(spec.id, **kwargs)
    env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=FRAME_SIZE,
                             terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    return FrameStackObservation(env, STACK, padding_type="zero")
