"""A2C/PPO rollouts on Ray actors (`--runners K`): the same arrays as in-process collection, frames
packed without loss, and a run that loses a runner goes on. One local Ray for the module (the
fixture ray_address), in the xdist group "ray"."""

import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from drlab.algos import a2c
from drlab.algos.collect import collect, rollout_for
from drlab.algos.runners import RunnerGroup, pack_frames, unpack_frames
from drlab.config import build_config
from drlab.envs import make_vec_env
from drlab.envs.autoreset import game_signals
from drlab.run.clock import PhaseClock
from conftest import train_steps, wait_for
from tests import action_space_envs  # noqa: F401  (registers the MultiDiscrete env)

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.ray]

ARRAYS = ("obs", "actions", "rewards", "terminated", "truncated", "valid")


def test_packed_frames_come_back_exactly():
    # Stacks of 3 frames that shift by one frame per step, except where an episode starts (a new stack).
    rng = np.random.default_rng(0)
    T, n, C = 12, 3, 3
    frames = rng.integers(0, 255, size=(T + C, n, 5, 5), dtype=np.uint8)
    obs = np.stack([frames[t:t + C].transpose(1, 0, 2, 3) for t in range(T + 1)])  # (T + 1, n, C, 5, 5)
    for t, env in [(4, 0), (5, 0), (9, 2)]:
        obs[t, env] = rng.integers(0, 255, size=(C, 5, 5), dtype=np.uint8)
    packed = pack_frames(obs)
    assert np.array_equal(unpack_frames(packed), obs)
    # Whole stacks where a stack is not its predecessor shifted: steps 4, 5, 6 of env 0 and 9, 10 of env 2.
    assert packed["whole"].shape[0] == 5
    stack = C * 5 * 5
    assert sum(a.nbytes for a in packed.values()) == n * stack + T * n * 25 + 5 * stack + T * n  # vs (T + 1) n stacks


@pytest.mark.parametrize("env_id, sde", [("Acrobot-v1", False), ("Pendulum-v1", False), ("Pendulum-v1", True),
                                         ("DrlabTestMultiDiscreteTarget-v0", False)])
def test_runners_collect_exactly_the_arrays_of_in_process_collection(env_id, sde, ray_address):
    # A SyncVectorEnv (env i reset with seed + i) with Discrete, Box (Gaussian noise, or gSDE's noise
    # matrices held for 4 steps) or MultiDiscrete actions, a 10-step time limit so that episodes end
    # and restart inside the rollouts, two rollouts in a row, 4 envs on 2 runners.
    cfg = build_config(a2c.Config, env_id, {"num_envs": 4, "n_steps": 16, "runners": 2, "seed": 3, "sde": sde,
                                            "sde_sample_freq": 4, "max_episode_steps": 10,
                                            "env_packages": ("tests.action_space_envs",)})
    envs = make_vec_env(env_id, 4, training=True, max_episode_steps=10)
    torch.manual_seed(0)
    agent = a2c.make_agent(cfg, envs.single_observation_space, envs.single_action_space, torch.device("cpu"))
    agent.rng = np.random.default_rng(5)

    local, signals = [], []
    obs, _ = envs.reset(seed=3)
    prev_done = np.zeros(4, dtype=bool)
    for _ in range(2):
        rollout = rollout_for(agent, 16, 4)
        obs, prev_done = collect(agent, envs, rollout, obs, prev_done, PhaseClock(),
                                 lambda *step: signals.append(game_signals(*step)))
        local.append({name: getattr(rollout, name).copy() for name in ARRAYS})
    local_rng_state = agent.rng.bit_generator.state
    envs.close()

    agent.rng = np.random.default_rng(5)
    booked = []
    episodes = SimpleNamespace(record_game_steps=lambda *step: booked.append(step), forget=lambda rows: None)
    run = SimpleNamespace(cfg=cfg, algo="a2c", step=0, clock=PhaseClock(), env_seed=lambda: 3, episodes=episodes,
                          note=lambda metrics: None)
    group = RunnerGroup(run, agent)
    try:
        for expected in local:
            rollout = rollout_for(agent, 16, 4)
            group.collect(rollout)
            for name in ARRAYS:
                assert np.array_equal(getattr(rollout, name), expected[name]), name
    finally:
        group.close()
    assert agent.rng.bit_generator.state == local_rng_state
    assert len(booked) == len(signals) == 32
    for ours, theirs in zip(booked, signals):
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    assert any(s[1].any() for s in signals)  # episodes did end inside the rollouts
    assert run.clock.seconds["runner_wait"] > 0


def runner_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and open(f"/proc/{entry}/cmdline").read().startswith("ray::Runner"):
                pids.append(int(entry))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the runner processes in /proc")
def test_a_killed_runner_is_replaced_and_training_goes_on(ray_address, tmp_path):
    run_dir = tmp_path / "run"
    train = subprocess.Popen(
        [sys.executable, "-m", "drlab.cli", "train", "a2c", "CartPole-v1", "--runners", "2", "--address", ray_address,
         "--total-steps", "16000", "--eval-interval", "0", "--final-eval-episodes", "5", "--log-interval", "1000",
         "--no-progress", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and len(runner_pids()) >= 2, train,
             "a metrics file and two runner processes")
    # Kill a runner once training has logged (a runner's process title changes as it works: look again
    # until one is found).
    victim: list[int] = []

    def training_and_a_runner_found() -> bool:
        victim[:] = runner_pids()[:1]
        return bool(victim) and bool(train_steps(run_dir))

    wait_for(training_and_a_runner_found, train, "a logged training step and a runner process")
    os.kill(victim[0], signal.SIGKILL)
    stdout, stderr = train.communicate(timeout=300)
    assert train.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "restarted with the current weights on fresh episodes, its partial rollout dropped" in stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 16000
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("perf/runner_restarts") == 1 for r in records)
    assert any("perf/runner_wait_fraction" in r for r in records)
