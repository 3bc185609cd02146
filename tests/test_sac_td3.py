"""SAC and TD3: the batched twin critics, the squashed Gaussian, each loss against a hand computation
on a tiny batch, target smoothing, Polyak on both critics, TD3's delay, float actions through the
n-step window and the replay, and runs through the CLI (determinism, resume, divergence, refusals,
learning on Pendulum)."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import drlab
from drlab.algos import sac, td3
from drlab.algos.twin_critics import BoxActions, TwinQ
from drlab.buffers.nstep import NStepWindow
from drlab.buffers.replay import Batch, ReplayBuffer
from drlab.run.logger import read_metrics
from test_cli import assert_one_line_error, drlab as run_drlab

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


def tiny_batch(n=5, obs_dim=3, action_dim=2, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(n, obs_dim, generator=g), actions=torch.rand(n, action_dim, generator=g) * 2 - 1,
                 rewards=torch.randn(n, generator=g), next_obs=torch.randn(n, obs_dim, generator=g),
                 terminated=torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0][:n]), discounts=torch.full((n,), 0.9),
                 weights=torch.ones(n), indices=np.arange(n))


def separate_critic(twin: TwinQ, i: int, obs, actions) -> torch.Tensor:
    """Critic i of the stack as an ordinary MLP, one layer at a time."""
    h = torch.cat([obs, actions], -1)
    for k, (w, b) in enumerate(zip(twin.weights, twin.biases)):
        h = h @ w[i] + b[i, 0]
        if k < len(twin.weights) - 1:
            h = torch.relu(h)
    return h.squeeze(-1)


def test_twin_critics_in_one_pass_equal_each_critic_alone():
    torch.manual_seed(0)
    twin = TwinQ(OBS, 2, (8, 8))
    obs, actions = torch.randn(7, 3), torch.randn(7, 2)
    q = twin(obs, actions)
    assert q.shape == (2, 7)
    for i in range(2):
        torch.testing.assert_close(q[i], separate_critic(twin, i, obs, actions))
    assert not torch.equal(q[0], q[1])  # initialised independently


def test_the_first_critic_alone_is_the_first_row_of_both():
    torch.manual_seed(0)
    twin = TwinQ(OBS, 2, (8, 8))
    obs, actions = torch.randn(7, 3), torch.randn(7, 2)
    first = twin(obs, actions, critics=1)
    assert first.shape == (1, 7)
    torch.testing.assert_close(first[0], twin(obs, actions)[0])


def test_frozen_critics_pass_gradients_to_the_actions_only():
    twin = TwinQ(OBS, 2, (8,))
    actions = torch.randn(4, 2, requires_grad=True)
    twin(torch.randn(4, 3), actions, frozen=True).sum().backward()
    assert actions.grad is not None and all(p.grad is None for p in twin.parameters())


@pytest.mark.parametrize("module", [sac, td3])
def test_bf16_keeps_outputs_and_gradients_in_float32_close_to_float32(module):
    """--bf16: the hidden layers' products in bfloat16 (where the CPU has it), everything seen outside
    in float32 and within bfloat16's rounding of the float32 networks."""
    torch.manual_seed(0)
    twin = TwinQ(OBS, 2, (64, 64))
    twin_bf16 = TwinQ(OBS, 2, (64, 64), bf16=True)
    twin_bf16.load_state_dict(twin.state_dict())
    obs, actions = torch.randn(32, 3), torch.rand(32, 2) * 2 - 1
    q, q_bf16 = twin(obs, actions), twin_bf16(obs, actions)
    assert q_bf16.dtype == torch.float32
    torch.testing.assert_close(q_bf16, q, atol=0.02, rtol=0.02)
    q_bf16.sum().backward()
    assert all(p.grad.dtype == torch.float32 and p.dtype == torch.float32 for p in twin_bf16.parameters())
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    cfg = module.Config(env_id="Pendulum-v1", hidden=(64, 64))
    agent = module.make_agent(cfg, OBS, space, torch.device("cpu"))
    agent_bf16 = module.make_agent(module.Config(env_id="Pendulum-v1", hidden=(64, 64), bf16=True), OBS, space,
                                   torch.device("cpu"))
    agent_bf16.actor.load_state_dict(agent.actor.state_dict())
    out, out_bf16 = agent.actor(obs), agent_bf16.actor(obs)
    for a, b in zip(out if isinstance(out, tuple) else (out,), out_bf16 if isinstance(out_bf16, tuple) else (out_bf16,)):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a, atol=0.02, rtol=0.02)


