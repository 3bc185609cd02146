"""The DQN loss on hand-made batches, and what the training loop stores."""

import dataclasses
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import drlab
from drlab.algos import dqn
from drlab.buffers.replay import Batch
from drlab.config import build_config
from drlab.run.runner import Run


class TableQ(nn.Module):
    """Q(s, .) = a fixed row per state id (obs[0]); only the rows are parameters."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, obs):
        return self.table[obs[:, 0].long()]


def batch(rewards, terminated, weights=None, actions=(0, 1), discounts=None):
    n = len(rewards)
    return Batch(
        obs=torch.tensor([[0.0], [1.0]][:n]), actions=torch.tensor(actions[:n]),
        rewards=torch.tensor(rewards, dtype=torch.float32), next_obs=torch.tensor([[2.0], [3.0]][:n]),
        terminated=torch.tensor(terminated, dtype=torch.float32),
        discounts=torch.tensor(discounts if discounts is not None else [0.5] * n, dtype=torch.float32),
        weights=torch.tensor(weights if weights is not None else [1.0] * n), indices=np.arange(n))


TABLE = [[1.0, 2.0], [3.0, 4.0], [10.0, 20.0], [7.0, 5.0]]


def cfg(**kw):
    return build_config(dqn.Config, "CartPole-v1", {"gamma": 0.5, **kw})


def test_termination_cuts_the_target_and_truncation_bootstraps():
    q = TableQ(TABLE)
    # Transition 0: s=0, a=0, r=1, s'=2 not terminated (e.g. truncated): target = 1 + 0.5 * max(10, 20) = 11.
    # Transition 1: s=1, a=1, r=2, s'=3 terminated: target = 2.
    _, td, _ = dqn.dqn_loss(q, q, batch([1.0, 2.0], [0.0, 1.0]), cfg(loss="mse"))
    np.testing.assert_allclose(td.detach().numpy(), [11 - 1, 2 - 4])


def test_n_step_transitions_bootstrap_with_their_own_discount():
    q = TableQ(TABLE)
    # A 3-step transition: R = 1 (already summed), bootstrap factor gamma^3 = 0.125: 1 + 0.125 * 20.
    _, td, _ = dqn.dqn_loss(q, q, batch([1.0], [0.0], discounts=[0.125]), cfg(loss="mse"))
    assert td.item() == pytest.approx(1 + 0.125 * 20 - 1.0)


def test_double_dqn_picks_with_online_and_values_with_target():
    online, target = TableQ(TABLE), TableQ([[0, 0], [0, 0], [100.0, -1.0], [0, 0]])
    # online argmax at s'=2 is action 1 (20 > 10); target values it at -1: target = 1 + 0.5 * -1.
    _, td, _ = dqn.dqn_loss(online, target, batch([1.0], [0.0]), cfg(target="double"))
    assert td.item() == pytest.approx(0.5 - 1.0)
    _, td, _ = dqn.dqn_loss(online, target, batch([1.0], [0.0]), cfg(target="max"))
    assert td.item() == pytest.approx(1 + 0.5 * 100 - 1.0)


def test_sarsa_bootstraps_from_the_action_taken_next_and_expected_sarsa_from_the_policy():
    online, target = TableQ(TABLE), TableQ([[0, 0], [0, 0], [100.0, -1.0], [0, 0]])
    b = batch([1.0], [0.0])
    # s' = 2: online greedy action 1 (20 > 10); target values 100 (action 0) and -1 (action 1).
    b.next_actions = torch.tensor([0])
    _, td, _ = dqn.dqn_loss(online, target, b, cfg(target="sarsa"), epsilon=0.3)
    assert td.item() == pytest.approx(1 + 0.5 * 100 - 1.0)  # the action taken, whatever is greedy
    expected = 0.7 * -1.0 + 0.3 * (100 - 1) / 2  # greedy (online) w.p. 1 - eps, uniform w.p. eps
    _, td, _ = dqn.dqn_loss(online, target, b, cfg(target="expected-sarsa"), epsilon=0.3)
    assert td.item() == pytest.approx(1 + 0.5 * expected - 1.0)
    # No next action (a truncated episode's last transition): SARSA takes the expectation.
    b.next_actions = torch.tensor([-1])
    _, td, _ = dqn.dqn_loss(online, target, b, cfg(target="sarsa"), epsilon=0.3)
    assert td.item() == pytest.approx(1 + 0.5 * expected - 1.0)
    # With epsilon 0 expected SARSA is double DQN.
    _, td_expected, _ = dqn.dqn_loss(online, target, b, cfg(target="expected-sarsa"), epsilon=0.0)
    _, td_double, _ = dqn.dqn_loss(online, target, b, cfg(target="double"))
    assert td_expected.item() == pytest.approx(td_double.item())


@pytest.mark.parametrize("n_step", [1, 3])
def test_sarsa_stores_the_action_the_behaviour_policy_took_at_s_prime(tmp_path, n_step):
    """Brute force: log every action the loop takes at every observation, and check the next action
    stored with each transition against it (-1 where the episode ended at s')."""
    config = build_config(dqn.Config, "DrlabTestCounter-v0", {
        "target": "sarsa", "n_step": n_step, "num_envs": 1, "total_steps": 80, "learning_starts": 10_000,
        "buffer_size": 1000, "batch_size": 1, "eval_interval": 0, "final_eval_episodes": 0, "progress": False,
        "run_dir": str(tmp_path / "r")})
    (tmp_path / "r").mkdir()
    run = Run("dqn", config, tmp_path / "r")
    taken, stored = {}, []
    original_act, original_add = run.learner.agent.act, run.learner.buffer.add

    def act_spy(obs, *args, **kwargs):
        actions = original_act(obs, *args, **kwargs)
        taken[tuple(obs[0].tolist())] = int(actions[0])
        return actions

    def add_spy(obs, actions, rewards, next_obs, terminated, discounts, next_actions=None):
        stored.extend(zip(next_obs.tolist(), next_actions.tolist()))
        return original_add(obs, actions, rewards, next_obs, terminated, discounts, next_actions)

    run.learner.agent.act, run.learner.buffer.add = act_spy, add_spy
    run.execute()
    assert len(stored) > 40 and len(set(taken.values())) == 2
    for (episode, step), next_action in stored:
        ended = step == (3 if episode % 2 == 0 else 5)
        assert next_action == (-1 if ended else taken[(episode, step)])


def test_old_double_dqn_flags_and_configs_become_targets(tmp_path):
    from drlab.run.rundir import config_from_json

    written = dataclasses.asdict(cfg())
    del written["target"]
    _, old_double = config_from_json({**written, "algo": "dqn", "double_dqn": True})
    _, old_plain = config_from_json({**written, "algo": "dqn", "double_dqn": False})
    assert (old_double.target, old_plain.target) == ("double", "max")
    from drlab.run.upgrades import flag_aliases
    assert flag_aliases("dqn")["--double-dqn"] == ["--target", "double"]


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_importance_weights_scale_every_loss_path(loss):
    q = TableQ(TABLE)
    b = batch([1.0, 2.0], [0.0, 1.0], weights=[0.25, 1.0])
    value, td, _ = dqn.dqn_loss(q, q, b, cfg(loss=loss))
    q_sa = torch.tensor([1.0, 4.0])
    target = torch.tensor([11.0, 2.0])
    per_sample = F.huber_loss(q_sa, target, reduction="none") if loss == "huber" else (target - q_sa) ** 2
    assert value.item() == pytest.approx((torch.tensor([0.25, 1.0]) * per_sample).mean().item())


def test_q_penalty_adds_the_mean_absolute_q():
    q = TableQ(TABLE)
    plain, _, _ = dqn.dqn_loss(q, q, batch([1.0, 2.0], [0.0, 1.0]), cfg(loss="mse"))
    penalized, _, _ = dqn.dqn_loss(q, q, batch([1.0, 2.0], [0.0, 1.0]), cfg(loss="mse", q_penalty=0.1))
    assert penalized.item() == pytest.approx(plain.item() + 0.1 * (1.0 + 4.0) / 2)


def test_the_target_is_detached():
    q = TableQ(TABLE)
    value, _, _ = dqn.dqn_loss(q, q, batch([1.0, 2.0], [0.0, 1.0]), cfg(loss="mse"))
    value.backward()
    grad = q.table.grad
    assert grad[2].abs().sum() == 0 and grad[3].abs().sum() == 0  # no gradient through s'
    assert grad[0, 0] != 0 and grad[1, 1] != 0


@pytest.mark.parametrize("replay", ["uniform", "online"])
def test_stored_transitions_skip_the_autoreset_step_and_keep_terminated_apart(tmp_path, replay):
    """Run the real loop on an env whose episodes end at known steps; check every stored transition."""
    config = build_config(dqn.Config, "DrlabTestCounter-v0", {
        "replay": replay, "num_envs": 2, "total_steps": 60, "learning_starts": 10_000, "buffer_size": 1000,
        "batch_size": 1, "eval_interval": 0, "final_eval_episodes": 0, "progress": False,
        "run_dir": str(tmp_path / "r")})
    (tmp_path / "r").mkdir()
    run = Run("dqn", config, tmp_path / "r")
    stored = []
    original_add = run.learner.buffer.add

    def spy(obs, actions, rewards, next_obs, terminated, discounts):
        assert np.allclose(discounts, config.gamma)
        stored.extend(zip(obs.tolist(), rewards.tolist(), next_obs.tolist(), terminated.tolist()))
        return original_add(obs, actions, rewards, next_obs, terminated, discounts)

    run.learner.buffer.add = spy
    run.execute()
    # 30 vector steps per env; each env's episodes alternate 3 steps (terminated) and 5 (truncated),
    # and each episode end is followed by one autoreset step that is not a transition.
    per_env, t, k = 0, 0, 0
    while t < 30:
        length = 3 if k % 2 == 0 else 5
        real = min(length, 30 - t)
        per_env += real
        t += real + 1
        k += 1
    assert len(stored) == 2 * per_env
    for obs, reward, next_obs, terminated in stored:
        episode, step = obs
        assert next_obs[0] == episode, "a transition never crosses into the next episode"
        assert next_obs[1] == step + 1
        assert reward == step + 1
        assert terminated == float(episode % 2 == 0 and step + 1 == 3)
    # Truncated episodes (odd) end at step 5 and are stored as not terminated, so they bootstrap.
    assert any(o[0] % 2 == 1 and n[1] == 5 and term == 0.0 for o, _, n, term in stored)
    assert any(o[0] % 2 == 0 and n[1] == 3 and term == 1.0 for o, _, n, term in stored)


def test_episode_returns_in_metrics_are_raw_and_whole(tmp_path):
    run_dir = tmp_path / "r"
    drlab.train("dqn", "DrlabTestCounter-v0", num_envs=2, total_steps=60, learning_starts=10_000,
                batch_size=1, eval_interval=0, final_eval_episodes=0, progress=False, run_dir=str(run_dir))
    from drlab.run.logger import read_metrics

    returns = [r["episode/return"] for r in read_metrics(run_dir) if "episode/return" in r]
    lengths = [r["episode/length"] for r in read_metrics(run_dir) if "episode/length" in r]
    assert set(returns) == {1 + 2 + 3, 1 + 2 + 3 + 4 + 5}
    assert all((ret, ln) in {(6, 3), (15, 5)} for ret, ln in zip(returns, lengths))
