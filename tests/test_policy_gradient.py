"""The policy-gradient losses on hand-made batches, the rollout under autoreset, REINFORCE's episode
bookkeeping, determinism and checkpoints of the four algorithms."""

import copy
import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

import drlab
from drlab.algos import a2c, actor_critic, ppo, reinforce
from drlab.buffers.replay import Batch
from drlab.run.clock import PhaseClock
from drlab.run.episodes import EpisodeBook
from drlab.run.logger import read_metrics
from drlab.policies import ActorCritic
from drlab.spaces.heads import CategoricalHead

torch.manual_seed(0)
OBS = torch.randn(6, 4)
ACTIONS = torch.tensor([0, 1, 1, 0, 1, 0])
VECTORS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def net(shared=False, value_outputs=1):
    torch.manual_seed(1)
    return ActorCritic(VECTORS, CategoricalHead(2), (8,), "tanh", shared, value_outputs, ortho_init=False)


def grads(model, loss):
    model.zero_grad()
    loss.backward()
    return {name: (p.grad is not None and p.grad.abs().sum().item() > 0) for name, p in model.named_parameters()}


def a2c_batch(advantages, returns):
    ones = torch.ones(6)
    return {"obs": OBS, "actions": ACTIONS, "valid": ones, "advantages": advantages * ones, "returns": returns * ones,
            "log_probs": torch.zeros(6), "values": torch.zeros(6)}


def test_a2c_policy_term_reaches_only_the_actor_and_value_term_only_the_critic():
    model = net()
    cfg = a2c.Config(ent_coef=0.0, vf_coef=0.0)
    g = grads(model, a2c.a2c_loss(model, a2c_batch(torch.randn(6), 0.0), cfg)[0])
    assert all(g[n] for n in g if n.startswith("actor")) and not any(g[n] for n in g if n.startswith("critic"))
    cfg = a2c.Config(ent_coef=0.0, vf_coef=1.0)
    g = grads(model, a2c.a2c_loss(model, a2c_batch(torch.zeros(6), 3.0), cfg)[0])
    assert all(g[n] for n in g if n.startswith("critic")) and not any(g[n] for n in g if n.startswith("actor"))


def test_a2c_loss_matches_the_formula():
    model = net()
    cfg = a2c.Config(ent_coef=0.01, vf_coef=0.5)
    adv, ret = torch.randn(6), torch.randn(6)
    batch = a2c_batch(adv, 1.0)
    batch["returns"] = ret
    batch["valid"] = torch.tensor([1.0, 1, 0, 1, 1, 1])  # an autoreset step counts for nothing
    loss, metrics = a2c.a2c_loss(model, batch, cfg)
    logits, values = model(OBS)
    log_pi = torch.log_softmax(logits, 1)
    keep = batch["valid"].bool()
    expected = (-(adv * log_pi[range(6), ACTIONS])[keep].mean() + 0.5 * ((ret - values[:, 0]) ** 2)[keep].mean()
                - 0.01 * (-(log_pi.exp() * log_pi).sum(1))[keep].mean())
    torch.testing.assert_close(loss, expected)


def test_entropy_bonus_raises_entropy():
    model = net()
    cfg = a2c.Config(ent_coef=1.0, vf_coef=0.0, lr=0.05)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = a2c.a2c_loss(model, a2c_batch(torch.zeros(6), 0.0), cfg)[1]["entropy"]
    for _ in range(20):
        loss = a2c.a2c_loss(model, a2c_batch(torch.zeros(6), 0.0), cfg)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = a2c.a2c_loss(model, a2c_batch(torch.zeros(6), 0.0), cfg)[1]["entropy"]
    assert after > before


