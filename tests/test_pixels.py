"""Pixel envs (Atari, VizDoom), the Nature CNN, and short runs of the pixel algorithms. No GPU needed."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import drlab
from drlab.envs import env_spec, make_env, make_vec_env
from drlab.envs.autoreset import EpisodeStats, game_signals
from drlab.envs.atari import AtariTrainingSignals
from drlab.envs.vizdoom import DoomFrames, make_vizdoom_env
from drlab.nets import NatureCNN
from drlab.policies import ActorCritic
from drlab.spaces.heads import CategoricalHead
from test_cli import assert_one_line_error, drlab as run_drlab

pytest.importorskip("ale_py")
ATARI = "SpaceInvadersNoFrameskip-v4"
DOOM = "VizdoomDefendCenter-v1"
FRAMES = (4, 84, 84)


# ---- Atari training signals on a scripted game ---------------------------------------------------

class ScriptedGame(gym.vector.VectorEnv):
    """One env replaying (raw reward, lives after the step, game over) per step; records actions.
    Like ale-py's vector env: after a game over the next step is an autoreset step (reward 0)."""

    def __init__(self, script):
        self.script, self.t, self.actions = script, 0, []
        self.num_envs = 1
        self.single_observation_space = gym.spaces.Box(0, 255, FRAMES, np.uint8)
        self.single_action_space = gym.spaces.Discrete(6)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 1)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 1)

    def reset(self, *, seed=None, options=None):
        return np.zeros((1, *FRAMES), np.uint8), {"lives": np.array([3])}

    def step(self, actions):
        self.actions.append(int(actions[0]))
        reward, lives, over = self.script[self.t]
        self.t += 1
        obs = np.full((1, *FRAMES), self.t, np.uint8)
        return obs, np.array([reward]), np.array([over]), np.array([False]), {"lives": np.array([lives])}


SCRIPT = [  # raw reward, lives after the step, game over
    (10, 3, False),
    (200, 2, False),   # a life lost: the training episode ends here
    (5, 2, False),     # the step after it: the agent's action becomes NOOP, not a transition
    (-3, 2, False),
    (0, 0, True),      # game over
    (0, 3, False),     # ale-py's autoreset step: no part of any game
    (30, 3, False),    # a new game
]


def play(script, actions=3):
    env = AtariTrainingSignals(ScriptedGame(script))
    env.reset()
    out = [env.step(np.array([actions])) for _ in script]
    return env, out


def test_life_loss_ends_the_training_episode_and_rewards_are_clipped():
    env, out = play(SCRIPT)
    rewards = [float(r[0]) for _, r, _, _, _ in out]
    terminated = [bool(t[0]) for _, _, t, _, _ in out]
    assert rewards == [1.0, 1.0, 0.0, -1.0, 0.0, 0.0, 1.0]  # sign-clipped; 0 after the lost life
    assert terminated == [False, True, False, False, True, False, False]
    assert env.env.actions == [3, 3, 0, 3, 3, 3, 3]  # NOOP continues the game after the lost life


def test_reported_episode_is_the_whole_game_with_raw_rewards():
    """Training sees two episodes (life loss, game over); the bookkeeping sees one game of 212."""
    _, out = play(SCRIPT)
    stats, prev_done, finished, training_ends = EpisodeStats(1), np.zeros(1, bool), [], 0
    for _, rewards, terminated, truncated, info in out:
        done = terminated | truncated
        valid = ~prev_done
        training_ends += int((done & valid).sum())
        returns, lengths = stats.update(*game_signals(rewards, done, valid, info))
        finished += list(zip(returns, lengths))
        prev_done = done
    assert training_ends == 2
    assert finished == [(212.0, 5)]  # 10 + 200 + 5 - 3 + 0 over the game's five steps


def test_game_signals_pass_plain_envs_through():
    r, d, v = np.ones(2), np.array([True, False]), np.array([True, True])
    assert all(a is b for a, b in zip(game_signals(r, d, v, {}), (r, d, v)))


# ---- the real envs ---------------------------------------------------------------------------------

