"""The run's services, each alone: the clock, episode bookkeeping, the divergence guard and periodic
evaluation (drlab.run.clock, .episodes, .guard, .evaluation)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from drlab.errors import Diverged
from drlab.run import clock as clock_module
from drlab.run import evaluation
from drlab.run.clock import PhaseClock
from drlab.run.episodes import EpisodeBook
from drlab.run.evaluation import Evaluations
from drlab.run.guard import DivergenceGuard


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_clock_laps_add_each_phase_and_training_time_continues_across_sessions(monkeypatch):
    now = FakeTime()
    monkeypatch.setattr(clock_module.time, "perf_counter", now)
    clock = PhaseClock(train_seconds=50.0)  # a resumed run: 50 s trained before
    clock.start()
    for _ in range(3):
        clock.lap()
        now.now += 1.0
        clock.lap("inference")
        now.now += 2.0
        clock.lap("env")
        now.now += 0.5  # bookkeeping between the env step and the next lap counts nowhere
    clock.add("runner_wait", 4.0)
    assert clock.seconds == {"env": 6.0, "inference": 3.0, "learn": 0.0, "runner_wait": 4.0}
    assert clock.elapsed() == 60.5 and clock.session() == 10.5
    assert clock.fractions() == {"perf/env_fraction": 6.0 / 10.5, "perf/inference_fraction": 3.0 / 10.5,
                                 "perf/runner_wait_fraction": 4.0 / 10.5}
    assert clock.stop() == 60.5
    now.now += 7.0  # the final evaluation: not training
    assert clock.earlier == 60.5


def test_episode_book_logs_each_finished_episode_and_forgets_a_lost_runners_envs():
    logged, shown = [], []
    book = EpisodeBook(3, log=logged.append, show=shown.append)
    valid = np.ones(3, dtype=bool)
    book.record(np.array([1.0, 2.0, 3.0]), np.array([False, False, False]), valid)
    book.forget(slice(1, 2))  # env 1's episode so far is lost
    book.record(np.array([1.0, 2.0, 3.0]), np.array([True, True, False]), valid)
    assert [row["episode/return"] for row in logged] == [2.0, 2.0]
    assert [row["episode/length"] for row in logged] == [2, 1]
    assert book.count == 2 and book.reward_mean_100 == 2.0 and shown == ["return(100)=2.0"]
    book.record(np.array([9.0, 9.0, 9.0]), np.array([False, False, True]), np.array([False, False, True]))
    assert logged[-1]["episode/return"] == 15.0 and logged[-1]["episode/reward_mean_100"] == pytest.approx(19 / 3)
    restored = EpisodeBook(3, log=logged.append)
    restored.load_state_dict(book.state_dict())
    assert restored.count == 3 and list(restored.recent_returns) == [2.0, 2.0, 15.0]
    assert math.isnan(EpisodeBook(1, log=logged.append).reward_mean_100)


def test_guard_stops_on_a_non_finite_loss_or_weight_and_says_what_was_kept(tmp_path):
    guard = DivergenceGuard("dqn", tmp_path)
    guard.check_metrics(10, {"loss": 1.0, "explained_variance": float("nan")})  # NaN there is legitimate
    with pytest.raises(Diverged, match=r"dqn diverged at step 20: train/critic_loss is inf; nothing was saved"):
        guard.check_metrics(20, {"critic_loss": float("inf")})
    guard.saved(1000)
    with pytest.raises(Diverged, match=rf"train/grad_norm is nan; kept the checkpoint of step 1,000 \(drlab resume {tmp_path}"):
        guard.check_metrics(1200, {"grad_norm": torch.tensor(float("nan"))})
    state = {"agent": {"w": torch.ones(2)}, "optimizer": {"state": {"m": torch.tensor([float("nan")])}}}
    guard.check_weights(1500, state)  # the optimizer's moments are not weights
    state["agent"]["w"][1] = float("nan")
    with pytest.raises(Diverged, match="weight agent.w is not finite"):
        guard.check_weights(1500, state)


@dataclasses.dataclass
class EvalConfig:
    env_id: str = "CartPole-v1"
    seed: int = 3
    eval_episodes: int = 2
    final_eval_episodes: int = 4
    max_episode_steps: int | None = None
    frame_stack: int = 1
    stop_threshold: float | None = None
    stop_on_solve: bool = True


def test_periodic_evaluations_use_fresh_seeds_report_every_result_and_stop_on_solve(monkeypatch, tmp_path):
    means = iter([10.0, 20.0, 500.0])
    seeds = []

    def fake_evaluate(agent, env_id, episodes, seed, **kwargs):
        seeds.append((episodes, seed))
        return {"mean": next(means, 7.0), "std": 0.0}

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    logged, told = [], []
    prune_at_20 = lambda step, mean: told.append((step, mean)) or mean == 20.0  # noqa: E731
    evals = Evaluations(EvalConfig(), agent=None, run_dir=tmp_path, threshold=475.0, log=logged.append,
                        on_eval=prune_at_20)
    assert evals.periodic(1000) is False and not evals.solved
    assert evals.periodic(2000) is True and not evals.solved  # drlab tune asks the run to stop
    assert evals.periodic(3000) is False and evals.solved  # solved: the run stops as solved, not interrupted
    assert told == [(1000, 10.0), (2000, 20.0), (3000, 500.0)]
    assert logged == [{"eval/mean": m, "eval/std": 0.0} for m in (10.0, 20.0, 500.0)]
    assert evals.final() == {"mean": 7.0, "std": 0.0}
    assert seeds == [(2, 500_003), (2, 501_003), (2, 502_003), (4, 1_000_003)]
    restored = Evaluations(EvalConfig(), None, tmp_path, 475.0, logged.append)
    restored.load_state_dict(evals.state_dict())
    assert restored.done == 3 and restored.solved
    assert Evaluations(EvalConfig(final_eval_episodes=0), None, tmp_path, None, logged.append).final() is None
