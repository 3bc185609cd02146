"""drlab's presets for envs beyond classic control side by side with Stable-Baselines3: the same
algorithm, the same budget, the same seeds, each run in a fresh process, the libraries alternating.
Three suites: ``envs`` (discrete observations, MiniGrid's dict observations, highway-env's (5, 5)
kinematics), ``classic`` (the presets `drlab tune` found for Acrobot, MountainCar and LunarLander
against rl-baselines3-zoo's tuned settings at the zoo's budgets; REINFORCE, Actor-Critic and
Option-Critic, which SB3 does not have, against SB3's A2C) and ``continuous`` (Box actions: PPO and A2C on Pendulum, MountainCarContinuous,
LunarLanderContinuous, BipedalWalker; SAC and TD3 on Pendulum, LunarLanderContinuous, HalfCheetah and
Hopper; with rl-baselines3-zoo's published score beside them).

    python benchmarks/envs_side_by_side.py                         # every case, seeds 0,1,2 (highway: 0)
    python benchmarks/envs_side_by_side.py --suite continuous --only Pendulum-v1 LunarLanderContinuous-v3
    python benchmarks/envs_side_by_side.py --suite continuous --only Pendulum-v1 --algos a2c --steps 200000
    python benchmarks/envs_side_by_side.py --only FrozenLake-v1 Taxi-v4 --seeds 0,1
    python benchmarks/envs_side_by_side.py --only highway-fast-v0 --algos dqn --highway-seeds 0,1
    python benchmarks/envs_side_by_side.py --suite continuous --only HalfCheetah-v5 --algos sac --steps 100000 --jobs 2
    python benchmarks/envs_side_by_side.py --suite classic --only Acrobot-v1 --algos dqn --seeds 0,1,2,3,4
    python benchmarks/envs_side_by_side.py --quick                 # smoke test: 2,000 steps, 5 episodes, no files

For each (env, algo) drlab trains its preset as `drlab train ALGO ENV [--env-package PKG]` does, and
SB3 trains with the settings written below (each with its source) for the same budget, the preset's
total_steps, under the same stop rule where the preset has one: the FrozenLake, Taxi and MiniGrid
presets stop once a periodic greedy evaluation reaches a bar (stop_threshold, over eval_episodes
every eval_interval env steps), and SB3 then gets EvalCallback + StopTrainingOnRewardThreshold with
the same numbers. Both are then scored the same way: the mean raw return of N greedy episodes
(FrozenLake: N = 1000, so the score is the success rate; highway and MuJoCo: 50 and 10; else 100) on fresh episodes.
Wall time is training with its periodic evaluations (drlab: summary.json's train_seconds; SB3:
model.learn() with its callback), on one torch thread each.

Observation handling: drlab one-hot encodes Discrete observations, sends MiniGrid's 7x7x3 'image'
through its small CNN with 'direction' one-hot ('mission' dropped) and flattens highway's (5, 5)
Box. SB3 one-hot encodes Discrete observations itself and flattens the Box; for MiniGrid it gets
minigrid's FlatObsWrapper as rl-baselines3-zoo does (without its VecNormalize: see ZOO_MINIGRID_PPO).

Results (per seed and medians) replace the same cases in benchmarks/results/envs-side-by-side.json,
and the table in envs-side-by-side.md is rewritten from the JSON: a run of some cases keeps the
others. Needs stable-baselines3, minigrid and highway-env (`pip install -e .[bench]` for SB3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, run_measurement  # noqa: E402  (before any drlab import: the user's environment)

OUT = {"envs": RESULTS / "envs-side-by-side", "continuous": RESULTS / "continuous-side-by-side",
       "classic": RESULTS / "classic-side-by-side"}
EVAL_SEED_OFFSET = 10_000  # SB3's evaluation episodes start from seed + this (drlab uses its own offset)
QUICK_STEPS, QUICK_EPISODES = 2_000, 5


@dataclass(frozen=True)
class Case:
    env_id: str
    algo: str
    package: str | None = None   # --env-package
    eval_episodes: int = 100
    suite: str = "envs"
    published: str | None = None  # rl-baselines3-zoo's benchmark.md: score +- std at its budget
    sb3_algo: str | None = None  # SB3's algorithm where it has none of the same name (default: algo)

    @property
    def key(self) -> str:
        return f"{self.algo}:{self.env_id}"


CASES = [
    Case("FrozenLake-v1", "dqn", eval_episodes=1000),
    Case("FrozenLake-v1", "ppo", eval_episodes=1000),
    Case("Taxi-v4", "dqn"),
    Case("Taxi-v4", "ppo"),
    Case("MiniGrid-Empty-8x8-v0", "ppo", package="minigrid"),
    Case("MiniGrid-DoorKey-5x5-v0", "ppo", package="minigrid"),
    Case("highway-fast-v0", "dqn", package="highway_env", eval_episodes=50),
    Case("highway-fast-v0", "ppo", package="highway_env", eval_episodes=50),
    # rl-baselines3-zoo's benchmark.md (commit 22e3ff2) lists LunarLanderContinuous as -v2.
    Case("Pendulum-v1", "ppo", suite="continuous", published="-172.2 +- 104.2 (100k)"),
    Case("MountainCarContinuous-v0", "ppo", suite="continuous", published="88.3 +- 2.6 (20k)"),
    Case("LunarLanderContinuous-v3", "ppo", suite="continuous", published="270.9 +- 32.1 (1M)"),
    Case("BipedalWalker-v3", "ppo", suite="continuous", published="287.9 +- 2.4 (5M)"),
    Case("Pendulum-v1", "a2c", suite="continuous", published="-163.0 +- 103.2 (1M)"),
    Case("LunarLanderContinuous-v3", "a2c", suite="continuous", published="84.2 +- 145.9 (5M)"),
    # Off-policy (benchmark.md at zoo commit 0088472: MuJoCo as -v3).
    Case("Pendulum-v1", "sac", suite="continuous", published="-157.0 +- 88.7 (20k)"),
    Case("Pendulum-v1", "td3", suite="continuous", published="-151.9 +- 90.2 (20k)"),
    Case("LunarLanderContinuous-v3", "sac", suite="continuous", published="260.4 +- 65.5 (500k)"),
    Case("HalfCheetah-v5", "sac", suite="continuous", eval_episodes=10, published="9535.5 +- 100.5 (1M, -v3)"),
    # Classic control with tuned presets (rl-baselines3-zoo's benchmark.md; LunarLander there as -v2).
    Case("Acrobot-v1", "dqn", suite="classic", published="-76.6 (100k)"),
    Case("Acrobot-v1", "ppo", suite="classic", published="-73.5 (1M)"),
    Case("Acrobot-v1", "a2c", suite="classic", published="-83.4 (500k)"),
    Case("Acrobot-v1", "actor-critic", suite="classic", published="-83.4 (500k, the zoo's A2C)", sb3_algo="a2c"),
    Case("Acrobot-v1", "option-critic", suite="classic", published="-83.4 (500k, the zoo's A2C)", sb3_algo="a2c"),
    Case("MountainCar-v0", "dqn", suite="classic", published="-100.8 (120k)"),
    Case("MountainCar-v0", "ppo", suite="classic", published="-110.4 (1M)"),
    Case("MountainCar-v0", "a2c", suite="classic", published="-111.3 (1M)"),
    Case("LunarLander-v3", "a2c", suite="classic", published="156 (200k, -v2)"),
    Case("LunarLander-v3", "reinforce", suite="classic", published="156 (200k, -v2, the zoo's A2C)", sb3_algo="a2c"),
    Case("HalfCheetah-v5", "td3", suite="continuous", eval_episodes=10, published="9655.7 +- 969.9 (1M, -v3)"),
    Case("Hopper-v5", "sac", suite="continuous", eval_episodes=10, published="2325.5 +- 1129.7 (1M, -v3)"),
    Case("Hopper-v5", "td3", suite="continuous", eval_episodes=10, published="3606.4 +- 4.0 (1M, -v3)"),
]
CASE_BY_KEY = {case.key: case for case in CASES}


def preset(case: Case) -> dict:
    from drlab.config import load_presets

    return load_presets(case.algo, case.env_id)["default"]


# ---- SB3's settings ---------------------------------------------------------------------------

def matched_dqn(p: dict) -> dict:
    """rl-baselines3-zoo has no FrozenLake or Taxi entry (hyperparams/dqn.yml and ppo.yml at zoo commit
    22e3ff2, 2026-04), and SB3's own defaults are Atari's (a target network synced every 10,000 steps,
    1M-transition buffer), which do not fit a 50k-step budget. So SB3 gets drlab's preset, translated:
    the same network, learning rate, discount, buffer, batch, learning start, exploration schedule and
    target interval, and the same number of gradient steps per env step. SB3's DQN steps one env
    (its default and the zoo's), drlab the preset's num_envs; SB3's loss is always Huber, drlab's the
    preset's; SB3 has no double-DQN target."""
    return dict(n_envs=1, kwargs=dict(
        learning_rate=p["lr"], gamma=p["gamma"], buffer_size=p["buffer_size"], batch_size=p["batch_size"],
        learning_starts=p["learning_starts"], train_freq=p["train_freq"], gradient_steps=p.get("gradient_steps", 1),
        target_update_interval=p["target_update_interval"], exploration_fraction=p["exploration_fraction"],
        exploration_initial_eps=p.get("eps_start", 1.0), exploration_final_eps=p["eps_end"],
        max_grad_norm=p.get("max_grad_norm", 10.0), policy_kwargs=dict(net_arch=list(p["hidden"]))))


def matched_ppo(p: dict) -> dict:
    """As matched_dqn (no zoo entry): drlab's preset translated. Same envs, rollout, minibatch, epochs,
    GAE, clip range, entropy and value weights, learning rate (and its linear decay), separate
    tanh actor and critic of the preset's sizes with orthogonal initialisation (SB3's default).
    drlab's separate critic learning rate (critic_lr) has no SB3 counterpart: SB3 uses lr for both."""
    import torch

    lr = p["lr"]
    schedule = (lambda remaining, lr=lr: remaining * lr) if p.get("lr_schedule") == "linear" else lr
    activation = torch.nn.ReLU if p.get("activation") == "relu" else torch.nn.Tanh
    return dict(n_envs=p["num_envs"], kwargs=dict(
        n_steps=p["n_steps"], batch_size=p["batch_size"], n_epochs=p["n_epochs"], gamma=p["gamma"],
        gae_lambda=p["gae_lambda"], clip_range=p.get("clip_range", 0.2), ent_coef=p.get("ent_coef", 0.0),
        vf_coef=p.get("vf_coef", 0.5), max_grad_norm=p.get("max_grad_norm", 0.5), learning_rate=schedule,
        policy_kwargs=dict(net_arch=dict(pi=list(p["hidden"]), vf=list(p["hidden"])), activation_fn=activation)))


# rl-baselines3-zoo, hyperparams/ppo.yml (commit 22e3ff2): the &minigrid-defaults anchor every MiniGrid
# entry there uses (MiniGrid-DoorKey-5x5-v0 is listed with it and n_timesteps 1e5; Empty-8x8 is not
# listed, and this is the zoo's setting for its Empty-Random-5x5). FlatObsWrapper, and no VecNormalize,
# although the zoo normalises: with minigrid 3.x the zoo's settings do not learn (rl-baselines3-zoo issue
# #500, open). Measured here on DoorKey-5x5 seed 0: with VecNormalize the training return fell from 0.04
# to 0.0 by 80k steps and stayed there (0.00 on every seed of both envs in the first full run); without
# it, 0.93 at 31k steps and 0.96 from 51k.
ZOO_MINIGRID_PPO = dict(n_envs=8, wrapper="minigrid.wrappers.FlatObsWrapper", normalize=False, kwargs=dict(
    n_steps=128, batch_size=64, gae_lambda=0.95, gamma=0.99, n_epochs=10, ent_coef=0.0,
    learning_rate=2.5e-4, clip_range=0.2))

# highway-env's own SB3 examples (Farama-Foundation/HighwayEnv, scripts/sb3_highway_dqn.py and
# scripts/sb3_highway_ppo.py), which train on highway-fast-v0 for 2e4 steps. The PPO example runs 6
# envs in a SubprocVecEnv; here they step in a DummyVecEnv, as drlab steps its envs in one process.
HIGHWAY_DQN = dict(n_envs=1, kwargs=dict(
    policy_kwargs=dict(net_arch=[256, 256]), learning_rate=5e-4, buffer_size=15_000, learning_starts=200,
    batch_size=32, gamma=0.8, train_freq=1, gradient_steps=1, target_update_interval=50))
HIGHWAY_PPO = dict(n_envs=6, kwargs=dict(
    policy_kwargs=dict(net_arch=dict(pi=[256, 256], vf=[256, 256])), n_steps=64 * 12 // 6, batch_size=64,
    n_epochs=10, learning_rate=5e-4, gamma=0.8))

# rl-baselines3-zoo's continuous-control settings (hyperparams/ppo.yml and a2c.yml, commit 22e3ff2),
# gSDE (use_sde) included where the zoo uses it, as drlab's presets do (--sde). "lin_X" learning rates
# decay linearly to 0.
ZOO_CONTINUOUS = {
    "ppo:Pendulum-v1": dict(n_envs=4, kwargs=dict(
        n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3, clip_range=0.2,
        use_sde=True, sde_sample_freq=4)),
    "ppo:MountainCarContinuous-v0": dict(n_envs=1, normalize=True, kwargs=dict(
        batch_size=256, n_steps=8, gamma=0.9999, learning_rate=7.77e-05, ent_coef=0.00429, clip_range=0.1,
        n_epochs=10, gae_lambda=0.9, max_grad_norm=5, vf_coef=0.19, use_sde=True,
        policy_kwargs=dict(log_std_init=-3.29, ortho_init=False))),
    "ppo:LunarLanderContinuous-v3": dict(n_envs=16, kwargs=dict(
        n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999, n_epochs=4, ent_coef=0.01)),
    "ppo:BipedalWalker-v3": dict(n_envs=32, normalize=True, kwargs=dict(
        n_steps=2048, batch_size=64, gae_lambda=0.95, gamma=0.999, n_epochs=10, ent_coef=0.0, learning_rate=3e-4,
        clip_range=0.18)),
    "a2c:Pendulum-v1": dict(n_envs=8, normalize=True, kwargs=dict(
        ent_coef=0.0, max_grad_norm=0.5, n_steps=8, gae_lambda=0.9, vf_coef=0.4, gamma=0.9, use_rms_prop=True,
        normalize_advantage=False, learning_rate="lin_7e-4", use_sde=True,
        policy_kwargs=dict(log_std_init=-2, ortho_init=False))),
    "a2c:LunarLanderContinuous-v3": dict(n_envs=4, normalize=True, kwargs=dict(
        ent_coef=0.0, max_grad_norm=0.5, n_steps=8, gae_lambda=0.9, vf_coef=0.4, gamma=0.99, use_rms_prop=True,
        normalize_advantage=False, learning_rate="lin_7e-4", use_sde=True,
        policy_kwargs=dict(log_std_init=-2, ortho_init=False))),
}

# rl-baselines3-zoo's SAC and TD3 settings (hyperparams/sac.yml and td3.yml) on SB3's defaults (SAC:
# 256 x 256, lr 3e-4; TD3: 400 x 300, lr 1e-3; both batch 256, one gradient step per env step). TD3's
# exploration noise ("noise_std") becomes a NormalActionNoise of that std on every action dimension.
ZOO_MUJOCO_SAC = dict(n_envs=1, kwargs=dict(learning_starts=10_000))
ZOO_MUJOCO_TD3 = dict(n_envs=1, noise_std=0.1, kwargs=dict(learning_starts=10_000))
ZOO_CONTINUOUS.update({
    "sac:Pendulum-v1": dict(n_envs=1, kwargs=dict(learning_rate=1e-3)),
    # Pendulum's episodes are 200 steps: the zoo's gradient steps at each episode's end.
    "td3:Pendulum-v1": dict(n_envs=1, noise_std=0.1, kwargs=dict(
        gamma=0.98, buffer_size=200_000, learning_starts=10_000, gradient_steps=-1, train_freq=(1, "episode"),
        learning_rate=1e-3, policy_kwargs=dict(net_arch=[400, 300]))),
    "sac:LunarLanderContinuous-v3": dict(n_envs=1, kwargs=dict(
        batch_size=256, learning_rate="lin_7.3e-4", buffer_size=1_000_000, tau=0.01, learning_starts=10_000,
        policy_kwargs=dict(net_arch=[400, 300]))),
    "sac:HalfCheetah-v5": ZOO_MUJOCO_SAC, "sac:Hopper-v5": ZOO_MUJOCO_SAC,
    "td3:HalfCheetah-v5": ZOO_MUJOCO_TD3, "td3:Hopper-v5": ZOO_MUJOCO_TD3,
})

# rl-baselines3-zoo's tuned classic-control settings (hyperparams/dqn.yml at commit ce95481, ppo.yml and
# a2c.yml), on SB3's defaults. "normalize: true" is VecNormalize (observations and rewards). The zoo's
# LunarLander entries are for -v2.
ZOO_CLASSIC_DQN = dict(learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0, gamma=0.99,
                       target_update_interval=250, train_freq=4, gradient_steps=-1, exploration_fraction=0.12,
                       exploration_final_eps=0.1, policy_kwargs=dict(net_arch=[256, 256]))
ZOO_CLASSIC = {
    "dqn:Acrobot-v1": dict(n_envs=1, kwargs=ZOO_CLASSIC_DQN),
    "dqn:MountainCar-v0": dict(n_envs=1, kwargs=dict(
        learning_rate=4e-3, batch_size=128, buffer_size=10_000, learning_starts=1000, gamma=0.98,
        target_update_interval=600, train_freq=16, gradient_steps=8, exploration_fraction=0.2,
        exploration_final_eps=0.07, policy_kwargs=dict(net_arch=[256, 256]))),
    "ppo:Acrobot-v1": dict(n_envs=16, normalize=True, kwargs=dict(
        n_steps=256, gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0)),
    "ppo:MountainCar-v0": dict(n_envs=16, normalize=True, kwargs=dict(
        n_steps=16, gae_lambda=0.98, gamma=0.99, n_epochs=4, ent_coef=0.0)),
    "a2c:Acrobot-v1": dict(n_envs=16, normalize=True, kwargs=dict(ent_coef=0.0)),
    "a2c:MountainCar-v0": dict(n_envs=16, normalize=True, kwargs=dict(ent_coef=0.0)),
    "a2c:LunarLander-v3": dict(n_envs=8, kwargs=dict(gamma=0.995, n_steps=5, learning_rate="lin_0.00083",
                                                     ent_coef=0.00001)),
}
for _algo in ("actor-critic", "option-critic"):
    ZOO_CLASSIC[f"{_algo}:Acrobot-v1"] = ZOO_CLASSIC["a2c:Acrobot-v1"]
ZOO_CLASSIC["reinforce:LunarLander-v3"] = ZOO_CLASSIC["a2c:LunarLander-v3"]
ZOO_CONTINUOUS.update(ZOO_CLASSIC)  # looked up the same way

SB3_SOURCE = {
    "FrozenLake-v1": "drlab's preset translated (no rl-zoo entry)",
    "Taxi-v4": "drlab's preset translated (no rl-zoo entry)",
    "MiniGrid-Empty-8x8-v0": "rl-zoo minigrid-defaults (FlatObsWrapper) without its VecNormalize",
    "MiniGrid-DoorKey-5x5-v0": "rl-zoo MiniGrid-DoorKey-5x5-v0 (FlatObsWrapper) without its VecNormalize",
    "highway-fast-v0": "highway-env's scripts/sb3_highway_{dqn,ppo}.py",
    **{case.env_id: "rl-zoo (gSDE where the zoo has it)" for case in CASES if case.suite == "continuous"},
    **{case.env_id: "rl-zoo (tuned; A2C's for the algorithms SB3 lacks)" for case in CASES if case.suite == "classic"},
}


def sb3_settings(case: Case, gsde: bool = True) -> dict:
    if case.key in ZOO_CONTINUOUS:
        settings = ZOO_CONTINUOUS[case.key]
        if not gsde:  # the zoo's settings with a state-independent log-std, as drlab's presets have
            kwargs = {k: v for k, v in settings["kwargs"].items() if k not in ("use_sde", "sde_sample_freq")}
            settings = {**settings, "kwargs": kwargs}
        rate = settings["kwargs"].get("learning_rate")
        if isinstance(rate, str):  # "lin_7e-4": SB3 calls the schedule with the remaining fraction
            start = float(rate.removeprefix("lin_"))
            settings = {**settings, "kwargs": {**settings["kwargs"], "learning_rate": lambda left: left * start}}
        return settings
    if case.env_id.startswith("MiniGrid"):
        return ZOO_MINIGRID_PPO
    if case.env_id.startswith("highway"):
        return HIGHWAY_DQN if case.algo == "dqn" else HIGHWAY_PPO
    return (matched_dqn if case.algo == "dqn" else matched_ppo)(preset(case))


# ---- one measurement (in its own process) -----------------------------------------------------

def sb3_env(case: Case, wrapper: str | None):
    import importlib

    import gymnasium as gym

    if case.package:
        importlib.import_module(case.package)
    env = gym.make(case.env_id)
    if wrapper:
        module, _, name = wrapper.rpartition(".")
        env = getattr(importlib.import_module(module), name)(env)
    return env


def sb3_measure(case: Case, seed: int, steps: int, episodes: int, stop: bool = True, gsde: bool = True) -> dict:
    import gymnasium as gym
    import numpy as np
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    settings = sb3_settings(case, gsde)
    wrapper = settings.get("wrapper")
    envs = make_vec_env(lambda: sb3_env(case, wrapper), n_envs=settings["n_envs"], seed=seed)
    if settings.get("normalize"):
        envs = VecNormalize(envs, gamma=settings["kwargs"].get("gamma", 0.99))
    extra = {}
    if "noise_std" in settings:
        from stable_baselines3.common.noise import NormalActionNoise

        dims = envs.action_space.shape[-1]
        extra["action_noise"] = NormalActionNoise(np.zeros(dims), settings["noise_std"] * np.ones(dims))
    model = getattr(sb3, (case.sb3_algo or case.algo).upper())("MlpPolicy", envs, seed=seed, device="cpu", verbose=0,
                                            **settings["kwargs"], **extra)
    rule = preset(case)
    callback = None
    if stop and rule.get("stop_on_solve"):  # the preset's stop rule, evaluated as EvalCallback evaluates
        eval_envs = make_vec_env(lambda: sb3_env(case, wrapper), n_envs=1, seed=seed + 2 * EVAL_SEED_OFFSET)
        if settings.get("normalize"):  # EvalCallback copies the training statistics into it
            eval_envs = VecNormalize(eval_envs, training=False, norm_reward=False)
        callback = EvalCallback(
            eval_envs, n_eval_episodes=rule["eval_episodes"], eval_freq=max(1, rule["eval_interval"] // envs.num_envs),
            deterministic=True, verbose=0,
            callback_on_new_best=StopTrainingOnRewardThreshold(reward_threshold=rule["stop_threshold"], verbose=0))
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    seconds = time.perf_counter() - start
    steps_done = int(model.num_timesteps)

    # Greedy evaluation on fresh episodes of one env, raw returns; observations normalised with the
    # statistics training ended with where VecNormalize was used.
    normalizer = model.get_vec_normalize_env()
    env = sb3_env(case, wrapper)
    returns = []
    obs, _ = env.reset(seed=seed + EVAL_SEED_OFFSET)
    for _ in range(episodes):
        total, done = 0.0, False
        while not done:
            x = normalizer.normalize_obs(obs[None]) if normalizer is not None else obs
            action, _ = model.predict(x, deterministic=True)
            if isinstance(env.action_space, gym.spaces.Discrete):
                action = int(np.asarray(action).reshape(-1)[0])
            else:  # SB3's predict clips a Box action to the bounds; one env: drop the batch axis
                action = np.asarray(action).reshape(env.action_space.shape)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        obs, _ = env.reset()
    env.close()
    return {"score": float(np.mean(returns)), "seconds": seconds, "steps": steps_done, "episodes": len(returns)}


def drlab_measure(case: Case, seed: int, steps: int, episodes: int, quick: bool = False) -> dict:
    from drlab.run.runner import train_from_preset

    overrides = {"seed": seed, "progress": False, "final_eval_episodes": episodes, "total_steps": steps,
                 "torch_threads": 1}  # as SB3 here, whatever the preset says
    if case.package:
        overrides["env_packages"] = (case.package,)
    if quick:  # a tiny budget and no periodic evaluations
        overrides.update(eval_interval=0)
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_from_preset(case.algo, case.env_id, {**overrides, "run_dir": str(Path(tmp) / "r")}).summary
    return {"score": summary["eval"]["mean"], "seconds": summary["train_seconds"], "steps": summary["steps"],
            "episodes": summary["eval"]["episodes"]}


# ---- the table ----------------------------------------------------------------------------------

def median(values):
    return statistics.median(values) if values else float("nan")


def seed_ranges(seeds: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    spans: list[list[int]] = []
    for seed in sorted(seeds):
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def table(results: dict) -> str:
    lines = ["| env | algo | budget (env steps) | drlab median score | SB3 median score | drlab median wall s "
             "| SB3 median wall s | wall ratio (SB3 / drlab) | median steps (drlab / SB3) | seeds | SB3 settings "
             "| rl-zoo published (its budget) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in CASES:
        r = results.get(case.key)
        if not r:
            continue
        d, s = r["drlab"], r["sb3"]
        dw, sw = median([m["seconds"] for m in d]), median([m["seconds"] for m in s])
        fmt = "{:.3f}" if case.env_id == "FrozenLake-v1" else "{:.2f}"
        source = r.get("sb3_settings", SB3_SOURCE[case.env_id]) + (" + the preset's stop rule" if r.get("stop_rule") else "")
        lines.append(
            f"| {case.env_id} | {case.algo} | {r['budget']:,} | {fmt.format(median([m['score'] for m in d]))} "
            f"| {fmt.format(median([m['score'] for m in s]))} | {dw:.1f} | {sw:.1f} | {sw / dw:.1f}x "
            f"| {median([m['steps'] for m in d]):,.0f} / {median([m['steps'] for m in s]):,.0f} "
            f"| {seed_ranges([m['seed'] for m in d])} | {source} | {case.published or '-'} |")
    return "\n".join(lines)


def per_seed(results: dict) -> str:
    lines = ["| env | algo | seed | drlab score | SB3 score | drlab wall s | SB3 wall s | drlab steps | SB3 steps "
             "| load avg before (drlab, SB3) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for case in CASES:
        r = results.get(case.key)
        if not r:
            continue
        for d, s in zip(r["drlab"], r["sb3"]):
            lines.append(f"| {case.env_id} | {case.algo} | {d['seed']} | {d['score']:.3f} | {s['score']:.3f} "
                         f"| {d['seconds']:.1f} | {s['seconds']:.1f} | {d['steps']:,} | {s['steps']:,} "
                         f"| {d['load']:.2f}, {s['load']:.2f} |")
    return "\n".join(lines)


def write(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    out.with_suffix(".md").write_text(
        f"drlab presets against Stable-Baselines3, same budget, same seeds, alternating, each run in a fresh "
        f"process; `python benchmarks/envs_side_by_side.py`, last written {time.strftime('%Y-%m-%d %H:%M')} on "
        f"{platform.machine()} with {os.cpu_count()} cores. Score: mean raw return of greedy episodes after "
        f"training (FrozenLake: 1000 episodes, so the success rate; highway: 50; MuJoCo: 10; else 100). Wall: training "
        f"with its periodic evaluations, one torch thread. Budget: the preset's total_steps for both unless the "
        f"budget column says less (`--steps`); where the "
        f"preset stops on a periodic greedy evaluation, SB3 stops on the same one (EvalCallback). Medians over "
        f"the seeds listed.\n\n" + table(results)
        + "\n\nPer seed:\n\n" + per_seed(results) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=sorted(OUT), default="envs", help="which cases (default: envs)")
    p.add_argument("--only", nargs="+", metavar="ENV", help="env ids to run (default: all of the suite)")
    p.add_argument("--steps", type=int, help="a budget for both libraries other than the preset's total_steps")
    p.add_argument("--algos", default="dqn,ppo")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--highway-seeds", default="0", help="seeds for highway-fast-v0 (~5 minutes per run)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK_STEPS:,} steps and {QUICK_EPISODES} evaluation episodes; writes no files")
    p.add_argument("--out", type=Path, help="results path without suffix (.md and .json; default: by suite)")
    p.add_argument("--sb3-without-gsde", action="store_true",
                   help="SB3 with the zoo's continuous settings but without gSDE (use_sde), for a comparison with drlab "
                        "presets run with sde=false; "
                        "writes ...-sb3-without-gsde.md unless --out says otherwise")
    p.add_argument("--add-seeds", action="store_true",
                   help="keep the results of the case's other seeds already in the output and add these seeds to them "
                        "(default: the seeds measured now replace the case's results)")
    p.add_argument("--jobs", type=int, choices=(1, 2), default=1,
                   help="2: a seed's drlab and SB3 runs at the same time, one core each (walls then say less)")
    p.add_argument("--measure", nargs=5, metavar=("LIBRARY", "CASE", "SEED", "STEPS", "EPISODES"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:  # one measurement, in this fresh process
        library, key, seed, steps, episodes = args.measure
        case, seed, steps, episodes = CASE_BY_KEY[key], int(seed), int(steps), int(episodes)
        if library == "drlab":
            m = drlab_measure(case, seed, steps, episodes, args.quick)
        else:
            m = sb3_measure(case, seed, steps, episodes, stop=not args.quick, gsde=not args.sb3_without_gsde)
        print(json.dumps(m))
        return

    suite = [c for c in CASES if c.suite == args.suite]
    args.out = args.out or (OUT[args.suite].with_name(OUT[args.suite].name + "-sb3-without-gsde")
                            if args.sb3_without_gsde else OUT[args.suite])
    unknown = set(args.only or ()) - {c.env_id for c in suite}
    if unknown:
        p.error(f"unknown env(s): {', '.join(sorted(unknown))} (known: {', '.join(dict.fromkeys(c.env_id for c in suite))})")
    algos = args.algos.split(",")
    cases = [c for c in suite if (not args.only or c.env_id in args.only) and c.algo in algos]
    results = {}
    if not args.quick and args.out.with_suffix(".json").exists():
        results = json.loads(args.out.with_suffix(".json").read_text())
    print("| case | seed | library | score | wall s | steps | load |\n|---|---|---|---|---|---|---|", flush=True)
    turn = 0
    for case in cases:
        seeds = args.highway_seeds if case.env_id.startswith("highway") else args.seeds
        budget = QUICK_STEPS if args.quick else args.steps or preset(case)["total_steps"]
        episodes = QUICK_EPISODES if args.quick else case.eval_episodes
        measured = [int(s) for s in seeds.split(",")]
        runs = {"drlab": [], "sb3": []}
        if args.add_seeds and case.key in results:
            runs = {lib: [m for m in results[case.key][lib] if m["seed"] not in measured] for lib in runs}
        for seed in measured:
            order = ("drlab", "sb3") if turn % 2 == 0 else ("sb3", "drlab")
            turn += 1
            def measure(library: str) -> dict:
                load = os.getloadavg()[0]
                command = [sys.executable, __file__, "--measure", library, case.key, str(seed), str(budget), str(episodes)]
                command += ["--sb3-without-gsde"] if args.sb3_without_gsde else []
                line, stolen = run_measurement(command + (["--quick"] if args.quick else []))
                return {**json.loads(line), "seed": seed, "load": round(load, 2), "cpu_steal": round(stolen, 3),
                        "jobs": args.jobs}

            with ThreadPoolExecutor(args.jobs) as pool:
                measured_now = dict(zip(order, pool.map(measure, order)))
            for library in order:
                m = measured_now[library]
                runs[library].append(m)
                print(f"| {case.key} | {seed} | {library} | {m['score']:.3f} | {m['seconds']:.1f} | {m['steps']:,} "
                      f"| {m['load']:.2f} |", flush=True)
        rule = preset(case)
        stop_rule = None if args.quick or not rule.get("stop_on_solve") else {
            k: rule[k] for k in ("stop_threshold", "eval_interval", "eval_episodes")}
        results[case.key] = {"env": case.env_id, "algo": case.algo, "budget": budget, "eval_episodes": episodes,
                             "sb3_settings": SB3_SOURCE[case.env_id] + (" without gSDE" if args.sb3_without_gsde else ""),
                             "stop_rule": stop_rule, **{lib: sorted(ms, key=lambda m: m["seed"]) for lib, ms in runs.items()}}
        if not args.quick:  # after each case: a long run that is stopped keeps the cases it finished
            write(results, args.out)
    print()
    print(table(results))
    if not args.quick:
        print(f"wrote {args.out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
