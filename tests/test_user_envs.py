"""Environments by id from anywhere, through the real `drlab` command line (tests/forked_cli.py): a user's module
(MODULE:ENV_ID, or --env-package) imported by train and by everything that rebuilds the run from
config.json (eval, record, plot, report, resume, sweep points, Ray runners and tasks), one line for a
module that does not import or does not register the id, and Gymnasium's env checker before training."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forked_cli import run_drlab

SCRIPT = Path(sys.executable).with_name("drlab")
# The console script, whose sys.path (unlike `python -m`'s) does not hold the current directory.
DRLAB = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "drlab.cli"]

CORRIDOR = '''
"""A corridor of 6 cells: start at the left end, reach the right end (+1); each step costs 0.01."""
import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, length=6, render_mode=None):
        self.length, self.render_mode = length, render_mode
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(length,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)  # 0: left, 1: right
        self.position = 0

    def _obs(self):
        obs = np.zeros(self.length, dtype=np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return self._obs(), {}

    def step(self, action):
        self.position = min(max(self.position + (1 if action == 1 else -1), 0), self.length - 1)
        terminated = self.position == self.length - 1
        return self._obs(), 1.0 if terminated else -0.01, terminated, False, {}

    def render(self):
        frame = np.full((16, 16 * self.length, 3), 40, dtype=np.uint8)
        frame[:, -16:] = (0, 160, 0)
        frame[4:12, 16 * self.position + 4:16 * self.position + 12] = (220, 40, 40)
        return frame


gym.register("{env_id}", entry_point=Corridor, max_episode_steps=30)
'''

TINY = ["--total-steps", "256", "--n-steps", "64", "--batch-size", "64", "--n-epochs", "1", "--eval-interval", "0",
        "--final-eval-episodes", "2", "--log-interval", "64", "--no-progress"]


def drlab(*args, cwd):
    """The console script in a process of its own: a child forked from a process that imported drlab
    already, with the console script's import path (tests/forked_cli.py; DRLAB_TESTS_NO_FORK=1 starts
    the script itself)."""
    if not os.environ.get("DRLAB_TESTS_NO_FORK"):
        return run_drlab(args, cwd=cwd)
    return subprocess.run([*DRLAB, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("drlab: error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def here(tmp_path) -> Path:
    """A directory holding the user's corridor.py, the working directory of the commands."""
    (tmp_path / "corridor.py").write_text(CORRIDOR.replace("{env_id}", "Corridor-v0"))
    return tmp_path


def config(run_dir) -> dict:
    return json.loads((Path(run_dir) / "config.json").read_text())


@pytest.mark.slow
def test_a_user_module_env_trains_evaluates_records_plots_and_reports(here):
    ok(drlab("train", "ppo", "corridor:Corridor-v0", *TINY, "--run-dir", "runs/c", cwd=here))
    saved = config(here / "runs/c")
    assert saved["env_id"] == "Corridor-v0" and saved["env_packages"] == ["corridor"]
    assert "episodes: " in ok(drlab("eval", "runs/c", "--episodes", "2", cwd=here)).stdout
    ok(drlab("record", "runs/c", cwd=here))
    assert (here / "runs/c/videos/greedy.mp4").stat().st_size > 0
    ok(drlab("plot", "runs/c", cwd=here))
    ok(drlab("report", "runs/c", cwd=here))
    assert (here / "runs/c/report.html").stat().st_size > 0


@pytest.mark.slow
def test_a_user_package_env_resumes_and_needs_its_module_wherever_it_is_rebuilt(here):
    ok(drlab("train", "ppo", "Corridor-v0", "--env-package", "corridor", *TINY, "--run-dir", "runs/p", cwd=here))
    saved = config(here / "runs/p")
    assert saved["env_id"] == "Corridor-v0" and saved["env_packages"] == ["corridor"]
    # A stopped run (no summary yet, more steps to go: a user may edit config.json) resumes.
    (here / "runs/p/summary.json").unlink()
    (here / "runs/p/config.json").write_text(json.dumps({**saved, "total_steps": 512}))
    ok(drlab("resume", "runs/p", cwd=here))
    assert json.loads((here / "runs/p/summary.json").read_text())["steps"] == 512
    elsewhere = here / "elsewhere"
    elsewhere.mkdir()
    one_line_error(drlab("eval", here / "runs/p", cwd=elsewhere), "cannot import env module 'corridor'",
                   "No module named 'corridor'")


