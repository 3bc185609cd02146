"""REINFORCE with factored action heads (MultiBinary, MultiDiscrete) against the categorical head on
the same task: Twin CartPole (benchmarks/twin_cartpole.py), two CartPoles balanced at once, under the
three action spaces MultiBinary(2), MultiDiscrete([2, 2]) and Discrete(4).

Every run uses drlab's REINFORCE CartPole-v1 preset unchanged (8 envs, an update every 8 episodes, mean
baseline, lr 1e-3) with a 500k-step budget and the preset's stop rule (a 10-episode greedy evaluation
every 5k steps scoring 500 stops training), each in a fresh process, the spaces alternating within a
seed. Score: the mean return of 100 greedy episodes after training (500 = both poles held to the cap).

    python benchmarks/multi_actions.py                  # seeds 0-4, writes benchmarks/results/multi-actions.md
    python benchmarks/multi_actions.py --seeds 0 --steps 20000 --no-write
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, run_measurement  # noqa: E402

SPACES = {"MultiBinary(2)": "TwinCartPoleMultiBinary-v0", "MultiDiscrete([2, 2])": "TwinCartPoleMultiDiscrete-v0",
          "Discrete(4)": "TwinCartPoleDiscrete-v0"}
OUT = RESULTS / "multi-actions"


def measure(env_id: str, seed: int, steps: int) -> dict:
    from drlab.config import DEFAULT_PRESET, preset_overrides
    from drlab.run.runner import train_from_preset

    settings = {**preset_overrides("reinforce", "CartPole-v1", DEFAULT_PRESET), "seed": seed, "total_steps": steps, "progress": False,
                "final_eval_episodes": 100}
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_from_preset("reinforce", f"twin_cartpole:{env_id}", {**settings, "run_dir": f"{tmp}/r"}).summary
    return {"score": summary["eval"]["mean"], "seconds": summary["train_seconds"], "steps": summary["steps"]}


def per_seed(ms: list[dict]) -> str:
    return ", ".join(f"{m['score']:.0f} / {m['steps'] // 1000}k" for m in ms)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--measure", nargs=3, metavar=("ENV", "SEED", "STEPS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        env_id, seed, steps = args.measure
        print(json.dumps(measure(env_id, int(seed), int(steps))))
        return
    runs = {space: [] for space in SPACES}
    print("| space | seed | score | wall s | steps |\n|---|---|---|---|---|", flush=True)
    for turn, seed in enumerate(int(s) for s in args.seeds.split(",")):
        order = list(SPACES)[turn % 3:] + list(SPACES)[:turn % 3]  # each space goes first in turn
        for space in order:
            line, _ = run_measurement([sys.executable, __file__, "--measure", SPACES[space], str(seed), str(args.steps)])
            m = {**json.loads(line), "seed": seed}
            runs[space].append(m)
            print(f"| {space} | {seed} | {m['score']:.1f} | {m['seconds']:.1f} | {m['steps']:,} |", flush=True)
    rows = ["| action space | median score (100 greedy episodes) | seeds solved (>= 475) | median steps to stop "
            "| median wall s | per seed (score / steps) |", "|---|---|---|---|---|---|"]
    for space, ms in runs.items():
        rows.append(f"| {space} | {statistics.median(m['score'] for m in ms):.1f} "
                    f"| {sum(m['score'] >= 475 for m in ms)} of {len(ms)} "
                    f"| {statistics.median(m['steps'] for m in ms):,.0f} | {statistics.median(m['seconds'] for m in ms):.1f} "
                    f"| {per_seed(ms)} |")
    text = "\n".join(rows)
    print("\n" + text)
    if not args.no_write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.with_suffix(".json").write_text(json.dumps({"steps": args.steps, "runs": runs}, indent=1) + "\n")
        OUT.with_suffix(".md").write_text(
            "REINFORCE (the CartPole-v1 preset, unchanged) on Twin CartPole under three action spaces; "
            f"`python benchmarks/multi_actions.py`, budget {args.steps:,} steps, stop when a 10-episode greedy "
            "evaluation (every 5k steps) scores 500; each run in a fresh process.\n\n" + text + "\n")
        print(f"wrote {OUT.with_suffix('.md')}")


if __name__ == "__main__":
    main()
