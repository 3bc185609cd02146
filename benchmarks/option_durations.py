"""Options that last: how long Option-Critic's greedy options run, and how the work is shared between
them, per preset, with and without a deliberation cost (Harb et al. 2018).

Each run is `drlab train option-critic ENV --seed S [--deliberation-cost ETA]` with the env's preset, in a
fresh process; its final greedy evaluation (summary.json `eval`) gives the score, the mean duration of an
option (steps from the choice of an option to its end) and each option's share of the steps. On Four Rooms
`drlab plot options` adds where each option ends (its mean termination probability at the doorways over
its mean elsewhere) and draws the options (the picture of the first seed is kept next to the results).

The bars: on Four Rooms, a mean duration >= 5 steps with every option taking >= 10% of the steps; on
CartPole a mean duration >= 5 steps while the run still solves the task (greedy mean >= 475), one option
doing everything being a legitimate answer there; LunarLander is reported against its solve line (200).

Each finished run is written to benchmarks/results/option-durations.json at once, and runs already there
are skipped. The run directories go to --work and are deleted after reading.

    python benchmarks/option_durations.py [--cases four-rooms,cartpole] [--jobs 2]
    python benchmarks/option_durations.py --report-only
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

RESULTS = Path(__file__).parent / "results"
CASES = {  # name -> (env, deliberation costs to try, seeds, greedy score that counts as solved, shares needed)
    "four-rooms": ("drlab/FourRooms-v0", [0.01, 0.0], range(10), None, True),
    "cartpole": ("CartPole-v1", [0.0, 0.1, 1.0], range(5), 475.0, False),
    "lunarlander": ("LunarLander-v3", [0.0, 1.0], range(2), 200.0, False),
}
MIN_DURATION, MIN_SHARE = 5.0, 0.10


def one_run(case: str, cost, seed: int, work: Path, keep_picture: Path | None) -> dict:
    env, *_ = CASES[case]
    run_dir = work / f"{case}-{cost}-s{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "drlab", "train", "option-critic", env, "--seed", str(seed), "--run-dir",
               str(run_dir), "--checkpoint-interval", "0", "--no-progress", "--deliberation-cost", str(cost)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{case} cost {cost} seed {seed} failed (exit status {done.returncode}):\n{done.stderr[-2000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    options = summary["eval"]["options"]
    result = {"case": case, "cost": cost, "deliberation_cost": config["deliberation_cost"], "seed": seed,
              "steps": summary["steps"], "train_seconds": summary["train_seconds"], "score": summary["eval"]["mean"],
              "duration": options["mean_duration"], "shares": options["shares"]}
    if env.startswith("drlab/FourRooms"):
        drawn = subprocess.run([sys.executable, "-m", "drlab", "plot", "options", str(run_dir), "--out",
                                str(run_dir / "pictures")], capture_output=True, text=True)
        if drawn.returncode != 0:
            sys.exit(f"plot options of {case} seed {seed} failed:\n{drawn.stderr[-2000:]}")
        usage = json.loads((run_dir / "pictures" / "options.json").read_text())
        result["doorway_ratios"] = usage["doorway_termination_ratio"]
        if keep_picture is not None:
            shutil.copy(run_dir / "pictures" / "four_rooms_options.png", keep_picture)
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def preset_cost(env: str) -> float:
    """The deliberation cost of Option-Critic's preset for ``env`` (0 where it sets none)."""
    from drlab.config import load_presets

    return load_presets("option-critic", env)["default"].get("deliberation_cost", 0.0)


def lasting(run: dict) -> bool:
    """The bar of the run's case: options that last (and share the work on Four Rooms, solve elsewhere)."""
    _, _, _, solved_at, shares_needed = CASES[run["case"]]
    if run["duration"] is None or run["duration"] < MIN_DURATION:
        return False
    if shares_needed and min(run["shares"]) < MIN_SHARE:
        return False
    return solved_at is None or run["score"] >= solved_at


