"""Where an environment id comes from, and the check that a user's environment gets before training.

Gymnasium knows an id once something registered it. drlab imports, before it makes an env:

- ``MODULE`` of ``MODULE:ENV_ID`` (Gymnasium's own syntax, as ``gymnasium.make`` takes it);
- every ``--env-package NAME``: packages that register their envs on import (highway_env, minigrid);
- with the Python API, the module of an env the caller registered (the registered spec's entry
  point), so that later commands find it too.

What was imported is saved in config.json as ``env_packages`` (the env id itself without the
``MODULE:`` prefix), and everything that rebuilds a run from config.json imports it first:
:func:`drlab.run.rundir.config_from_json` calls :func:`import_env_packages`. A module that fails to
import, or does not register the id, is one line naming it (and the ids it did register).

Before training an env that is not one of Gymnasium's own, Atari's (ale_py), VizDoom's or drlab's,
:func:`check_user_env` runs Gymnasium's env checker on a fresh instance and turns a failure into one
line; its warnings become at most one note line.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import re
import sys
import warnings

import gymnasium as gym

from drlab.errors import DrlabError

# Packages whose envs drlab knows how to make and that it never records or checks.
BUILTIN_PACKAGES = ("gymnasium", "ale_py", "vizdoom", "drlab")
MAX_IDS_SHOWN = 8
# The ids each module registered when drlab first imported it in this process.
_REGISTERED: dict[str, tuple[str, ...]] = {}


def cwd_on_path() -> None:
    """Put the current directory first on ``sys.path``, as ``python -m`` does: the ``drlab``
    console script's path has only its own directory, and a user's ``corridor.py`` lives here.
    Worker processes inherit it (multiprocessing's spawn passes sys.path; Ray adds the driver's
    current directory to its workers' path)."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def split_env_id(text: str) -> tuple[str | None, str]:
    """``("corridor", "Corridor-v0")`` for ``corridor:Corridor-v0``; ``(None, id)`` for a plain id."""
    if ":" not in text:
        return None, text
    module, _, env_id = text.partition(":")
    if not module or not env_id or ":" in env_id:
        raise DrlabError(f"'{text}' is neither an env id nor MODULE:ENV_ID (e.g. corridor:Corridor-v0)")
    return module, env_id


def resolve_env(text: str, packages=()) -> tuple[str, tuple[str, ...]]:
    """``(env id, env_packages)`` for ENV_ID or MODULE:ENV_ID plus ``--env-package`` names: every
    module imported (a one-line error if one fails to import or the id stays unknown), and the
    modules to save in config.json."""
    module, env_id = split_env_id(text)
    if isinstance(packages, str):
        packages = (packages,)
    names = tuple(dict.fromkeys([*([module] if module else []), *packages]))
    return env_id, env_packages_for(env_id, names)


def env_packages_for(env_id: str, names=()) -> tuple[str, ...]:
    """Import ``names`` and check that ``env_id`` is known then; the modules to record: ``names``,
    and the module of ``env_id``'s entry point when it is a user's that none of them covers."""
    from drlab.envs import env_spec

    names = tuple(names)
    for name in names:
        if not isinstance(name, str) or not name:
            raise DrlabError(f"env_packages must be module names (got {name!r})")
    import_env_packages(names, env_id)
    spec = env_spec(env_id)  # unknown id (no package named) or a missing optional dependency: one line
    entry = entry_module(spec)
    if entry is None or is_builtin(spec) or _covered(env_id, entry, names):
        return names
    if entry in ("__main__", "__mp_main__") or not _importable(entry):
        print(f"drlab: note: {env_id} is registered by {entry}, which other processes cannot import: "
              f"drlab eval, record, resume and sweeps of this run need a module that registers it "
              f"(train it as MODULE:{env_id})", file=sys.stderr)
        return names
    return (*names, entry)


def import_env_packages(names, env_id: str | None = None) -> None:
    """Import every module in ``names`` (a one-line error naming the module that fails); then,
    given ``env_id``, a one-line error if it is still unknown, naming the ids the modules registered."""
    names = tuple(names or ())
    if not names:
        return
    for name in names:
        import_env_package(name)
    if env_id is not None and env_id not in gym.registry:
        ids = [i for name in names for i in registered_by(name)]
        if len(names) == 1:
            what = f"{names[0]} does not register '{env_id}'"
        else:
            what = f"none of {', '.join(names)} registers '{env_id}'"
        registers = "it registers" if len(names) == 1 else "they register"
        listed = f"{registers}: {_some_ids(ids, env_id)}" if ids else f"{registers} no environment on import"
        raise DrlabError(f"{what} ({listed})")


def import_env_package(name: str) -> tuple[str, ...]:
    """Import ``name`` once; the ids it registered (a one-line error if it fails to import)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    before = set(gym.registry)
    try:
        importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - whatever a user's module raises is one line
        message = " ".join(str(err).split()) or type(err).__name__
        hint = ""
        if isinstance(err, ModuleNotFoundError) and err.name == name.partition(".")[0]:
            hint = " (it must be importable here: a module in the current directory, on PYTHONPATH, or installed)"
        raise DrlabError(f"cannot import env module '{name}': {type(err).__name__}: {message}"[:300] + hint) from None
    _REGISTERED[name] = tuple(i for i in gym.registry if i not in before)
    return _REGISTERED[name]


def registered_by(name: str) -> tuple[str, ...]:
    """The ids ``name`` registered on import; for a module imported before drlab did (its
    registrations are not visible as new), the ids whose entry point lives in it."""
    ids = _REGISTERED.get(name, ())
    if ids:
        return ids
    return tuple(i for i, spec in gym.registry.items() if _inside(entry_module(spec), name))


def _inside(module: str | None, package: str) -> bool:
    return module is not None and (module == package or module.startswith(package + "."))


def _some_ids(ids: list[str], env_id: str) -> str:
    """At most MAX_IDS_SHOWN ids, the closest to ``env_id`` first."""
    close = difflib.get_close_matches(env_id, ids, n=3, cutoff=0.5)
    ordered = list(dict.fromkeys([*close, *ids]))
    shown = ", ".join(ordered[:MAX_IDS_SHOWN])
    return shown + (f" and {len(ordered) - MAX_IDS_SHOWN} more" if len(ordered) > MAX_IDS_SHOWN else "")


def entry_module(spec) -> str | None:
    """The module of a registered spec's entry point (a ``module:attr`` string or a callable)."""
    entry = spec.entry_point if spec.entry_point is not None else spec.vector_entry_point
    if isinstance(entry, str):
        return entry.partition(":")[0] or None
    return getattr(entry, "__module__", None)


def is_builtin(spec) -> bool:
    """Whether the env is one of Gymnasium's own, Atari's (ale_py), VizDoom's or drlab's."""
    module = entry_module(spec)
    return module is not None and module.partition(".")[0] in BUILTIN_PACKAGES


def _covered(env_id: str, entry: str, names: tuple[str, ...]) -> bool:
    """Whether importing ``names`` registers ``env_id`` (as far as this process can tell)."""
    root = entry.partition(".")[0]
    return any(env_id in _REGISTERED.get(name, ()) or name.partition(".")[0] == root for name in names)


def _importable(module: str) -> bool:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # ValueError: a module without __spec__ (run as a script)
        return False
    return spec is not None and spec.name == module


# ---- Gymnasium's env checker ------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check_user_env(env_id: str) -> None:
    """Gymnasium's env checker on a fresh instance of a user's env (not one of Gymnasium's own,
    Atari's, VizDoom's or drlab's): a failure is one line naming what is wrong; its warnings, if
    any, one note line. The render check is skipped (it would open a window for "human")."""
    from gymnasium.utils.env_checker import check_env

    from drlab.envs import env_spec

    spec = env_spec(env_id)
    if is_builtin(spec):
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            env = gym.make(env_id)
        except Exception as err:  # noqa: BLE001 - a user's constructor: one line
            raise DrlabError(f"{env_id} could not be made: {_one_line(err)}") from None
        try:
            check_env(env.unwrapped, skip_render_check=True)
        except Exception as err:  # noqa: BLE001 - the checker's assertions and the env's own errors
            raise DrlabError(f"{env_id} fails Gymnasium's env checker: {_one_line(err)}") from None
        finally:
            try:
                env.close()
            except Exception:  # noqa: BLE001 - the check's verdict matters, not a failing close
                pass
    notes = list(dict.fromkeys(_clean(str(w.message)) for w in caught))
    if notes:
        first = notes[0] if len(notes[0]) <= 160 else notes[0][:157] + "..."
        more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
        print(f"drlab: note: Gymnasium's env checker warns about {env_id}: {first}{more}", file=sys.stderr)


def _clean(text: str) -> str:
    text = " ".join(ANSI.sub("", text).split())
    return text[len("WARN: "):] if text.startswith("WARN: ") else text


def _one_line(err: Exception) -> str:
    """The exception's message without the checker's "See https://..." pointers, on one line."""
    text = _clean(str(err))
    text = re.sub(r"\s*See https?://\S+( for more info(rmation)?)?\.?", "", text).strip()
    return (text or type(err).__name__)[:300]
