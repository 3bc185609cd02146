"""Action heads (drlab.spaces.heads) against brute-force references, and every action space through
the policy-gradient algorithms and the CLI."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

import drlab
from drlab.algos import ppo
from drlab.config import build_config
from drlab.envs import make_vec_env
from drlab.errors import DrlabError
from drlab.run.logger import read_metrics
from drlab.spaces.heads import BernoulliHead, CategoricalHead, GaussianHead, MultiCategoricalHead, make_head
from test_cli import assert_one_line_error, drlab as run_drlab
from tests.action_space_envs import SPACES

BOX = gym.spaces.Box(np.array([-2.0, 0.0, -1.0], np.float32), np.array([2.0, 1.0, 3.0], np.float32))


def gaussian(squash: bool, log_std=(0.3, -0.5, 0.1)) -> GaussianHead:
    head = GaussianHead(BOX, squash=squash)
    with torch.no_grad():
        head.log_std.copy_(torch.tensor(log_std))
    return head


def test_gaussian_log_prob_and_entropy_match_torch_distributions():
    head = gaussian(squash=False)
    mean = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    samples = mean + 2 * torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    log_prob, entropy = head.log_prob_entropy(mean, samples)
    reference = Independent(Normal(mean, head.log_std.exp().expand_as(mean)), 1)
    assert torch.allclose(log_prob, reference.log_prob(samples), atol=1e-5)
    assert torch.allclose(entropy, reference.entropy(), atol=1e-5)


def test_the_tanh_log_det_correction_is_the_change_of_variables():
    head = gaussian(squash=True)
    mean = torch.randn(6, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    u = mean + torch.randn(6, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 1.5
    u[0, 0] = 9.0  # tanh(u) rounds to 1 in float32: the correction must stay finite
    log_prob, entropy = head.log_prob_entropy(mean, u)
    # log p(tanh u) = log N(u) - sum log |d tanh(u)/du|, the derivative taken numerically
    eps = 1e-6
    derivative = (torch.tanh(u + eps) - torch.tanh(u - eps)) / (2 * eps)
    gaussian_log_prob = Independent(Normal(mean, head.log_std.double().exp().expand_as(mean)), 1).log_prob(u)
    numerical = gaussian_log_prob - derivative.log().sum(-1)
    assert torch.allclose(log_prob[1:], numerical[1:], atol=1e-5)
    assert torch.isfinite(log_prob[0])
    squashed = TransformedDistribution(Normal(mean[1:], head.log_std.double().exp().expand_as(mean[1:])), TanhTransform())
    assert torch.allclose(log_prob[1:], squashed.log_prob(torch.tanh(u[1:])).sum(-1), atol=1e-4)
    assert torch.equal(entropy, -log_prob)  # the one-sample estimate


def sde_head(sample_freq: int = 3) -> GaussianHead:
    head = GaussianHead(BOX, sde_sample_freq=sample_freq)
    head.set_feature_size(4)
    with torch.no_grad():
        head.log_std.copy_(torch.linspace(-1.0, 0.5, 12).reshape(4, 3))
    return head


def test_gsde_log_prob_and_entropy_are_the_gaussian_with_the_state_s_std():
    # outputs = (mean, features z); the action's variance is (z^2) @ exp(log_std)^2 (+ 1e-6, as SB3)
    head = sde_head()
    g = torch.Generator().manual_seed(4)
    mean, features = torch.randn(5, 3, generator=g), torch.randn(5, 4, generator=g)
    samples = mean + torch.randn(5, 3, generator=g)
    log_prob, entropy = head.log_prob_entropy(torch.cat([mean, features], -1), samples)
    std = ((features ** 2) @ head.log_std.exp() ** 2 + 1e-6).sqrt()
    reference = Independent(Normal(mean, std), 1)
    assert torch.allclose(log_prob, reference.log_prob(samples), atol=1e-5)
    assert torch.allclose(entropy, reference.entropy(), atol=1e-5)


def test_gsde_noise_is_features_times_a_matrix_held_for_sample_freq_steps():
    head = sde_head(sample_freq=3)
    rng = np.random.default_rng(0)
    n = 20_000
    features = np.random.default_rng(1).standard_normal((n, 4))
    outputs = np.concatenate([np.zeros((n, 3)), features], axis=1)
    first = [head.sample(outputs, rng) for _ in range(3)]
    assert all(np.array_equal(first[0], x) for x in first[1:])  # the same matrices, the same features
    fourth = head.sample(outputs, rng)
    assert not np.allclose(fourth, first[0])  # new matrices every 3 steps
    # over envs with the same features, the noise has the variance (z^2) @ sigma^2 of log_prob's Gaussian
    same = np.tile(features[:1], (n, 1))
    drawn = head.sample(np.concatenate([np.zeros((n, 3)), same], axis=1), np.random.default_rng(2))
    variance = (same[0] ** 2) @ head.std() ** 2
    assert np.allclose(drawn.var(axis=0), variance, rtol=0.05)
    assert np.array_equal(head.mode(outputs[:2]), np.zeros((2, 3), np.float32))  # greedy: the mean


@pytest.mark.slow
def test_gsde_is_refused_without_box_actions_and_with_a_sample_freq_that_does_not_divide_n_steps(tmp_path):
    assert_one_line_error(run_drlab("train", "a2c", "CartPole-v1", "--sde", "--run-dir", tmp_path / "a"),
                          "sde (state-dependent exploration) needs a Box action space")
    assert_one_line_error(run_drlab("train", "ppo", "Pendulum-v1", "--sde", "--sde-sample-freq", "5",
                                    "--run-dir", tmp_path / "b"), "sde_sample_freq must be -1 or a divisor of n_steps")


def test_gaussian_actions_are_clipped_when_sent_and_stored_unclipped():
    head = gaussian(squash=False, log_std=(1.5, 1.5, 1.5))
    samples = head.sample(np.zeros((500, 3), np.float32), np.random.default_rng(0))
    sent = head.to_env(samples)
    assert sent.dtype == np.float32 and sent.shape == (500, 3)
    assert (sent >= BOX.low).all() and (sent <= BOX.high).all()
    outside = (samples < BOX.low) | (samples > BOX.high)
    assert outside.any()  # the stored samples go beyond the bounds...
    inside = ~outside
    assert np.array_equal(sent[inside], samples[inside])  # ...and only those are changed when sent
    valid = np.arange(500) % 3 != 0  # only the valid rows count
    metrics = head.diagnostics(samples, valid)
    assert metrics["action_clip_fraction"] == pytest.approx(outside[valid].mean())
    assert outside[valid].mean() != outside.mean()
    assert metrics["policy_std"] == pytest.approx(np.exp(1.5))
    # squashed: tanh of the sample, rescaled to the bounds; greedy is tanh of the mean
    squash = gaussian(squash=True)
    assert np.allclose(squash.to_env(np.array([[0.0, 0.0, 0.0], [50.0, -50.0, 50.0]], np.float32)),
                       [[0.0, 0.5, 1.0], [2.0, 0.0, 3.0]])


def test_squashing_needs_finite_bounds():
    with pytest.raises(DrlabError, match="finite action bounds"):
        GaussianHead(gym.spaces.Box(-np.inf, np.inf, (2,)), squash=True)


def test_multi_discrete_log_prob_is_the_sum_over_entries_and_samples_follow_the_softmax():
    space = gym.spaces.MultiDiscrete([3, 2, 4], start=[1, 0, -2])
    head = make_head(space)
    assert isinstance(head, MultiCategoricalHead) and head.num_inputs == 9
    logits = torch.randn(5, 9, generator=torch.Generator().manual_seed(4))
    samples = torch.tensor([[0, 1, 3], [2, 0, 0], [1, 1, 2], [0, 0, 1], [2, 1, 3]])
    log_prob, entropy = head.log_prob_entropy(logits, samples)
    parts = [Categorical(logits=part) for part in torch.split(logits, [3, 2, 4], dim=-1)]
    assert torch.allclose(log_prob, sum(p.log_prob(samples[:, i]) for i, p in enumerate(parts)), atol=1e-6)
    assert torch.allclose(entropy, sum(p.entropy() for p in parts), atol=1e-6)
    # sampling: 20k rows of the same logits, frequencies of each entry within 0.015 of softmax
    row = logits[:1].numpy().repeat(20_000, axis=0)
    drawn = head.sample(row, np.random.default_rng(1))
    for i, part in enumerate(parts):
        frequencies = np.bincount(drawn[:, i], minlength=part.probs.shape[-1]) / len(drawn)
        assert np.allclose(frequencies, part.probs[0].numpy(), atol=0.015)
    assert head.to_env(np.array([[0, 1, 3]])).tolist() == [[1, 1, 1]]  # shifted by start
    assert head.mode(logits.numpy()).tolist() == [[int(p.probs[r].argmax()) for p in parts] for r in range(5)]


def test_bernoulli_log_prob_entropy_and_sampling_match_torch():
    head = make_head(gym.spaces.MultiBinary([2, 3]))
    assert isinstance(head, BernoulliHead) and head.num_inputs == 6
    logits = torch.randn(4, 6, generator=torch.Generator().manual_seed(5)) * 3
    logits[0, 0] = 80.0  # a saturated bit
    samples = torch.tensor(np.random.default_rng(2).integers(0, 2, (4, 6)), dtype=torch.int8)
    samples[0, 0] = 1
    log_prob, entropy = head.log_prob_entropy(logits, samples)
    reference = Independent(Bernoulli(logits=logits), 1)
    assert torch.allclose(log_prob, reference.log_prob(samples.float()), atol=1e-5)
    assert torch.allclose(entropy, reference.entropy(), atol=1e-5)
    row = logits[1:2].numpy().repeat(20_000, axis=0)
    drawn = head.sample(row, np.random.default_rng(3))
    assert drawn.dtype == np.int8
    assert np.allclose(drawn.mean(0), torch.sigmoid(logits[1]).numpy(), atol=0.015)
    assert head.to_env(drawn[:2]).shape == (2, 2, 3)


def test_the_categorical_log_prob_is_the_one_of_log_prob_entropy_and_of_torch():
    head, logits = CategoricalHead(5), torch.randn(64, 5, dtype=torch.float64)
    index = torch.from_numpy(head.sample(logits.numpy(), np.random.default_rng(0)))
    log_prob, entropy = head.log_prob_entropy(logits, index)
    assert torch.allclose(head.log_prob(logits, index), log_prob)
    assert torch.allclose(log_prob, Categorical(logits=logits).log_prob(index))
    assert torch.allclose(entropy, Categorical(logits=logits).entropy())


def test_the_categorical_head_shifts_by_the_space_s_start():
    head = make_head(gym.spaces.Discrete(3, start=-1))
    assert isinstance(head, CategoricalHead)
    assert head.to_env(np.array([0, 2])).tolist() == [-1, 1]
    assert head.diagnostics(np.array([0]), np.array([True])) == {}


@pytest.mark.parametrize("algo", ["dqn", "actor-critic", "option-critic"])
@pytest.mark.slow
def test_discrete_only_algorithms_refuse_other_action_spaces_naming_those_that_fit(algo, tmp_path):
    assert_one_line_error(run_drlab("train", algo, "Pendulum-v1", "--run-dir", tmp_path / "run"),
                          f"{algo} needs a Discrete action space, but Pendulum-v1 has Box(-2.0, 2.0, (1,), float32)",
                          "reinforce, a2c, ppo, sac, td3 take it")
    assert not (tmp_path / "run").exists()


def test_q_value_algorithms_refuse_a_discrete_space_that_does_not_start_at_0(tmp_path):
    with pytest.raises(DrlabError, match=r"dqn needs Discrete actions that start at 0, .*; reinforce, a2c, ppo take it"):
        drlab.train("dqn", "DrlabTestShiftedDiscreteTarget-v0", total_steps=100, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


# ---- every action space through the algorithms ------------------------------------------------------

@pytest.mark.parametrize("algo", ["reinforce", "a2c", "ppo"])
@pytest.mark.parametrize("env_id", list(SPACES))
@pytest.mark.slow
def test_policy_gradient_algorithms_train_evaluate_and_reload_on_every_action_space(algo, env_id, tmp_path):
    run = drlab.train(algo, env_id, seed=0, total_steps=400, num_envs=2, run_dir=tmp_path / "run", progress=False,
                      final_eval_episodes=3, eval_interval=0, log_interval=100,
                      **({"batch_size": 32} if algo == "ppo" else {}))
    assert run.summary["eval"]["episodes"] == 3
    agent = drlab.load(tmp_path / "run")
    obs, _ = make_vec_env(env_id, 2).reset(seed=1)
    actions = agent.act(obs, greedy=True)
    assert actions.shape == (2, *SPACES[env_id].shape)  # and a Discrete start is added:
    assert all(SPACES[env_id].contains(a) for a in actions)
    if env_id == "DrlabTestBoxTarget-v0":
        logged = [row for row in read_metrics(tmp_path / "run") if "train/policy_std" in row]
        assert logged and all("train/action_clip_fraction" in row for row in logged)


@pytest.mark.slow
def test_a_box_action_env_through_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_drlab("train", "ppo", "Pendulum-v1", "--preset", "none", "--total-steps", "1024",
                        "--final-eval-episodes", "2", "--run-dir", run_dir, "--no-progress", "--squash-actions")
    assert trained.returncode == 0, trained.stderr
    evaluated = run_drlab("eval", run_dir, "--episodes", "2")
    assert evaluated.returncode == 0 and "over 2 episodes" in evaluated.stdout, evaluated.stderr
    recorded = run_drlab("record", run_dir, "--out", tmp_path / "v.mp4", "--max-steps", "20")
    assert recorded.returncode == 0 and (tmp_path / "v.mp4").stat().st_size > 0, recorded.stderr
    reported = run_drlab("report", run_dir, "--out", tmp_path / "r.html")
    assert reported.returncode == 0 and (tmp_path / "r.html").stat().st_size > 0, reported.stderr


@pytest.mark.learning
def test_ppo_learns_pendulum_above_random_in_a_short_run(tmp_path):
    """The random policy scores about -1230 on Pendulum; PPO with the Pendulum preset's settings,
    40k steps, greedy over 20 episodes (not a timing: a learning check)."""
    run = drlab.train("ppo", "Pendulum-v1", seed=0, total_steps=40_000, run_dir=tmp_path / "run", progress=False,
                      final_eval_episodes=20, eval_interval=0)
    assert run.summary["eval"]["mean"] > -900


def test_the_head_s_log_std_is_a_learned_parameter_of_the_policy():
    cfg = build_config(ppo.Config, "Pendulum-v1", {"critic_lr": 1e-3, "log_std_init": -0.5})
    envs = make_vec_env("Pendulum-v1", 1)
    agent = ppo.make_agent(cfg, envs.single_observation_space, envs.single_action_space, torch.device("cpu"))
    learner = ppo.Learner(cfg, agent, np.random.default_rng(0))
    assert "head.log_std" in agent.state_dict()
    assert torch.allclose(agent.net.head.log_std, torch.full((1,), -0.5))
    optimized = {id(p) for p in learner.optimizer.params}
    assert id(agent.net.head.log_std) in optimized  # also with the critic's own optimizer


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_gsde_trains_evaluates_and_reloads(algo, tmp_path):
    run = drlab.train(algo, "DrlabTestBoxTarget-v0", seed=0, total_steps=400, num_envs=2, run_dir=tmp_path / "run",
                      progress=False, final_eval_episodes=3, eval_interval=0, log_interval=100, sde=True,
                      n_steps=8, sde_sample_freq=4, hidden=[16], **({"batch_size": 16} if algo == "ppo" else {}))
    assert run.summary["eval"]["episodes"] == 3
    agent = drlab.load(tmp_path / "run")
    assert agent.net.head.log_std.shape == (16, 2)  # one noise scale per (feature, action dimension)
    obs, _ = make_vec_env("DrlabTestBoxTarget-v0", 2).reset(seed=1)
    actions = agent.act(obs, greedy=True)
    assert actions.shape == (2, 2) and all(SPACES["DrlabTestBoxTarget-v0"].contains(a) for a in actions)
    logged = [row for row in read_metrics(tmp_path / "run") if "train/sde_weight_std" in row]
    assert logged and all("train/action_clip_fraction" in row for row in logged)