def report(results: dict) -> str:
    lines = ["# Options that last: greedy option durations per preset, with and without a deliberation cost", "",
             "Option-Critic with each env's preset; the final greedy evaluation of each run (summary.json `eval`): "
             "its score, the mean duration of an option in steps and each option's share of the steps. "
             f"A run meets the bar when options last >= {MIN_DURATION:g} steps on average and, on Four Rooms, every "
             f"option takes >= {MIN_SHARE:.0%} of the steps, or elsewhere the run still solves the task. "
             "Generated by benchmarks/option_durations.py.", ""]
    for case, (env, costs, seeds, solved_at, _) in CASES.items():
        runs = [r for r in results["runs"] if r["case"] == case]
        if not runs:
            continue
        lines += [f"## {env}", "", "| deliberation cost | runs meeting the bar | median duration | median score "
                  "| per seed: duration, shares, score |", "|---|---|---|---|---|"]
        for cost in costs:
            group = sorted((r for r in runs if r["cost"] == cost), key=lambda r: r["seed"])
            if not group:
                continue
            label = f"{cost:g}" + (" (the preset's)" if cost == preset_cost(env) else "")
            cells = "; ".join(f"{r['seed']}: {r['duration']:.1f}, {'/'.join(f'{s:.0%}' for s in r['shares'])}, "
                              f"{r['score']:.2f}" for r in group)
            lines.append(f"| {label} | {sum(map(lasting, group))}/{len(group)} | "
                         f"{np.median([r['duration'] for r in group]):.1f} | {np.median([r['score'] for r in group]):.2f} | {cells} |")
        ratios = [r for r in runs if "doorway_ratios" in r]
        if ratios:
            lines += ["", "Where the options end (mean termination probability at and next to the doorways over "
                      "the mean elsewhere, per option):", "",
                      "| deliberation cost | median ratio | options with ratio > 1 | per seed |", "|---|---|---|---|"]
            for cost in costs:
                group = sorted((r for r in ratios if r["cost"] == cost), key=lambda r: r["seed"])
                if group:
                    flat = np.concatenate([r["doorway_ratios"] for r in group])
                    per_seed = "; ".join(f"{r['seed']}: " + ", ".join(f"{x:.2f}" for x in r["doorway_ratios"]) for r in group)
                    lines.append(f"| {cost:g} | {np.median(flat):.2f} | "
                                 f"{np.mean(flat > 1):.0%} of {len(flat)} | {per_seed} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="four-rooms,cartpole", help=f"of {','.join(CASES)}")
    p.add_argument("--jobs", type=int, default=2, help="runs at the same time")
    p.add_argument("--work", type=Path, default=Path("/tmp/drlab-option-durations"))
    p.add_argument("--out", type=Path, default=RESULTS / "option-durations", help="results path without suffix")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    path = args.out.with_suffix(".json")
    results = json.loads(path.read_text()) if path.exists() else {"runs": []}
    if not args.report_only:
        done = {(r["case"], r["cost"], r["seed"]) for r in results["runs"]}
        todo = [(case, cost, seed) for case in args.cases.split(",") for cost in CASES[case][1]
                for seed in CASES[case][2] if (case, cost, seed) not in done]
        args.work.mkdir(parents=True, exist_ok=True)
        print(f"{len(todo)} runs to do ({len(done)} already in {path})", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = []
            for case, cost, seed in todo:
                picture = args.out.parent / f"{args.out.name}-four-rooms-s{seed}.png" if (
                    case == "four-rooms" and cost == preset_cost(CASES[case][0]) and seed == 0) else None
                futures.append(pool.submit(one_run, case, cost, seed, args.work, picture))
            for future in as_completed(futures):
                run = future.result()
                results["runs"].append(run)
                results["runs"].sort(key=lambda r: (r["case"], r["cost"], r["seed"]))
                path.write_text(json.dumps(results, indent=1) + "\n")
                print(f"{time.strftime('%H:%M:%S')} {run['case']} cost {run['deliberation_cost']:g} seed {run['seed']}: "
                      f"score {run['score']:.2f}, options last {run['duration']:.1f} steps, shares "
                      f"{'/'.join(f'{s:.0%}' for s in run['shares'])}", flush=True)
    text = report(results)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
