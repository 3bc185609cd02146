"""The results of a sweep: one table row per value combination (summary.md) and the plot of
reward_mean_100 per combination, mean over seeds with a min-max band (sweep.png)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from drlab.errors import DrlabError
from drlab.sweep.grid import PLOT_FILE, Sweep, combo_label
from drlab.sweep.values import format_value

COLUMNS = ["setting", "solved", "eval mean (median)", "eval [min, max]", "train s (median)",
           "steps (median)", "reward_mean_100 (median)", "failed"]


def summary_rows(sweep: Sweep) -> list[list[str]]:
    from drlab.envs import reward_threshold

    threshold = reward_threshold(sweep.env_id)
    rows = []
    for combo in sweep.combos():
        points = [p for p in sweep.points if p.values == combo]
        ok = [p.summary for p in points if p.status == "ok"]
        evals = [s["eval"]["mean"] for s in ok if s["eval"] is not None]
        judged = threshold is not None and all(p.config["final_eval_episodes"] for p in points)
        solved = f"{sum(bool(s['solved']) for s in ok)}/{len(points)}" if judged else "n/a"
        rows.append([
            combo_label(combo).replace("|", "\\|"),
            solved,
            _fmt(_median(evals), ".1f"),
            f"[{min(evals):.1f}, {max(evals):.1f}]" if evals else "-",
            _fmt(_median([s["train_seconds"] for s in ok]), ".1f"),
            _fmt(_median([s["steps"] for s in ok]), ".0f"),
            _fmt(_median([p.final_reward_mean_100 for p in points if p.status == "ok"]), ".1f"),
            str(sum(p.status != "ok" for p in points)),
        ])
    return rows


def _median(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table_only(sweep: Sweep) -> str:
    rows = [COLUMNS, *summary_rows(sweep)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def summary_markdown(sweep: Sweep) -> str:
    fixed = ", ".join(f"{k}={format_value(v)}" for k, v in sweep.fixed.items()) or "none"
    return (f"# Sweep: {sweep.algo} on {sweep.env_id}\n\n"
            f"Preset `{sweep.preset}`; fixed settings: {fixed}; seeds {', '.join(map(str, sweep.seeds))}.\n"
            "solved: seeds whose final greedy evaluation reached the environment's threshold; "
            "medians over the runs that finished; reward_mean_100: the last logged mean of the last "
            "100 training episodes.\n\n"
            f"{table_only(sweep)}\n")


def plot(sweep: Sweep) -> str | None:
    """Write sweep.png; a note instead of an error when there is nothing to draw."""
    from drlab.plots.curves import plot_sweep

    groups = []
    for combo in sweep.combos():
        dirs = [Path(p.config["run_dir"]) for p in sweep.points if p.values == combo and p.status == "ok"]
        if dirs:
            groups.append((combo_label(combo), dirs))
    try:
        plot_sweep(groups, sweep.out / PLOT_FILE,
                   f"{sweep.algo} on {sweep.env_id}: mean over seeds {','.join(map(str, sweep.seeds))}, band min to max")
    except DrlabError as err:
        return f"no plot: {err}"
    return None
