"""Learning-curve plots from one or many run directories, and the comparison plot of a sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drlab.errors import DrlabError
from drlab.run.logger import read_metrics


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r["step"], r[key]) for r in records if r.get(key) is not None]
    if not pairs:
        return np.array([]), np.array([])
    steps, values = zip(*pairs)
    return np.asarray(steps), np.asarray(values, dtype=float)


def run_label(run_dir: Path) -> str:
    from drlab.run.rundir import load_run_config

    algo, cfg = load_run_config(run_dir, import_envs=False)  # a label needs no env
    extra = f" {cfg.replay}" if hasattr(cfg, "replay") else ""
    return f"{algo}{extra} {cfg.env_id} seed {cfg.seed}"


def run_labels(run_dirs: list[Path]) -> list[str]:
    """One legend label per run; runs that would share one (same algorithm, env and seed) also
    get their directory's name."""
    labels = [run_label(Path(d)) for d in run_dirs]
    return [f"{label} ({Path(d).name})" if labels.count(label) > 1 else label for d, label in zip(run_dirs, labels)]


def plot_learning_curves(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    """Raw episode return vs. environment steps (faint), its mean over the last 100 episodes (line)
    and periodic greedy evaluations (markers), one colour per run, on one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    plotted = 0
    for i, (run_dir, label) in enumerate(zip(run_dirs, run_labels(run_dirs))):
        records = read_metrics(Path(run_dir))
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
    return _save(fig, ax, out)


def mean_band(series: list[tuple[np.ndarray, np.ndarray]], num: int = 200):
    """Mean, min and max across seeds of curves logged at different steps, on a common step grid.

    The grid runs from the step where every seed has a value to the last step of any seed; each
    seed is linearly interpolated onto it and holds its last value after its own end (a run that
    stopped early, e.g. on solving, keeps its final level). Returns (grid, mean, low, high).
    """
    curves = []
    for steps, values in series:
        # several episodes can end on one vector step: keep the last value logged at each step
        last = len(steps) - 1 - np.unique(np.asarray(steps)[::-1], return_index=True)[1]
        curves.append((np.asarray(steps)[last], np.asarray(values, dtype=float)[last]))
    start = max(s[0] for s, _ in curves)
    end = max(s[-1] for s, _ in curves)
    grid = np.linspace(start, end, num) if end > start else np.array([start], dtype=float)
    ys = np.stack([np.interp(grid, s, v) for s, v in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def plot_sweep(groups: list[tuple[str, list[Path]]], out: Path, title: str | None = None,
               key: str = "episode/reward_mean_100") -> Path:
    """One line per group (a sweep's value combination): the mean of ``key`` across its runs
    (seeds) vs. environment steps, with a band from the min to the max across runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    plotted = 0
    for i, (label, run_dirs) in enumerate(groups):
        series = [_series(read_metrics(Path(d)), key) for d in run_dirs]
        series = [s for s in series if len(s[0])]
        if not series:
            continue
        plotted += 1
        color = colors[i % len(colors)]
        grid, mean, low, high = mean_band(series)
        ax.plot(grid, mean, color=color, linewidth=1.8, label=f"{label} ({len(series)} seeds)")
        ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
    if not plotted:
        plt.close(fig)
        raise DrlabError(f"none of the runs has logged {key}; nothing to plot")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean return of the last 100 episodes" if key == "episode/reward_mean_100" else key)
    ax.set_title(title or "sweep", fontsize=10)
    return _save(fig, ax, out)


def _save(fig, ax, out) -> Path:
    """Grid, legend, layout; write the PNG and free the figure."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
