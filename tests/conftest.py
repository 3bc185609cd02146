import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")



class CounterEnv(gym.Env):
    """obs = [episode index, step in episode]; reward = step in episode after the step.

    Even episodes terminate after 3 steps; odd ones run until the TimeLimit truncates them at 5.
    Each env's episode index counts from 0 at its first reset, and again from 0 at every reset with a
    seed (so that, as Gymnasium's env checker asks, the same seed gives the same observations).
    """

    observation_space = gym.spaces.Box(-1e6, 1e6, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.episode = -1
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode = 0 if seed is not None else self.episode + 1
        self.t = 0
        return np.array([self.episode, 0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.episode % 2 == 0 and self.t == 3
        return np.array([self.episode, self.t], dtype=np.float32), float(self.t), terminated, False, {}


if "DrlabTestCounter-v0" not in gym.registry:
    gym.register("DrlabTestCounter-v0", entry_point=CounterEnv, max_episode_steps=5)


def wait_for(predicate, process, what: str, timeout: float = 180.0) -> None:
    """Wait until ``predicate()`` holds; fail with the process's stderr if it exits (or hangs) first."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"{what} never happened: {process.communicate(timeout=60)[1][-2000:]}")
        time.sleep(0.2)


def train_steps(run_dir) -> list[int]:
    """The steps of a run's periodic train/* records (one per log interval): a resumed run must not
    log a step twice."""
    from drlab.run.logger import read_metrics

    return [r["step"] for r in read_metrics(run_dir) if any(k.startswith("train/") for k in r)]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A short DQN run on CartPole (not trained to solve), shared by tests of eval/record/plot/load."""
    import drlab

    run_dir = tmp_path_factory.mktemp("runs") / "dqn-short"
    drlab.train("dqn", "CartPole-v1", seed=3, total_steps=3000, learning_starts=500, eval_interval=1000,
                eval_episodes=2, final_eval_episodes=5, stop_on_solve=False, progress=False, log_interval=500,
                run_dir=str(run_dir))
    return run_dir


def pytest_runtest_setup(item):
    """Under `--dist loadgroup`, pytest-xdist sends a group's tests to one worker by suffixing their
    node ids with the group's name. Some pytest releases drop that suffix without a word (9.2 with
    xdist 3.8), and the Ray tests then start two clusters at once on the machine: fail them instead."""
    if getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group") \
            and "@" not in item.nodeid:  # option.loadgroup: set in xdist's workers only
        pytest.fail("pytest-xdist could not put this test in its xdist_group (this pytest release ignores "
                    "the group); install the versions that pyproject.toml's dev extra names", pytrace=False)


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray with 2 CPUs in this process for the module's tests; its address for the
    command lines they start (Ray tests share the xdist group "ray": one cluster at a time)."""
    import ray

    os.environ.pop("RAY_ADDRESS", None)  # left by an earlier module's cluster: start a new one
    # "local": a new Ray even where a cluster on this machine is recorded for ray.init to join
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    os.environ.pop("RAY_ADDRESS", None)  # set by ray.init; the next module's ray.init would join the dead cluster
