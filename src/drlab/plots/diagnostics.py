"""The diagnostics a run logged (train/* and perf/* in metrics.jsonl) as small multiples: the panel
list shared by ``drlab plot RUN --diagnostics`` (one PNG) and ``drlab report`` (interactive).

Known metrics are grouped the way the course notebooks look at them (value targets next to value
predictions, the three losses apart, the wall-time split on one panel); every other train/* or
perf/* metric the run logged gets a panel of its own, so nothing logged is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_POINTS = 1000  # per series: long runs are downsampled to this many points (the last one kept)

# (title, metric names) in reading order; a panel is drawn when the run logged any of its metrics.
KNOWN_PANELS = [
    ("explained variance of the value", ["train/explained_variance"]),
    ("policy entropy", ["train/entropy"]),
    ("policy loss", ["train/policy_loss", "train/actor_loss"]),
    ("value / critic loss", ["train/value_loss", "train/critic_loss"]),
    ("total loss", ["train/loss"]),
    ("value targets vs predictions", ["train/target_mean", "train/value_mean", "train/q_mean"]),
    ("advantages", ["train/advantage_mean", "train/advantage_std"]),
    ("gradient norm (before clipping)", ["train/grad_norm"]),
    ("epsilon", ["train/epsilon"]),
    ("learning rate", ["train/lr"]),
    ("approximate KL", ["train/approx_kl"]),
    ("clip fraction", ["train/clip_fraction"]),
    ("steps per second", ["perf/sps"]),
    ("share of wall time", ["perf/env_fraction", "perf/inference_fraction", "perf/learn_fraction",
                            "perf/runner_wait_fraction"]),
]


def diagnostic_panels(keys) -> list[tuple[str, list[str]]]:
    """The panels for a run (or runs) that logged ``keys``: known groups first, then one panel per
    other train/* or perf/* metric."""
    keys = set(keys)
    panels, used = [], set()
    for title, names in KNOWN_PANELS:
        present = [n for n in names if n in keys]
        if present:
            panels.append((title, present))
            used.update(present)
    for key in sorted(keys - used):
        if key.startswith(("train/", "perf/")):
            panels.append((key.split("/", 1)[1].replace("_", " "), [key]))
    return panels


def series(records: list[dict], key: str, x: str = "step", max_points: int = MAX_POINTS):
    """(x, y) arrays of ``key`` over the records that hold it, at most ``max_points`` long."""
    pairs = [(r[x], r[key]) for r in records if r.get(key) is not None and x in r]
    if not pairs:
        return np.array([]), np.array([])
    xs, ys = (np.asarray(v, dtype=float) for v in zip(*pairs))
    if len(xs) > max_points:
        keep = np.unique(np.append(np.linspace(0, len(xs) - 1, max_points).astype(int), len(xs) - 1))
        xs, ys = xs[keep], ys[keep]
    return xs, ys


def plot_diagnostics(run_dir: Path, out: Path) -> Path:
    """Every diagnostic of one run as a grid of small plots in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from drlab.errors import DrlabError
    from drlab.plots.curves import run_label
    from drlab.run.logger import read_metrics

    records = read_metrics(run_dir)
    panels = diagnostic_panels({k for r in records for k in r})
    if not panels:
        raise DrlabError(f"{run_dir} has no train/* or perf/* metrics in metrics.jsonl yet")
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, (title, names) in zip(axes.flat, panels):
        for name in names:
            xs, ys = series(records, name)
            ax.plot(xs, ys, lw=1, label=name.split("/", 1)[1])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize=6)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{run_label(run_dir)}: diagnostics against env steps", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
