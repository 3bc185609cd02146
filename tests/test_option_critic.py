"""Option-Critic: the utility upon arrival, both advantages, terminations, option persistence and
resets, pictures and video."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import drlab
from drlab.algos import option_critic as oc


def vectors(dim: int) -> gym.spaces.Box:
    return gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)


def constant_net(q=(1.0, 0.0), beta_bias=(0.0, 0.0), num_actions=2):
    """A 2-option net on 2-d observations whose Q_Omega and beta do not depend on the observation."""
    torch.manual_seed(0)
    net = oc.OptionCriticNet(vectors(2), num_actions, 2, (4,), "tanh")
    with torch.no_grad():
        for head, bias in ((net.q_head, q), (net.beta_head, beta_bias)):
            head.weight.zero_()
            head.bias.copy_(torch.tensor(bias))
    return net


def pairs(obs, next_obs, **columns) -> oc.ActorBatch:
    """Transitions given as s and s' side by side, as an ActorBatch: s' in the second half of its rows."""
    rows = torch.arange(len(obs))
    return oc.ActorBatch(observations=torch.cat([obs, next_obs]), rows=rows, next_rows=rows + len(obs), **columns)


def actor_loss(net, target_net, batch: oc.ActorBatch, cfg):
    return oc.actor_loss(net, batch, oc.actor_targets(target_net, batch, cfg), cfg)


def test_utility_upon_arrival_by_hand():
    q_next = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    beta_next = torch.tensor([[0.25, 0.5], [0.1, 0.9]])
    options = torch.tensor([0, 1])
    u = oc.utility_upon_arrival(q_next, beta_next, options)
    # row 0, option 0: 0.75 * 1 + 0.25 * max(1, 3); row 1, option 1: 0.1 * -1 + 0.9 * max(2, -1)
    torch.testing.assert_close(u, torch.tensor([0.75 * 1 + 0.25 * 3, 0.1 * -1 + 0.9 * 2]))


def test_a_switch_pays_the_deliberation_cost_in_the_utility_and_the_critic_target():
    q_next = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    beta_next = torch.tensor([[0.25, 0.5], [0.1, 0.9]])
    u = oc.utility_upon_arrival(q_next, beta_next, torch.tensor([0, 1]), cost=0.4)
    torch.testing.assert_close(u, torch.tensor([0.75 * 1 + 0.25 * (3 - 0.4), 0.1 * -1 + 0.9 * (2 - 0.4)]))
    from drlab.buffers.replay import Batch

    net = constant_net(q=(1.0, 3.0), beta_bias=(0.0, 0.0))  # beta = 0.5
    batch = Batch(obs=torch.zeros(1, 2), actions=torch.tensor([0]), rewards=torch.tensor([1.0]),
                  next_obs=torch.ones(1, 2), terminated=torch.tensor([0.0]), discounts=torch.full((1,), 0.9),
                  weights=torch.ones(1), indices=np.arange(1))
    loss, _ = oc.critic_loss(net, net, batch, cost=0.4)
    target = 1 + 0.9 * (0.5 * 1 + 0.5 * (3 - 0.4))
    torch.testing.assert_close(loss, (1.0 - torch.tensor(target)) ** 2)


def test_the_deliberation_cost_enters_the_termination_advantage_on_its_scale():
    advantage = torch.tensor([0.0, -2.0, -4.0, -100.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])
    std = torch.tensor([0.0, -2.0, -4.0]).std(unbiased=False)
    torch.testing.assert_close(oc.on_value_scale(advantage, mask, "raw", shift=0.5), advantage + 0.5)
    torch.testing.assert_close(oc.on_value_scale(advantage, mask, "scaled", shift=0.5)[:3],
                               (torch.tensor([0.0, -2.0, -4.0]) + 0.5) / std)
    torch.testing.assert_close(oc.on_value_scale(advantage, mask, "normalized", shift=0.5)[:3],
                               (torch.tensor([0.0, -2.0, -4.0]) + 2.0 + 0.5) / std)  # not centred away
    # through the actor's loss: beta(s') (A + eta + xi), A = Q(s', 0) - V(s') = 1 - 3
    cfg = oc.Config(gamma=0.5, xi=0.2, ent_coef=0.0, deliberation_cost=0.3)
    net = constant_net(q=(1.0, 3.0), beta_bias=(0.0, 0.0))
    batch = pairs(torch.zeros(1, 2), torch.ones(1, 2), options=torch.tensor([0]),
                  actions=torch.tensor([0]), rewards=torch.tensor([1.0]), terminated=torch.tensor([0.0]),
                  done=torch.tensor([0.0]))
    _, metrics = actor_loss(net, net, batch, cfg)
    torch.testing.assert_close(metrics["termination_loss"], torch.tensor(0.5 * (1 - 3 + 0.3 + 0.2)))
    # the policy's target pays the cost too: U = 0.5 * 1 + 0.5 * (3 - 0.3), advantage = 1 + 0.5 U - Q(s, 0)
    torch.testing.assert_close(metrics["advantage_mean"], torch.tensor(1 + 0.5 * (0.5 + 0.5 * 2.7) - 1.0))


def test_both_advantages_by_hand():
    cfg = oc.Config(gamma=0.5, xi=0.2, ent_coef=0.0)
    net = constant_net(q=(1.0, 3.0), beta_bias=(0.0, 0.0))  # beta = 0.5 everywhere
    batch = pairs(torch.zeros(2, 2), torch.ones(2, 2), options=torch.tensor([0, 1]),
                  actions=torch.tensor([0, 1]), rewards=torch.tensor([1.0, 2.0]),
                  terminated=torch.tensor([0.0, 1.0]), done=torch.tensor([0.0, 1.0]))
    _, metrics = actor_loss(net, net, batch, cfg)
    # option 0: U = 0.5 * 1 + 0.5 * 3 = 2, target = 1 + 0.5 * 2 = 2, advantage = 2 - Q(s, 0) = 1
    # option 1: terminated, target = 2, advantage = 2 - 3 = -1
    torch.testing.assert_close(metrics["advantage_mean"], torch.tensor(0.0))
    # termination loss: option 0, not done: beta(s') * (Q(s',0) - V(s') + xi) = 0.5 * (1 - 3 + 0.2) = -0.9;
    # option 1 is masked (episode end): mean = -0.45
    torch.testing.assert_close(metrics["termination_loss"], torch.tensor(-0.45))
    # policy loss: -(log pi_0(a=0|s) * 1 + log pi_1(a=1|s) * -1) / 2
    logits = net(torch.zeros(1, 2))[2][0]
    log_pi = torch.log_softmax(logits, dim=-1)
    expected = -(log_pi[0, 0] * 1.0 + log_pi[1, 1] * -1.0) / 2
    torch.testing.assert_close(metrics["policy_loss"], expected.detach())


def test_critic_target_uses_the_utility_upon_arrival():
    from drlab.buffers.replay import Batch

    net = constant_net(q=(1.0, 3.0), beta_bias=(0.0, 0.0))
    batch = Batch(obs=torch.zeros(2, 2), actions=torch.tensor([0, 1]), rewards=torch.tensor([1.0, 1.0]),
                  next_obs=torch.ones(2, 2), terminated=torch.tensor([0.0, 1.0]), discounts=torch.full((2,), 0.9),
                  weights=torch.ones(2), indices=np.arange(2))
    loss, _ = oc.critic_loss(net, net, batch)
    targets = torch.tensor([1 + 0.9 * (0.5 * 1 + 0.5 * 3), 1.0])
    torch.testing.assert_close(loss, ((torch.tensor([1.0, 3.0]) - targets) ** 2).mean())


def test_termination_loss_pushes_beta_down_for_the_best_option_and_up_for_the_worst():
    cfg = oc.Config(xi=0.1, ent_coef=0.0)
    for option, sign in ((0, +1), (1, -1)):  # Q(s', 0) = 1 is the best option value, Q(s', 1) = 0 the worst
        net = constant_net(q=(1.0, 0.0))
        batch = pairs(torch.zeros(4, 2), torch.ones(4, 2), options=torch.full((4,), option),
                      actions=torch.zeros(4, dtype=torch.long), rewards=torch.zeros(4),
                      terminated=torch.zeros(4), done=torch.zeros(4))
        net.zero_grad()
        loss = actor_loss(net, net, batch, cfg)[0]
        loss.backward()
        grad = net.beta_head.bias.grad[option].item()
        # gradient descent moves the bias (and beta) against the gradient's sign
        assert np.sign(grad) == sign, (option, grad)
        # an episode end masks the termination gradient
        batch.done = torch.ones(4)
        net.zero_grad()
        actor_loss(net, net, batch, cfg)[0].backward()
        assert net.beta_head.bias.grad[option].item() == 0.0


def agent_with(beta_bias, q=(0.0, 0.0)):
    cfg = oc.Config(num_options=2, eps_end=1.0)  # new options uniformly at random
    obs_space = gym.spaces.Box(-1.0, 1.0, (2,))
    return oc.OptionAgent(constant_net(q=q, beta_bias=beta_bias), cfg, obs_space, torch.device("cpu"),
                          np.random.default_rng(0))


def count_switches(agent, steps=200, n=4):
    obs = np.zeros((n, 2), dtype=np.float32)
    agent.act(obs, greedy=False, starts=np.ones(n, dtype=bool))
    switches, previous = 0, agent.options.copy()
    for _ in range(steps):
        agent.act(obs, greedy=False, starts=np.zeros(n, dtype=bool))
        switches += int((agent.options != previous).sum())
        previous = agent.options.copy()
    return switches


def test_beta_zero_keeps_the_option_and_beta_one_rechooses_every_step():
    assert count_switches(agent_with(beta_bias=(-50.0, -50.0))) == 0
    # beta = 1: a fresh uniform choice every step, so about half the steps switch
    switches = count_switches(agent_with(beta_bias=(50.0, 50.0)), steps=200, n=4)
    assert 300 < switches < 500, switches


def test_options_are_rechosen_at_episode_starts():
    agent = agent_with(beta_bias=(-50.0, -50.0), q=(0.0, 1.0))  # never terminates; option 1 is the greedy choice
    obs = np.zeros((3, 2), dtype=np.float32)
    agent.act(obs, greedy=True, starts=np.ones(3, dtype=bool))
    agent.options[:] = 0
    agent.act(obs, greedy=True, starts=np.array([False, True, False]))
    np.testing.assert_array_equal(agent.options, [0, 1, 0])


def test_option_stats_shares_and_durations():
    stats = oc.OptionStats(num_envs=1, num_options=2)
    sequence = [0, 0, 0, 1, 1, 0]
    for t, w in enumerate(sequence):
        stats.update(np.array([w]), np.array([t == 0]), np.array([True]))
    stats.update(np.array([0]), np.array([True]), np.array([True]))  # a new episode ends the last run of 0s
    m = stats.metrics()
    assert m["option_share_0"] == pytest.approx(5 / 7) and m["option_share_1"] == pytest.approx(2 / 7)
    assert m["option_duration"] == pytest.approx((3 + 2 + 1) / 3)


@pytest.mark.slow
def test_short_run_pictures_and_video(tmp_path):
    from drlab.cli import main

    run = drlab.train("option-critic", "CartPole-v1", total_steps=2_000, learning_starts=500, eval_interval=1_000,
                      eval_episodes=2, final_eval_episodes=2, log_interval=500, progress=False,
                      run_dir=str(tmp_path / "r"))
    keys = set().union(*(json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()))
    for key in ("train/option_share_0", "train/option_share_1", "train/option_duration", "train/q_mean",
                "train/critic_loss", "train/actor_loss", "train/entropy", "train/termination_loss"):
        assert key in keys, key
    assert main(["plot", "options", str(run.dir), "--out", str(tmp_path / "pics")]) == 0
    usage = json.loads((tmp_path / "pics" / "options.json").read_text())
    assert (tmp_path / "pics" / "option_maps.png").stat().st_size > 10_000
    assert (tmp_path / "pics" / "option_timeline.png").stat().st_size > 10_000
    assert (tmp_path / "pics" / "option_choice.png").stat().st_size > 10_000
    assert sum(usage["option_share"]) == pytest.approx(1.0)
    # The fixed dimensions and the slices are the user's to choose; bad choices are one line, status 2.
    assert main(["plot", "options", str(run.dir), "--out", str(tmp_path / "p2"), "--fixed", "0=0.5", "1=-1",
                 "--slices", "2", "--dims", "0", "2", "--slice-dims", "1", "3"]) == 0
    assert (tmp_path / "p2" / "option_choice.png").stat().st_size > 10_000
    # Maps over the dimensions CartPole's grid would step through: the grid steps through the other two.
    assert main(["plot", "options", str(run.dir), "--out", str(tmp_path / "p4"), "--dims", "0", "1"]) == 0
    assert (tmp_path / "p4" / "option_choice.png").stat().st_size > 10_000
    for bad in (["--fixed", "7=1"], ["--fixed", "x"], ["--slice-dims", "2", "0"], ["--slices", "-1"]):
        assert main(["plot", "options", str(run.dir), "--out", str(tmp_path / "p3"), *bad]) == 2, bad
    assert main(["record", str(run.dir), "--out", str(tmp_path / "v.mp4")]) == 0
    assert (tmp_path / "v.mp4").stat().st_size > 1_000


def test_recent_batch_one_pass_equals_obs_and_next_obs_stacked():
    """The actor's single pass over T + 1 rows per env gives the same loss as s and s' stacked,
    across episode ends and autoreset steps (a step's next_obs is the next step's obs)."""
    from drlab.envs import make_vec_env

    envs = make_vec_env("CartPole-v1", 3, seed=0)
    rng = np.random.default_rng(0)
    obs, _ = envs.reset(seed=0)
    prev_done = np.zeros(3, dtype=bool)
    recent, stacked = [], []
    for _ in range(40):  # with random actions, CartPole episodes end within 40 steps
        options, actions = rng.integers(0, 2, 3), rng.integers(0, 2, 3)
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        done, valid = terminated | truncated, ~prev_done
        recent.append((obs.copy(), options, actions, rewards, terminated, done, valid))
        stacked.append((obs[valid], options[valid], actions[valid], rewards[valid], next_obs[valid],
                        terminated[valid], done[valid]))
        obs, prev_done = next_obs, done
    envs.close()
    assert any(step[5].any() for step in recent)  # episode ends (and so autoreset steps) happened
    one_pass = oc.recent_batch(recent, obs, torch.device("cpu"))
    names = ("obs", "options", "actions", "rewards", "next_obs", "terminated", "done")
    columns = {name: torch.as_tensor(np.concatenate(column)) for name, column in zip(names, zip(*stacked))}
    for name in ("rewards", "terminated", "done", "obs", "next_obs"):
        columns[name] = columns[name].float()
    two_stacks = pairs(columns.pop("obs"), columns.pop("next_obs"), **columns)
    torch.testing.assert_close(one_pass.observations[one_pass.next_rows], two_stacks.observations[two_stacks.next_rows])
    torch.testing.assert_close(one_pass.observations[one_pass.rows], two_stacks.observations[two_stacks.rows])
    cfg = oc.Config(num_options=2)
    net = oc.OptionCriticNet(vectors(4), 2, 2, (8,))
    loss_one, _ = actor_loss(net, net, one_pass, cfg)
    loss_two, _ = actor_loss(net, net, two_stacks, cfg)
    torch.testing.assert_close(loss_one, loss_two)


def test_termination_advantage_on_the_value_scale():
    advantage = torch.tensor([0.0, -2.0, -4.0, -100.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0])  # the last one ends an episode: it does not count
    assert torch.equal(oc.on_value_scale(advantage, mask, "raw"), advantage)
    std = torch.tensor([0.0, -2.0, -4.0]).std(unbiased=False)
    torch.testing.assert_close(oc.on_value_scale(advantage, mask, "scaled")[:3], torch.tensor([0.0, -2.0, -4.0]) / std)
    normalized = oc.on_value_scale(advantage, mask, "normalized")[:3]
    torch.testing.assert_close(normalized, (torch.tensor([0.0, -2.0, -4.0]) + 2.0) / std)
    # Scale-free: values 100 times larger give the same normalised advantages.
    torch.testing.assert_close(oc.on_value_scale(100 * advantage, mask, "normalized")[:3], normalized)


def test_rollout_targets_match_a_brute_force_return():
    rng = np.random.default_rng(0)
    steps, envs, gamma = 4, 2, 0.9
    rewards = rng.normal(size=(steps, envs)).astype(np.float32)
    terminated, truncated = np.zeros((steps, envs), bool), np.zeros((steps, envs), bool)
    valid = np.ones((steps, envs), bool)
    terminated[1, 0], valid[2, 0] = True, False  # env 0 terminates at step 1; step 2 is its autoreset step
    truncated[2, 1], valid[3, 1] = True, False  # env 1 is truncated at step 2
    rows = np.flatnonzero(valid.reshape(-1))
    utility = rng.normal(size=(steps, envs))  # U(s'_t, w_t)
    window = {"rewards": rewards, "terminated": terminated, "truncated": truncated, "valid": valid}
    got = oc.rollout_targets(window, torch.from_numpy(rows), torch.from_numpy(utility.reshape(-1)[rows]).float(),
                             gamma).numpy()

    def ret(t, n):
        if terminated[t, n]:
            return rewards[t, n]
        if truncated[t, n] or t == steps - 1:
            return rewards[t, n] + gamma * utility[t, n]
        return rewards[t, n] + gamma * ret(t + 1, n)

    np.testing.assert_allclose(got, [ret(*divmod(int(i), envs)) for i in rows], rtol=1e-5)


def test_evaluation_reports_how_long_options_last(tmp_path):
    import drlab

    result = drlab.train("option-critic", "CartPole-v1", total_steps=2000, eval_interval=0, final_eval_episodes=4,
                         progress=False, run_dir=str(tmp_path / "r"))
    options = result.summary["eval"]["options"]
    assert len(options["shares"]) == 2 and abs(sum(options["shares"]) - 1) < 1e-9
    assert options["mean_duration"] >= 1


def test_evaluations_during_training_leave_training_options_as_they_were(tmp_path):
    # Evaluations act on 10 envs with the run's agent; training acts through its own, so neither its
    # active options nor its random streams change: same seed -> same training metrics.
    import drlab

    def training_records(eval_interval: int) -> list[dict]:
        run_dir = tmp_path / f"eval{eval_interval}"
        drlab.train("option-critic", "CartPole-v1", total_steps=3000, learning_starts=500, log_interval=500,
                    eval_interval=eval_interval, final_eval_episodes=2, progress=False, run_dir=str(run_dir))
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k.startswith("train/")} for r in records
                if any(k.startswith("train/option") for k in r)]

    plain, evaluated = training_records(0), training_records(500)
    assert len(plain) >= 4 and plain == evaluated


def test_normalized_policy_advantage_by_hand():
    """--normalize-advantages: the intra-option policy loss uses (A - mean A) / std A over the batch,
    with A = r + gamma * U(s', w) - Q_Omega(s, w), U from the target network."""
    torch.manual_seed(0)
    n = 6
    batch = pairs(torch.randn(n, 4), torch.randn(n, 4), options=torch.randint(0, 2, (n,)),
                  actions=torch.randint(0, 2, (n,)), rewards=torch.randn(n), terminated=torch.zeros(n),
                  done=torch.zeros(n))
    batch.terminated[2] = batch.done[2] = 1.0
    net, target = oc.OptionCriticNet(vectors(4), 2, 2, (8,)), oc.OptionCriticNet(vectors(4), 2, 2, (8,))
    cfg = oc.Config(num_options=2, normalize_advantages=True, gamma=0.9)
    _, metrics = actor_loss(net, target, batch, cfg)
    with torch.no_grad():
        w, a = batch.options, batch.actions
        q, _, logits = net(batch.observations[:n])
        q_next, beta_next, _ = target(batch.observations[n:])
        rows = torch.arange(n)
        utility = (1 - beta_next[rows, w]) * q_next[rows, w] + beta_next[rows, w] * q_next.max(1).values
        advantage = batch.rewards + 0.9 * (1 - batch.terminated) * utility - q[rows, w]
        advantage = (advantage - advantage.mean()) / advantage.std(unbiased=False)
        log_pi = torch.log_softmax(logits[rows, w], dim=1)[rows, a]
    torch.testing.assert_close(metrics["policy_loss"], -(log_pi * advantage).mean(), rtol=1e-4, atol=1e-5)


def test_option_pictures_of_a_two_dimensional_env(tmp_path):
    """MountainCar has two observation dimensions: the maps use both, and the choice map is one
    panel (nothing left to slice through) instead of an error."""
    from drlab.cli import main

    run = drlab.train("option-critic", "MountainCar-v0", total_steps=1_000, learning_starts=500, eval_interval=0,
                      final_eval_episodes=1, progress=False, run_dir=str(tmp_path / "r"))
    assert main(["plot", "options", str(run.dir), "--out", str(tmp_path / "pics")]) == 0
    usage = json.loads((tmp_path / "pics" / "options.json").read_text())
    assert usage["choice"] and (tmp_path / "pics" / "option_choice.png").stat().st_size > 5_000
    assert main(["plot", "options", str(run.dir), "--out", str(tmp_path / "p2"), "--slice-dims", "0", "1"]) == 2


def test_a_deliberation_cost_with_rollout_returns_is_refused_in_one_line(tmp_path):
    from test_cli import assert_one_line_error, drlab as run_drlab

    result = run_drlab("train", "option-critic", "CartPole-v1", "--run-dir", tmp_path / "run",
                       "--deliberation-cost", "0.1", "--actor-return", "rollout")
    assert result.returncode == 2
    assert_one_line_error(result, "deliberation_cost works with actor_return one-step")
