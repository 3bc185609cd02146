"""SAC and TD3 throughput: drlab against Stable-Baselines3 and sbx (SB3 rewritten in JAX), side by side.

All three train the same algorithm with the same work per env step: one env, actor and critics with
hidden layers [256, 256], batch 256, one gradient step per env step, a 1M replay, uniform random
actions for the first --learning-starts steps, TD3's policy delay 2. The runs alternate (drlab, SB3,
sbx, drlab, ...) and each runs in a fresh process, so that all see the same machine.

Only the steady state is timed: env steps per second from --warmup steps after --learning-starts to
the end, when every env step also costs a gradient step. SB3's and sbx's clocks are a callback;
drlab's are the periodic lines of its metrics.jsonl. The medians, the ratios to SB3 and the share of
CPU time the host stole during each measurement (a shared VM: above a few percent, a repeat says
little) are printed and written to benchmarks/results/continuous-throughput.{md,json}.

PyTorch runs with --threads intra-op threads (default 2, SB3's default on a 2-core machine) in drlab and SB3;
JAX (sbx) sizes its own thread pool. ``drlab-bf16`` is drlab with ``--bf16`` (hidden layers under
bfloat16 autocast).

    pip install -e '.[bench,mujoco]'   # stable-baselines3 and sbx-rl: benchmark-only dependencies
    python benchmarks/continuous_throughput.py [--algos sac,td3] [--envs HalfCheetah-v5,Pendulum-v1] [--repeats 3]
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
from pathlib import Path

from _common import RESULTS, run_measurement, steady_state_clock  # before any drlab import: it keeps the user's environment

LIBRARIES = ("drlab", "drlab-bf16", "sb3", "sbx")
HIDDEN = [256, 256]
BATCH = 256
BUFFER = 1_000_000


def cpu_description() -> str:
    """The CPU's name, cores and the vector extensions that decide how fast the matrix products run:
    the ratios between libraries change with them (AMX, AVX-512 with BF16, AVX2)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", "x86_64", platform.machine()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags]
    return f"{name}, {os.cpu_count()} cores, {' '.join(shown) or 'no AVX2'}"


def drlab_measure(args, bf16: bool) -> dict:
    from drlab.config import NO_PRESET
    from drlab.run.runner import train_from_preset

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        result = train_from_preset(args.algo, args.env, {
            "total_steps": args.steps, "learning_starts": args.learning_starts, "buffer_size": BUFFER,
            "batch_size": BATCH, "hidden": tuple(HIDDEN), "train_freq": 1, "gradient_steps": 1, "num_envs": 1,
            "torch_threads": args.threads, "bf16": bf16, "log_interval": log_interval(args), "final_eval_episodes": 0,
            "eval_interval": 0, "checkpoint_interval": 0, "progress": False, "run_dir": str(run_dir)}, preset=NO_PRESET)
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    periodic = [r for r in records if "perf/sps" in r and r["step"] >= measure_from(args)]
    if len(periodic) < 2:
        sys.exit(f"drlab logged {len(periodic)} line(s) after step {measure_from(args):,}: lower --log-interval")
    first, last = periodic[0], periodic[-1]
    return {"sps": (last["step"] - first["step"]) / (last["time_s"] - first["time_s"]),
            "window": [first["step"], last["step"]], "whole_run_sps": result.summary["sps"]}


def peer_measure(args, library: str) -> dict:
    """SB3's or sbx's SAC/TD3 with the same settings, timed by a callback."""
    import gymnasium as gym

    if library == "sb3":
        import torch
        from stable_baselines3 import SAC, TD3

        torch.set_num_threads(args.threads)
        extra = {"device": "cpu"}
    else:
        from sbx import SAC, TD3

        extra = {}

    algorithm = SAC if args.algo == "sac" else TD3
    env = gym.make(args.env)
    model = algorithm("MlpPolicy", env, buffer_size=BUFFER, batch_size=BATCH, learning_starts=args.learning_starts,
                      train_freq=1, gradient_steps=1, policy_kwargs={"net_arch": HIDDEN}, seed=0, **extra)
    clock = steady_state_clock(measure_from(args))
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=clock)
    seconds = time.perf_counter() - start
    (first_step, first_time), (last_step, last_time) = clock.first, clock.last
    return {"sps": (last_step - first_step) / (last_time - first_time), "window": [first_step, last_step],
            "whole_run_sps": model.num_timesteps / seconds}


