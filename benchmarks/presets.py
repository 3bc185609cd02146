"""Train presets over several seeds, one run at a time, and write a markdown table.

    python benchmarks/presets.py                                  # every preset, seeds 0-4
    python benchmarks/presets.py --only dqn:CartPole-v1:default dqn:CartPole-v1:per --seeds 0,1,2
    python benchmarks/presets.py --only "dqn:CartPole-v1:default:--target sarsa"   # a preset plus flags

Runs go one after another (never in parallel) so that train_seconds are comparable on a small
machine. Each run is a normal `drlab train` run; its directory stays under --runs for inspection.
The rows (algorithm, env, preset, seeds solved, median train_seconds, median steps, median and
range of the final greedy evaluation) go to stdout and replace the same rows in --out (other rows
and the notes there stay).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from datetime import datetime
from pathlib import Path

DEFAULT_CASES = [
    "dqn:CartPole-v1:default",
    "dqn:CartPole-v1:symlog-softmax",
    "dqn:CartPole-v1:per",
    "dqn:CartPole-v1:online",
    "dqn:LunarLander-v3:default",
    "reinforce:CartPole-v1:default",
    "actor-critic:CartPole-v1:default",
    "a2c:CartPole-v1:default",
    "ppo:CartPole-v1:default",
    "a2c:LunarLander-v3:default",
    "ppo:LunarLander-v3:default",
    "option-critic:CartPole-v1:default",
]


def run_case(algo: str, env_id: str, preset: str, seed: int, runs: Path, flags: str = "") -> dict:
    slug = "".join(c if c.isalnum() else "_" for c in flags.strip("- "))
    run_dir = runs / f"{algo}-{env_id.replace('/', '_')}-{preset}{'-' + slug if slug else ''}-s{seed}"
    if (run_dir / "summary.json").exists():  # resumable benchmark: reuse finished runs
        return json.loads((run_dir / "summary.json").read_text())
    if run_dir.exists():
        raise SystemExit(f"{run_dir} exists without summary.json; remove it or resume it first")
    cmd = [sys.executable, "-m", "drlab.cli", "train", algo, env_id, "--preset", preset, "--seed", str(seed),
           "--run-dir", str(run_dir), "--no-progress", *flags.split()]
    subprocess.run(cmd, check=True)
    return json.loads((run_dir / "summary.json").read_text())


def row(algo, env_id, preset, summaries) -> str:
    solved = sum(bool(s["solved"]) for s in summaries)
    evals = [s["eval"]["mean"] for s in summaries]
    return (f"| {algo} | {env_id} | {preset} | {solved}/{len(summaries)} "
            f"| {statistics.median(s['train_seconds'] for s in summaries):.1f} "
            f"| {statistics.median(s['steps'] for s in summaries):,.0f} "
            f"| {statistics.median(evals):.1f} ({min(evals):.1f} to {max(evals):.1f}) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", default=DEFAULT_CASES, help="cases as ALGO:ENV:PRESET[:FLAGS]")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--runs", type=Path, default=Path("runs/bench"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/presets.md"))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for case in args.only:
        algo, env_id, preset, *flags = case.split(":", 3)
        flags = flags[0] if flags else ""
        summaries = [run_case(algo, env_id, preset, seed, args.runs, flags) for seed in seeds]
        rows.append(row(algo, env_id, f"{preset} {flags}".strip(), summaries))
        print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(merge_rows(args.out.read_text() if args.out.exists() else "", rows))
    print(f"updated {args.out}")


def merge_rows(table: str, rows: list[str]) -> str:
    """Replace the rows of ``table`` for the same (algorithm, env, preset), append new ones, keep the rest
    (header and notes) as it is."""
    header = [
        f"Preset benchmark, {datetime.now():%Y-%m-%d}, {platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} cores; one run at a time; greedy evaluation over 100 episodes at the end.",
        "",
        "| algorithm | env | preset | seeds solved | median train_seconds | median steps | eval mean: median (min to max) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines = table.splitlines() or header

    def key(line: str):
        return tuple(cell.strip() for cell in line.split("|")[1:4])

    new = {key(r): r for r in rows}
    out = [new.pop(key(line), line) if line.startswith("| ") else line for line in lines]
    last_row = max(i for i, line in enumerate(out) if line.startswith("|"))
    out[last_row + 1:last_row + 1] = list(new.values())
    return "\n".join(out) + "\n"

if __name__ == "__main__":
    main()
