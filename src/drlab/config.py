"""The run settings every algorithm shares, and tuned presets as data files.

An algorithm's config is a dataclass that extends :class:`RunConfig`; the command line exposes
every field as a flag, and ``config.json`` in the run directory is ``dataclasses.asdict`` of it
plus the algorithm's name, so a run can always be rebuilt from its directory (and shipped to
another process or machine as plain JSON).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

import torch
import tyro

from drlab.errors import DrlabError


@dataclass
class RunConfig:
    env_id: Annotated[str, tyro.conf.Suppress] = "CartPole-v1"
    """Gymnasium environment id (given as ENV_ID on the command line)."""
    env_packages: Annotated[tuple[str, ...], tyro.conf.Suppress] = ()
    """Modules imported before the env is made, which register env ids: MODULE of MODULE:ENV_ID, every
    --env-package, and the module of an env registered by the caller of drlab.train (drlab.envs.sources)."""
    seed: int = 0
    """Seed for the environments, the networks and every random choice."""
    total_steps: int = 100_000
    """Environment steps to train for (summed over the parallel envs)."""
    total_episodes: int = 0
    """Also stop once this many training episodes have ended (0: no such limit), e.g. to compare steps
    per episode over a fixed number of episodes. Checked after each vector step (on-policy algorithms:
    after each rollout), so a few more episodes may end. Schedules (epsilon, learning-rate decay) still
    follow total_steps: give it a realistic value."""
    num_envs: int = 1
    """Parallel environments stepped as one batch."""
    max_episode_steps: int | None = None
    """Replace the env's time limit: episodes are truncated (and bootstrapped) after this many steps;
    evaluations use the same limit. None keeps the env's own."""
    frame_stack: int = 1
    """Observations stacked into one (the last K; an episode starts with K copies of its first), for
    envs other than Atari and VizDoom, which stack their frames themselves."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the networks live; auto picks CUDA when present."""
    torch_threads: int = 1
    """Intra-op threads for PyTorch on the CPU (1 is fastest for small networks)."""
    run_dir: str | None = None
    """Run directory; default runs/ALGO-ENV-sSEED-TIME."""
    log_interval: int = 2_000
    """Environment steps between lines in metrics.jsonl / TensorBoard."""
    eval_interval: int = 10_000
    """Environment steps between periodic greedy evaluations (0 turns them off)."""
    eval_episodes: int = 10
    """Episodes per periodic evaluation."""
    stop_on_solve: bool = False
    """Stop training once a periodic evaluation reaches the environment's threshold."""
    stop_threshold: float | None = None
    """Periodic-evaluation return at which stop_on_solve stops (default: the env's threshold)."""
    final_eval_episodes: int = 100
    """Greedy episodes of the final evaluation written to summary.json (0 skips it)."""
    checkpoint_interval: int = 0
    """Environment steps between checkpoints during training (0: only at the end or on Ctrl-C)."""
    video_interval: int = 0
    """Environment steps between videos of one greedy episode taken during training, videos/step-N.mp4 (0: none)."""
    progress: bool = True
    """Show a progress bar."""

    def validate(self) -> None:
        """Raise DrlabError naming the first invalid setting; algorithm configs extend this."""
        positive(self, "total_steps", "num_envs", "torch_threads", "log_interval", "frame_stack")
        non_negative(self, "total_episodes", "eval_interval", "eval_episodes", "final_eval_episodes", "checkpoint_interval",
                     "video_interval")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise DrlabError(f"max_episode_steps must be >= 1 (got {self.max_episode_steps})")
        if self.eval_interval and not self.eval_episodes:
            raise DrlabError("eval_episodes must be >= 1 when eval_interval is set")


