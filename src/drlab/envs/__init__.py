"""Making environments: one factory for vector envs (training, evaluation) and single envs (video),
with the optional pixel envs (Atari, VizDoom) and the space checks the algorithms need.

Every vector env uses Gymnasium 1.x next-step autoreset; see :mod:`drlab.envs.autoreset`.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import sys

import gymnasium as gym
import numpy as np

from drlab.envs import four_rooms
from drlab.envs.atari import is_atari, make_atari_env, make_atari_vec_env
from drlab.envs.sources import import_env_packages, split_env_id
from drlab.envs.vizdoom import is_vizdoom, make_vizdoom_env, make_vizdoom_vec_env
from drlab.errors import DrlabError
from drlab.spaces.encoders import needs_packing

# Env-id prefixes that need an optional extra, and the command that installs it.
OPTIONAL_ENV_PACKAGES = {
    "ALE/": ("ale_py", "pip install 'drlab[atari]'"),
    "Vizdoom": ("vizdoom.gymnasium_wrapper", "pip install 'drlab[vizdoom]'"),
}
four_rooms.register()  # drlab/FourRooms-v0 and drlab/FourRoomsTransfer-v0: nothing to install

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
        module, env_id = split_env_id(env_id)
        import_env_packages((module,), env_id)
    _register_optional(env_id)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = (f" (did you mean {', '.join(close)}?)" if close else
                f" (an env that a module registers: MODULE:{env_id}, or --env-package MODULE)")
        raise DrlabError(f"unknown environment '{env_id}'{hint}") from None
    if is_mujoco(spec):
        quiet_mujoco_deprecations()
    return spec


def is_mujoco(spec: gym.envs.registration.EnvSpec) -> bool:
    return isinstance(spec.entry_point, str) and spec.entry_point.startswith("gymnasium.envs.mujoco")


@functools.cache
def quiet_mujoco_deprecations() -> None:
    """MuJoCo prints a deprecation warning about Gymnasium's own model files (HalfCheetah's
    'settotalmass') on stderr each time it loads them; a user can do nothing about it. Those are
    dropped; MuJoCo's other warnings still reach stderr, as one note each."""
    import mujoco

    def warn(message: str) -> None:
        if "is deprecated" not in message:
            print(f"drlab: note: MuJoCo: {message.strip()}", file=sys.stderr)

    mujoco.set_mju_user_warning(warn)


def reward_threshold(env_id: str) -> float | None:
    return env_spec(env_id).reward_threshold


def _dependency_error(env_id: str, err: Exception) -> DrlabError:
    return DrlabError(f"{env_id} needs a package that is not installed: {err}")


def make_env(env_id: str, render_mode: str | None = None, max_episode_steps: int | None = None,
             frame_stack: int = 1) -> gym.Env:
    """One (non-vector) env for video: pixel envs at their native resolution, preprocessed as in training.
    ``max_episode_steps`` replaces the env's own time limit (a truncation after that many steps);
    other envs' observations are stacked and packed as in training (:func:`observation_wrappers`)."""
    spec = env_spec(env_id)
    limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    try:
        if is_atari(spec):
            return make_atari_env(spec, render_mode, max_episode_steps)
        if is_vizdoom(spec):
            return make_vizdoom_env(spec, render_mode, native=True, max_episode_steps=max_episode_steps)
        env = gym.make(spec.id, render_mode=render_mode, **limit)
    except gym.error.DependencyNotInstalled as err:
        raise _dependency_error(env_id, err) from None
    for wrap in observation_wrappers(spec.id, frame_stack):
        env = wrap(env)
    return env


def observation_wrappers(env_id: str, frame_stack: int = 1) -> list:
    """What every copy of a (non-pixel) env is wrapped in: ``frame_stack`` > 1 stacks that many
    observations (Gymnasium's FrameStackObservation: an episode starts with copies of its first
    observation), and observations other than flat vectors are packed into one array (drlab.spaces)."""
    from drlab.spaces.encoders import packing_wrapper

    stack = [lambda env: gym.wrappers.FrameStackObservation(env, frame_stack)] if frame_stack > 1 else []
    return [*stack, lambda env: packing_wrapper(env, env_id)]


# Threads of ale-py's vector env (0: one per core). A Ray task or runner sets it to the CPUs Ray
# gave it, so that processes sharing a machine do not each start a thread per core.
ENV_THREADS = {"atari": 0}


def make_vec_env(env_id: str, num_envs: int, seed: int | None = None, training: bool = False,
                 max_episode_steps: int | None = None, frame_stack: int = 1) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped as one batch, with next-step autoreset.

    Uses the env's native vectorized implementation where there is one (CartPole; Atari on
    ale-py's C++ vector env), else a SyncVectorEnv (for small envs, subprocesses cost more than
    they save on two cores; VizDoom runs in subprocesses). ``training`` adds the training-only
    signals of Atari (life loss, clipped rewards; see drlab.envs.atari); evaluation leaves it off.
    If ``seed`` is given the envs are reset with it (env i gets seed + i) and the action space
    is seeded too. ``max_episode_steps`` replaces the env's own time limit: episodes are truncated
    after that many steps (Atari: agent steps of a full game; the emulator's frame cap is set to it).
    Observations other than flat vectors and Atari/VizDoom frames are packed into one array
    (drlab.spaces.encoders), after stacking ``frame_stack`` of them when that is > 1.
    """
    if num_envs < 1:
        raise DrlabError(f"num_envs must be >= 1 (got {num_envs})")
    spec = env_spec(env_id)
    limit = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    try:
        if is_atari(spec) or is_vizdoom(spec):
            if frame_stack > 1:
                raise DrlabError(f"{env_id} stacks its frames itself (4 for Atari, as its preset says for VizDoom): "
                                 "frame_stack is for other envs")
            if is_atari(spec):
                envs = make_atari_vec_env(spec, num_envs, training, threads=ENV_THREADS["atari"],
                                          max_episode_steps=max_episode_steps)
            else:
                envs = make_vizdoom_vec_env(spec, num_envs, max_episode_steps)
        else:
            envs = None
            if spec.vector_entry_point is not None and frame_stack == 1:  # native vector envs: flat vectors
                envs = gym.make_vec(spec.id, num_envs=num_envs, vectorization_mode="vector_entry_point", **limit)
                if needs_packing(envs.single_observation_space):
                    envs.close()
                    envs = None
            if envs is None:
                envs = gym.make_vec(spec.id, num_envs=num_envs, vectorization_mode="sync",
                                    wrappers=observation_wrappers(spec.id, frame_stack), **limit)
    except gym.error.DependencyNotInstalled as err:
        raise _dependency_error(env_id, err) from None
    assert envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) == gym.vector.AutoresetMode.NEXT_STEP
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs


