"""The contract every algorithm module and every agent keeps, written as Protocols (checked for
every registered algorithm by tests/test_protocol.py). See drlab.algos for what each part does."""

from __future__ import annotations

import copy
from typing import Any, Protocol, runtime_checkable

import numpy as np

from drlab.run.clock import PhaseClock
from drlab.run.episodes import EpisodeBook


@runtime_checkable
class Agent(Protocol):
    """The acting part of an algorithm: what evaluation, videos, pictures and ``drlab.load`` use.

    An agent says what it keeps between steps: ``num_options`` is 0 for a memoryless agent, else
    the number of options, and ``options`` then holds each env's active option."""

    obs_space: Any
    rng: np.random.Generator
    num_options: int
    options: np.ndarray

    def act(self, obs: np.ndarray, greedy: bool = True, starts: np.ndarray | None = None) -> np.ndarray: ...

    def fork(self) -> Agent:
        """A copy with the same weights that acts with state of its own (a video, an evaluation in the
        middle of training): acting with it leaves this agent's per-env state as it was."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class LoopServices(Protocol):
    """What an algorithm's ``train_loop(run, learner)`` receives as ``run`` (drlab.run.runner.Run):
    the config, the envs, the step so far and the run's services. A loop calls their methods and
    writes none of their fields."""

    algo: str
    cfg: Any
    envs: Any
    step: int
    clock: PhaseClock  # lap(phase): where the wall time goes
    episodes: EpisodeBook  # record(rewards, dones, valid, info) after each env step

    def reset_envs(self) -> np.ndarray: ...

    def env_seed(self) -> int: ...

    def running(self) -> bool: ...

    def end_step(self, env_steps: int, metrics: dict) -> None:
        """``env_steps`` more steps done, with the update's ``metrics`` (empty without an update)."""
        ...

    def note(self, metrics: dict) -> None: ...


@runtime_checkable
class AlgorithmModule(Protocol):
    """A module registered in drlab.algos.ALGORITHMS."""

    Config: type
    VARIANTS: dict
    ACTION_SPACES: tuple
    OBSERVATIONS: str
    Learner: type

    def check_env(self, cfg, envs) -> None: ...

    def make_agent(self, cfg, obs_space, action_space, device) -> Agent: ...

    def train_loop(self, run: LoopServices, learner) -> None: ...


class Memoryless:
    """For agents that keep nothing between steps: no options, and a fork is a shallow copy."""

    num_options = 0
    options = np.zeros(0, dtype=np.int64)

    def fork(self):
        return copy.copy(self)
