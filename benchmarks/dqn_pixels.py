"""DQN pixel throughput: drlab's DQN against Stable-Baselines3's DQN on Atari, side by side in one run.

Both train DQN with the Nature CNN (SB3: CnnPolicy) and rl-baselines3-zoo's Atari settings (100k
replay, batch 32, one gradient step every 4 env steps, target copied every 1,000 env steps, Adam
1e-4, epsilon 1 -> 0.01 over 10% of the steps, 2 torch threads) on the same env (default
BreakoutNoFrameskip-v4) for the same number of env steps, and start learning at the same step. The
runs alternate (drlab, SB3, drlab, SB3, ...) so that both see the same machine; each measurement
runs in a fresh process.

Only the steady state is timed: env steps per second from --warmup steps after --learning-starts to
the end, when every 4 env steps also cost a gradient step (the replay fill before it is mostly env
stepping). SB3's is taken by a callback, drlab's from the periodic lines of its metrics.jsonl. The
medians, their ratio and the share of CPU time the host stole during each measurement (a shared
VM: above a few percent, the repeat says little) are printed with the settings each library
actually ran with, and written to benchmarks/results/dqn-pixels-throughput.{md,json}.

What differs is how each library gets there: SB3 steps one env with its Python Atari wrappers in a
DummyVecEnv and runs the network in float32; drlab, with its preset, steps 4 envs at once on
ale-py's C++ vector env (one update per vector step: the same 4 env steps per update) into a frame
replay and runs the CNN under bfloat16 autocast. ``drlab-fp32`` (preset with --bf16 off) shows how
much of the gap the bf16 part is.

    pip install -e '.[bench]'   # stable-baselines3, a benchmark-only dependency
    python benchmarks/dqn_pixels.py [--steps 8000] [--learning-starts 2000] [--warmup 1000] [--repeats 2]
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

from _common import RESULTS, run_measurement, steady_state_clock  # before any drlab import: it keeps the user's environment

THREADS = 2


def drlab_measure(args, bf16: bool) -> dict:
    from drlab.run.runner import train_from_preset

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        result = train_from_preset("dqn", args.env, {
            "total_steps": args.steps, "learning_starts": args.learning_starts, "buffer_size": args.buffer_size,
            "bf16": bf16, "torch_threads": THREADS, "log_interval": log_interval(args),
            "final_eval_episodes": 0, "eval_interval": 0, "checkpoint_interval": 0, "progress": False,
            "run_dir": str(run_dir)})
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        cfg = json.loads((run_dir / "config.json").read_text())
    # The periodic log lines ("perf/sps") from the first at or after the warm-up to the last.
    periodic = [r for r in records if "perf/sps" in r and r["step"] >= measure_from(args)]
    if len(periodic) < 2:
        sys.exit(f"drlab logged {len(periodic)} line(s) after step {measure_from(args):,}: lower --log-interval")
    first, last = periodic[0], periodic[-1]
    return {
        "sps": (last["step"] - first["step"]) / (last["time_s"] - first["time_s"]),
        "window": [first["step"], last["step"]], "whole_run_sps": result.summary["sps"],
        "settings": settings(
            cfg["env_id"], f"{cfg['num_envs']} (ale-py C++ vector env)", cfg["buffer_size"], cfg["batch_size"],
            cfg["gradient_steps"], cfg["train_freq"], cfg["target_update_interval"], cfg["learning_starts"],
            result.summary["steps"], cfg["torch_threads"], "bfloat16 autocast" if cfg["bf16"] else "float32")}


def sb3_measure(args) -> dict:
    import ale_py
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    torch.set_num_threads(THREADS)
    envs = VecFrameStack(make_atari_env(args.env, n_envs=1, seed=0), n_stack=4)
    # rl-zoo's Atari DQN settings, with this run's replay size and first learning step.
    model = DQN("CnnPolicy", envs, buffer_size=args.buffer_size, learning_rate=1e-4, batch_size=32,
                learning_starts=args.learning_starts, train_freq=4, gradient_steps=1, target_update_interval=1000,
                exploration_fraction=0.1, exploration_final_eps=0.01, optimize_memory_usage=False,
                seed=0, device="cpu")
    clock = steady_state_clock(measure_from(args))
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=clock)
    seconds = time.perf_counter() - start
    envs.close()
    if clock.first is None or clock.last[0] <= clock.first[0]:
        sys.exit(f"SB3 took no steps after step {measure_from(args):,}: raise --steps")
    (first_step, first_time), (last_step, last_time) = clock.first, clock.last
    return {
        "sps": (last_step - first_step) / (last_time - first_time),
        "window": [first_step, last_step], "whole_run_sps": model.num_timesteps / seconds,
        "settings": settings(
            args.env, f"{envs.num_envs} (AtariWrapper, DummyVecEnv)", model.buffer_size, model.batch_size,
            model.gradient_steps, model.train_freq.frequency * envs.num_envs, model.target_update_interval,
            model.learning_starts, model.num_timesteps, torch.get_num_threads(), "float32")}


def settings(env, envs, replay, batch, gradient_steps, env_steps_per_update, target_interval, learning_starts,
             steps, threads, precision) -> dict:
    """What each library ran with, under the same names, so that the same work is visible side by side."""
    return {"env": env, "envs": envs, "replay size": replay, "batch size": batch,
            "updates per env step": f"{gradient_steps} per {env_steps_per_update}",
            "target update every (env steps)": target_interval, "learning starts (env steps)": learning_starts,
            "env steps": steps, "torch threads": threads, "network precision": precision}


def measure_from(args) -> int:
    return args.learning_starts + args.warmup


def log_interval(args) -> int:
    """drlab's log interval: --log-interval, else 1,000 or a fifth of the timed steps when that is shorter."""
    return args.log_interval or max(1, min(1000, (args.steps - measure_from(args)) // 5))


def measure(name: str, args) -> dict:
    if name == "sb3":
        return sb3_measure(args)
    return drlab_measure(args, bf16=(name == "drlab"))


def measure_in_subprocess(name: str, args) -> tuple[dict, float]:
    """One measurement in a fresh Python process. Returns (its result, fraction of CPU time the host
    stole meanwhile)."""
    command = [sys.executable, __file__, "--measure", name, "--env", args.env, "--steps", str(args.steps),
               "--learning-starts", str(args.learning_starts), "--warmup", str(args.warmup),
               "--buffer-size", str(args.buffer_size), "--log-interval", str(log_interval(args))]
    last_line, stolen = run_measurement(command)
    return json.loads(last_line), stolen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--steps", type=int, help="env steps per measurement (default: --learning-starts + 6000)")
    parser.add_argument("--learning-starts", type=int, default=2000, help="env steps before the first update, both")
    parser.add_argument("--warmup", type=int, default=1000,
                        help="env steps after --learning-starts before the clock starts")
    parser.add_argument("--buffer-size", type=int, default=100_000, help="replay capacity, both")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--log-interval", type=int, help="drlab's log interval (default: 1000, or less for short runs)")
    parser.add_argument("--no-fp32", action="store_true", help="skip the drlab float32 measurement")
    parser.add_argument("--out", type=Path, default=RESULTS / "dqn-pixels-throughput")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement, JSON on stdout
    args = parser.parse_args()
    if args.steps is None:
        args.steps = args.learning_starts + 6000
    if args.measure:
        print(json.dumps(measure(args.measure, args)))
        return
    if args.steps <= measure_from(args):
        sys.exit(f"--steps {args.steps} leaves nothing to time after --learning-starts + --warmup "
                 f"= {measure_from(args)}")
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/dqn_pixels.py needs stable-baselines3: pip install -e '.[bench]'")

    names = ["drlab", "sb3"] + ([] if args.no_fp32 else ["drlab-fp32"])
    sps: dict[str, list[float]] = {name: [] for name in names}
    whole: dict[str, list[float]] = {name: [] for name in names}
    steal: dict[str, list[float]] = {name: [] for name in names}
    used: dict[str, dict] = {}
    windows: dict[str, list[list[int]]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            result, stolen = measure_in_subprocess(name, args)
            sps[name].append(round(result["sps"], 1))
            whole[name].append(round(result["whole_run_sps"], 1))
            steal[name].append(round(stolen, 3))
            windows[name].append(result["window"])
            used.setdefault(name, result["settings"])
            first, last = result["window"]
            print(f"repeat {repeat + 1}: {name:<10} {result['sps']:8.1f} SPS steady state (steps {first:,}-{last:,}), "
                  f"{result['whole_run_sps']:.1f} whole run  (CPU steal {stolen:.0%})", flush=True)
    medians = {name: statistics.median(values) for name, values in sps.items()}
    ratio = medians["drlab"] / medians["sb3"]
    lines = [f"# DQN pixel throughput: {args.env}, {args.steps:,} env steps per measurement, learning from step "
             f"{args.learning_starts:,}, timed from step {measure_from(args):,}, {args.repeats} alternating repeats",
             "", "| run | steady-state SPS per repeat | median SPS | vs SB3 | whole-run SPS per repeat "
             "| CPU steal per repeat |",
             "|---|---|---|---|---|---|"]
    for name, values in sps.items():
        lines.append(f"| {name} | {', '.join(f'{v:.0f}' for v in values)} | {medians[name]:.0f} | "
                     f"{medians[name] / medians['sb3']:.2f}x | {', '.join(f'{v:.0f}' for v in whole[name])} | "
                     f"{', '.join(f'{v:.0%}' for v in steal[name])} |")
    lines += ["", f"drlab / SB3 steady-state training SPS: **{ratio:.2f}x** (machine: "
              f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')})", "",
              "Settings each ran with:", "", "| setting | " + " | ".join(used) + " |", "|---|" + "---|" * len(used)]
    lines += [f"| {key} | " + " | ".join(str(used[name][key]) for name in used) + " |" for key in used["sb3"]]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(
        {"env": args.env, "steps": args.steps, "learning_starts": args.learning_starts, "warmup": args.warmup,
         "buffer_size": args.buffer_size, "sps": sps, "whole_run_sps": whole, "timed_steps": windows,
         "cpu_steal": steal, "median": medians, "ratio_drlab_sb3": round(ratio, 3), "settings": used}, indent=2) + "\n")
    print(f"drlab/SB3 steady-state SPS: {ratio:.2f}x (medians {medians['drlab']:.1f} vs {medians['sb3']:.1f})")


if __name__ == "__main__":
    main()