def test_squashed_gaussian_log_prob_is_the_change_of_variables():
    """log pi(a) of a = tanh(u), u ~ N(mean, std): against torch.distributions' TanhTransform and against
    a numerical Jacobian of tanh."""
    torch.manual_seed(1)
    actor = sac.SquashedGaussianActor(OBS, 2, (16,))
    obs = torch.randn(6, 3)
    actions, log_prob = actor.sample(obs)
    mean, log_std = actor(obs)
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()])
    torch.testing.assert_close(log_prob, reference.log_prob(actions.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1),
                               atol=2e-3, rtol=1e-4)
    u = torch.atanh(actions.double())
    h = 1e-6
    numeric = torch.log((torch.tanh(u + h) - torch.tanh(u - h)) / (2 * h)).sum(-1)
    gaussian = torch.distributions.Normal(mean.double(), log_std.double().exp()).log_prob(u).sum(-1)
    torch.testing.assert_close(log_prob.double(), gaussian - numeric, atol=1e-3, rtol=1e-4)


def test_sac_critic_loss_by_hand():
    torch.manual_seed(2)
    critic, target = TwinQ(OBS, 2, (8,)), TwinQ(OBS, 2, (8,))
    actor = sac.SquashedGaussianActor(OBS, 2, (8,))
    batch, alpha = tiny_batch(), torch.tensor(0.3)
    state = torch.get_rng_state()
    loss, td_abs, _ = sac.critic_loss(critic, target, actor, alpha, batch)
    torch.set_rng_state(state)  # the same next actions
    next_a, next_logp = actor.sample(batch.next_obs)
    with torch.no_grad():
        next_v = torch.minimum(separate_critic(target, 0, batch.next_obs, next_a),
                               separate_critic(target, 1, batch.next_obs, next_a)) - 0.3 * next_logp
        y = batch.rewards + 0.9 * (1 - batch.terminated) * next_v
        q1, q2 = (separate_critic(critic, i, batch.obs, batch.actions) for i in range(2))
    expected = 0.5 * (((y - q1) ** 2).mean() + ((y - q2) ** 2).mean())
    torch.testing.assert_close(loss.detach(), expected)
    torch.testing.assert_close(td_abs, ((y - q1).abs() + (y - q2).abs()) / 2)


def test_sac_actor_and_temperature_losses_by_hand():
    torch.manual_seed(3)
    critic = TwinQ(OBS, 2, (8,))
    obs, actions, log_prob = torch.randn(5, 3), torch.rand(5, 2) * 2 - 1, torch.randn(5)
    loss = sac.actor_loss(critic, torch.tensor(0.2), obs, actions, log_prob)
    q_min = torch.minimum(separate_critic(critic, 0, obs, actions), separate_critic(critic, 1, obs, actions))
    torch.testing.assert_close(loss, (0.2 * log_prob - q_min).mean())
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    sac.temperature_loss(log_alpha, log_prob, -2.0).backward()
    # d/d log_alpha of -log_alpha (log_prob + target): -(mean log_prob - 2): alpha falls when the entropy is above the target
    torch.testing.assert_close(log_alpha.grad, -(log_prob.mean() - 2.0))


class LinearTarget(torch.nn.Module):
    """Q'_i(s, a) = (i + 1) * sum(a): the target's value shows the target action."""

    def forward(self, obs, actions, frozen=False):
        return torch.stack([actions.sum(-1), 2 * actions.sum(-1)])


def test_td3_target_smoothing_clips_the_noise_and_the_action():
    torch.manual_seed(4)
    critic = TwinQ(OBS, 2, (8,))
    mu = 0.9
    actor_target = lambda obs: torch.full((len(obs), 2), mu)  # noqa: E731
    batch = tiny_batch()
    batch.terminated = torch.zeros(5)
    state = torch.get_rng_state()
    loss, _, _ = td3.critic_loss(critic, LinearTarget(), actor_target, batch, noise_std=100.0, noise_clip=0.5)
    torch.set_rng_state(state)
    noise = (torch.randn(5, 2) * 100.0).clamp(-0.5, 0.5)
    assert noise.abs().max() == 0.5  # the std is huge: the clip is what holds
    a = (mu + noise).clamp(-1, 1)
    y = batch.rewards + 0.9 * a.sum(-1)  # min over (sum, 2 sum): the smaller one for sums >= 0 ...
    y = batch.rewards + 0.9 * torch.minimum(a.sum(-1), 2 * a.sum(-1))  # ... and for negative ones
    with torch.no_grad():
        q1, q2 = (separate_critic(critic, i, batch.obs, batch.actions) for i in range(2))
    torch.testing.assert_close(loss.detach(), ((y - q1) ** 2).mean() + ((y - q2) ** 2).mean())


