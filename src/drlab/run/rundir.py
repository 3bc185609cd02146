"""The run directory contract: file names, config.json to and from a config, default names, and
loading the agent a run saved."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import sys
from datetime import datetime
from pathlib import Path

from drlab.algos import get_algo
from drlab.config import build_config, pick_device
from drlab.errors import DrlabError, writing
from drlab.run.checkpoint import load_checkpoint, read_json
from drlab.run.upgrades import upgrade_config

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
CHECKPOINT = Path("checkpoints") / "latest.pt"


def config_to_json(algo: str, cfg) -> dict:
    return {"algo": algo, **dataclasses.asdict(cfg)}


def config_from_json(data: dict, import_envs: bool = True):
    """(algo name, config) from config.json contents. The modules that register the run's env
    (``env_packages``) are imported first, unless ``import_envs`` is False (for what never makes
    the env): every process that rebuilds a run (eval, record, resume, sweep points, Ray tasks and
    runners, drlab.load) comes through here."""
    if not isinstance(data, dict) or "algo" not in data or "env_id" not in data:
        raise DrlabError("config.json is not a drlab run config")
    values = dict(data)
    algo = values.pop("algo")
    module = get_algo(algo)
    upgrade_config(algo, values)  # a config.json of an earlier version (drlab.run.upgrades)
    cfg = build_config(module.Config, values.pop("env_id"), values, complete=True)
    if import_envs:
        from drlab.envs.sources import import_env_packages

        import_env_packages(cfg.env_packages, cfg.env_id)
    return algo, cfg


def load_run_config(run_dir: Path, import_envs: bool = True):
    """(algo name, config) of a run directory, checked field by field and validated: a hand-edited
    config.json with a wrong type, an unknown or a missing field, or a bad value gets one line.
    The run's env modules are imported (see config_from_json)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DrlabError(f"no run directory at {run_dir}")
    path = run_dir / CONFIG_FILE
    try:
        algo, cfg = config_from_json(read_json(path, "run config"), import_envs=False)
        cfg.validate()
    except DrlabError as err:
        message = str(err)
        raise DrlabError(message if str(path) in message else f"{path}: {message}") from None
    if import_envs:  # after the config's own checks, whose errors name config.json
        from drlab.envs.sources import import_env_packages

        import_env_packages(cfg.env_packages, cfg.env_id)
    return algo, cfg


def safe_name(text: str) -> str:
    """``text`` with anything but letters, digits and ``._-`` made ``_``, for a directory name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def default_run_dir(algo: str, env_id: str, seed: int) -> Path:
    return timestamped_dir(f"{algo}-{safe_name(env_id)}-s{seed}")


def timestamped_dir(name: str) -> Path:
    """runs/NAME-YYYYmmdd-HHMMSS, with -2, -3... if that already exists."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def load_agent(run_dir, device: str = "cpu"):
    """The agent of ``run_dir`` with its latest weights (weights only; nothing in the checkpoint is
    executed); ``agent.act(obs, greedy=True)`` is batched, ``agent.algo`` and ``agent.config`` say
    what it is."""
    import torch

    from drlab.envs import make_vec_env

    run_dir = Path(run_dir)
    algo, cfg = load_run_config(run_dir)
    module = get_algo(algo)
    checkpoint = load_checkpoint(run_dir / CHECKPOINT)
    envs = make_vec_env(cfg.env_id, 1, max_episode_steps=cfg.max_episode_steps, frame_stack=cfg.frame_stack)
    try:
        agent = module.make_agent(cfg, envs.single_observation_space, envs.single_action_space, pick_device(device))
    finally:
        envs.close()
    try:
        agent.load_state_dict(checkpoint["learner"]["agent"])
    except (KeyError, RuntimeError, TypeError) as err:
        raise DrlabError(f"checkpoint in {run_dir} does not match its config.json ({err.__class__.__name__})") from None
    agent.algo, agent.config = algo, cfg
    torch.set_num_threads(cfg.torch_threads)
    return agent


# ---- one writer per run directory ---------------------------------------------------------------

LOCK_FILE = "lock"
HOLDER_POLLS = 200  # 10 ms apart: how long a second writer waits for the holder's line in the lock file


class RunLock:
    """``RUN_DIR/lock``, held while a process writes the run directory (train, resume, a sweep point).

    The file names its holder (pid, host, start time, command). The lock itself is an exclusive
    ``flock`` on it, which the kernel drops when the holder dies however it dies (kill -9
    included), so a lock left behind by a dead process on this host is taken over, with a note on
    stderr. A second writer gets one line naming the holder. Created with the run directory's
    parents if they do not exist yet; released (the file removed) on every exit path.
    """

    def __init__(self, run_dir: Path):
        import fcntl

        self.path = Path(run_dir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise DrlabError(f"{run_dir} is being written by {self._holder()}; wait for it to finish or stop it") \
                    from None
            # The file may have been removed (released) and made anew between open and flock: then
            # this lock is on a file nobody else will look at, so try again.
            if os.path.exists(self.path) and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                break
            os.close(fd)
        self.fd = fd
        previous = os.read(fd, 4096).decode(errors="replace").strip()
        if previous and self._host(previous) not in (None, socket.gethostname()):
            # flock does not reach across hosts on every shared filesystem: that holder may be alive.
            os.close(fd)
            self.fd = None
            raise DrlabError(f"{run_dir} is locked by {self._describe(previous)}; if that process has ended, "
                             f"delete {self.path}")
        if previous:
            print(f"drlab: note: took over the lock of {run_dir} from {self._describe(previous)}, which is no longer "
                  "running", file=sys.stderr)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now().isoformat(timespec="seconds"),
                  "command": command_line()}
        try:
            with writing(self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        except OSError:
            self.release()
            raise

    def _holder(self) -> str:
        """The holder, as its line in the lock file says. The holder writes that line just after it
        takes the lock: a process that finds the lock taken in between waits for the line (briefly)."""
        import time

        for _ in range(HOLDER_POLLS):
            try:
                text = self.path.read_text()
            except OSError:
                return "another process"
            if text.strip():
                return self._describe(text)
            time.sleep(0.01)
        return "another process"

    @staticmethod
    def _host(text: str) -> str | None:
        try:
            return json.loads(text)["host"]
        except (ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _describe(text: str) -> str:
        try:
            holder = json.loads(text)
            return f"process {holder['pid']} on {holder['host']} (since {holder['since']}: {holder['command']})"
        except (ValueError, KeyError, TypeError):
            return "another process"

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # first, so that nobody takes a lock on a file about to vanish
        except OSError:
            pass  # the directory is gone or read-only: closing still drops the lock
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def command_line() -> str:
    """This process's command as a user typed it (``drlab train ...``, also under ``python -m drlab.cli``)."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    words = ["drlab", *sys.argv[1:]] if program in ("drlab", "cli.py") else sys.argv
    return " ".join(words)


def remove_empty_dirs(dirs: list[Path]) -> None:
    """Remove the directories in ``dirs`` (deepest first) that are empty: what a failed start made."""
    for path in dirs:
        try:
            path.rmdir()
        except OSError:
            return


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files of atomic writes (``.NAME.*.tmp``) that a killed process left behind; only the
    holder of the run directory's lock calls this."""
    for folder in (run_dir, run_dir / CHECKPOINT.parent):
        for path in folder.glob(".*.tmp"):
            path.unlink(missing_ok=True)
