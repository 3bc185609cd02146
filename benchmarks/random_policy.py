"""The random policy's score on an env, measured the way drlab evaluates an agent: raw returns of
whole episodes (whole games on Atari), exactly N of them, on the evaluation envs. The reference
that "learns clearly above random" is measured against.

    python benchmarks/random_policy.py SpaceInvadersNoFrameskip-v4 [--episodes 100] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from drlab.envs import make_vec_env
from drlab.evaluate import evaluate


class RandomAgent:
    """Uniformly random actions, batched like a drlab agent."""

    def __init__(self, num_actions: int, seed: int):
        self.num_actions, self.rng = num_actions, np.random.default_rng(seed)

    def act(self, obs, greedy=True, starts=None):
        return self.rng.integers(0, self.num_actions, len(obs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_id")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    envs = make_vec_env(args.env_id, 1)
    num_actions = int(envs.single_action_space.n)
    envs.close()
    result = evaluate(RandomAgent(num_actions, args.seed), args.env_id, args.episodes, args.seed)
    print(f"random policy on {args.env_id}: {result['mean']:.1f} +- {result['std']:.1f} over {result['episodes']} episodes")


if __name__ == "__main__":
    main()
