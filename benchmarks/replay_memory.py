"""Memory of a 100k-transition Atari replay: the frame replay (each frame once) as DQN uses it, filled
from the real training env with random actions, against a replay of whole stacks (s and s' as
4-frame stacks, what drlab stored before; its size is computed, not allocated).

    python benchmarks/replay_memory.py [--env BreakoutNoFrameskip-v4] [--transitions 100000] [--num-envs 4]

Prints and writes benchmarks/results/replay-memory.md: the process's resident memory before and
after filling, the pool's frames in use, and a checkpoint of the replay (compact: only the frames
the stored transitions use).
"""

from __future__ import annotations

import argparse
import io
import resource
import time
from pathlib import Path

import numpy as np
import torch

from drlab.buffers.nstep import NStepWindow
from drlab.buffers.replay import ReplayBuffer
from drlab.envs import make_vec_env

RESULTS = Path(__file__).parent / "results"


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--transitions", type=int, default=100_000)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS / "replay-memory.md")
    args = parser.parse_args()

    envs = make_vec_env(args.env, args.num_envs, seed=0, training=True)
    obs, _ = envs.reset(seed=0)
    shape = envs.single_observation_space.shape
    before = resident_mb()
    buffer = ReplayBuffer(args.transitions, shape, np.uint8, torch.device("cpu"), frames=True, num_envs=args.num_envs)
    stored = buffer.observe(obs)
    window = NStepWindow(args.num_envs, 1, 0.99, stored.shape[1:], stored.dtype)
    rng = np.random.default_rng(0)
    prev_done = np.zeros(args.num_envs, dtype=bool)
    start = time.perf_counter()
    steps = added = 0
    while len(buffer) < args.transitions or steps < args.transitions + 10_000:  # full, then wrapped
        actions = rng.integers(0, envs.single_action_space.n, args.num_envs)
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        done = terminated | truncated
        stored_next = buffer.observe(next_obs)
        added += len(buffer.add(*window.push(stored, actions, rewards, stored_next, terminated, done, ~prev_done)))
        stored, prev_done, steps = stored_next, done, steps + args.num_envs
    fill_seconds = time.perf_counter() - start
    after = resident_mb()
    envs.close()

    checkpoint = io.BytesIO()
    torch.save(buffer.state_dict(), checkpoint)
    frame_bytes = int(np.prod(shape[1:]))
    whole_stacks = args.transitions * 2 * int(np.prod(shape))
    pool = buffer.observations
    rows = [
        ("env", f"{args.env}, {args.num_envs} envs, random actions, {steps:,} env steps ({fill_seconds:.0f} s)"),
        ("transitions stored", f"{len(buffer):,} of {added:,} added ({added - len(buffer):,} evicted; the other "
                               f"{steps - added:,} env steps were autoreset steps, not transitions)"),
        ("frames in the pool", f"{pool.frames_in_use:,} in use ({pool.frames_in_use / len(buffer):.3f} per transition), "
                               f"{len(pool.frames):,} allocated"),
        ("replay arrays (frames in use + handles + scalars)", f"{buffer.nbytes / 2**30:.3f} GiB"),
        ("resident memory of the process, before -> after filling", f"{before:,.0f} MiB -> {after:,.0f} MiB "
                                                                     f"(+{(after - before) / 1024:.3f} GiB)"),
        ("replay in a checkpoint (torch.save of its state)", f"{len(checkpoint.getvalue()) / 2**30:.3f} GiB"),
        ("whole stacks (s and s' as 4-frame stacks), computed", f"{whole_stacks / 2**30:.3f} GiB "
                                                                 f"({whole_stacks / buffer.nbytes:.1f}x)"),
        ("one frame", f"{frame_bytes:,} bytes"),
    ]
    text = "# Replay memory on Atari\n\n`python benchmarks/replay_memory.py " + \
        f"--env {args.env} --transitions {args.transitions} --num-envs {args.num_envs}`\n\n" + \
        "| what | measured |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
