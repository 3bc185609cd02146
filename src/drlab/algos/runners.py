"""A2C and PPO rollouts on Ray actors (``--runners K``): K runners each step num_envs / K envs.

Per update the learner (in the driver, on the GPU when there is one) puts its weights into Ray's
object store once; every runner loads them, collects T steps of its envs with
:func:`drlab.algos.collect.collect` (the code the learner runs in-process) and returns its
(T, n) arrays; the learner concatenates them along the env axis and runs the same batched pass
and loss as without runners.

The arrays are exactly those of in-process collection for the same env seeds and weights: runner
k's envs are envs k*n .. (k+1)*n - 1, reset with the same seeds, and each runner draws the sampling
noise of the whole batch of N envs from the run's generator and keeps its own rows, so every
action is the one the learner's process would have drawn (and the generator ends where it would
have); for a Gaussian policy it also computes the policy's outputs in a batch of N rows, its own
in place, since float rounding depends on the batch size. Stacked frames travel as the newest frame of each step wherever a stack is the previous one
shifted by one frame (everywhere but episode starts), a quarter of the bytes.

A runner that dies (its process killed, its node lost) is replaced by a new one with the current
weights and fresh episodes on its envs; the rollout it was collecting is dropped and collected
again, and the run says so on stderr and in ``perf/runner_restarts``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from drlab.algos.collect import collect, rollout_for
from drlab.buffers.rollout import Rollout
from drlab.envs.autoreset import game_signals
from drlab.errors import DrlabError
from drlab.run.clock import PhaseClock
from drlab.spaces.encoders import stacked_frames

MAX_RESTARTS_IN_A_ROW = 3  # a runner that dies again and again (a bad node, out of memory) stops the run


class RowsOfBatch:
    """A NumPy generator as a runner must use it: every draw is made for the whole batch of
    ``num_rows`` envs, and only this runner's ``rows`` are returned."""

    def __init__(self, generator: np.random.Generator, num_rows: int, rows: slice):
        self.generator, self.num_rows, self.rows = generator, num_rows, rows

    def random(self, shape) -> np.ndarray:
        return self.generator.random((self.num_rows, *shape[1:]))[self.rows]

    def standard_normal(self, shape) -> np.ndarray:
        return self.generator.standard_normal((self.num_rows, *shape[1:]))[self.rows]


def pack_frames(obs: np.ndarray) -> dict:
    """(T + 1, n, C, H, W) stacked frames as the first stacks, the newest frame of every later step,
    and whole stacks only where a stack is not the previous one shifted by one (episode starts)."""
    shifted = np.all(obs[1:, :, :-1] == obs[:-1, :, 1:], axis=(2, 3, 4))
    return {"first": obs[0], "newest": obs[1:, :, -1], "shifted": shifted, "whole": obs[1:][~shifted]}


def unpack_frames(packed: dict) -> np.ndarray:
    """The inverse of :func:`pack_frames`."""
    newest, shifted, whole = packed["newest"], packed["shifted"], packed["whole"]
    obs = np.empty((len(newest) + 1, *packed["first"].shape), dtype=packed["first"].dtype)
    obs[0] = packed["first"]
    used = 0
    for t in range(len(newest)):
        obs[t + 1, :, :-1] = obs[t, :, 1:]
        obs[t + 1, :, -1] = newest[t]
        starts = np.flatnonzero(~shifted[t])
        obs[t + 1, starts] = whole[used:used + len(starts)]
        used += len(starts)
    return obs


class Runner:
    """One Ray actor: envs ``first .. first + n - 1`` of the run's ``num_envs`` and a CPU copy of
    the agent."""

    def __init__(self, algo: str, config: dict, first: int, n: int):
        from drlab.algos import get_algo
        from drlab.envs import ENV_THREADS, make_vec_env
        from drlab.run.rundir import config_from_json

        torch.set_num_threads(1)  # the one CPU Ray gave this actor
        ENV_THREADS["atari"] = 1
        _, self.cfg = config_from_json(config)
        self.rows, self.n = slice(first, first + n), n
        self.envs = make_vec_env(self.cfg.env_id, n, training=True, max_episode_steps=self.cfg.max_episode_steps,
                                 frame_stack=self.cfg.frame_stack)
        module = get_algo(algo)
        space = self.envs.single_observation_space
        self.agent = module.make_agent(self.cfg, space, self.envs.single_action_space, torch.device("cpu"))
        self.rollout = None
        self.obs, self.prev_done = None, np.zeros(n, dtype=bool)

    def reset(self, seed: int) -> None:
        """Fresh episodes: env i of the run (i in this runner's rows) is reset with seed + i."""
        self.obs, _ = self.envs.reset(seed=seed + self.rows.start)
        self.prev_done = np.zeros(self.n, dtype=bool)

    def collect(self, weights: dict, rng_state: dict, length: int) -> dict:
        self.agent.load_state_dict(weights)
        generator = np.random.default_rng()
        generator.bit_generator.state = rng_state
        self.agent.act_as_rows(self.cfg.num_envs, self.rows, RowsOfBatch(generator, self.cfg.num_envs, self.rows))
        space = self.envs.single_observation_space
        if self.rollout is None or self.rollout.length != length:
            self.rollout = rollout_for(self.agent, length, self.n)
        signals = []
        clock = PhaseClock()
        self.obs, self.prev_done = collect(self.agent, self.envs, self.rollout, self.obs, self.prev_done, clock,
                                           lambda *step: signals.append(game_signals(*step)))
        r = self.rollout
        return {"obs": pack_frames(r.obs) if stacked_frames(space) else r.obs.copy(),
                "arrays": {name: getattr(r, name).copy() for name in ("actions", "rewards", "terminated", "truncated",
                                                                       "valid")},
                "game": [np.stack(part) for part in zip(*signals)],  # (T, n) rewards, game over, game step
                "rng_state": generator.bit_generator.state, "seconds": clock.seconds}

    def close(self) -> None:
        self.envs.close()