def measure_from(args) -> int:
    return args.learning_starts + args.warmup


def log_interval(args) -> int:
    return max(1, min(500, (args.steps - measure_from(args)) // 5))


def measure_in_subprocess(library: str, algo: str, env: str, args) -> tuple[dict, float]:
    command = [sys.executable, __file__, "--measure", library, "--algo", algo, "--env", env,
               "--steps", str(args.steps), "--learning-starts", str(args.learning_starts),
               "--warmup", str(args.warmup), "--threads", str(args.threads)]
    last_line, stolen = run_measurement(command)
    return json.loads(last_line), stolen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", default="sac,td3")
    parser.add_argument("--envs", default="HalfCheetah-v5,Pendulum-v1")
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--steps", type=int, default=5000, help="env steps per measurement")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000, help="env steps after --learning-starts before the clock starts")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads (drlab and SB3)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "continuous-throughput")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement, JSON on stdout
    parser.add_argument("--algo", help=argparse.SUPPRESS)
    parser.add_argument("--env", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        drlab = args.measure.startswith("drlab")
        result = drlab_measure(args, args.measure == "drlab-bf16") if drlab else peer_measure(args, args.measure)
        print(json.dumps(result))
        return
    if args.steps <= measure_from(args):
        sys.exit(f"--steps {args.steps} leaves nothing to time after --learning-starts + --warmup")
    libraries = args.libraries.split(",")
    cases = [(algo, env) for env in args.envs.split(",") for algo in args.algos.split(",")]
    sps = {f"{algo} {env}": {lib: [] for lib in libraries} for algo, env in cases}
    steal = {f"{algo} {env}": {lib: [] for lib in libraries} for algo, env in cases}
    for repeat in range(args.repeats):
        for algo, env in cases:
            for library in libraries:
                result, stolen = measure_in_subprocess(library, algo, env, args)
                sps[f"{algo} {env}"][library].append(round(result["sps"], 1))
                steal[f"{algo} {env}"][library].append(round(stolen, 3))
                print(f"repeat {repeat + 1}: {algo} {env} {library:<6} {result['sps']:7.1f} SPS steady state "
                      f"(steps {result['window'][0]:,}-{result['window'][1]:,}; CPU steal {stolen:.0%})", flush=True)
    lines = [f"# SAC and TD3 training throughput: steady-state env steps per second ({args.steps:,} steps per "
             f"measurement, timed from step {measure_from(args):,}; {args.repeats} alternating repeats, fresh processes)",
             "", f"One env, hidden {HIDDEN}, batch {BATCH}, one gradient step per env step, replay {BUFFER:,}; "
             f"PyTorch threads: {args.threads}. Machine: {cpu_description()}, "
             f"{time.strftime('%Y-%m-%d %H:%M')}.", "",
             "| case | " + " | ".join(f"{lib} SPS (median; repeats)" for lib in libraries)
             + " | " + " | ".join(f"{lib} / SB3" for lib in libraries if lib != "sb3") + " | CPU steal (max) |",
             "|---|" + "---|" * (2 * len(libraries))]
    medians = {}
    for case, by_library in sps.items():
        medians[case] = {lib: statistics.median(values) for lib, values in by_library.items()}
        m = medians[case]
        cells = [f"{m[lib]:.0f} ({', '.join(f'{v:.0f}' for v in by_library[lib])})" for lib in libraries]
        ratios = [f"**{m[lib] / m['sb3']:.2f}x**" if "sb3" in m else "-" for lib in libraries if lib != "sb3"]
        most_stolen = max(v for values in steal[case].values() for v in values)
        lines.append(f"| {case} | " + " | ".join(cells) + " | " + " | ".join(ratios) + f" | {most_stolen:.0%} |")
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(
        {"steps": args.steps, "learning_starts": args.learning_starts, "warmup": args.warmup, "threads": args.threads,
         "hidden": HIDDEN, "batch": BATCH, "buffer": BUFFER, "sps": sps, "median": medians, "cpu_steal": steal},
        indent=2) + "\n")


if __name__ == "__main__":
    main()
