"""What a report is made of: the runs of the given run or sweep directories, grouped by setting.

A run or sweep still going is read as it is: a run without summary.json, metrics cut short, sweep
points that have not started yet (left out, and counted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from drlab.errors import DrlabError
from drlab.run.checkpoint import read_json
from drlab.run.logger import read_metrics
from drlab.run.rundir import CONFIG_FILE, SUMMARY_FILE
from drlab.sweep.grid import SWEEP_FILE, combo_label


@dataclass
class RunData:
    dir: Path
    algo: str
    config: dict
    summary: dict | None  # None while the run is going (or was stopped)
    records: list[dict]
    label: str

    @property
    def videos(self) -> list[Path]:
        """videos/*.mp4, those taken during training (step-N.mp4) first, in step order."""
        def order(path: Path):
            match = re.search(r"step-(\d+)", path.stem)
            return (0, int(match.group(1)), "") if match else (1, 0, path.name)
        return sorted((self.dir / "videos").glob("*.mp4"), key=order)

    @property
    def pictures(self) -> list[Path]:
        """Option-Critic's pictures (``drlab plot options``), when made."""
        return sorted((self.dir / "options").glob("*.png"))


@dataclass
class Group:
    label: str  # the setting (a sweep's value combination), or the run
    runs: list[RunData] = field(default_factory=list)


@dataclass
class Target:
    title: str
    groups: list[Group]
    sweep: dict | None = None  # sweep.json of a sweep directory
    not_started: int = 0  # sweep points without a run directory yet
    study: list[tuple[str, dict]] | None = None  # a study directory's Optuna figures (title, plotly JSON)


def load_run(run_dir: Path, label: str | None = None) -> RunData:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise DrlabError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    config = read_json(run_dir / CONFIG_FILE, "run config")
    summary = read_json(run_dir / SUMMARY_FILE, "run summary") if (run_dir / SUMMARY_FILE).is_file() else None
    label = label or f"{config.get('algo')} {config.get('env_id')} seed {config.get('seed')}"
    return RunData(run_dir, config.get("algo", "?"), config, summary, read_metrics(run_dir), label)


def load_sweep(out: Path) -> Target:
    sweep = read_json(out / SWEEP_FILE, "sweep file")
    groups: dict[str, Group] = {}
    not_started = 0
    for point in sweep["points"]:
        run_dir = Path(point["config"]["run_dir"])
        if not run_dir.is_dir():  # the sweep directory was moved or copied: its points are inside it
            run_dir = out / point["name"]
        label = combo_label(point["values"])
        group = groups.setdefault(label, Group(label))
        if (run_dir / CONFIG_FILE).is_file():
            group.runs.append(load_run(run_dir, f"{label} seed {point['seed']}"))
        else:
            not_started += 1
    title = f"sweep: {sweep['algo']} on {sweep['env_id']}, seeds {', '.join(map(str, sweep['seeds']))}"
    return Target(title, list(groups.values()), sweep, not_started)


def load_study(out: Path) -> Target:
    """A ``drlab tune`` study: one group per trial that has runs (the best first), and the study's
    Optuna figures."""
    from drlab.tune.results import study_view

    view = study_view(out)
    groups = []
    for label, run_dirs in view["trials"]:
        runs = [load_run(d, f"{label} seed {d.name[1:]}") for d in run_dirs if (d / CONFIG_FILE).is_file()]
        if runs:
            groups.append(Group(label, runs))
    return Target(view["title"], groups, study=view["figures"])


def load_targets(paths: list[Path]) -> Target:
    """One sweep or study directory, or any number of run directories (each run its own group)."""
    from drlab.tune.spec import TUNE_FILE

    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_dir():
            raise DrlabError(f"no run or sweep directory at {path}")
    studies = [p for p in paths if (p / TUNE_FILE).is_file()]
    if studies:
        if len(paths) > 1:
            raise DrlabError("give one study directory, or run directories only")
        return load_study(studies[0])
    sweeps = [p for p in paths if (p / SWEEP_FILE).is_file()]
    if sweeps:
        if len(paths) > 1:
            raise DrlabError("give one sweep directory, or run directories only")
        return load_sweep(sweeps[0])
    runs = [load_run(p) for p in paths]
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.dir.name})"
    title = runs[0].label if len(runs) == 1 else f"{len(runs)} runs"
    return Target(title, [Group(r.label, [r]) for r in runs])
