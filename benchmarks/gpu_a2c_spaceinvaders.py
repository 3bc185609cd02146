"""The headline run: the course notebooks' A2C on Atari SpaceInvaders for 10M env steps on a GPU.

The bar (from the course notebooks, and rl-baselines3-zoo's 627 +- 202 at 10M steps): a
reward_mean_100 of raw game scores >= 600 within 10M steps; the goal here is to get there in about
an hour on one recent GPU. The run is an ordinary `drlab train a2c SpaceInvadersNoFrameskip-v4` with
its preset (12 envs x 5-step rollouts, RMSProp with linear decay, Nature CNN, bf16) on the GPU;
the env stepping stays on the CPU's cores (ale-py's C++ vector env).

    python benchmarks/gpu_a2c_spaceinvaders.py                      # 10M steps on cuda
    python benchmarks/gpu_a2c_spaceinvaders.py --steps 20000 --device cpu   # a dry run of the script

It writes benchmarks/results/gpu-a2c-spaceinvaders.{md,json} (or --out): reward_mean_100 at the end
and along the way, wall time, steps per second, the final greedy evaluation, and the machine.
The run directory (checkpoints every 500k steps, TensorBoard logs) stays under --run-dir; a run
that stops early continues with `drlab resume RUN_DIR`, after which
`--report-only --run-dir RUN_DIR` writes the results.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ENV_ID = "SpaceInvadersNoFrameskip-v4"


def curve(run_dir: Path, every: int) -> list[tuple[int, float, float]]:
    """(step, wall seconds, reward_mean_100) about every ``every`` env steps, from metrics.jsonl."""
    points, next_step = [], 0
    with open(run_dir / "metrics.jsonl") as f:
        for line in f:
            row = json.loads(line)
            if "episode/reward_mean_100" in row and row["step"] >= next_step:
                points.append((row["step"], row["time_s"], row["episode/reward_mean_100"]))
                next_step = row["step"] + every
    return points


def report(run_dir: Path, out: Path, device_name: str) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    points = curve(run_dir, every=max(1, summary["steps"] // 20))
    last = points[-1] if points else (summary["steps"], summary["train_seconds"], float("nan"))
    first_600 = next(((s, t) for s, t, r in points if r >= 600), None)
    result = {
        "env": ENV_ID, "device": device_name, "steps": summary["steps"],
        "train_seconds": summary["train_seconds"], "sps": summary["sps"],
        "reward_mean_100": last[2], "first_reached_600": first_600,
        "final_eval": summary["eval"], "host": platform.node(), "run_dir": str(run_dir),
    }
    rows = "".join(f"| {s:,} | {t / 60:.1f} | {r:.1f} |\n" for s, t, r in points)
    reached = (f"first at step {first_600[0]:,} after {first_600[1] / 60:.1f} min" if first_600 else "not reached")
    text = (f"# A2C on {ENV_ID}, the headline run\n\n"
            f"`python benchmarks/gpu_a2c_spaceinvaders.py` on {device_name}\n\n"
            f"- steps: {summary['steps']:,} in {summary['train_seconds'] / 60:.1f} min ({summary['sps']:,.0f} steps/s)\n"
            f"- reward_mean_100 at the end (raw game scores): {last[2]:.1f}; 600: {reached}\n"
            f"- final greedy evaluation: {summary['eval']}\n\n"
            "| step | minutes | reward_mean_100 |\n|---|---|---|\n" + rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(text)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu", "auto"])
    parser.add_argument("--num-envs", type=int, default=None, help="default: the preset's (12)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/gpu-a2c-spaceinvaders"))
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu-a2c-spaceinvaders")
    parser.add_argument("--report-only", action="store_true", help="only write the results of --run-dir")
    args = parser.parse_args()

    import torch

    from drlab.run.runner import train_from_preset

    device_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else platform.processor() or "cpu"
    if not args.report_only:
        overrides = {"total_steps": args.steps, "device": args.device, "run_dir": str(args.run_dir), "progress": False,
                     "final_eval_episodes": 10}
        if args.num_envs:
            overrides["num_envs"] = args.num_envs
        start = time.perf_counter()
        result = train_from_preset("a2c", ENV_ID, overrides)
        print(f"trained in {(time.perf_counter() - start) / 60:.1f} min (wall, evaluation included)")
        if result.summary is None:
            raise SystemExit(f"interrupted; continue with `drlab resume {args.run_dir}`, then --report-only")
    report(args.run_dir, args.out, device_name)


if __name__ == "__main__":
    main()