def test_ppo_clips_the_ratio_in_the_advantages_favour_only():
    model = net()
    cfg = ppo.Config(ent_coef=0.0, vf_coef=0.0, normalize_advantages=False)
    with torch.no_grad():
        log_pi = torch.log_softmax(model(OBS)[0], 1)[range(6), ACTIONS]
    batch = a2c_batch(torch.ones(6), 0.0)
    batch["log_probs"] = log_pi - np.log(1.5)  # ratio 1.5 > 1 + clip, with a positive advantage: no gradient
    g = grads(model, ppo.ppo_loss(model, batch, cfg, clip=0.2)[0])
    assert not any(g.values())
    batch["advantages"] = -torch.ones(6)  # the same ratio with a negative advantage is not clipped
    g = grads(model, ppo.ppo_loss(model, batch, cfg, clip=0.2)[0])
    assert any(g[n] for n in g if n.startswith("actor"))


def test_ppo_at_ratio_one_has_the_a2c_gradient():
    model = net()
    cfg_ppo = ppo.Config(ent_coef=0.0, vf_coef=0.5, normalize_advantages=False)
    cfg_a2c = a2c.Config(ent_coef=0.0, vf_coef=0.5)
    batch = a2c_batch(torch.randn(6), 2.0)
    with torch.no_grad():
        batch["log_probs"] = torch.log_softmax(model(OBS)[0], 1)[range(6), ACTIONS]
    model.zero_grad()
    ppo.ppo_loss(model, batch, cfg_ppo, clip=0.2)[0].backward()
    g_ppo = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    a2c.a2c_loss(model, batch, cfg_a2c)[0].backward()
    for a, b in zip(g_ppo, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b)


def test_ppo_value_clipping_limits_the_value_change():
    model = net()
    cfg = ppo.Config(ent_coef=0.0, vf_coef=1.0, clip_range_vf=0.1, normalize_advantages=False)
    with torch.no_grad():
        values = model(OBS)[1][:, 0]
    batch = a2c_batch(torch.zeros(6), 0.0)
    batch["values"] = values - 1.0  # the current values are already 1.0 above the rollout's, beyond the clip
    batch["returns"] = values + 5.0  # and the target asks for more: the clipped term wins, no gradient
    g = grads(model, ppo.ppo_loss(model, batch, cfg, clip=0.2)[0])
    assert not any(g[n] for n in g if n.startswith("critic"))


def test_reinforce_learned_baseline_is_detached_from_the_policy_term():
    model = net()
    cfg = reinforce.Config(baseline="learned", normalize_returns=False, ent_coef=0.0, vf_coef=0.0)
    batch = {"obs": OBS, "actions": ACTIONS, "returns": torch.randn(6), "mask": torch.ones(6)}
    g = grads(model, reinforce.reinforce_loss(model, batch, cfg)[0])
    assert not any(g[n] for n in g if n.startswith("critic"))
    cfg = reinforce.Config(baseline="none", normalize_returns=False, ent_coef=0.0)
    loss = reinforce.reinforce_loss(model, batch, cfg)[0]
    log_pi = torch.log_softmax(model(OBS)[0], 1)[range(6), ACTIONS]
    torch.testing.assert_close(loss, -(batch["returns"] * log_pi).mean())


def test_actor_critic_critic_target_is_detached_and_expected_sarsa():
    model = net(shared=True, value_outputs=2)
    cfg = actor_critic.Config(gamma=0.9)
    batch = Batch(obs=OBS, actions=ACTIONS, rewards=torch.ones(6), next_obs=OBS.flip(0),
                  terminated=torch.tensor([0.0, 0, 1, 0, 0, 0]), discounts=torch.full((6,), 0.9),
                  weights=torch.ones(6), indices=np.arange(6))
    loss, metrics = actor_critic.critic_loss(model, model, batch, cfg)  # no target network: same net
    logits, q = model(batch.next_obs)
    next_v = (torch.softmax(logits, 1) * q).sum(1)
    target = (1.0 + 0.9 * (1 - batch.terminated) * next_v).detach()
    q_sa = model(OBS)[1][range(6), ACTIONS]
    torch.testing.assert_close(metrics["target_mean"], target.mean())
    expected = ((q_sa - target) ** 2).mean()
    torch.testing.assert_close(loss, expected)
    g1 = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(expected, list(model.parameters()), allow_unused=True)
    for a, b in zip(g1, g2):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(a, b)


