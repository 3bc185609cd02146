"""Pixel environments: Atari (ale-py) and VizDoom, preprocessed for a Nature-CNN agent.

Both produce (4, 84, 84) uint8 observations (four stacked 84x84 grayscale frames, oldest first)
and Discrete actions, with Gymnasium 1.x next-step autoreset like every other drlab env.

**Atari** training envs run on ale-py's C++ vector env (``AtariVectorEnv``): emulation, frame skip
4 with a max over the last two frames, 84x84 grayscale resize, 4-frame stack, up to 30 no-ops and
FIRE at reset all happen in C++ threads, without the GIL. On this project's 2-core machine, 12
SpaceInvaders envs with random actions step at 2,003 env steps/s against 1,016 for Gymnasium's
``AtariPreprocessing`` + ``FrameStackObservation`` in a ``SyncVectorEnv`` and 733 for SB3's wrappers
(one run of benchmarks/pixels.py; 1,225 / 658 / 540 in a slower spell of the shared host).

Two things are training-only and live in :class:`AtariTrainingSignals` on top:

- a lost life ends the *training* episode (terminated), the game goes on: the next step is
  treated like an autoreset step (the agent's action is replaced by NOOP and the step is not a
  transition), as in DeepMind's EpisodicLifeEnv;
- rewards are clipped to their sign.

The game's own reward and episode end stay in ``info`` ("raw_reward", "game_over",
"game_step"); :func:`drlab.envs.game_signals` hands them to the episode bookkeeping, so every
return drlab reports (progress bar, reward_mean_100, evaluation) is the raw full-game return.

Video (``drlab record``) needs the native 210x160 RGB screen, which the vector env does not give:
it plays in one ``gymnasium.make`` env under ``AtariPreprocessing`` + ``FrameStackObservation``,
the same preprocessing in Python (OpenCV's area resize, as in C++).

**VizDoom** scenarios (``Vizdoom*-v1``) render at 160x120 (the scenario files ask for 320x240;
the lower resolution steps ~3x faster and is all an 84x84 input needs), frame skip 4, then
grayscale and an area resize to 84x84 and a 4-frame stack. Recording renders at the scenario's
native 320x240 and resizes that for the agent. The scenarios hide Doom's status bar, so the agent
could not see its ammo or health: drlab draws the scenario's game variables (``gamevariables``)
as bars along the bottom rows of each 84x84 frame, one 2-row bar per variable (one pixel per round
of ammo, the full width for 100 health or armor). Without them a DefendCenter agent cannot tell a
full clip from an empty one and fires its 26 bullets away (benchmarks/results/pixels/README.md).
The wrapper also fixes the episode timeout, which the vizdoom env reports as terminated *and*
truncated: it is a truncation only.
"""

from __future__ import annotations

import os

import numpy as np
import gymnasium as gym

from drlab.errors import DrlabError

FRAME_SIZE = 84
STACK = 4
FRAME_SKIP = 4
NOOP_MAX = 30
MAX_EPISODE_FRAMES = 108_000  # 30 minutes of play at 60 Hz, the usual Atari cap
DOOM_TRAIN_RESOLUTION = "RES_160X120"
DOOM_NATIVE_RESOLUTION = "RES_320X240"
BAR_ROWS = 2  # height of one game-variable bar in the 84x84 frame
PERCENT_VARIABLES = ("HEALTH", "ARMOR")  # drawn with 100 filling the width; others one unit per pixel


def is_atari(spec: gym.envs.registration.EnvSpec) -> bool:
    return isinstance(spec.entry_point, str) and spec.entry_point.startswith("ale_py")


def is_vizdoom(spec: gym.envs.registration.EnvSpec) -> bool:
    return isinstance(spec.entry_point, str) and spec.entry_point.startswith("vizdoom")


# ---- Atari -------------------------------------------------------------------------------------