@pytest.mark.slow
def test_an_env_the_caller_registered_is_recorded_for_the_commands_after(tmp_path, monkeypatch):
    # drlab.train after `import api_corridor`: the module of the env's entry point lands in config.json.
    import drlab as api

    (tmp_path / "api_corridor.py").write_text(CORRIDOR.replace("{env_id}", "ApiCorridor-v0"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import api_corridor  # noqa: F401 - registers ApiCorridor-v0

    run = api.train("ppo", "ApiCorridor-v0", total_steps=128, n_steps=64, batch_size=64, n_epochs=1,
                      eval_interval=0, final_eval_episodes=1, progress=False, run_dir=str(tmp_path / "run"))
    assert config(run.dir)["env_packages"] == ["api_corridor"]
    ok(drlab("eval", "run", "--episodes", "1", cwd=tmp_path))
    assert api.load(run.dir).config.env_packages == ("api_corridor",)


@pytest.mark.slow
def test_a_two_point_sweep_imports_the_module_in_every_worker(here):
    out = here / "sweep"
    ok(drlab("sweep", "ppo", "corridor:Corridor-v0", "--set", "lr=1e-3,3e-4", "--seeds", "0", "--jobs", "2",
             "--set", "total_steps=256", "--set", "n_steps=64", "--set", "batch_size=64", "--set", "n_epochs=1",
             "--set", "eval_interval=0", "--set", "final_eval_episodes=2", "--out", out, cwd=here))
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["status"] for p in points] == ["ok", "ok"]
    assert all(config(p["config"]["run_dir"])["env_packages"] == ["corridor"] for p in points)
    ok(drlab("sweep", "--resume", out, cwd=here))  # imports the module again (nothing left to run)
    ok(drlab("report", out, cwd=here))


@pytest.mark.slow
def test_a_module_that_does_not_import_or_register_the_id_is_one_line(here):
    one_line_error(drlab("train", "ppo", "nowhere:Corridor-v0", *TINY, cwd=here),
                   "cannot import env module 'nowhere'", "ModuleNotFoundError", "No module named 'nowhere'")
    (here / "needs_more.py").write_text("import not_installed_anywhere\n")
    one_line_error(drlab("train", "ppo", "needs_more:Corridor-v0", *TINY, cwd=here),
                   "cannot import env module 'needs_more'", "No module named 'not_installed_anywhere'")
    one_line_error(drlab("train", "ppo", "corridor:Corridor-v9", *TINY, cwd=here),
                   "corridor does not register 'Corridor-v9'", "it registers: Corridor-v0")
    one_line_error(drlab("sweep", "ppo", "Hallway-v0", "--env-package", "corridor", "--seeds", "0", cwd=here),
                   "corridor does not register 'Hallway-v0'", "Corridor-v0")
    one_line_error(drlab("train", "ppo", "Corridor-v0", *TINY, cwd=here), "unknown environment 'Corridor-v0'",
                   "MODULE:Corridor-v0")
    assert not (here / "runs").exists()


@pytest.mark.slow
def test_the_env_checker_refuses_a_broken_env_in_one_line(here):
    # reset() returns an observation outside the declared space: Gymnasium's env checker says so.
    broken = CORRIDOR.replace("{env_id}", "Broken-v0").replace("return self._obs(), {}", "return self._obs() * 2, {}")
    (here / "broken.py").write_text(broken)
    one_line_error(drlab("train", "ppo", "broken:Broken-v0", *TINY, "--run-dir", "runs/b", cwd=here),
                   "Broken-v0 fails Gymnasium's env checker", "reset()")
    one_line_error(drlab("sweep", "ppo", "broken:Broken-v0", "--seeds", "0,1", "--out", "sweep", cwd=here),
                   "Broken-v0 fails Gymnasium's env checker")
    assert not (here / "runs").exists() and not (here / "sweep").exists()


@pytest.mark.xdist_group("ray")
@pytest.mark.ray
def test_ray_runners_and_ray_sweep_points_import_the_module(ray_address, here):
    ok(drlab("train", "ppo", "corridor:Corridor-v0", *TINY, "--num-envs", "2", "--runners", "2",
             "--address", ray_address, "--run-dir", "runs/r", cwd=here))
    assert json.loads((here / "runs/r/summary.json").read_text())["steps"] == 256
    out = here / "sweep"
    ok(drlab("sweep", "ppo", "corridor:Corridor-v0", "--set", "lr=1e-3,3e-4", "--seeds", "0", "--backend", "ray",
             "--address", ray_address, "--set", "total_steps=256", "--set", "n_steps=64", "--set", "batch_size=64",
             "--set", "n_epochs=1", "--set", "eval_interval=0", "--set", "final_eval_episodes=2", "--out", out, cwd=here))
    assert [p["status"] for p in json.loads((out / "sweep.json").read_text())["points"]] == ["ok", "ok"]


def test_old_configs_without_env_packages_still_load(tmp_path):
    from drlab.run.rundir import config_from_json

    import drlab as api

    run = api.train("ppo", "CartPole-v1", total_steps=128, n_steps=64, batch_size=64, n_epochs=1, eval_interval=0,
                      final_eval_episodes=0, progress=False, run_dir=str(tmp_path / "run"))
    saved = config(run.dir)
    assert saved["env_packages"] == []  # Gymnasium's own env: nothing to import
    del saved["env_packages"]
    _, cfg = config_from_json(saved)
    assert cfg.env_packages == ()
    shutil.rmtree(run.dir)
