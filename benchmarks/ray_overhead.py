"""What Ray costs or gains on this machine: the same work with and without it, alternating.

    python benchmarks/ray_overhead.py                # all three, 2 repeats
    python benchmarks/ray_overhead.py --only sweep --repeats 3

- sweep: `drlab sweep dqn CartPole-v1 --set lr=1e-3,2e-3 --seeds 0,1` on the local backend and with
  `--backend ray` (a Ray started by the sweep, as a user on one machine would): wall time of the
  whole command, eval means of both (they must agree).
- ppo: `drlab train ppo CartPole-v1` in-process and with `--runners 2`: steps/s, steps to solve.
- a2c: `drlab train a2c SpaceInvadersNoFrameskip-v4 --total-steps 50000` in-process and with
  `--runners 2`: steps/s (train_seconds includes starting the runners).

Every command runs in a fresh process; results go to benchmarks/results/ray-overhead.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, USER_ENVIRONMENT, cpu_steal_ticks  # noqa: E402

DRLAB = [sys.executable, "-m", "drlab.cli"]
CASES = {
    "sweep": (["sweep", "dqn", "CartPole-v1", "--set", "lr=1e-3,2e-3", "--seeds", "0,1"], ["--backend", "ray"]),
    "ppo": (["train", "ppo", "CartPole-v1", "--no-progress"], ["--runners", "2"]),
    "a2c": (["train", "a2c", "SpaceInvadersNoFrameskip-v4", "--total-steps", "50000", "--final-eval-episodes", "2",
             "--no-progress"], ["--runners", "2"]),
}


def measure(case: str, with_ray: bool, tmp: Path) -> dict:
    base, ray_args = CASES[case]
    out = tmp / f"{case}-{'ray' if with_ray else 'local'}-{time.monotonic_ns()}"
    where = ["--out", str(out)] if case == "sweep" else ["--run-dir", str(out)]
    steal0, total0 = cpu_steal_ticks()
    start = time.perf_counter()
    done = subprocess.run(DRLAB + base + where + (ray_args if with_ray else []), capture_output=True, text=True,
                          env=USER_ENVIRONMENT)
    wall = time.perf_counter() - start
    steal1, total1 = cpu_steal_ticks()
    if done.returncode != 0:
        sys.exit(f"{case} ({'ray' if with_ray else 'local'}) failed:\n{done.stderr[-2000:]}")
    row = {"case": case, "ray": with_ray, "wall_s": round(wall, 1),
           "cpu_steal": round((steal1 - steal0) / max(1, total1 - total0), 3)}
    if case == "sweep":
        points = json.loads((out / "sweep.json").read_text())["points"]
        row["eval_means"] = [p["summary"]["eval"]["mean"] for p in points]
        row["statuses"] = [p["status"] for p in points]
    else:
        summary = json.loads((out / "summary.json").read_text())
        row.update(steps=summary["steps"], train_s=summary["train_seconds"], sps=summary["sps"],
                   eval=summary["eval"]["mean"] if summary["eval"] else None, solved=summary["solved"])
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(CASES), action="append")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.only or list(CASES):
            for repeat in range(args.repeats):
                order = [False, True] if repeat % 2 == 0 else [True, False]
                rows += [measure(case, with_ray, Path(tmp)) for with_ray in order]
    lines = [f"Ray against no Ray on this machine (`python benchmarks/ray_overhead.py`), {date.today()}; "
             "medians over the repeats.", "",
             "| case | without Ray | with Ray | ratio (with / without) |", "|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        key = "wall_s" if case == "sweep" else "sps"
        local = statistics.median(r[key] for r in rows if r["case"] == case and not r["ray"])
        ray = statistics.median(r[key] for r in rows if r["case"] == case and r["ray"])
        unit = "s wall" if case == "sweep" else "steps/s"
        lines.append(f"| {case} | {local:.1f} {unit} | {ray:.1f} {unit} | {ray / local:.2f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray-overhead.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "ray-overhead.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