def test_actor_critic_symlog_values_round_trip():
    x = torch.tensor([-1000.0, -3.0, 0.0, 0.5, 250.0])
    from drlab.returns import symexp, symlog

    torch.testing.assert_close(symexp(symlog(x)), x)


def test_rollout_masks_the_autoreset_step_and_bootstraps_truncation(tmp_path):
    """CounterEnv: even episodes terminate after 3 steps, odd ones are truncated at 5."""
    run = drlab.train("a2c", "DrlabTestCounter-v0", num_envs=2, n_steps=7, total_steps=14, eval_interval=0,
                      final_eval_episodes=0, progress=False, run_dir=str(tmp_path / "r"))
    from drlab.algos import on_policy
    from drlab.envs import make_vec_env
    from drlab.run.rundir import load_agent

    agent = load_agent(run.dir)
    rollouts = []

    class FakeRun:  # the services of drlab.run.runner.Run that the loop calls
        cfg = dataclasses.replace(agent.config, n_steps=10, num_envs=1, gamma=1.0, gae_lambda=1.0)
        envs = make_vec_env("DrlabTestCounter-v0", 1)
        clock = PhaseClock()
        episodes = EpisodeBook(1, log=lambda metrics: None)
        step = 0

        def reset_envs(self):
            return self.envs.reset(seed=0)[0]

        def running(self):
            return not rollouts  # one rollout

        def end_step(self, env_steps, metrics):
            self.step += env_steps

    class SpyLearner:
        def __init__(self):
            self.agent = agent

        def update(self, rollout, step):
            rollouts.append(copy.deepcopy(rollout))
            return {}

    on_policy.train_loop(FakeRun(), SpyLearner())
    rollout = rollouts[0]
    # steps: ep0 t1..3 (terminated), autoreset, ep1 t1..5 (truncated), autoreset
    np.testing.assert_array_equal(rollout.valid[:, 0], [1, 1, 1, 0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(rollout.terminated[:, 0], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(rollout.truncated[:, 0], [0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    values = np.full((11, 1), 10.0, dtype=np.float32)  # a constant critic
    learner = on_policy.OnPolicyLearner(FakeRun.cfg, agent, np.random.default_rng(0))
    adv, ret = learner.advantages_and_returns(rollout, values)
    # ep0 rewards 1, 2, 3 then nothing; ep1 rewards 1..5 then V(final obs) = 10
    np.testing.assert_allclose(ret[:, 0], [6, 5, 3, 0, 25, 24, 22, 19, 15, 0])
    FakeRun.envs.close()


def test_reinforce_trains_each_step_once_with_its_whole_episode_return(tmp_path, monkeypatch):
    """Every real step of an ended episode is trained exactly once, with its Monte-Carlo return, even
    when its episode straddles updates."""
    seen = []
    original = reinforce.reinforce_loss

    def spy(model, batch, cfg):
        use = batch["mask"].bool()
        seen.append((batch["obs"][use].numpy().copy(), batch["returns"][use].numpy().copy()))
        return original(model, batch, cfg)

    monkeypatch.setattr(reinforce, "reinforce_loss", spy)
    drlab.train("reinforce", "DrlabTestCounter-v0", num_envs=3, episodes_per_update=2, gamma=1.0, total_steps=90,
                eval_interval=0, final_eval_episodes=0, progress=False, run_dir=str(tmp_path / "r"))
    obs = np.concatenate([o for o, _ in seen])
    returns = np.concatenate([r for _, r in seen])
    keys = [tuple(o) for o in obs]
    assert len(seen) >= 5
    # obs = (episode index, step in episode): the same key twice would be a step trained twice;
    # CounterEnv episodes are per env, so key duplicates across envs are expected: count per key
    # must not exceed the number of envs.
    counts = {k: keys.count(k) for k in set(keys)}
    assert max(counts.values()) <= 3
    for (episode, t), g in zip(keys, returns):
        length = 3 if episode % 2 == 0 else 5
        assert g == sum(range(int(t) + 1, length + 1)), (episode, t, g)  # rewards t+1 .. length


@pytest.mark.parametrize("algo", ["reinforce", "actor-critic", "a2c", "ppo"])
@pytest.mark.slow
def test_same_seed_same_run_and_diagnostics_logged(tmp_path, algo):
    settings = dict(total_steps=3000, eval_interval=1000, eval_episodes=2, final_eval_episodes=2, progress=False,
                    log_interval=500, stop_on_solve=False)
    if algo == "actor-critic":
        settings["learning_starts"] = 500
    a = drlab.train(algo, "CartPole-v1", seed=5, run_dir=str(tmp_path / "a"), **settings)
    b = drlab.train(algo, "CartPole-v1", seed=5, run_dir=str(tmp_path / "b"), **settings)

    def comparable(records):
        return [{k: v for k, v in r.items() if k != "time_s" and not k.startswith("perf/")} for r in records]

    assert comparable(read_metrics(a.dir)) == comparable(read_metrics(b.dir))
    keys = set().union(*read_metrics(a.dir))
    for key in ("episode/return", "episode/reward_mean_100", "eval/mean", "perf/sps", "train/loss", "train/policy_loss",
                "train/value_loss", "train/entropy", "train/grad_norm", "train/lr", "train/advantage_mean",
                "train/advantage_std"):
        assert key in keys, key
    if algo != "reinforce":  # REINFORCE's default baseline is not a learned value
        for key in ("train/explained_variance", "train/value_mean", "train/target_mean"):
            assert key in keys, key


@pytest.mark.parametrize("algo", ["reinforce", "actor-critic", "a2c", "ppo"])
def test_checkpoint_resume_restores_the_learner(tmp_path, algo):
    from drlab.run.checkpoint import load_checkpoint, read_json
    from drlab.run.rundir import config_from_json
    from drlab.run.runner import Run

    extra = {"learning_starts": 200} if algo == "actor-critic" else {}
    run = drlab.train(algo, "CartPole-v1", seed=1, total_steps=1500, eval_interval=0, final_eval_episodes=0,
                      progress=False, run_dir=str(tmp_path / "r"), **extra)
    (run.dir / "summary.json").unlink()
    name, cfg = config_from_json(read_json(run.dir / "config.json", "run config"))
    ckpt = load_checkpoint(run.dir / "checkpoints" / "latest.pt")
    resumed = Run(name, cfg, run.dir, checkpoint=ckpt)
    state = resumed.learner.state_dict()
    for key, tensor in ckpt["learner"]["agent"].items():
        assert torch.equal(state["agent"][key], tensor)
    assert state["optimizer"]["state"].keys() == ckpt["learner"]["optimizer"]["state"].keys()
    resumed.envs.close()


def test_a_run_with_normalised_rewards_saves_a_loadable_checkpoint(tmp_path):
    """The reward scale's statistics are NumPy scalars while training; the checkpoint must hold plain
    floats, or weights-only loading (eval, resume) refuses it."""
    from drlab.run.checkpoint import load_checkpoint

    run = drlab.train("a2c", "CartPole-v1", seed=0, total_steps=400, num_envs=2, normalize_rewards=True,
                      eval_interval=0, final_eval_episodes=0, progress=False, run_dir=str(tmp_path / "r"))
    scaler = load_checkpoint(run.dir / "checkpoints" / "latest.pt")["learner"]["reward_scaler"]
    assert all(type(scaler[key]) is float for key in ("mean", "var", "count"))
    assert scaler["count"] > 1


def test_observation_normalizer_matches_numpy_over_batches_and_is_saved_with_the_weights():
    from drlab.nets import ObsNormalizer

    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)).astype(np.float32) for n in (5, 17, 1, 40)]
    norm = ObsNormalizer(4)
    for batch in batches:
        norm.update(torch.from_numpy(batch))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), everything.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.var.numpy(), everything.var(0), rtol=1e-3)
    x = torch.from_numpy(everything[:3])
    expected = (everything[:3] - everything.mean(0)) / everything.std(0)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-3, atol=1e-4)
    model = ActorCritic(VECTORS, CategoricalHead(2), (8,), normalize_obs=True)
    model.observe(everything)
    assert {"obs_norm.mean", "obs_norm.var", "obs_norm.count"} <= set(model.state_dict())


