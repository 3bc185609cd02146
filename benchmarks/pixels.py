"""Pixel throughput: drlab's A2C against Stable-Baselines3's A2C on Atari, side by side in one run.

Both train A2C with the Nature CNN (SB3: CnnPolicy) on the same env with the same number of envs
and rollout length (default SpaceInvadersNoFrameskip-v4, 12 envs x 5 steps, 2 torch threads) for
the same number of env steps; the runs alternate (drlab, SB3, drlab, SB3, ...) so that both see the
same machine, and the medians and their ratio are printed, with the share of CPU time the host
stole during each measurement (a shared VM: above a few percent, the repeat says little) and written to
benchmarks/results/pixels-throughput.{md,json}.

What differs is only how each library gets there: SB3 steps its Python Atari wrappers in a
DummyVecEnv (rl-zoo's default) and runs the network in float32; drlab steps ale-py's C++ vector
env and, with its preset, runs the CNN under bfloat16 autocast. ``drlab-fp32`` (preset with
--bf16 off) shows how much of the gap the bf16 part is.

    pip install -e '.[bench]'   # stable-baselines3, a benchmark-only dependency
    python benchmarks/pixels.py [--steps 24000] [--repeats 2] [--env SpaceInvadersNoFrameskip-v4]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, run_measurement  # before any drlab import: it keeps the user's environment


def drlab_sps(env_id: str, steps: int, num_envs: int, n_steps: int, bf16: bool) -> float:
    from drlab.run.runner import train_from_preset

    with tempfile.TemporaryDirectory() as tmp:
        result = train_from_preset("a2c", env_id, {
            "total_steps": steps, "num_envs": num_envs, "n_steps": n_steps, "bf16": bf16, "torch_threads": 2,
            "final_eval_episodes": 0, "eval_interval": 0, "checkpoint_interval": 0, "progress": False,
            "run_dir": str(Path(tmp) / "run")})
    return result.summary["sps"]


def sb3_sps(env_id: str, steps: int, num_envs: int, n_steps: int) -> float:
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    torch.set_num_threads(2)
    envs = VecFrameStack(make_atari_env(env_id, n_envs=num_envs, seed=0), n_stack=4)
    # rl-zoo's Atari A2C settings, with this run's envs and rollout length.
    model = A2C("CnnPolicy", envs, n_steps=n_steps, ent_coef=0.01, vf_coef=0.25, seed=0, device="cpu",
                policy_kwargs=dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5)))
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    envs.close()
    return model.num_timesteps / seconds


def measure(name: str, args) -> float:
    if name == "sb3":
        return sb3_sps(args.env, args.steps, args.num_envs, args.n_steps)
    return drlab_sps(args.env, args.steps, args.num_envs, args.n_steps, bf16=(name == "drlab"))


def measure_in_subprocess(name: str, args) -> tuple[float, float]:
    """Each measurement in a fresh Python process: no thread pools or caches shared between the two
    libraries or carried over from the previous measurement. Returns (SPS, fraction of CPU time
    the host stole meanwhile)."""
    command = [sys.executable, __file__, "--measure", name, "--env", args.env, "--steps", str(args.steps),
               "--num-envs", str(args.num_envs), "--n-steps", str(args.n_steps)]
    last_line, stolen = run_measurement(command)
    return float(last_line), stolen


def env_sps(kind: str, env_id: str, num_envs: int, vector_steps: int) -> float:
    """Env steps per second with random actions, no learning: the env choice of drlab.envs.atari."""
    import ale_py
    import gymnasium as gym
    import numpy as np

    gym.register_envs(ale_py)
    if kind == "ale-py vector env (drlab)":
        from drlab.envs import make_vec_env

        envs = make_vec_env(env_id, num_envs, training=True)
    elif kind == "Gymnasium wrappers, SyncVectorEnv":
        from drlab.envs.atari import make_atari_env
        from drlab.envs import env_spec

        spec = env_spec(env_id)
        envs = gym.vector.SyncVectorEnv([lambda: make_atari_env(spec) for _ in range(num_envs)])
    else:  # SB3's AtariWrapper in a DummyVecEnv, as in the A2C comparison
        from stable_baselines3.common.env_util import make_atari_env
        from stable_baselines3.common.vec_env import VecFrameStack

        envs = VecFrameStack(make_atari_env(env_id, n_envs=num_envs, seed=0), n_stack=4)
    rng = np.random.default_rng(0)
    n = envs.action_space.nvec[0] if hasattr(envs.action_space, "nvec") else envs.action_space.n
    envs.reset(seed=0) if not hasattr(envs, "venv") else envs.reset()
    start = time.perf_counter()
    for _ in range(vector_steps):
        envs.step(rng.integers(0, n, num_envs))
    seconds = time.perf_counter() - start
    envs.close()
    return num_envs * vector_steps / seconds


ENV_KINDS = ("ale-py vector env (drlab)", "Gymnasium wrappers, SyncVectorEnv", "SB3 AtariWrapper, DummyVecEnv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="SpaceInvadersNoFrameskip-v4")
    parser.add_argument("--steps", type=int, default=24_000, help="env steps per measurement")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=12)
    parser.add_argument("--n-steps", type=int, default=5)
    parser.add_argument("--no-fp32", action="store_true", help="skip the drlab float32 measurement")
    parser.add_argument("--env-steps", type=int, default=1500, help="vector steps of the env-only measurement")
    parser.add_argument("--out", type=Path, default=RESULTS / "pixels-throughput")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement, SPS on stdout
    args = parser.parse_args()
    if args.measure:
        print(measure(args.measure, args))
        return
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/pixels.py needs stable-baselines3: pip install -e '.[bench]'")

    env_rates = {kind: round(env_sps(kind, args.env, args.num_envs, args.env_steps), 1) for kind in ENV_KINDS}
    for kind, rate in env_rates.items():
        print(f"env only: {kind:<36} {rate:8.1f} env steps/s", flush=True)

    names = ["drlab", "sb3"] + ([] if args.no_fp32 else ["drlab-fp32"])
    sps: dict[str, list[float]] = {name: [] for name in names}
    steal: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            rate, stolen = measure_in_subprocess(name, args)
            sps[name].append(round(rate, 1))
            steal[name].append(round(stolen, 3))
            print(f"repeat {repeat + 1}: {name:<10} {rate:8.1f} SPS  (CPU steal {stolen:.0%})", flush=True)
    medians = {name: statistics.median(values) for name, values in sps.items()}
    ratio = medians["drlab"] / medians["sb3"]
    lines = [f"# A2C pixel throughput: {args.env}, {args.num_envs} envs x {args.n_steps} steps, "
             f"{args.steps:,} env steps per measurement, {args.repeats} alternating repeats", "",
             "| run | SPS per repeat | median SPS | vs SB3 | CPU steal per repeat |", "|---|---|---|---|---|"]
    for name, values in sps.items():
        lines.append(f"| {name} | {', '.join(f'{v:.0f}' for v in values)} | {medians[name]:.0f} | "
                     f"{medians[name] / medians['sb3']:.2f}x | {', '.join(f'{v:.0%}' for v in steal[name])} |")
    lines += ["", f"drlab / SB3 training SPS: **{ratio:.2f}x** (machine: {platform.processor() or platform.machine()}, "
              f"{time.strftime('%Y-%m-%d %H:%M')})", "",
              f"Env stepping alone ({args.num_envs} envs, random actions, {args.env_steps * args.num_envs:,} env steps):", "",
              "| env implementation | env steps/s |", "|---|---|"]
    lines += [f"| {kind} | {rate:.0f} |" for kind, rate in env_rates.items()]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(
        {"env": args.env, "num_envs": args.num_envs, "n_steps": args.n_steps, "steps": args.steps,
         "sps": sps, "cpu_steal": steal, "median": medians, "ratio_drlab_sb3": round(ratio, 3), "env_only_sps": env_rates}, indent=2) + "\n")


if __name__ == "__main__":
    main()