def test_atari_vector_env_shapes_dtypes_and_raw_info():
    envs = make_vec_env(ATARI, 2, seed=0, training=True)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, *FRAMES) and obs.dtype == np.uint8
        assert envs.single_action_space == gym.spaces.Discrete(6)
        raw_total, clipped_total = 0.0, 0.0
        for _ in range(300):
            obs, rewards, terminated, truncated, info = envs.step(np.array([1, 1]))  # FIRE
            assert obs.shape == (2, *FRAMES) and obs.dtype == np.uint8
            assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
            raw_total += info["raw_reward"].sum()
            clipped_total += rewards.sum()
        assert raw_total > clipped_total > 0  # SpaceInvaders scores 5-30 per alien
    finally:
        envs.close()
    evaluation = make_vec_env(ATARI, 1, seed=0)  # evaluation: raw rewards, whole games
    try:
        assert not isinstance(evaluation, AtariTrainingSignals)
    finally:
        evaluation.close()


def test_atari_video_env_renders_native_frames():
    env = make_env(ATARI, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == FRAMES and obs.dtype == np.uint8
        assert env.render().shape == (210, 160, 3)
    finally:
        env.close()


def test_vizdoom_env_shapes():
    pytest.importorskip("vizdoom")
    envs = make_vec_env(DOOM, 2, seed=0)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, *FRAMES) and obs.dtype == np.uint8
        assert isinstance(envs.single_action_space, gym.spaces.Discrete)
        obs, *_ = envs.step(envs.action_space.sample())
        assert obs.shape == (2, *FRAMES) and obs[:, -1].std() > 0  # a real picture, not a blank frame
    finally:
        envs.close()


def test_doom_frames_show_ammo_and_health_as_bars():
    # DefendCenter hides Doom's status bar; the frame's bottom rows carry ammo (one pixel per round,
    # bottom bar) and health (100 = the full width), read here against the game's own counters.
    vzd = pytest.importorskip("vizdoom")
    env = make_vizdoom_env(env_spec(DOOM))
    game = env.unwrapped.game
    attack = [list(combo) for combo in env.unwrapped.button_map].index([0, 0, 1])  # ATTACK alone
    try:
        obs, _ = env.reset(seed=0)
        for step in range(40):
            frame = obs[-1]
            ammo, health = (game.get_game_variable(v) for v in (vzd.GameVariable.AMMO2, vzd.GameVariable.HEALTH))
            ammo_bar, health_bar = frame[-2:], frame[-4:-2]
            assert (ammo_bar[:, :int(ammo)] == 255).all() and (ammo_bar[:, int(ammo):] == 0).all()
            assert (health_bar[:, :round(84 * health / 100)] == 255).all()
            assert (health_bar[:, round(84 * health / 100):] == 0).all()
            obs, _, terminated, truncated, _ = env.step(attack)
            assert not (terminated or truncated)
        assert ammo < 26  # the agent fired: the bar shrank with the count
    finally:
        env.close()


class _Timeout(gym.Env):
    """The vizdoom env's timeout: terminated and truncated both True."""
    observation_space = gym.spaces.Dict({"screen": gym.spaces.Box(0, 255, (120, 160, 3), np.uint8)})
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return {"screen": np.zeros((120, 160, 3), np.uint8)}, {}

    def step(self, action):
        return {"screen": np.full((120, 160, 3), 255, np.uint8)}, 1, True, True, {}


def test_doom_timeout_is_a_truncation_and_frames_are_84x84_gray():
    env = DoomFrames(_Timeout())
    obs, _ = env.reset()
    assert obs.shape == (84, 84) and obs.dtype == np.uint8
    obs, reward, terminated, truncated, _ = env.step(0)
    assert (terminated, truncated) == (False, True) and obs.min() == 255


# ---- Nature CNN ----------------------------------------------------------------------------------

def test_nature_cnn_takes_uint8_and_uses_orthogonal_init():
    net = ActorCritic(gym.spaces.Box(0, 255, FRAMES, np.uint8), CategoricalHead(6), (64,))
    assert isinstance(net.body, NatureCNN)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all((c.bias == 0).all() for c in convs)
    w = convs[0].weight.reshape(32, -1)  # orthogonal rows with gain sqrt 2
    assert torch.allclose(w @ w.T, 2 * torch.eye(32), atol=1e-4)
    frames = torch.randint(0, 256, (3, *FRAMES), dtype=torch.uint8)
    logits, values = net(frames)
    assert logits.shape == (3, 6) and values.shape == (3, 1)
    assert torch.allclose(net(frames.float() / 255)[0], logits, atol=1e-6)  # scaled to [0, 1] inside


