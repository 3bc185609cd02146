"""Making environments: one factory for vector envs (training, evaluation) and single envs (video),
with the optional pixel envs (Atari, VizDoom) and the space checks the algorithms need.

Every vector env uses Gymnasium 1.x next-step autoreset; see :mod:`drlab.envs.autoreset`.
"""

from __future__ import annotations

import difflib
import importlib

import gymnasium as gym
import numpy as np

from drlab.envs.atari import is_atari, make_atari_env, make_atari_vec_env
from drlab.envs.vizdoom import is_vizdoom, make_vizdoom_env, make_vizdoom_vec_env
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
    """The registered spec of ``env_id``, or a one-line error with the closest known ids.
    ``MODULE:ENV_ID`` imports MODULE first (see drlab.envs.sources)."""
    if ":" in env_id:
        from drlab.envs.sources import import_env_packages, split_env_id

        module, env_id = split_env_id(env_id)
        import_env_packages((module,), env_id)
    _register_optional(env_id)
    try:
        return gym.spec(env_id)
    except gym.error.Error:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = (f" (did you mean {', '.join(close)}?)" if close else
                f" (an env that a module registers: MODULE:{env_id}, or --env-package MODULE)")
        raise DrlabError(f"unknown environment '{env_id}'{hint}") from None


def reward_threshold(env_id: str) -> float | None:
    return env_spec(env_id).reward_threshold


def _dependency_error(env_id: str, err: Exception) -> DrlabError:
    return DrlabError(f"{env_id} needs a package that is not installed: {err}")


def make_env(env_id: str, render_mode: str | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """One (non-vector) env for video: pixel envs at their native resolution, preprocessed as in training.
    ``max_episode_steps`` replaces the env's own time limit (a truncation after that many steps)."""
    spec = env_spec(env_id)
    limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    try:
        if is_atari(spec):
            return make_atari_env(spec, render_mode, max_episode_steps)
        if is_vizdoom(spec):
            return make_vizdoom_env(spec, render_mode, native=True, max_episode_steps=max_episode_steps)
        return gym.make(env_id, render_mode=render_mode, **limit)
    except gym.error.DependencyNotInstalled as err:
        raise _dependency_error(env_id, err) from None


# Threads of ale-py's vector env (0: one per core). A Ray task or runner sets it to the CPUs Ray
# gave it, so that processes sharing a machine do not each start a thread per core.
ENV_THREADS = {"atari": 0}


def make_vec_env(env_id: str, num_envs: int, seed: int | None = None, training: bool = False,
                 max_episode_steps: int | None = None) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped as one batch, with next-step autoreset.

    Uses the env's native vectorized implementation where there is one (CartPole; Atari on
    ale-py's C++ vector env), else a SyncVectorEnv (for small envs, subprocesses cost more than
    they save on two cores; VizDoom runs in subprocesses). ``training`` adds the training-only
    signals of Atari (life loss, clipped rewards; see drlab.envs.atari); evaluation leaves it off.
    If ``seed`` is given the envs are reset with it (env i gets seed + i) and the action space
    is seeded too. ``max_episode_steps`` replaces the env's own time limit: episodes are truncated
    after that many steps (Atari: agent steps of a full game; the emulator's frame cap is set to it).
    """
    if num_envs < 1:
        raise DrlabError(f"num_envs must be >= 1 (got {num_envs})")
    spec = env_spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    try:
        if is_atari(spec):
            envs = make_atari_vec_env(spec, num_envs, training, threads=ENV_THREADS["atari"],
                                      max_episode_steps=max_episode_steps)
        elif is_vizdoom(spec):
            envs = make_vizdoom_vec_env(spec, num_envs, max_episode_steps)
        else:
            envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **limit)
    except gym.error.DependencyNotInstalled as err:
        raise _dependency_error(env_id, err) from None
    assert envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) == gym.vector.AutoresetMode.NEXT_STEP
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs


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