def pick_device(name: str) -> torch.device:
    """The torch device for the ``device`` setting: auto picks CUDA when PyTorch sees a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DrlabError("device 'cuda' was asked for but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(name)


def hidden_sizes(cfg: Any, linear_ok: bool = False) -> None:
    """``cfg.hidden``: every size >= 1, and at least one layer unless ``linear_ok`` (the algorithm's
    heads then read the encoded observation directly: linear, a table on one-hot observations)."""
    if any(h < 1 for h in cfg.hidden):
        raise DrlabError(f"hidden sizes must be >= 1 (got {cfg.hidden})")
    if not cfg.hidden and not linear_ok:
        raise DrlabError("hidden: this algorithm needs at least one hidden layer")


def batch_fits_buffer(cfg: Any) -> None:
    """A replay batch cannot be larger than the replay."""
    if cfg.batch_size > cfg.buffer_size:
        raise DrlabError(f"batch_size ({cfg.batch_size}) cannot be larger than buffer_size ({cfg.buffer_size})")


def positive(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise DrlabError(f"{name} must be > 0 (got {value!r})")


def non_negative(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise DrlabError(f"{name} must be >= 0 (got {value!r})")


def in_unit_interval(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise DrlabError(f"{name} must be in [0, 1] (got {value!r})")


# ---- presets ---------------------------------------------------------------------------------
# presets/ALGO/ENV.toml holds a [default] table and optional named variants; a variant is a set of
# overrides on top of [default]. Env ids with a namespace ("ALE/Pong-v5") use "_" for "/". A file
# holding only `same_as = "ENV_ID"` uses that env's presets (a variant of an env, such as
# drlab/FourRoomsTransfer-v0 of drlab/FourRooms-v0).

DEFAULT_PRESET = "default"
NO_PRESET = "none"  # the algorithm's own defaults, even where the env has a preset


def preset_file(algo: str, env_id: str):
    return resources.files("drlab.presets").joinpath(algo, env_id.replace("/", "_") + ".toml")


def load_presets(algo: str, env_id: str) -> dict[str, dict[str, Any]]:
    """All presets for (algo, env) as {name: overrides}; {} when the pair has none."""
    path = preset_file(algo, env_id)
    if not path.is_file():
        return {}
    tables = tomllib.loads(path.read_text())
    if "same_as" in tables:
        return load_presets(algo, same_as(algo, path, tables))
    base = tables.get(DEFAULT_PRESET, {})
    presets = {DEFAULT_PRESET: dict(base)}
    for name, table in tables.items():
        if name != DEFAULT_PRESET and isinstance(table, dict):
            presets[name] = {**base, **table}
    return presets


def same_as(algo: str, path, tables: dict) -> str:
    """The env whose presets a ``same_as`` file names: a file with that one key, naming an env with
    presets of its own (no chains, no loops)."""
    target = tables["same_as"]
    target_path = preset_file(algo, target) if isinstance(target, str) else None
    if (set(tables) != {"same_as"} or target_path is None or not target_path.is_file() or target_path == path
            or "same_as" in tomllib.loads(target_path.read_text())):
        raise DrlabError(f"{path.name}: a preset file with same_as holds that key only, naming an env with presets "
                         f"of its own (got {tables})")
    return target


def preset_overrides(algo: str, env_id: str, preset: str) -> dict[str, Any]:
    if preset == NO_PRESET:
        return {}
    presets = load_presets(algo, env_id)
    if preset in presets:
        return presets[preset]
    if preset == DEFAULT_PRESET:
        return {}  # no tuned preset: the dataclass defaults
    known = ", ".join([*sorted(presets), NO_PRESET])
    raise DrlabError(f"no preset '{preset}' for {algo} on {env_id} (available: {known})")


def list_presets(algo: str) -> dict[str, list[str]]:
    """{env_id: [preset names]} for every preset file of ``algo``."""
    folder = resources.files("drlab.presets").joinpath(algo)
    if not folder.is_dir():
        return {}
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            env_id = entry.name[: -len(".toml")].replace("_", "/")
            out[env_id] = list(load_presets(algo, env_id))
    return out


def build_config(cls: type, env_id: str, values: dict[str, Any], complete: bool = False):
    """Instantiate config ``cls`` from a dict, with a one-line error for an unknown key or a value
    of the wrong type (and, with ``complete``, for a missing key: a config.json holds them all)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DrlabError(f"unknown setting(s) for {cls.__name__}: {', '.join(unknown)}")
    missing = sorted(set(fields) - set(values) - {"env_id"}) if complete else []
    if missing:
        raise DrlabError(f"missing setting(s): {', '.join(missing)}")
    types_ = field_types(cls)
    coerced = {}
    for key, value in values.items():
        if isinstance(value, list):  # JSON/TOML give lists where the dataclass has tuples
            value = tuple(value)
        if isinstance(value, os.PathLike):  # drlab.train(..., run_dir=Path(...))
            value = os.fspath(value)
        if not fits(types_[key], value):
            raise DrlabError(f"setting '{key}' must be {describe(types_[key])} (got {value!r})")
        coerced[key] = value
    coerced["env_id"] = env_id
    return cls(**coerced)


def field_types(config_cls: type) -> dict[str, Any]:
    """{field name: resolved type} of a config dataclass (Annotated stripped)."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def fits(tp: Any, value: Any) -> bool:
    """Whether ``value`` is of the config field type ``tp`` (an int is a float; a bool is no int)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(fits(option, value) for option in args)
    if tp is type(None):
        return value is None
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is tuple:
        return isinstance(value, tuple) and all(fits(args[0], item) for item in value)
    return True


def describe(tp: Any) -> str:
    """A config field type in words, for error messages."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in args)
    if origin is tuple:
        return f"a list of {PLURALS.get(args[0], describe(args[0]))}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(tp, str(tp))


PLURALS = {int: "integers", float: "numbers", str: "strings"}