def test_bf16_body_returns_float32_close_to_float32():
    torch.manual_seed(0)
    fp32 = NatureCNN(FRAMES)
    bf16 = NatureCNN(FRAMES, bf16=True)
    bf16.load_state_dict(fp32.state_dict())
    frames = torch.randint(0, 256, (4, *FRAMES), dtype=torch.uint8)
    a, b = fp32(frames), bf16(frames)
    assert b.dtype == torch.float32
    assert torch.allclose(a, b, atol=0.05 * a.abs().max().item())


# ---- short runs through the real entry point ----------------------------------------------------

def _short(algo, env_id, tmp_path, **kw):
    settings = dict(total_steps=120, final_eval_episodes=0, eval_interval=0, progress=False,
                    log_interval=60, run_dir=str(tmp_path / f"{algo}-run"))
    settings.update(kw)
    run = drlab.train(algo, env_id, **settings)
    names = {p.name for p in run.dir.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "checkpoints"} <= names
    return run, [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a2c_preset_runs_on_atari(tmp_path):
    run, records = _short("a2c", ATARI, tmp_path)
    assert run.summary["steps"] == 120
    perf = [r for r in records if "perf/sps" in r]
    assert perf and {"perf/env_fraction", "perf/inference_fraction", "perf/learn_fraction"} <= set(perf[-1])
    agent = drlab.load(run.dir)  # a saved CNN agent acts on a batch of uint8 frames
    actions = agent.act(np.zeros((5, *FRAMES), np.uint8), greedy=True)
    assert actions.shape == (5,) and ((0 <= actions) & (actions < 6)).all()


@pytest.mark.slow
def test_ppo_and_dqn_run_on_atari(tmp_path):
    _short("ppo", ATARI, tmp_path, num_envs=4, n_steps=16, batch_size=32, total_steps=64)
    _short("dqn", ATARI, tmp_path, num_envs=2, total_steps=80, learning_starts=40, batch_size=8,
           buffer_size=100)


def test_reinforce_learns_from_frames(tmp_path):
    # Episodes capped at 30 steps, so that 2 envs finish episodes and REINFORCE updates on frames.
    run, records = _short("reinforce", ATARI, tmp_path, num_envs=2, episodes_per_update=2, max_episode_steps=30)
    assert any("train/loss" in r for r in records)


def test_a2c_preset_runs_on_vizdoom(tmp_path):
    pytest.importorskip("vizdoom")
    run, _ = _short("a2c", DOOM, tmp_path, num_envs=2, total_steps=40)
    assert run.summary["steps"] == 40


@pytest.mark.slow
def test_record_writes_native_resolution_video(tmp_path):
    import imageio_ffmpeg

    from drlab.video import record_video

    run, _ = _short("a2c", ATARI, tmp_path)
    out = tmp_path / "greedy.mp4"
    info = record_video(drlab.load(run.dir), ATARI, out, seed=0, greedy=False, max_steps=30)
    assert out.exists() and info["frames"] == 31
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"] == (160, 210)  # the console's 160x210 screen, not the 84x84 input


def test_doom_envs_start_in_a_fresh_directory_and_say_why_when_they_cannot(tmp_path, monkeypatch):
    # Every Doom engine creates ./_vizdoom/ when it is missing and dies when a sibling made it first
    # (a CI failure: EOFError from AsyncVectorEnv in a fresh clone). drlab creates it before forking.
    pytest.importorskip("vizdoom")
    monkeypatch.chdir(tmp_path)
    envs = make_vec_env(DOOM, 4, seed=0)
    envs.close()
    assert (tmp_path / "_vizdoom").is_dir()
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "_vizdoom").touch()  # a file where the directory must go: the engine itself segfaults here
    result = run_drlab("train", "a2c", DOOM, "--total-steps", "40", cwd=blocked)
    assert_one_line_error(result, "./_vizdoom/", "File exists")
    assert not (blocked / "runs").exists()
