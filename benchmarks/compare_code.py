"""Training speed of two versions of drlab's code, side by side: the same runs, alternating.

    python benchmarks/compare_code.py --old-src OLD/src --new-src src [--repeats 3] [--only a2c,ppo]
                                      [--out benchmarks/results/compare-code.md]

For a change that must not cost throughput (a restructuring, a refactor): each case is one
`drlab train` with a fixed number of steps and no early stop, run by the old and by the new code
in alternation (old, new, old, new, ...), each in a fresh process that imports drlab from the given
source tree. It reports the steps per second of each repeat (summary.json's `sps`, training time
only), the medians and their ratio. Cases: every algorithm on CartPole-v1 (its preset, 1 torch
thread) and the A2C SpaceInvaders preset (12 envs x 5 steps, bf16, 2 torch threads).
Make an old source tree with e.g. `git worktree add /tmp/drlab-old COMMIT`.

Wall-clock SPS on a shared 2-core machine moves by 15-30% between repeats. ``--count-calls`` adds a
measure that does not: the Python function calls per environment step of each CartPole case
(cProfile, one run per side), i.e. the interpreter overhead a change adds to the hot path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

# Imports drlab from the source tree given as the first argument, then runs the CLI.
BOOTSTRAP = r"""
import os, sys
src = os.path.realpath(sys.argv[1])
sys.path.insert(0, src)
import drlab
assert os.path.realpath(drlab.__file__).startswith(src + os.sep), drlab.__file__
from drlab.cli import main
sys.exit(main(sys.argv[2:]))
"""

# The same, counting the Python function calls of the training run; prints the count. A short run
# first imports everything, so that imports and first-call setup are not counted.
COUNT_CALLS = r"""
import cProfile, os, pstats, sys
src = os.path.realpath(sys.argv[1])
sys.path.insert(0, src)
from drlab.cli import main
args = sys.argv[2:]
main(args[:args.index("--total-steps") + 1] + ["200"] + args[args.index("--total-steps") + 2:-1] + [args[-1] + "-warm"])
profile = cProfile.Profile()
profile.enable()
main(args)
profile.disable()
print(pstats.Stats(profile).total_calls)
"""

COMMON = ["--no-progress", "--no-stop-on-solve", "--eval-interval", "0", "--final-eval-episodes", "0",
          "--checkpoint-interval", "0"]
CASES = {
    "dqn": ["dqn", "CartPole-v1", "--total-steps", "20000"],
    "reinforce": ["reinforce", "CartPole-v1", "--total-steps", "40000"],
    "actor-critic": ["actor-critic", "CartPole-v1", "--total-steps", "30000"],
    "a2c": ["a2c", "CartPole-v1", "--total-steps", "40000"],
    "ppo": ["ppo", "CartPole-v1", "--total-steps", "40960"],
    "option-critic": ["option-critic", "CartPole-v1", "--total-steps", "30000"],
    "a2c-spaceinvaders": ["a2c", "SpaceInvadersNoFrameskip-v4", "--total-steps", "9000", "--log-interval", "3000"],
}


def train(bootstrap: str, src: str, args: list[str], run_dir: Path) -> str:
    """Run ``drlab train ARGS`` with drlab imported from ``src``; returns its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-s", "-P", "-c", bootstrap, src, "train", *args, *COMMON, "--run-dir", str(run_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed with {src}:\n{done.stderr[-2000:]}")
    return done.stdout


def sps(src: str, args: list[str], run_dir: Path) -> float:
    train(BOOTSTRAP, src, args, run_dir)
    return json.loads((run_dir / "summary.json").read_text())["sps"]


def calls_per_step(src: str, args: list[str], run_dir: Path) -> float:
    """Python calls of a training run per environment step."""
    calls = int(train(COUNT_CALLS, src, args, run_dir).split()[-1])
    return calls / json.loads((run_dir / "summary.json").read_text())["steps"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old-src", required=True)
    p.add_argument("--new-src", required=True)
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats of each case (0: none)")
    p.add_argument("--only", default=None, help="comma-separated case names: " + ", ".join(CASES))
    p.add_argument("--out", type=Path, default=None, help="also write the table as markdown here")
    p.add_argument("--count-calls", action="store_true", help="also count Python calls per env step (CartPole cases)")
    args = p.parse_args()
    names = args.only.split(",") if args.only else list(CASES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names if args.repeats else []:  # --repeats 0: only the call counts
            measured = {"old": [], "new": []}
            for repeat in range(args.repeats):
                for side, src in (("old", args.old_src), ("new", args.new_src)):
                    value = sps(src, CASES[name], Path(tmp) / f"{name}-{side}-{repeat}")
                    measured[side].append(value)
                    print(f"{name} {side} #{repeat}: {value:.0f} SPS", flush=True)
            old, new = statistics.median(measured["old"]), statistics.median(measured["new"])
            rows.append((name, measured["old"], measured["new"], old, new, new / old))
    lines = [f"Old: `{args.old_src}`, new: `{args.new_src}`, {args.repeats} alternating repeats, "
             f"{datetime.now():%Y-%m-%d %H:%M}.", "",
             "| case | old SPS per repeat | new SPS per repeat | old median | new median | new / old |",
             "|---|---|---|---|---|---|"]
    for name, old_all, new_all, old, new, ratio in rows:
        lines.append(f"| {name} | {', '.join(f'{v:.0f}' for v in old_all)} | {', '.join(f'{v:.0f}' for v in new_all)} "
                     f"| {old:.0f} | {new:.0f} | {ratio:.3f} |")
    if args.count_calls:
        lines += ["", "Python function calls per environment step (cProfile; deterministic):", "",
                  "| case | old | new | new / old |", "|---|---|---|---|"]
        with tempfile.TemporaryDirectory() as tmp:
            for name in names:
                if "CartPole-v1" not in CASES[name]:
                    continue
                old, new = (calls_per_step(src, CASES[name], Path(tmp) / f"{name}-{side}")
                            for side, src in (("old", args.old_src), ("new", args.new_src)))
                lines.append(f"| {name} | {old:.1f} | {new:.1f} | {new / old:.4f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(f"# Training speed, old vs new code\n\n{table}")


if __name__ == "__main__":
    main()
