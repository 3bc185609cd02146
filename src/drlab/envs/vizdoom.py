"""VizDoom, preprocessed for a Nature-CNN agent.

Scenarios (``Vizdoom*-v1``) render at 160x120 (the scenario files ask for 320x240;
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

import gymnasium as gym
import numpy as np

from drlab.envs.frames import FRAME_SIZE, FRAME_SKIP, STACK
from drlab.errors import DrlabError

TRAIN_RESOLUTION = "RES_160X120"
NATIVE_RESOLUTION = "RES_320X240"
BAR_ROWS = 2  # height of one game-variable bar in the 84x84 frame
PERCENT_VARIABLES = ("HEALTH", "ARMOR")  # drawn with 100 filling the width; others one unit per pixel


def is_vizdoom(spec: gym.envs.registration.EnvSpec) -> bool:
    return isinstance(spec.entry_point, str) and spec.entry_point.startswith("vizdoom")


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


def make_vizdoom_env(spec, render_mode: str | None = None, native: bool = False,
                     max_episode_steps: int | None = None) -> gym.Env:
    from gymnasium.wrappers import FrameStackObservation

    prepare_doom_workdir()
    resolution = NATIVE_RESOLUTION if native else TRAIN_RESOLUTION
    limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    env = gym.make(spec.id, frame_skip=FRAME_SKIP, render_mode=render_mode, screen_resolution=resolution, **limit)
    return FrameStackObservation(DoomFrames(env), STACK, padding_type="zero")


def make_vizdoom_vec_env(spec, num_envs: int, max_episode_steps: int | None = None) -> gym.vector.VectorEnv:
    """Each env in its own process: Doom renders while the network computes."""
    prepare_doom_workdir()  # here, in the parent, before the env processes race to create it
    fns = [lambda: make_vizdoom_env(spec, max_episode_steps=max_episode_steps) for _ in range(num_envs)]
    if num_envs > 1:
        return gym.vector.AsyncVectorEnv(fns, context="fork")
    return gym.vector.SyncVectorEnv(fns)