def learner_for(module, **overrides):
    cfg = module.Config(env_id="Pendulum-v1", hidden=(8,), batch_size=4, buffer_size=16, **overrides)
    space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    obs_space = gym.spaces.Box(-8.0, 8.0, (3,), np.float32)
    agent = module.make_agent(cfg, obs_space, space, torch.device("cpu"))
    learner = module.Learner(cfg, agent, np.random.default_rng(0))
    for _ in range(4):
        obs = np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)
        learner.buffer.add(obs, np.zeros((2, 1), np.float32) + 0.5, np.ones(2), obs, np.zeros(2), np.full(2, 0.99))
    return learner


@pytest.mark.parametrize("module", [sac, td3])
def test_polyak_moves_both_critics_targets_by_tau(module):
    learner = learner_for(module, tau=0.25, **({"policy_delay": 1} if module is td3 else {}))
    before = [p.detach().clone() for p in learner.critic_target.parameters()]
    learner.update(learner.buffer.sample(4, learner.rng), 0)
    for old, new, online in zip(before, learner.critic_target.parameters(), learner.critic.parameters()):
        assert old.shape[0] == 2  # the stack: both critics in each tensor
        torch.testing.assert_close(new, 0.75 * old + 0.25 * online.detach())
        assert not torch.equal(new[0], old[0]) and not torch.equal(new[1], old[1])


def test_td3_updates_the_actor_and_the_targets_every_policy_delay_critic_steps():
    learner = learner_for(td3, policy_delay=3)
    actor_changes, target_changes = [], []
    for _ in range(6):
        actor_before = [p.detach().clone() for p in learner.actor.parameters()]
        target_before = [p.detach().clone() for p in learner.critic_target.parameters()]
        learner.update(learner.buffer.sample(4, learner.rng), 0)
        actor_changes.append(not all(torch.equal(a, b) for a, b in zip(actor_before, learner.actor.parameters())))
        target_changes.append(not all(torch.equal(a, b) for a, b in zip(target_before, learner.critic_target.parameters())))
    assert actor_changes == target_changes == [False, False, True, False, False, True]


def test_td3_a_restored_learner_logs_the_actor_metrics_of_its_last_delayed_step():
    learner = learner_for(td3, policy_delay=2)
    for _ in range(2):
        logged = learner.update(learner.buffer.sample(4, learner.rng), 0)
    restored = learner_for(td3, policy_delay=2)
    restored.load_state_dict(learner.state_dict())
    after = restored.update(restored.buffer.sample(4, restored.rng), 0)  # a critic step only
    assert float(after["actor_loss"]) == float(logged["actor_loss"])


def test_float_actions_through_the_n_step_window_and_the_replay_match_the_naive_reference():
    """Two envs, 3-step windows, vector actions: each stored transition against the definition."""
    rng = np.random.default_rng(0)
    n, gamma, steps = 3, 0.9, 25
    window = NStepWindow(2, n, gamma, (1,), np.float32, (2,), np.float32)
    buffer = ReplayBuffer(100, (1,), np.float32, torch.device("cpu"), action_shape=(2,), action_dtype=np.float32)
    episodes = [[], []]  # per env: (obs, action, reward) of the running episode
    expected = []
    obs = np.zeros((2, 1), np.float32)
    for t in range(steps):
        actions = rng.uniform(-1, 1, (2, 2)).astype(np.float32)
        rewards = rng.normal(size=2)
        next_obs = obs + 1
        terminated = np.array([t % 7 == 6, False])
        truncated = np.array([False, t % 10 == 9])
        done = terminated | truncated
        buffer.add(*window.push(obs, actions, rewards, next_obs, terminated, done, np.ones(2, bool)))
        for e in range(2):
            episodes[e].append((obs[e].copy(), actions[e], rewards[e], next_obs[e].copy()))
            if done[e]:  # the reference: every step of the episode with min(n, rest) rewards
                ep = episodes[e]
                for i in range(len(ep)):
                    m = min(n, len(ep) - i)
                    ret = sum(gamma ** k * ep[i + k][2] for k in range(m))
                    expected.append((e, ep[i][0], ep[i][1], ret, ep[i + m - 1][3], bool(terminated[e]) and i + m == len(ep), gamma ** m))
                episodes[e] = []
        obs = np.where(done[:, None], 0.0, next_obs).astype(np.float32)  # a fresh start (no autoreset step here)
    stored = buffer.gather(np.arange(len(buffer)))
    got = sorted(zip(stored.obs[:, 0].tolist(), stored.actions.tolist(), stored.rewards.tolist(),
                     stored.next_obs[:, 0].tolist(), stored.terminated.tolist(), stored.discounts.tolist()))
    want = sorted((float(o[0]), [float(x) for x in a], float(r), float(no[0]), float(d), float(disc))
                  for e, o, a, r, no, d, disc in expected)
    # the reference holds the finished episodes' transitions; the replay also the running episodes' full windows
    running = sum(max(0, len(ep) - n + 1) for ep in episodes)
    assert len(got) == len(want) + running and stored.actions.dtype == torch.float32
    for g in want:
        match = [x for x in got if x[0] == g[0] and x[3] == g[3] and np.allclose(x[1], g[1])]
        assert match and math.isclose(match[0][2], g[2], rel_tol=1e-5) and match[0][4:] == pytest.approx(g[4:])


