"""Option-Critic's temporal abstraction on Four Rooms, the transfer experiment of Bacon, Harb and
Precup (2017): steps per episode over 2,000 episodes with the goal moved at episode 1,000, for
Option-Critic with 4 and 8 options against two learners of primitive actions (actor-critic, DQN).
The paper's claim: Option-Critic recovers faster once the goal moves.

Each run is an ordinary `drlab train ALGO drlab/FourRoomsTransfer-v0` in a fresh process with the
algorithm's Four Rooms preset (src/drlab/presets/ALGO/drlab_FourRooms-v0.toml: tabular learners, one
env, 2,000 episodes); the seeds are the same for every method. Steps per episode come from the run's metrics.jsonl (one line per episode). Per method: the
mean over seeds with a 95% percentile-bootstrap band of the mean (drlab.report.stats.mean_band), as a
plot of 10-episode bins and as a table of the averages over episodes 900-1000 (before the move) and
1000-1100 (just after); and for each Option-Critic run, where its options end: each option's mean
termination probability at the doorways over its mean elsewhere (Bacon et al.'s Figure 3, measured).

Each finished run is written to benchmarks/results/four-rooms.json at once, and the runs already
there are skipped: a stopped benchmark continues where it was. The run directories go to --work
(deleted after reading, unless --keep-runs).

    python benchmarks/four_rooms.py [--seeds 0-19] [--methods oc4,oc8,actor-critic,dqn] [--jobs 2]
    python benchmarks/four_rooms.py --report-only      # table and plot from the results file
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from _common import plot_options_usage

RESULTS = Path(__file__).parent / "results"
ENV = "drlab/FourRoomsTransfer-v0"
EPISODES, MOVE = 2000, 1000
WINDOWS = ((MOVE - 100, MOVE), (MOVE, MOVE + 100), (MOVE + 100, MOVE + 200), (0, 100))  # episodes [a, b)
BIN = 10  # episodes per point of the plot
METHODS = {  # name -> (algorithm, flags on top of its Four Rooms preset)
    "oc4": ("option-critic", ["--num-options", "4"]),
    # 8 options with a deliberation cost of 0.01 per switch (the preset, tuned for 4 options, has none):
    # tuned on seeds 100-101, 27-31 steps per episode over episodes 900-1000; without the cost 46-70 on
    # seeds 0-6 (4 options do about as well with it as without)
    "oc8": ("option-critic", ["--num-options", "8", "--deliberation-cost", "0.01"]),
    "actor-critic": ("actor-critic", []),
    "dqn": ("dqn", []),
}
LABELS = {"oc4": "Option-Critic, 4 options", "oc8": "Option-Critic, 8 options, deliberation cost 0.01",
          "actor-critic": "actor-critic (primitive actions)", "dqn": "DQN (primitive actions)"}


def seed_list(text: str) -> list[int]:
    """"0-19" or "0,1,5" -> seeds."""
    if "-" in text:
        first, last = map(int, text.split("-"))
        return list(range(first, last + 1))
    return [int(s) for s in text.split(",")]


def one_run(method: str, seed: int, work: Path, keep: bool, extra: list[str]) -> dict:
    algo, flags = METHODS[method]
    run_dir = work / f"{method}-s{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "drlab", "train", algo, ENV, "--seed", str(seed), "--run-dir", str(run_dir),
               "--eval-interval", "0", "--final-eval-episodes", "0", "--checkpoint-interval", "0", "--no-progress",
               *flags, *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{method} seed {seed} failed (exit status {done.returncode}):\n{done.stderr[-2000:]}")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    summary = json.loads((run_dir / "summary.json").read_text())
    durations = [r["train/option_duration"] for r in records if "train/option_duration" in r]
    result = {"method": method, "seed": seed, "lengths": [int(r["episode/length"]) for r in records
                                                          if "episode/length" in r][:EPISODES],
              "steps": summary["steps"], "train_seconds": summary["train_seconds"],
              "option_duration_last": durations[-1] if durations else None}
    if algo == "option-critic":  # what the options learned: `drlab plot options` on the trained run
        usage = plot_options_usage(run_dir)
        result["doorway_ratios"] = usage["doorway_termination_ratio"]
        result["choice_shares"] = usage["choice_share"]
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def report(results: dict, out: Path) -> str:
    from drlab.report.stats import mean_band

    lines = [f"# Four Rooms: steps per episode, goal moved at episode {MOVE:,} (Bacon et al. 2017's transfer experiment)",
             "",
             f"`{ENV}`, each method's Four Rooms preset (tabular, one env), {EPISODES:,} episodes per run; per method the mean "
             "over seeds and a 95% percentile-bootstrap band of the mean. Generated by benchmarks/four_rooms.py.",
             "",
             "| method | seeds | episodes 900-1000 | 1000-1100 (after the move) | 1100-1200 | first 100 | median wall s |",
             "|---|---|---|---|---|---|---|"]
    curves = {}
    for method in METHODS:
        runs = [r for r in results["runs"] if r["method"] == method and len(r["lengths"]) == EPISODES]
        if not runs:
            continue
        lengths = np.array([r["lengths"] for r in runs], dtype=float)
        cells = []
        for a, b in WINDOWS:
            mean, low, high = mean_band(lengths[:, a:b].mean(axis=1)[:, None])
            cells.append(f"{mean[0]:.1f} [{low[0]:.1f}, {high[0]:.1f}]")
        wall = np.median([r["train_seconds"] for r in runs])
        lines.append(f"| {LABELS[method]} | {len(runs)} | " + " | ".join(cells) + f" | {wall:.0f} |")
        binned = lengths.reshape(len(runs), EPISODES // BIN, BIN).mean(axis=2)
        curves[method] = mean_band(binned)
    plot(curves, out.with_suffix(".png"))
    lines += ["", f"![steps per episode]({out.with_suffix('.png').name})", ""]
    lines += doorway_table(results)
    return "\n".join(lines) + "\n"


def doorway_table(results: dict) -> list[str]:
    """Bacon et al.'s Figure 3 measured: per Option-Critic run, each option's mean termination probability
    in and next to the doorways over its mean elsewhere (> 1: the option tends to end at the doorways)."""
    lines = ["## Where the options end",
             "",
             "Per run at the end of training, for each option: mean termination probability beta over the doorway "
             "cells and the cells next to them, divided by its mean over the other cells (`drlab plot options`; "
             "above 1, the option ends more often at the doorways). Options listed in their order, the greedy "
             "choice's share of the 104 cells in brackets.",
             "",
             "| method | median ratio over runs and options | options with ratio > 1 | per seed: ratio (choice share) per option |",
             "|---|---|---|---|"]
    for method in METHODS:
        runs = [r for r in results["runs"] if r["method"] == method and "doorway_ratios" in r]
        if not runs:
            continue
        ratios = np.concatenate([r["doorway_ratios"] for r in runs])
        per_seed = "; ".join(f"{r['seed']}: " + ", ".join(f"{x:.2f} ({c:.0%})" for x, c in zip(r["doorway_ratios"], r["choice_shares"]))
                             for r in runs)
        lines.append(f"| {LABELS[method]} | {np.median(ratios):.2f} | {np.mean(ratios > 1):.0%} of {len(ratios)} | {per_seed} |")
    return lines + [""] if len(lines) > 6 else []


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2))
    x = np.arange(EPISODES // BIN) * BIN + BIN / 2
    for method, (mean, low, high) in curves.items():
        (line,) = ax.plot(x, mean, label=LABELS[method], lw=1.4)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.axvline(MOVE, color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("episode")
    ax.set_ylabel(f"steps per episode (mean of {BIN}-episode bins, log scale)")
    ax.set_title("Four Rooms, goal moved at episode 1,000: mean over seeds, 95% bootstrap band")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=9)  # below: the curves fill the axes
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0-19")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--jobs", type=int, default=2, help="runs at the same time (one core each)")
    p.add_argument("--work", type=Path, default=Path("/tmp/drlab-four-rooms"), help="run directories while they run")
    p.add_argument("--keep-runs", action="store_true", help="keep the run directories in --work")
    p.add_argument("--out", type=Path, default=RESULTS / "four-rooms", help="results path without suffix")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags for every run (after everything else)")
    args = p.parse_args()
    path = args.out.with_suffix(".json")
    results = json.loads(path.read_text()) if path.exists() else {"env": ENV, "episodes": EPISODES, "runs": []}
    if not args.report_only:
        done = {(r["method"], r["seed"]) for r in results["runs"]}
        todo = [(m, s) for s in seed_list(args.seeds) for m in args.methods.split(",") if (m, s) not in done]
        args.work.mkdir(parents=True, exist_ok=True)
        print(f"{len(todo)} runs to do ({len(done)} already in {path})", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(one_run, m, s, args.work, args.keep_runs, args.extra) for m, s in todo]
            for future in as_completed(futures):
                run = future.result()
                results["runs"].append(run)
                results["runs"].sort(key=lambda r: (r["method"], r["seed"]))
                path.write_text(json.dumps(results) + "\n")  # after each run: a stopped benchmark keeps it
                late = np.mean(run["lengths"][MOVE - 100:MOVE]) if len(run["lengths"]) >= MOVE else float("nan")
                print(f"{time.strftime('%H:%M:%S')} {run['method']} seed {run['seed']}: {run['steps']:,} steps, "
                      f"{run['train_seconds']:.0f} s, steps/episode 900-1000 {late:.1f}", flush=True)
    text = report(results, args.out)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
