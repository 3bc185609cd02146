"""Environment factory and the bookkeeping that Gymnasium 1.x next-step autoreset needs.

Gymnasium's vector envs reset an env on the step *after* it reported terminated or truncated:
that step returns the reset observation, reward 0 and ignores the action. It is not a
transition. Every training loop in drlab keeps ``prev_done`` and treats ``valid = ~prev_done``
as the mask of real transitions; :class:`EpisodeStats` does the same for episode returns.
"""

from __future__ import annotations

import difflib
import importlib

import gymnasium as gym
import numpy as np

from drlab import pixel_envs
from drlab.errors import DrlabError

# Env-id prefixes that need an optional extra, and the command that installs it.
OPTIONAL_ENV_PACKAGES = {
    "ALE/": ("ale_py", "pip install 'drlab[atari]'"),
    "Vizdoom": ("vizdoom.gymnasium_wrapper", "pip install 'drlab[vizdoom]'"),
}
# Old-style Atari ids (SpaceInvadersNoFrameskip-v4) are registered by ale_py as well.
ATARI_V4_SUFFIXES = ("NoFrameskip-v4", "Deterministic-v4")


def _register_optional(env_id: str) -> None:
    """Import the package that registers ``env_id`` if it is an optional one, or say how to get it."""
    for prefix, (module, install) in OPTIONAL_ENV_PACKAGES.items():
        if env_id.startswith(prefix) or (prefix == "ALE/" and env_id.endswith(ATARI_V4_SUFFIXES)):
            try:
                mod = importlib.import_module(module)
            except ImportError:
                raise DrlabError(f"{env_id} needs an optional dependency; install it with: {install}") from None
            if module == "ale_py":
                gym.register_envs(mod)


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id``, or a one-line error with the closest known ids."""
    _register_optional(env_id)
    try:
        return gym.spec(env_id)
    except gym.error.Error:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DrlabError(f"unknown environment '{env_id}'{hint}") from None


def reward_threshold(env_id: str) -> float | None:
    return env_spec(env_id).reward_threshold


def _dependency_error(env_id: str, err: Exception) -> DrlabError:
    return DrlabError(f"{env_id} needs a package that is not installed: {err}")


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """One (non-vector) env for video: pixel envs at their native resolution, preprocessed as in training."""
    spec = env_spec(env_id)
    try:
        if pixel_envs.is_atari(spec):
            return pixel_envs.make_atari_env(spec, render_mode)
        if pixel_envs.is_vizdoom(spec):
            return pixel_envs.make_vizdoom_env(spec, render_mode, native=True)
        return gym.make(env_id, render_mode=render_mode)
    except gym.error.DependencyNotInstalled as err:
        raise _dependency_error(env_id, err) from None


def make_vec_env(env_id: str, num_envs: int, seed: int | None = None, training: bool = False) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped as one batch, with next-step autoreset.

    Uses the env's native vectorized implementation where there is one (CartPole; Atari on
    ale-py's C++ vector env), else a SyncVectorEnv (for small envs, subprocesses cost more than
    they save on two cores; VizDoom runs in subprocesses). ``training`` adds the training-only
    signals of Atari (life loss, clipped rewards; see drlab.pixel_envs); evaluation leaves it off.
    If ``seed`` is given the envs are reset with it (env i gets seed + i) and the action space
    is seeded too.
    """
    if num_envs < 1:
        raise DrlabError(f"num_envs must be >= 1 (got {num_envs})")
    spec = env_spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    try:
        if pixel_envs.is_atari(spec):
            envs = pixel_envs.make_atari_vec_env(spec, num_envs, training)
        elif pixel_envs.is_vizdoom(spec):
            envs = pixel_envs.make_vizdoom_vec_env(spec, num_envs)
        else:
            envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    except gym.error.DependencyNotInstalled as err:
        raise _dependency_error(env_id, err) from None
    assert envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) == gym.vector.AutoresetMode.NEXT_STEP
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs


def game_signals(rewards, dones, valid, info) -> tuple:
    """(rewards, episode ends, real steps) of the *game*, for the episode bookkeeping: what the env
    reports for training, unless it also reports the full game (Atari: life loss and reward
    clipping are training-only; see drlab.pixel_envs)."""
    if isinstance(info, dict) and "raw_reward" in info:
        return info["raw_reward"], info["game_over"], info["game_step"]
    return rewards, dones, valid


class EpisodeStats:
    """Raw (unclipped) return and length of the episode running in each of N envs.

    ``update`` takes one vector step and returns the returns and lengths of the episodes that
    ended on it. The autoreset step (``valid`` False) adds nothing.
    """

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def update(self, rewards, dones, valid) -> tuple[np.ndarray, np.ndarray]:
        self.returns += np.where(valid, rewards, 0.0)
        self.lengths += valid
        ended = dones & valid
        finished = self.returns[ended].copy(), self.lengths[ended].copy()
        self.returns[ended] = 0.0
        self.lengths[ended] = 0
        return finished

    def reset(self) -> None:
        self.returns[:] = 0.0
        self.lengths[:] = 0


def check_discrete_actions(algo: str, env_id: str, envs: gym.vector.VectorEnv) -> int:
    """Number of actions, or a one-line error naming the action space the env has."""
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise DrlabError(f"{algo} needs a discrete action space, but {env_id} has {space}")
    return int(space.n)


def is_image_space(space) -> bool:
    """Stacked frames, (C, H, W) uint8: what the Nature CNN body takes."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


def check_vector_observations(algo: str, env_id: str, envs: gym.vector.VectorEnv, images: bool = False) -> None:
    """Flat vector observations (MLP body), or also stacked frames when the algorithm has a CNN body."""
    space = envs.single_observation_space
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return
    if images and is_image_space(space):
        return
    body = "an MLP or a CNN body needs flat vectors or (C, H, W) uint8 frames" if images else \
        "an MLP body needs flat vector observations"
    raise DrlabError(f"{algo} with {body}, but {env_id} has {space}")