def test_a2c_critic_lr_gives_the_critic_an_optimizer_of_its_own(tmp_path):
    from drlab.config import build_config
    from drlab.errors import DrlabError
    from drlab.run.runner import Run

    config = build_config(a2c.Config, "CartPole-v1", {
        "lr": 1e-2, "critic_lr": 1e-6, "optimizer": "adam", "total_steps": 40, "num_envs": 2, "n_steps": 5,
        "eval_interval": 0, "final_eval_episodes": 0, "progress": False, "run_dir": str(tmp_path / "r")})
    (tmp_path / "r").mkdir()
    run = Run("a2c", config, tmp_path / "r")
    net = run.agent.net
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    run.execute()
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in net.named_parameters()}
    # Adam moves each weight by about its learning rate per step: 1e-2 for the actor, 1e-6 for the critic.
    assert min(v for k, v in moved.items() if k.startswith("actor.")) > 1e-3
    assert max(v for k, v in moved.items() if k.startswith("critic.")) < 1e-4
    assert [g["lr"] for g in run.learner.optimizer.opt.param_groups] == [1e-2, 1e-6]
    shared = build_config(a2c.Config, "CartPole-v1", {"critic_lr": 1e-3, "shared_body": True, "run_dir": str(tmp_path / "s"),
                                                       "progress": False})
    (tmp_path / "s").mkdir()
    with pytest.raises(DrlabError, match="critic_lr needs separate actor and critic networks"):
        Run("a2c", shared, tmp_path / "s")


