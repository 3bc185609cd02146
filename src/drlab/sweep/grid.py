"""Planning a sweep: a grid of hyperparameter values x seeds, every point a plain config.

    drlab sweep ALGO ENV_ID --set NAME=V1,V2,... [--set NAME2=...] --seeds 0,1,2
                [--preset NAME] [--jobs K] [--out DIR]

A ``--set`` with one value is a fixed override for every point (value syntax: drlab.sweep.values).
Each point of the grid is a plain JSON-serializable config dict (the contents of its run's
``config.json``): the preset's overrides, the fixed overrides, the point's values, its seed and its
run directory, checked by ``build_config`` + ``validate()`` before anything runs, so that any
backend (drlab.sweep.backend) can run it in any process.

The output directory holds one run directory per point (``lr=0.001-s0``), ``sweep.json`` (the
grid, and each point's config, status and summary), ``summary.md`` (one table row per value
combination) and ``sweep.png`` (mean ``episode/reward_mean_100`` over seeds, band min to max).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drlab.errors import DrlabError
from drlab.config import field_types
from drlab.sweep.values import format_value, parse_seeds, parse_set, parse_value

SWEEP_FILE = "sweep.json"
TABLE_FILE = "summary.md"
PLOT_FILE = "sweep.png"
# Fields the sweep sets itself: name -> how to set it instead.
RESERVED = {
    "env_id": "the environment is the ENV_ID argument",
    "env_packages": "use --env-package (or MODULE:ENV_ID)",
    "seed": "use --seeds",
    "run_dir": "use --out (each point gets its own run directory inside it)",
    "progress": "progress bars are always off in a sweep",
}


def point_name(values: dict[str, Any], seed: int) -> str:
    """``lr=0.001-batch_size=64-s0``, with anything but letters, digits and ``._=+-`` made ``_``."""
    parts = [f"{k}={format_value(v)}" for k, v in values.items()] + [f"s{seed}"]
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", "-".join(parts))


def combo_label(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "(all points)"


def check_setting(name: str, types: dict, algo: str, where: str) -> None:
    """One line (prefixed by ``where``) for a setting that is not ``algo``'s, with the closest names,
    or that the sweep (or study) sets itself."""
    if name in RESERVED:
        raise DrlabError(f"{where}: {RESERVED[name]}")
    if name not in types:
        close = difflib.get_close_matches(name, [n for n in types if n not in RESERVED], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DrlabError(f"{where}: unknown setting for {algo}{hint}")


# ---- the grid --------------------------------------------------------------------------------

@dataclass
class Point:
    name: str
    values: dict[str, Any]  # the varying settings of this point (not the seed)
    seed: int
    config: dict  # config.json contents: {"algo": ..., every config field}
    status: str = "pending"  # pending | ok | failed | diverged | interrupted | cancelled
    summary: dict | None = None
    final_reward_mean_100: float | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass
class Sweep:
    algo: str
    env_id: str
    preset: str
    grid: dict[str, list]  # settings with several values, in command-line order
    fixed: dict[str, Any]  # settings with one value
    seeds: list[int]
    jobs: int | None  # None: as many as the backend has CPUs for
    out: Path
    points: list[Point] = field(default_factory=list)

    def combos(self) -> list[dict[str, Any]]:
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]

    def to_json(self) -> dict:
        return {
            "algo": self.algo, "env_id": self.env_id, "preset": self.preset,
            "grid": {k: [_jsonable(v) for v in vs] for k, vs in self.grid.items()},
            "fixed": {k: _jsonable(v) for k, v in self.fixed.items()},
            "seeds": self.seeds, "jobs": self.jobs, "out": str(self.out),
            "points": [_jsonable(dataclasses.asdict(p)) for p in self.points],
        }


def load_sweep(out: Path) -> Sweep:
    """The sweep in ``out``/sweep.json, for ``drlab sweep --resume``; the modules that register its
    env (its points' ``env_packages``) are imported here, once, before any point starts."""
    import json

    from drlab.envs.sources import import_env_packages

    path = Path(out) / SWEEP_FILE
    try:
        data = json.loads(path.read_text())
        points = [Point(**p) for p in data["points"]]
        sweep = Sweep(data["algo"], data["env_id"], data["preset"], data["grid"], data["fixed"], data["seeds"],
                      data["jobs"], Path(data["out"]), points)
        packages = points[0].config.get("env_packages", ()) if points else ()
    except FileNotFoundError:
        raise DrlabError(f"{out} holds no {SWEEP_FILE}: not a sweep directory") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DrlabError(f"cannot read {path}: {err}"[:300]) from None
    import_env_packages(packages, sweep.env_id)
    return sweep


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def default_out_dir(algo: str, env_id: str) -> Path:
    from drlab.run.rundir import safe_name, timestamped_dir

    return timestamped_dir(f"sweep-{algo}-{safe_name(env_id)}")


def max_jobs() -> int:
    return os.cpu_count() or 1


def check_jobs(jobs: int | None, local: bool = True) -> int | None:
    """--jobs. Local backend: 1 to the CPU count, default the CPU count. Others: >= 1, default None
    (as many as the cluster has CPUs for)."""
    if jobs is None:
        return max_jobs() if local else None
    if jobs < 1 or (local and jobs > max_jobs()):
        raise DrlabError(f"--jobs must be between 1 and {max_jobs()} (the number of CPUs; got {jobs})" if local
                         else f"--jobs must be >= 1 (got {jobs})")
    return jobs


def plan_sweep(algo: str, env_id: str, sets: list[str], seeds: str, preset: str | None = None,
               jobs: int | None = None, out: Path | None = None, local: bool = True, env_packages=()) -> Sweep:
    """Parse and check everything; every point's config is built and validated, nothing is written.
    ``env_id`` may be MODULE:ENV_ID; it and ``env_packages`` are imported here, once, and saved in
    every point's config (drlab.envs.sources)."""
    from drlab.algos import get_algo
    from drlab.config import DEFAULT_PRESET, build_config, preset_overrides
    from drlab.envs.sources import resolve_env
    from drlab.run.rundir import config_to_json

    preset = preset or DEFAULT_PRESET
    module = get_algo(algo)
    env_id, packages = resolve_env(env_id, env_packages)
    base = preset_overrides(algo, env_id, preset)
    seed_list = parse_seeds(seeds)
    jobs = check_jobs(jobs, local)

    types_ = field_types(module.Config)
    grid, fixed = {}, {}
    for text in sets:
        name, raw = parse_set(text)
        check_setting(name, types_, algo, f"--set {name}")
        if name in grid or name in fixed:
            raise DrlabError(f"--set {name}: given twice (list every value in one --set {name}=V1,V2)")
        values = [parse_value(name, types_[name], v) for v in raw]
        if len({format_value(v) for v in values}) != len(values):
            raise DrlabError(f"--set {name}: a value is repeated")
        if len(values) == 1:
            fixed[name] = values[0]
        else:
            grid[name] = values

    out = Path(out) if out is not None else default_out_dir(algo, env_id)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DrlabError(f"{out} already exists and is not empty; choose another --out")
    sweep = Sweep(algo, env_id, preset, grid, fixed, seed_list, jobs, out)
    names = set()
    for combo in sweep.combos():
        for seed in seed_list:
            name = point_name(combo, seed)
            if name in names:  # two values that differ only in characters made "_"
                name = f"p{len(sweep.points)}-{name}"
            names.add(name)
            values = {**base, **fixed, **combo, "seed": seed, "run_dir": str(out / name), "progress": False,
                      "env_packages": packages}
            cfg = build_config(module.Config, env_id, values)
            try:
                cfg.validate()
            except DrlabError as err:
                where = f" (at {combo_label(combo)})" if combo else ""
                raise DrlabError(f"{err}{where}") from None
            sweep.points.append(Point(name, combo, seed, config_to_json(algo, cfg)))
    check_point_env(module, sweep.points[0].config)
    return sweep


def check_point_env(module, config: dict) -> None:
    """The algorithm's env check (e.g. discrete actions) and, for a user's env, Gymnasium's env
    checker once, here, rather than in every worker."""
    from drlab.envs import make_vec_env
    from drlab.envs.sources import check_user_env
    from drlab.run.rundir import config_from_json

    _, cfg = config_from_json(config)
    check_user_env(cfg.env_id)
    envs = make_vec_env(cfg.env_id, 1, max_episode_steps=cfg.max_episode_steps, frame_stack=cfg.frame_stack)
    try:
        module.check_env(cfg, envs)
    finally:
        envs.close()
