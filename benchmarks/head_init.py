"""Why drlab's A2C SpaceInvaders preset keeps small policy-head weights where the course notebooks
initialise every layer (heads included) orthogonally with gain sqrt 2: the initial policy each init
gives, on frames a random policy sees.

    python benchmarks/head_init.py [--networks 10] [--frames 512]

For each init and each of --networks freshly initialised networks (seeds 0..N-1) it reports, over
--frames SpaceInvaders observations collected by random play: the mean entropy of pi(.|s) (uniform
over 6 actions: ln 6 = 1.79), the mean probability of the most likely action, and how often the
greedy action is the network's single most frequent one (1.0: the same action on every frame).
A policy that starts near-deterministic explores little and gets little gradient towards the
actions it does not take. Writes benchmarks/results/head-init-spaceinvaders.md.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from drlab.envs import make_vec_env
from drlab.nets import obs_tensor, orthogonal_init
from drlab.policies import ActorCritic
from drlab.spaces.heads import CategoricalHead

ENV = "SpaceInvadersNoFrameskip-v4"
RESULTS = Path(__file__).parent / "results"


def random_play_frames(count: int, seed: int) -> np.ndarray:
    envs = make_vec_env(ENV, 8)
    obs, _ = envs.reset(seed=seed)
    rng, frames = np.random.default_rng(seed), []
    while sum(len(f) for f in frames) < count:
        obs, *_ = envs.step(rng.integers(0, envs.single_action_space.n, 8))
        frames.append(obs.copy())
    envs.close()
    return np.concatenate(frames)[:count]


def initial_policy(frames: np.ndarray, seed: int, head_gain: float | None) -> dict:
    torch.manual_seed(seed)
    net = ActorCritic(gym.spaces.Box(0, 255, frames.shape[1:], np.uint8), CategoricalHead(6), (512,))  # drlab's init: sqrt 2 inside, 0.01 policy, 1.0 value head
    if head_gain is not None:  # the notebooks': sqrt 2 on the heads too
        orthogonal_init(net.policy_head, head_gain)
        orthogonal_init(net.value_head, head_gain)
    with torch.no_grad():
        logits, _ = net(obs_tensor(frames, torch.device("cpu")))
    probs = torch.softmax(logits.float(), -1)
    entropy = float(-(probs * probs.clamp_min(1e-12).log()).sum(-1).mean())
    greedy = probs.argmax(-1).numpy()
    return {"entropy": entropy, "top_prob": float(probs.max(-1).values.mean()),
            "same_greedy": float(np.bincount(greedy, minlength=6).max() / len(greedy))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=10)
    parser.add_argument("--frames", type=int, default=512)
    args = parser.parse_args()
    torch.set_num_threads(2)
    frames = random_play_frames(args.frames, seed=0)
    rows = ["| head init | entropy of pi (max 1.79) | mean top-action probability | greedy action's share |",
            "|---|---|---|---|"]
    for name, gain in (("drlab: policy 0.01, value 1.0", None), ("notebooks: sqrt 2 on both heads", math.sqrt(2))):
        results = [initial_policy(frames, seed, gain) for seed in range(args.networks)]
        med = {k: float(np.median([r[k] for r in results])) for k in results[0]}
        lo = {k: min(r[k] for r in results) for k in results[0]}
        hi = {k: max(r[k] for r in results) for k in results[0]}
        rows.append(f"| {name} | " + " | ".join(f"{med[k]:.3f} ({lo[k]:.3f}-{hi[k]:.3f})"
                                                for k in ("entropy", "top_prob", "same_greedy")) + " |")
    table = "\n".join(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "head-init-spaceinvaders.md").write_text(
        f"The initial A2C policy on {ENV} under two head initialisations; median (min-max) over {args.networks} "
        f"networks, on {args.frames} frames of random play. `python benchmarks/head_init.py`, "
        f"{time.strftime('%Y-%m-%d')}.\n\n{table}\n")


if __name__ == "__main__":
    main()
