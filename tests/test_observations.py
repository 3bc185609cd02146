"""Observation spaces through the encoder seam (drlab.spaces.encoders): each packing and encoding
against a brute-force reference, the env factory's packing and frame stacking, every algorithm on a
Dict observation, and the one-line refusals."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import drlab
import drlab.evaluate
from drlab.envs import make_env, make_vec_env
from drlab.errors import DrlabError
from drlab.run.logger import read_metrics
from drlab.spaces.encoders import ObservationEncoder, Packer, PackedBox, make_body, mlp_on, parts_of
from test_cli import assert_one_line_error, drlab as run_drlab


def one_hot(index: int, n: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(n)]


def encode(space, observations) -> np.ndarray:
    """Pack each observation as an env copy would, then encode the batch."""
    packer = Packer(space, "Test-v0")
    batch = torch.as_tensor(np.stack([packer(o) for o in observations]))
    with torch.no_grad():
        return ObservationEncoder(packer.space.parts)(batch).numpy()


def test_discrete_observations_are_one_hot_from_their_start():
    space = gym.spaces.Discrete(5, start=2)
    assert Packer(space, "Test-v0")(4).tolist() == [2.0]
    np.testing.assert_array_equal(encode(space, [2, 6, 4]), [one_hot(0, 5), one_hot(4, 5), one_hot(2, 5)])


def test_multi_discrete_observations_are_one_hot_per_index():
    space = gym.spaces.MultiDiscrete([3, 4])
    observations = [np.array([0, 3]), np.array([2, 1])]
    expected = [one_hot(int(o[0]), 3) + one_hot(int(o[1]), 4) for o in observations]
    np.testing.assert_array_equal(encode(space, observations), expected)


def test_multi_binary_and_any_rank_box_observations_are_flattened():
    box = gym.spaces.Box(-1, 1, (2, 3, 2), np.float32)
    obs = box.sample()
    flat = [obs[i, j, k] for i in range(2) for j in range(3) for k in range(2)]
    np.testing.assert_array_equal(encode(box, [obs])[0], flat)
    ram = gym.spaces.Box(0, 255, (6,), np.uint8)  # bytes are numbers here, not pixels
    assert Packer(ram, "Test-v0").space.dtype == np.float32
    np.testing.assert_array_equal(encode(ram, [np.arange(6, dtype=np.uint8)])[0], np.arange(6))
    bits = gym.spaces.MultiBinary((2, 2))
    np.testing.assert_array_equal(encode(bits, [np.array([[1, 0], [0, 1]])])[0], [1, 0, 0, 1])


@pytest.mark.parametrize("shape, order", [((10, 12, 3), "hwc"), ((3, 10, 12), "chw"), ((10, 12), "hw"),
                                          ((4, 10, 12, 3), "khwc")])
def test_images_are_packed_channels_first(shape, order):
    space = gym.spaces.Box(0, 255, shape, np.uint8)
    obs = space.sample()
    packer = Packer(space, "Test-v0")
    packed = packer(obs)
    assert packed.dtype == np.uint8 and packer.space.dtype == np.uint8
    channels = {"hwc": 3, "chw": 3, "hw": 1, "khwc": 12}[order]
    assert packed.shape == packer.space.shape == (channels, 10, 12)
    for c in range(channels):
        for h in range(10):
            for w in range(12):
                expected = {"hwc": lambda: obs[h, w, c], "chw": lambda: obs[c, h, w], "hw": lambda: obs[h, w],
                            "khwc": lambda: obs[c // 3, h, w, c % 3]}[order]()
                assert packed[c, h, w] == expected


def test_image_bodies_fit_the_image_size():
    big, small = (gym.spaces.Box(0, 255, (3, s, s), np.uint8) for s in (64, 7))
    for space in (Packer(big, "Test-v0").space, Packer(small, "Test-v0").space):
        body, features = make_body(space, (64,), torch.nn.ReLU)
        frames = torch.randint(0, 256, (2, *space.shape), dtype=torch.uint8)
        assert body(frames).shape == (2, features)


def test_dict_and_tuple_parts_are_concatenated_in_the_space_s_order():
    space = gym.spaces.Dict({"vel": gym.spaces.Box(-1, 1, (2,), np.float32), "cell": gym.spaces.Discrete(3),
                             "view": gym.spaces.Box(0, 255, (6, 6, 3), np.uint8),
                             "pair": gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.MultiBinary(2)))})
    assert list(space.spaces) == ["cell", "pair", "vel", "view"]  # Gymnasium sorts a Dict's keys
    obs = space.sample()
    packer = Packer(space, "Test-v0")
    assert [(p.key, p.kind) for p in packer.space.parts] == [
        ("cell", "onehot"), ("pair/0", "onehot"), ("pair/1", "vector"), ("vel", "vector"), ("view", "image")]
    expected = [obs["cell"], obs["pair"][0], *obs["pair"][1], *obs["vel"], *np.transpose(obs["view"], (2, 0, 1)).ravel()]
    np.testing.assert_allclose(packer(obs), expected)
    torch.manual_seed(0)
    encoder = ObservationEncoder(packer.space.parts)
    with torch.no_grad():
        features = encoder(torch.as_tensor(packer(obs))[None])[0].numpy()
        view = encoder.cnns["4"](torch.as_tensor(obs["view"]).permute(2, 0, 1)[None])[0].numpy()
    head = one_hot(int(obs["cell"]), 3) + one_hot(int(obs["pair"][0]), 2) + [*obs["pair"][1], *obs["vel"]]
    np.testing.assert_allclose(features[:len(head)], head, rtol=1e-6)
    np.testing.assert_allclose(features[len(head):], view, rtol=1e-5, atol=1e-6)


def test_text_is_left_out_with_a_note_and_nothing_left_is_refused(capsys):
    space = gym.spaces.Dict({"mission": gym.spaces.Text(8), "cell": gym.spaces.Discrete(4)})
    assert [p.key for p in Packer(space, "NoteTest-v0").space.parts] == ["cell"]
    assert "NoteTest-v0: the networks leave out mission (Text)" in capsys.readouterr().err
    with pytest.raises(DrlabError, match="observations a network cannot take"):
        Packer(gym.spaces.Text(8), "Test-v0")


def test_flat_vectors_and_stacked_frames_keep_their_networks():
    vectors = gym.spaces.Box(-1, 1, (4,), np.float32)
    assert isinstance(mlp_on(vectors, (8,), 2), torch.nn.Sequential) and mlp_on(vectors, (8,), 2)[0].in_features == 4
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert parts_of(frames)[0].kind == "image" and type(make_body(frames, (8,), torch.nn.ReLU)[0]).__name__ == "NatureCNN"


# ---- through the env factory and the algorithms ----------------------------------------------------

class DictCorridor(gym.Env):
    """Walk right along 5 cells (action 1) to reward 1; the observation holds the cell (Discrete), a
    2x2 Box, a small picture of the corridor and a text that no network can take."""

    observation_space = gym.spaces.Dict({
        "cell": gym.spaces.Discrete(5), "noise": gym.spaces.Box(-1, 1, (2, 2), np.float32),
        "picture": gym.spaces.Box(0, 255, (5, 5, 1), np.uint8), "mission": gym.spaces.Text(12)})
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def _obs(self):
        picture = np.zeros((5, 5, 1), np.uint8)
        picture[2, self.cell, 0] = 255
        return {"cell": self.cell, "noise": self.np_random.uniform(-1, 1, (2, 2)).astype(np.float32),
                "picture": picture, "mission": "walkright"}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = 0
        return self._obs(), {}

    def step(self, action):
        self.cell = min(self.cell + 1, 4) if action == 1 else max(self.cell - 1, 0)
        done = self.cell == 4
        return self._obs(), float(done), done, False, {}


gym.register("DrlabTestDictCorridor-v0", entry_point=DictCorridor, max_episode_steps=20)


def test_vector_envs_pack_each_copy_and_stack_frames_from_the_episode_start():
    envs = make_vec_env("DrlabTestDictCorridor-v0", 3, seed=0)
    space = envs.single_observation_space
    assert isinstance(space, PackedBox) and space.shape == (1 + 4 + 25,)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 30) and (obs[:, 0] == 0).all()
    envs.close()
    stacked = make_vec_env("DrlabTestDictCorridor-v0", 2, frame_stack=3)
    assert [(p.key, p.kind, p.nvec or p.shape) for p in stacked.single_observation_space.parts] == [
        ("cell", "onehot", (5, 5, 5)), ("noise", "vector", ()), ("picture", "image", (3, 5, 5))]
    obs, _ = stacked.reset(seed=0)
    assert obs[0, :3].tolist() == [0, 0, 0]  # an episode starts with copies of its first observation
    for expected in ([0, 0, 1], [0, 1, 2]):
        obs, *_ = stacked.step(np.array([1, 1]))
        assert obs[0, :3].tolist() == expected
    stacked.close()
    single = make_env("DrlabTestDictCorridor-v0", frame_stack=3)
    assert single.observation_space == stacked.single_observation_space
    single.close()


@pytest.mark.parametrize("algo", ["dqn", "ppo", "a2c", "reinforce", "actor-critic", "option-critic"])
@pytest.mark.slow
def test_every_algorithm_trains_evaluates_and_reloads_on_dict_observations(algo, tmp_path):
    run = drlab.train(algo, "DrlabTestDictCorridor-v0", seed=0, total_steps=400, num_envs=2, run_dir=tmp_path / "run",
                      progress=False, final_eval_episodes=3, eval_interval=0, frame_stack=2,
                      **({"learning_starts": 50, "batch_size": 16} if algo in ("dqn", "option-critic") else {}))
    assert run.summary["eval"]["episodes"] == 3
    agent = drlab.load(tmp_path / "run")
    obs, _ = make_vec_env("DrlabTestDictCorridor-v0", 2, frame_stack=2).reset(seed=1)
    assert agent.act(obs, greedy=True).shape == (2,)


def test_no_hidden_layers_make_linear_heads_a_table_on_one_hot_observations():
    from drlab.algos.option_agent import OptionCriticNet

    space = Packer(gym.spaces.Discrete(7), "Test-v0").space
    body, features = make_body(space, (), torch.nn.Tanh)
    assert features == 7 and not [m for m in body.modules() if isinstance(m, torch.nn.Linear)]
    net = OptionCriticNet(space, num_actions=3, num_options=2, hidden=())
    with torch.no_grad():
        q, beta, logits = net(torch.tensor([[4.0], [0.0]]))
    for row, cell in enumerate([4, 0]):  # each output is the heads' column for the cell, plus the bias
        torch.testing.assert_close(q[row], net.q_head.weight[:, cell] + net.q_head.bias)
        torch.testing.assert_close(beta[row], torch.sigmoid(net.beta_head.weight[:, cell] + net.beta_head.bias))
        torch.testing.assert_close(logits[row].flatten(), net.pi_head.weight[:, cell] + net.pi_head.bias)
    flat, width = make_body(gym.spaces.Box(-1, 1, (2, 3)), (), torch.nn.Tanh)
    assert width == 6 and flat(torch.ones(4, 2, 3)).shape == (4, 6)


@pytest.mark.parametrize("algo", ["dqn", "actor-critic", "option-critic"])
@pytest.mark.slow
def test_tabular_learners_on_four_rooms_through_the_cli(algo, tmp_path):
    run_dir = tmp_path / algo
    trained = run_drlab("train", algo, "drlab/FourRooms-v0", "--hidden", "--num-envs", "1", "--total-steps", "1500",
                        "--final-eval-episodes", "3", "--run-dir", run_dir, "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert json.loads((run_dir / "config.json").read_text())["hidden"] == []
    evaluated = run_drlab("eval", run_dir, "--episodes", "2")
    assert evaluated.returncode == 0 and "over 2 episodes" in evaluated.stdout, evaluated.stderr


def test_algorithms_that_need_a_hidden_layer_say_so_in_one_line(tmp_path):
    assert_one_line_error(run_drlab("train", "sac", "Pendulum-v1", "--hidden", "--run-dir", tmp_path / "s"),
                          "needs at least one hidden layer")
    assert not (tmp_path / "s").exists()


def test_observation_normalisation_refuses_frames_and_discrete_observations_in_one_line(tmp_path):
    assert_one_line_error(run_drlab("train", "ppo", "SpaceInvadersNoFrameskip-v4", "--normalize-obs",
                                    "--run-dir", tmp_path / "a"),
                          "normalize_obs normalises vector observations", "images")
    assert_one_line_error(run_drlab("train", "a2c", "FrozenLake-v1", "--normalize-obs", "--run-dir", tmp_path / "b"),
                          "FrozenLake-v1", "discrete observations (one-hot encoded)")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_a_discrete_observation_env_through_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_drlab("train", "dqn", "FrozenLake-v1", "--preset", "none", "--total-steps", "600",
                        "--final-eval-episodes", "5", "--run-dir", run_dir, "--no-progress")
    assert trained.returncode == 0, trained.stderr
    evaluated = run_drlab("eval", run_dir, "--episodes", "4")
    assert evaluated.returncode == 0 and "over 4 episodes" in evaluated.stdout, evaluated.stderr
    recorded = run_drlab("record", run_dir, "--out", tmp_path / "v.mp4", "--max-steps", "20")
    assert recorded.returncode == 0 and (tmp_path / "v.mp4").stat().st_size > 0, recorded.stderr
    reported = run_drlab("report", run_dir, "--out", tmp_path / "r.html")
    assert reported.returncode == 0 and (tmp_path / "r.html").stat().st_size > 0, reported.stderr


# ---- flat vectors: the same numbers as before the encoders ---------------------------------------

BEFORE = Path(__file__).parent / "fixtures" / "cartpole_presets_before_encoders.json"


@pytest.mark.parametrize("algo", ["dqn", "ppo", "a2c", "reinforce", "actor-critic", "option-critic"])
def test_cartpole_presets_log_what_they_logged_before_the_encoders(algo, tmp_path, monkeypatch):
    """Each CartPole preset, 3000 steps on seed 7, against the metrics the same run logged before the
    observation encoders existed (saved from that version of drlab). The final evaluation's envs are
    seeded as they were then (seed + i; now seed x 16 + i, see drlab.evaluate.eval_env_seed)."""
    monkeypatch.setattr(drlab.evaluate, "eval_env_seed", lambda seed: seed)
    before = json.loads(BEFORE.read_text())[algo]
    # The option-critic preset has charged a deliberation cost since the fixture was saved; with no cost
    # (the setting's default) it must still log what it logged then.
    since = {"deliberation_cost": 0.0} if algo == "option-critic" else {}
    run = drlab.train(algo, "CartPole-v1", seed=7, total_steps=3000, run_dir=tmp_path / "run", progress=False,
                      final_eval_episodes=3, eval_interval=0, log_interval=500, **since)
    now = [{k: v for k, v in row.items() if k != "time_s" and not k.startswith("perf/")}
           for row in read_metrics(tmp_path / "run")]
    assert [sorted(row) for row in now] == [sorted(row) for row in before["metrics"]]
    for row, old in zip(now, before["metrics"]):
        for key, value in old.items():
            assert row[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (row["step"], key)
    assert run.summary["eval"]["mean"] == pytest.approx(before["eval"]["mean"], rel=1e-6)