def test_actions_are_rescaled_to_the_bounds():
    actions = BoxActions(gym.spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 10.0]), dtype=np.float32))
    np.testing.assert_allclose(actions.to_env(np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])),
                               [[-2.0, 0.0], [0.0, 5.0], [2.0, 10.0]])
    sampled = actions.uniform(1000, np.random.default_rng(0))
    assert sampled.shape == (1000, 2) and sampled.min() >= -1 and sampled.max() <= 1 and abs(sampled.mean()) < 0.05


# ---- through the CLI ---------------------------------------------------------------------------

SHORT = ["--total-steps", "400", "--learning-starts", "100", "--batch-size", "32", "--hidden", "16", "16",
         "--no-progress", "--eval-interval", "0", "--final-eval-episodes", "2", "--log-interval", "100"]


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.slow
def test_same_seed_same_metrics_and_a_resumed_run_continues(algo, tmp_path):
    runs = []
    for name in ("a", "b"):
        result = run_drlab("train", algo, "Pendulum-v1", "--run-dir", tmp_path / name, *SHORT)
        assert result.returncode == 0, result.stderr
        runs.append([{k: v for k, v in r.items() if k != "time_s" and not k.startswith("perf/")}
                     for r in read_metrics(tmp_path / name)])
    assert runs[0] == runs[1] and any("train/critic_loss" in r for r in runs[0])
    # stopped at step 200 (its checkpoint), then resumed to 400
    stop = tmp_path / "stop"
    first = run_drlab("train", algo, "Pendulum-v1", "--run-dir", stop, *SHORT, "--total-steps", "200")
    assert first.returncode == 0, first.stderr
    (stop / "summary.json").unlink()
    config = json.loads((stop / "config.json").read_text())
    (stop / "config.json").write_text(json.dumps({**config, "total_steps": 400}))
    resumed = run_drlab("resume", stop)
    assert resumed.returncode == 0, resumed.stderr
    assert "restored the replay from the checkpoint" in resumed.stderr
    assert json.loads((stop / "summary.json").read_text())["steps"] == 400


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_a_diverging_run_stops_with_one_line(algo, tmp_path):
    result = run_drlab("train", algo, "Pendulum-v1", "--run-dir", tmp_path / "r", *SHORT, "--lr", "1e30",
                       "--total-steps", "3000")
    assert result.returncode == 3, result.stderr
    assert_one_line_error(result, f"{algo} diverged at step")


@pytest.mark.parametrize("algo", ["sac", "td3"])
@pytest.mark.slow
def test_refusals_name_the_algorithms_that_fit(algo, tmp_path):
    assert_one_line_error(run_drlab("train", algo, "CartPole-v1", "--run-dir", tmp_path / "a"),
                          f"{algo} needs a Box action space, but CartPole-v1 has Discrete(2)",
                          "dqn, reinforce, actor-critic, a2c, ppo, option-critic take it")
    assert_one_line_error(run_drlab("train", algo, "Pendulum-v1", "--runners", "2", "--run-dir", tmp_path / "b"),
                          "--runners")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("algo, steps", [("sac", 4000), ("td3", 6000)])
@pytest.mark.learning
def test_learns_pendulum_beyond_random_in_a_short_run(algo, steps, tmp_path):
    """A random policy scores about -1,200 on Pendulum; a few thousand steps (the first 1,000 random) with
    smaller networks and a larger step size than the defaults get well above it (not a timing). TD3's
    deterministic policy explores less and needs more steps here."""
    run = drlab.train(algo, "Pendulum-v1", seed=0, total_steps=steps, learning_starts=1000, hidden=(64, 64), lr=1e-3,
                      run_dir=tmp_path / "run", progress=False, eval_interval=0, final_eval_episodes=10)
    assert run.summary["eval"]["mean"] > -700, run.summary["eval"]


def test_the_checkpoint_guard_looks_at_every_network_but_the_optimizers_and_the_replay():
    from drlab.run.checkpoint import non_finite_weight

    learner = learner_for(td3)
    state = learner.state_dict()
    assert non_finite_weight(state) is None
    with torch.no_grad():
        learner.critic.weights[0][1, 0, 0] = float("inf")  # the second critic: neither the agent nor a target
    assert non_finite_weight(learner.state_dict()) == "critic.weights.0"
    state["optimizers"]["critic"]["state"][0] = {"exp_avg": torch.tensor([float("nan")])}
    state["critic"] = learner_for(td3).critic.state_dict()
    assert non_finite_weight(state) is None