class RunnerGroup:
    """The run's K runners, used by the on-policy loop in place of its own envs."""

    def __init__(self, run, agent):
        from drlab.ray_cluster import connect, import_ray
        from drlab.run.rundir import config_to_json

        self.started_ray = not import_ray().is_initialized()
        self.ray = connect(run.cfg.address)
        self.run, self.agent = run, agent
        cfg = run.cfg
        self.k, self.n = cfg.runners, cfg.num_envs // cfg.runners
        self.config = config_to_json(run.algo, cfg)
        self.actor_class = self.ray.remote(num_cpus=1)(Runner)
        self.restarts = 0
        self.runners = [self._start(i, run.env_seed()) for i in range(self.k)]

    def _start(self, i: int, seed: int):
        runner = self.actor_class.remote(self.run.algo, self.config, i * self.n, self.n)
        runner.reset.remote(seed)
        return runner

    def collect(self, rollout: Rollout) -> None:
        from ray.exceptions import RayActorError

        ray, run = self.ray, self.run
        start = time.perf_counter()
        weights = ray.put({name: tensor.detach().cpu() for name, tensor in self.agent.net.state_dict().items()})
        rng_state = self.agent.rng.bit_generator.state
        refs = [runner.collect.remote(weights, rng_state, rollout.length) for runner in self.runners]
        parts = []
        for i, ref in enumerate(refs):
            for attempt in range(MAX_RESTARTS_IN_A_ROW + 1):
                try:
                    parts.append(ray.get(ref))
                    break
                except RayActorError as err:
                    if attempt == MAX_RESTARTS_IN_A_ROW:
                        raise DrlabError(f"runner {i} died {attempt + 1} times in a row; last: "
                                         f"{str(err).strip().splitlines()[0]}"[:300]) from None
                    ref = self._replace(i, weights, rng_state, rollout.length)
        self._assemble(rollout, parts)
        self.agent.rng.bit_generator.state = parts[0]["rng_state"]  # every runner drew the same batch noise
        run.clock.add("runner_wait", time.perf_counter() - start)
        for part in ("env", "inference"):  # runner-side time, mean over the runners (they run in parallel)
            run.clock.add(part, sum(p["seconds"][part] for p in parts) / self.k)

    def _replace(self, i: int, weights, rng_state: dict, length: int):
        """A new runner i with the current weights and fresh episodes; its rollout starts over."""
        self.ray.kill(self.runners[i])
        self.restarts += 1
        rows = slice(i * self.n, (i + 1) * self.n)
        self.run.episodes.forget(rows)  # its envs' episodes so far are lost with it
        self.runners[i] = self._start(i, self.run.env_seed() + self.run.step + 1_000 * self.restarts)
        print(f"drlab: runner {i} died at step {self.run.step:,}; restarted with the current weights on fresh "
              "episodes, its partial rollout dropped", file=sys.stderr)
        self.run.note({"perf/runner_restarts": self.restarts})
        return self.runners[i].collect.remote(weights, rng_state, length)

    def _assemble(self, rollout: Rollout, parts: list[dict]) -> None:
        obs = [unpack_frames(p["obs"]) if isinstance(p["obs"], dict) else p["obs"] for p in parts]
        rollout.obs[:] = np.concatenate(obs, axis=1)
        for name in ("actions", "rewards", "terminated", "truncated", "valid"):
            getattr(rollout, name)[:] = np.concatenate([p["arrays"][name] for p in parts], axis=1)
        game = [np.concatenate([p["game"][j] for p in parts], axis=1) for j in range(3)]
        for t in range(rollout.length):
            self.run.episodes.record_game_steps(game[0][t], game[1][t], game[2][t])

    def close(self) -> None:
        for runner in self.runners:
            self.ray.kill(runner)
        if self.started_ray:
            self.ray.shutdown()
