"""What a study is: the algorithm, env, seeds, fixed settings, search space, storage, sampler and
pruner, checked in full before anything is written, saved as tune.json in the study directory (for
``drlab tune --resume``) and in the study itself (a process joining it through a shared database
must mean the same study)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drlab.errors import DrlabError

TUNE_FILE = "tune.json"
DB_FILE = "study.db"
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")
# What a process joining a study through a shared database must agree on.
SAME_STUDY = ("algo", "env_id", "preset", "preset_values", "seeds", "fixed", "space_text", "heartbeat")


@dataclass
class TuneSpec:
    algo: str
    env_id: str
    preset: str
    seeds: list[int]
    trials: int  # the study's size, shared by every process working on it
    fixed: dict[str, Any]  # --set NAME=VALUE, as config values
    space_text: str
    space_where: str
    study_name: str
    out: Path
    storage: str | None = None  # None: the embedded SQLite file in out
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: dict = field(default_factory=lambda: {"name": "median", "startup_trials": 5, "warmup_steps": 0})
    heartbeat: int = 30  # seconds between heartbeats; a trial silent for 4 of them is taken as dead
    jobs: int = 1
    env_packages: list[str] = field(default_factory=list)
    preset_values: dict[str, Any] = field(default_factory=dict)  # the starting preset as it was, frozen

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.out / DB_FILE).resolve()}"

    def base(self) -> dict[str, Any]:
        """Every trial's settings before sampling: the preset's (as it was when the study began: a
        preset edited since, or the study's own result copied over it, does not change the study),
        then --set's."""
        return {**self.preset_values, **self.fixed, "env_packages": tuple(self.env_packages)}

    def space(self):
        """The parameters searched: the space's, less those that --set fixes."""
        from drlab.algos import get_algo
        from drlab.tune.space import load_space

        space = load_space(self.algo, get_algo(self.algo).Config, self.space_text, self.space_where)
        return [p for p in space if p.name not in self.fixed]

    def trial_configs(self, settings: dict[str, Any], dirname: str) -> list[dict]:
        """The config.json of each of a trial's runs (one per seed), built and validated."""
        from drlab.algos import get_algo
        from drlab.config import build_config
        from drlab.run.rundir import config_to_json

        module = get_algo(self.algo)
        configs = []
        for seed in self.seeds:
            values = {**self.base(), **settings, "seed": seed, "progress": False,
                      "run_dir": str((self.out / dirname / f"s{seed}").resolve())}
            cfg = build_config(module.Config, self.env_id, values)
            cfg.validate()
            configs.append(config_to_json(self.algo, cfg))
        return configs

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        data["fixed"] = json.loads(json.dumps(self.fixed))
        data["preset_values"] = json.loads(json.dumps(self.preset_values))
        return data

    def save(self) -> None:
        from drlab.run.checkpoint import write_json

        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / TUNE_FILE, self.to_json())


def load_spec(out: Path) -> TuneSpec:
    """The study in ``out``/tune.json (``drlab tune --resume``); its env's packages imported."""
    from drlab.algos import get_algo
    from drlab.config import field_types
    from drlab.envs.sources import import_env_packages
    from drlab.sweep.values import format_value, parse_value

    path = Path(out) / TUNE_FILE
    try:
        data = json.loads(path.read_text())
        data["out"] = Path(out)  # the directory may have moved since
        spec = TuneSpec(**data)
        types = field_types(get_algo(spec.algo).Config)
        typed = lambda values: {k: parse_value(k, types[k], format_value(tuple(v) if isinstance(v, list) else v))  # noqa: E731
                                for k, v in values.items()}
        spec.fixed, spec.preset_values = typed(spec.fixed), typed(spec.preset_values)
    except FileNotFoundError:
        raise DrlabError(f"{out} holds no {TUNE_FILE}: not a study directory") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DrlabError(f"cannot read {path}: {err}"[:300]) from None
    import_env_packages(spec.env_packages, spec.env_id)
    return spec


def plan_spec(algo: str, env_id: str, *, preset: str, seeds: str, trials: int, sets: list[str],
              space_file: Path | None, storage: str | None, study_name: str | None, out: Path | None,
              timeout: float | None, sampler: str, pruner: str, heartbeat: int, jobs: int,
              env_packages=()) -> TuneSpec:
    """Check everything a new study needs (one line for each mistake); nothing is written."""
    from drlab.algos import get_algo
    from drlab.config import DEFAULT_PRESET, build_config, field_types, preset_overrides
    from drlab.envs.sources import resolve_env
    from drlab.run.rundir import safe_name, timestamped_dir
    from drlab.sweep.grid import check_point_env, check_setting
    from drlab.sweep.values import parse_seeds, parse_set, parse_value
    from drlab.tune.space import space_source

    module = get_algo(algo)
    env_id, packages = resolve_env(env_id, env_packages)
    preset = preset or DEFAULT_PRESET
    preset_values = preset_overrides(algo, env_id, preset)  # one line for an unknown preset
    if trials < 1:
        raise DrlabError(f"--trials must be >= 1 (got {trials})")
    if timeout is not None and timeout <= 0:
        raise DrlabError(f"--timeout must be > 0 seconds (got {timeout:g})")
    if sampler not in SAMPLERS:
        raise DrlabError(f"--sampler {sampler}: unknown sampler (known: {', '.join(SAMPLERS)})")
    if pruner not in PRUNERS:
        raise DrlabError(f"--pruner {pruner}: unknown pruner (known: {', '.join(PRUNERS)})")
    if heartbeat < 1:
        raise DrlabError(f"--heartbeat must be >= 1 second (got {heartbeat})")
    types = field_types(module.Config)
    fixed = {}
    for text in sets:
        name, raw = parse_set(text)
        check_setting(name, types, algo, f"--set {name}")
        if len(raw) != 1:
            raise DrlabError(f"--set {name}: drlab tune takes one value per setting (the search space varies them)")
        fixed[name] = parse_value(name, types[name], raw[0])
    text, where = space_source(algo, space_file)
    out = Path(out) if out is not None else timestamped_dir(f"tune-{algo}-{safe_name(env_id)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DrlabError(f"{out} already exists and is not empty; choose another --out (or --resume {out})")
    spec = TuneSpec(algo, env_id, preset, parse_seeds(seeds), trials, fixed, text, where,
                    study_name or f"{algo}-{safe_name(env_id)}", out, storage, timeout, sampler,
                    {"name": pruner, "startup_trials": 5, "warmup_steps": 0}, heartbeat, jobs, list(packages),
                    dict(preset_values))
    spec.space()  # one line for any mistake in the space
    cfg = build_config(module.Config, env_id, {**spec.base(), "seed": spec.seeds[0]})
    cfg.validate()
    if pruner != "none" and not cfg.eval_interval:
        raise DrlabError("pruning needs periodic evaluations: --set eval_interval=N (or --pruner none)")
    if not cfg.final_eval_episodes:
        raise DrlabError("a trial's score is its final greedy evaluation: final_eval_episodes must be >= 1")
    # The pruner waits for a third of a run before it judges (rl-baselines3-zoo's n_warmup_steps).
    spec.pruner["warmup_steps"] = cfg.total_steps // 3
    from drlab.run.rundir import config_to_json

    check_point_env(module, config_to_json(algo, cfg))
    return spec
