"""Reference for the a2c LunarLander-v3 bar: Stable-Baselines3's A2C with rl-baselines3-zoo's tuned
hyperparameters for LunarLander (a2c.yml: 8 envs, 5-step rollouts, gamma 0.995, learning rate 8.3e-4
decaying linearly to 0, entropy 1e-5; SB3's defaults otherwise: RMSProp, no GAE, value weight 0.5,
gradient norm 0.5), scored the way drlab scores its runs: the mean of 100 greedy episodes.

    python benchmarks/sb3_a2c_lunarlander.py --steps 200000 --seeds 0,1,2

Needs stable-baselines3 (not a drlab dependency). Runs go one after another, so train_seconds are
comparable with drlab's `train_seconds` on the same machine. Prints one markdown row per run and a
summary row.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

EVAL_SEED_OFFSET = 10_000  # episode i of the evaluation of seed s starts from reset(seed=s + offset + i)


def train(seed: int, steps: int):
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    envs = make_vec_env("LunarLander-v3", n_envs=8, seed=seed)
    model = A2C("MlpPolicy", envs, gamma=0.995, n_steps=5, learning_rate=lambda remaining: 8.3e-4 * remaining,
                ent_coef=1e-5, seed=seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    return model, time.perf_counter() - start


def greedy_returns(model, seed: int, episodes: int) -> list[float]:
    env = gym.make("LunarLander-v3")
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + EVAL_SEED_OFFSET + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args()
    print("| seed | steps | train_seconds | greedy mean (100 episodes) | std |\n|---|---|---|---|---|", flush=True)
    means, seconds = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        model, train_seconds = train(seed, args.steps)
        returns = greedy_returns(model, seed, args.episodes)
        means.append(float(np.mean(returns)))
        seconds.append(train_seconds)
        print(f"| {seed} | {args.steps:,} | {train_seconds:.1f} | {means[-1]:.1f} | {np.std(returns):.1f} |", flush=True)
    print(f"\nmedian {statistics.median(means):.1f}; at or above 200: {sum(m >= 200 for m in means)}/{len(means)}; "
          f"median train_seconds {statistics.median(seconds):.1f}")


if __name__ == "__main__":
    main()
