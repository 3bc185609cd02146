"""What the benchmarks share: the results folder, the user's environment, one measurement in a fresh
process with the CPU steal around it, and `drlab plot options` on a finished run. Import this before
anything imports drlab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
# The environment as the user started us, before any drlab import sets its defaults (GOMP_SPINCOUNT):
# each measurement's process starts from it, so SB3 runs as it would without drlab around.
USER_ENVIRONMENT = dict(os.environ)


def cpu_steal_ticks() -> tuple[int, int]:
    """(steal, total) CPU ticks so far from /proc/stat ((0, 0) where there is none): on a shared
    virtual machine the host takes cores away at times, and a measurement taken then is not one."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks[:8])


def run_measurement(command: list[str]) -> tuple[str, float]:
    """Run one measurement in a fresh Python process started from the user's environment: no thread
    pools or caches shared between the two libraries or carried over from the previous measurement.
    Returns (the last line it printed, fraction of CPU time the host stole meanwhile); a failed
    measurement ends the benchmark with the end of its stderr."""
    steal_before, total_before = cpu_steal_ticks()
    done = subprocess.run(command, capture_output=True, text=True, env=USER_ENVIRONMENT)
    steal_after, total_after = cpu_steal_ticks()
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        sys.exit(f"measurement failed (exit status {done.returncode}): {' '.join(command[1:])}\n{tail}")
    stolen = (steal_after - steal_before) / max(1, total_after - total_before)
    return done.stdout.strip().splitlines()[-1], stolen


def steady_state_clock(start_step: int):
    """An SB3 (or sbx) callback noting (num_timesteps, perf_counter) at the first step at or after
    ``start_step`` (``.first``) and after the last gradient step (``.last``): the steady-state window."""
    import time

    from stable_baselines3.common.callbacks import BaseCallback

    class SteadyStateClock(BaseCallback):
        def __init__(self):
            super().__init__()
            self.first, self.last = None, None

        def _on_step(self) -> bool:
            if self.first is None and self.num_timesteps >= start_step:
                self.first = (self.num_timesteps, time.perf_counter())
            return True

        def _on_training_end(self) -> None:
            self.last = (self.num_timesteps, time.perf_counter())

    return SteadyStateClock()


def plot_options_usage(run_dir: Path) -> dict:
    """`drlab plot options` on a finished option-critic run, in a fresh process: its options.json (on Four
    Rooms, each option's doorway termination ratio and share of the greedy choice)."""
    drawn = subprocess.run([sys.executable, "-m", "drlab", "plot", "options", str(run_dir), "--out",
                            str(run_dir / "pictures")], capture_output=True, text=True)
    if drawn.returncode != 0:
        sys.exit(f"drlab plot options {run_dir} failed:\n{drawn.stderr[-2000:]}")
    return json.loads((run_dir / "pictures" / "options.json").read_text())
