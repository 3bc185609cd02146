"""Search spaces as data: one TOML table per setting, in the order the settings are sampled.

    [lr]                      # a float range; log = true samples its logarithm uniformly
    low = 1e-5
    high = 1e-2
    log = true

    [batch_size]              # choices (numbers, strings, booleans; tuples as "64x64")
    choices = [32, 64, 128]

    [n_step]                  # an int range (both bounds integers), optional step
    low = 1
    high = 5

    [per_alpha]               # sampled only when the condition holds (on a setting sampled above,
    low = 0.4                 # or the preset's / --set value)
    high = 0.8
    when = { replay = "per" }

A setting may appear once. Names are the algorithm's config fields; the settings a study sets itself
(seed, env, run directory) cannot be searched.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from drlab.config import field_types
from drlab.errors import DrlabError
from drlab.sweep.grid import check_setting
from drlab.sweep.values import format_value, parse_value

KEYS = {"low", "high", "log", "step", "choices", "when"}
# Settings a trial's reports depend on: every trial of a study must share them (fix them with --set).
NOT_SEARCHED = {"total_steps": "every trial's budget must be the same (fix it with --set total_steps=N)",
                "eval_interval": "the pruner compares trials at the same evaluations (fix it with --set)"}


@dataclass(frozen=True)
class Param:
    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple | None = None  # as Optuna stores them (None, bool, int, float or str)
    integer: bool = False  # a range of an integer setting
    when: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        where = "".join(f" when {k}={format_value(v)}" for k, v in self.when.items())
        if self.choices is not None:
            return f"{self.name} in {{{', '.join(map(str, self.choices))}}}{where}"
        scale = " (log)" if self.log else ""
        return f"{self.name} in [{self.low:g}, {self.high:g}]{scale}{where}"


def space_source(algo: str, path: Path | None) -> tuple[str, str]:
    """(text, where) of ``path``, or of the algorithm's built-in space."""
    if path is not None:
        try:
            return Path(path).read_text(), str(path)
        except OSError as err:
            raise DrlabError(f"--space {path}: {err.strerror or err}") from None
    entry = resources.files("drlab.tune").joinpath("spaces", f"{algo}.toml")
    if not entry.is_file():
        raise DrlabError(f"drlab tune has no search space for {algo}; give one with --space FILE.toml")
    return entry.read_text(), f"the built-in space of {algo}"


def load_space(algo: str, config_cls: type, text: str, where: str) -> list[Param]:
    """Parse and check a search space; every mistake is one line naming ``where``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise DrlabError(f"{where}: not valid TOML ({err})") from None
    types = field_types(config_cls)
    space: list[Param] = []
    for name, spec in data.items():
        name = name.replace("-", "_")
        bad = f"{where}: [{name}]"
        check_setting(name, types, algo, bad)
        if name in NOT_SEARCHED:
            raise DrlabError(f"{bad}: cannot be searched: {NOT_SEARCHED[name]}")
        if not isinstance(spec, dict):
            raise DrlabError(f"{bad}: expected a table (low/high or choices)")
        if unknown := sorted(set(spec) - KEYS):
            raise DrlabError(f"{bad}: unknown key {unknown[0]} (known: {', '.join(sorted(KEYS))})")
        when = {}
        if not isinstance(spec.get("when", {}), dict):
            raise DrlabError(f"{bad}: when must be a table, e.g. when = {{ replay = \"per\" }}")
        for other, value in spec.get("when", {}).items():
            other = other.replace("-", "_")
            if other not in types:
                raise DrlabError(f"{bad}: when: unknown setting {other}")
            if not isinstance(value, (str, int, float, bool, list)):
                raise DrlabError(f"{bad}: when: {other} must be a number, string, boolean or list")
            when[other] = parse_value(other, types[other], format_value(tuple(value) if isinstance(value, list) else value))
        if "choices" in spec:
            if {"low", "high", "log", "step"} & set(spec):
                raise DrlabError(f"{bad}: give choices or low/high, not both")
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise DrlabError(f"{bad}: choices must be a non-empty list")
            if any(not isinstance(c, (str, int, float, bool, list)) for c in choices):
                raise DrlabError(f"{bad}: choices must be numbers, strings, booleans or lists of sizes")
            stored = tuple(format_value(tuple(c)) if isinstance(c, list) else c for c in choices)
            for choice in stored:
                try:
                    parse_value(name, types[name], format_value(choice))
                except DrlabError as err:
                    raise DrlabError(f"{bad}: {err}") from None
            if len(set(stored)) != len(stored):
                raise DrlabError(f"{bad}: a choice is repeated")
            param = Param(name, choices=stored, when=when)
        else:
            if "low" not in spec or "high" not in spec:
                raise DrlabError(f"{bad}: give low and high (or choices)")
            low, high, step, log = spec["low"], spec["high"], spec.get("step"), bool(spec.get("log", False))
            numbers = [v for v in (low, high, step) if v is not None]
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in numbers):
                raise DrlabError(f"{bad}: low, high and step must be numbers")
            try:
                parse_value(name, types[name], "0.5")
                integer = False  # a float setting: low = 0 and high = 1 are a float range too
            except DrlabError:
                integer = True
                try:
                    if not isinstance(parse_value(name, types[name], "1"), int):
                        raise DrlabError("not an integer setting")
                except DrlabError:
                    raise DrlabError(f"{bad}: a range does not fit this setting (type {types[name]}); "
                                     "give choices") from None
                if not all(isinstance(v, int) for v in numbers):
                    raise DrlabError(f"{bad}: {name} is an integer setting: low, high and step must be integers")
            if not low < high:
                raise DrlabError(f"{bad}: low ({low}) must be below high ({high})")
            if log and low <= 0:
                raise DrlabError(f"{bad}: a log range needs low > 0 (got {low})")
            if step is not None and (step <= 0 or log):
                raise DrlabError(f"{bad}: step must be > 0, and cannot be combined with log")
            param = Param(name, low, high, log, step, integer=integer, when=when)
        if any(p.name == name for p in space):
            raise DrlabError(f"{bad}: given twice")
        space.append(param)
    if not space:
        raise DrlabError(f"{where}: the search space is empty")
    return space


def sample(trial, space: list[Param], base: dict[str, Any], types: dict[str, Any]) -> dict[str, Any]:
    """The settings of one trial: each parameter whose condition holds, drawn by ``trial`` (Optuna's
    suggest_*), converted to the config's type."""
    values: dict[str, Any] = {}
    for p in space:
        if any({**base, **values}.get(k) != v for k, v in p.when.items()):
            continue
        if p.choices is not None:
            raw = trial.suggest_categorical(p.name, list(p.choices))
        elif p.integer:
            raw = trial.suggest_int(p.name, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            raw = trial.suggest_float(p.name, float(p.low), float(p.high), step=p.step, log=p.log)
        values[p.name] = parse_value(p.name, types[p.name], format_value(raw))
    return values