@pytest.mark.parametrize("algo", ["reinforce", "actor-critic", "a2c", "ppo"])
def test_head_init_gains_and_configs_written_before_it(algo):
    """head_init small: policy outputs at gain 0.01 (near-uniform policy), value at 1; sqrt2: both
    heads at sqrt 2 as in the course notebooks. A config.json from before head_init loads as small."""
    import gymnasium as gym

    from drlab.algos import get_algo
    from drlab.config import build_config
    from drlab.run.rundir import config_from_json

    module = get_algo(algo)
    obs_space = gym.spaces.Box(-1, 1, (4,))
    norms = {}
    for head_init in ("small", "sqrt2"):
        cfg = build_config(module.Config, "CartPole-v1", {"head_init": head_init})
        net = module.make_agent(cfg, obs_space, gym.spaces.Discrete(2), torch.device("cpu")).net
        policy_out = net.policy_head if net.shared_body else net.actor[-1]
        # An orthogonal (2 x 64) matrix with gain g has singular values g.
        norms[head_init] = torch.linalg.matrix_norm(policy_out.weight, ord=2).item()
    assert norms["small"] == pytest.approx(0.01, rel=1e-3) and norms["sqrt2"] == pytest.approx(2 ** 0.5, rel=1e-3)
    written = dataclasses.asdict(build_config(module.Config, "CartPole-v1", {}))
    written.pop("head_init")
    _, cfg = config_from_json({**written, "algo": algo})
    assert cfg.head_init == "small"
