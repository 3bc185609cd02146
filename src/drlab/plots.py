"""Learning-curve plots from one or many run directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drlab.errors import DrlabError
from drlab.logger import read_metrics


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    if not pairs:
        return np.array([]), np.array([])
    steps, values = zip(*pairs)
    return np.asarray(steps), np.asarray(values, dtype=float)


def run_label(run_dir: Path) -> str:
    from drlab.runner import load_run_config

    algo, cfg = load_run_config(run_dir)
    extra = f" {cfg.replay}" if hasattr(cfg, "replay") else ""
    return f"{algo}{extra} {cfg.env_id} seed {cfg.seed}"


def plot_learning_curves(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    """Raw episode return vs. environment steps (faint), its mean over the last 100 episodes (line)
    and periodic greedy evaluations (markers), one colour per run, on one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    plotted = 0
    for i, run_dir in enumerate(run_dirs):
        run_dir = Path(run_dir)
        records = read_metrics(run_dir)
        label = run_label(run_dir)
        color = colors[i % len(colors)]
        steps, returns = _series(records, "episode/return")
        if len(steps) == 0:
            continue
        plotted += 1
        ax.plot(steps, returns, color=color, alpha=0.15, linewidth=0.8)
        steps100, mean100 = _series(records, "episode/reward_mean_100")
        ax.plot(steps100, mean100, color=color, linewidth=1.8, label=f"{label}: mean of last 100 episodes")
        eval_steps, eval_mean = _series(records, "eval/mean")
        if len(eval_steps):
            ax.plot(eval_steps, eval_mean, "o--", color=color, markersize=4, linewidth=0.8, label=f"{label}: greedy eval")
    if not plotted:
        plt.close(fig)
        raise DrlabError("none of the runs has logged a finished episode yet; nothing to plot")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (raw)")
    ax.set_title(title or "learning curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