def make_atari_vec_env(spec, num_envs: int, training: bool, threads: int = 0) -> gym.vector.VectorEnv:
    """``num_envs`` games of ``spec`` on ale-py's vector env (training signals on top when ``training``)."""
    from ale_py.vector_env import AtariVectorEnv

    envs = AtariVectorEnv(
        spec.kwargs["game"], num_envs,
        num_threads=threads,
        repeat_action_probability=float(spec.kwargs.get("repeat_action_probability", 0.0)),
        full_action_space=bool(spec.kwargs.get("full_action_space", False)),
        max_num_frames_per_episode=int(spec.kwargs.get("max_num_frames_per_episode") or MAX_EPISODE_FRAMES),
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

    def __init__(self, env: gym.vector.VectorEnv, life_loss: bool = True, clip_rewards: bool = True):
        super().__init__(env)
        self.life_loss, self.clip_rewards = life_loss, clip_rewards
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
        lost_life = self.life_loss & game_step & (lives < self.lives) & ~game_over
        rewards = np.sign(raw_rewards) if self.clip_rewards else raw_rewards
        # The step after a lost life stands in for an autoreset step: no transition, no reward.
        rewards = np.where(self.after_life_loss, 0.0, rewards).astype(np.float32)
        info = dict(info, raw_reward=np.where(game_step, raw_rewards, 0.0), game_over=game_over & game_step,
                    game_step=game_step)
        self.lives = lives
        self.after_life_loss = lost_life
        self.after_game_over = game_over
        return obs, rewards, game_terminated | lost_life, game_truncated, info


def make_atari_env(spec, render_mode: str | None = None) -> gym.Env:
    """One game for video: full games, raw rewards, the vector env's preprocessing in Python."""
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    kwargs = dict(render_mode=render_mode, frameskip=1, max_num_frames_per_episode=MAX_EPISODE_FRAMES)
    env = gym.make(spec.id, **kwargs)
    env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=FRAME_SIZE,
                             terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    return FrameStackObservation(env, STACK, padding_type="zero")


# ---- VizDoom -----------------------------------------------------------------------------------

class DoomFrames(gym.ObservationWrapper):
    """The vizdoom env's ``screen`` as one 84x84 grayscale frame with its game variables as bars
    along the bottom; the timeout as a truncation."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE), np.uint8)
        game = getattr(env.unwrapped, "game", None)
        variables = game.get_available_game_variables() if game is not None else []
        self.bar_full_scale = [100.0 if v.name in PERCENT_VARIABLES else float(FRAME_SIZE) for v in variables]

    def observation(self, observation):
        import cv2

        gray = cv2.cvtColor(observation["screen"], cv2.COLOR_RGB2GRAY)
        frame = cv2.resize(gray, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)
        values = observation.get("gamevariables", ())
        for i, (value, full_scale) in enumerate(zip(values, self.bar_full_scale)):
            bar = frame[FRAME_SIZE - BAR_ROWS * (i + 1):FRAME_SIZE - BAR_ROWS * i]
            bar[:] = 0
            bar[:, :round(FRAME_SIZE * min(max(float(value), 0.0), full_scale) / full_scale)] = 255
        return frame

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float(reward), bool(terminated and not truncated), bool(truncated), info


def prepare_doom_workdir() -> None:
    """Create ``./_vizdoom/`` before any Doom process starts.

    Each Doom engine creates that directory in the working directory when it is missing and dies
    ("Failed to create ./_vizdoom/ directory: File exists") when another engine starting at the same
    moment made it first: parallel envs in a fresh checkout raced on it. Where it cannot be created
    (a read-only directory), the engine segfaults; this says why in one line instead.
    """
    try:
        os.makedirs("_vizdoom", exist_ok=True)
    except OSError as error:
        raise DrlabError(
            f"VizDoom keeps its files in ./_vizdoom/ and cannot create that directory in {os.getcwd()} "
            f"({error.strerror or error}); run drlab from a writable directory"
        ) from None


def make_vizdoom_env(spec, render_mode: str | None = None, native: bool = False) -> gym.Env:
    prepare_doom_workdir()
    resolution = DOOM_NATIVE_RESOLUTION if native else DOOM_TRAIN_RESOLUTION
    env = gym.make(spec.id, frame_skip=FRAME_SKIP, render_mode=render_mode, screen_resolution=resolution)
    from gymnasium.wrappers import FrameStackObservation

    return FrameStackObservation(DoomFrames(env), STACK, padding_type="zero")


def make_vizdoom_vec_env(spec, num_envs: int, asynchronous: bool = True) -> gym.vector.VectorEnv:
    """Each env in its own process by default: Doom renders while the network computes."""
    prepare_doom_workdir()  # here, in the parent, before the env processes race to create it
    fns = [lambda: make_vizdoom_env(spec) for _ in range(num_envs)]
    if asynchronous and num_envs > 1:
        return gym.vector.AsyncVectorEnv(fns, context="fork")
    return gym.vector.SyncVectorEnv(fns)
