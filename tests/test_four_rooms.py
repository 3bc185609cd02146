"""Four Rooms (drlab/FourRooms-v0): the layout, the slips, the cap, the goal's move and the seeding,
each against a count or a brute-force reference."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import drlab.envs  # noqa: F401  (registers drlab/FourRooms-v0)
from drlab.envs import four_rooms
from drlab.envs.four_rooms import CELLS, DOORWAYS, EAST_DOORWAY, INDEX, LOWER_RIGHT_ROOM, MOVES, WALLS, FourRooms
from drlab.run.logger import read_metrics
from test_cli import drlab as run_drlab


def free_neighbours(cell, removed=()):
    return [(cell[0] + dr, cell[1] + dc) for dr, dc in MOVES
            if not WALLS[cell[0] + dr, cell[1] + dc] and (cell[0] + dr, cell[1] + dc) not in removed]


def components(cells):
    """Connected groups of ``cells`` (4-neighbourhood), by flood fill."""
    left, groups = set(cells), []
    while left:
        stack, group = [left.pop()], set()
        while stack:
            cell = stack.pop()
            group.add(cell)
            for n in free_neighbours(cell):
                if n in left:
                    left.remove(n)
                    stack.append(n)
        groups.append(group)
    return groups


def test_the_layout_has_104_cells_in_four_rooms_joined_by_one_cell_doorways():
    assert WALLS.shape == (13, 13) and WALLS[0].all() and WALLS[-1].all() and WALLS[:, 0].all() and WALLS[:, -1].all()
    assert len(CELLS) == 104 and len(components(CELLS)) == 1
    rooms = components([c for c in CELLS if c not in DOORWAYS])
    assert sorted(len(room) for room in rooms) == [20, 25, 25, 30]  # Sutton, Precup and Singh 1999, Figure 2
    for door in DOORWAYS:  # a doorway has exactly two open sides, opposite each other, into two rooms
        (a, b) = free_neighbours(door)
        assert a[0] + b[0] == 2 * door[0] and a[1] + b[1] == 2 * door[1]
        assert sum(a in room or b in room for room in rooms) == 2
    assert set(LOWER_RIGHT_ROOM) in rooms and len(LOWER_RIGHT_ROOM) == 20
    assert INDEX[EAST_DOORWAY] == 62 and FourRooms().goal == 62


def test_an_action_slips_to_each_other_direction_with_probability_one_ninth():
    env = FourRooms()
    env.reset(seed=0)
    centre, trials = (2, 3), 30_000
    moved = np.zeros(4)
    for _ in range(trials):
        env.cell = INDEX[centre]
        env.step(0)  # up
        moved[MOVES.tolist().index([CELLS[env.cell][0] - centre[0], CELLS[env.cell][1] - centre[1]])] += 1
    expected = np.array([2 / 3, 1 / 9, 1 / 9, 1 / 9])
    sd = np.sqrt(expected * (1 - expected) / trials)
    assert np.all(np.abs(moved / trials - expected) < 5 * sd), moved / trials


def test_reward_and_termination_on_the_goal_only():
    env = FourRooms(goal=(1, 2))
    env.reset(seed=0)
    rewards = []
    for _ in range(2000):
        env.cell = INDEX[(1, 1)]
        cell, reward, terminated, truncated, _ = env.step(3)  # right, into the goal unless it slips
        assert terminated == (cell == INDEX[(1, 2)]) == (reward == 1.0) and not truncated
        rewards.append(reward)
    assert 0.6 < np.mean(rewards) < 0.74  # 2/3 on target


def test_an_episode_is_truncated_at_1000_steps(monkeypatch):
    monkeypatch.setattr(four_rooms, "SLIP", 0.0)  # always up: the goal in the bottom row is never reached
    env = gym.make("drlab.envs:drlab/FourRooms-v0", goal=(11, 11))  # the id as a user outside drlab writes it
    env.reset(seed=0)
    for t in range(1, 1001):
        _, reward, terminated, truncated, _ = env.step(0)
        assert reward == 0.0 and not terminated and truncated == (t == 1000)


def test_the_start_is_uniform_over_the_cells_but_the_goal():
    env = FourRooms()
    starts = np.bincount([env.reset(seed=s)[0] for s in range(20_800)], minlength=104)
    assert starts[62] == 0
    others = np.delete(starts, 62)
    assert others.min() > 0.6 * 200 and others.max() < 1.4 * 200  # 200 expected per cell


def test_the_goal_moves_after_n_episodes_into_the_lower_right_room_reproducibly():
    goals = []
    for seed in (0, 0, 1, 2, 3):
        env = gym.make("drlab/FourRooms-v0", goal_change_episodes=3)
        seen = [env.reset(seed=seed)[1]["goal"]] + [env.reset()[1]["goal"] for _ in range(5)]
        assert seen[:3] == [62, 62, 62] and len(set(seen[3:])) == 1 and CELLS[seen[3]] in LOWER_RIGHT_ROOM
        goals.append(seen[3])
    assert goals[0] == goals[1] and len(set(goals)) > 1
    assert gym.spec("drlab/FourRoomsTransfer-v0").kwargs == {"goal_change_episodes": 1000}


def play(env, seed: int, episodes: int) -> int:
    """Random actions (seeded by ``seed``) until ``episodes`` episodes have ended; the goal then."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    ended = 0
    while ended < episodes:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
            ended += 1
    return env.unwrapped.goal


def test_the_moved_goal_depends_on_the_seed_only_and_the_pictures_know_it():
    from types import SimpleNamespace

    from drlab.plots.four_rooms import goal_of

    if "drlab/FourRoomsMoveAt3-v0" not in gym.registry:
        gym.register("drlab/FourRoomsMoveAt3-v0", entry_point=FourRooms, kwargs={"goal_change_episodes": 3})
    for seed in range(6):
        # two learners that act differently (other action seeds, other episode lengths) see the same move
        moved = {play(gym.make("drlab/FourRoomsMoveAt3-v0"), seed, 3)}
        env = gym.make("drlab/FourRoomsMoveAt3-v0")
        env.reset(seed=seed)
        for _ in range(3):
            env.step(0)
            env.reset()
        moved.add(env.unwrapped.goal)
        assert len(moved) == 1 and CELLS[moved.pop()] in LOWER_RIGHT_ROOM
        config = SimpleNamespace(env_id="drlab/FourRoomsMoveAt3-v0", seed=seed, num_envs=1)
        assert goal_of(config, 3) == play(gym.make("drlab/FourRoomsMoveAt3-v0"), seed, 3)
        assert goal_of(config, 2) == 62 and goal_of(SimpleNamespace(**{**vars(config), "num_envs": 2}), 3) is None


def test_the_same_seed_gives_the_same_episode():
    def episode(seed):
        env = FourRooms()
        cells = [env.reset(seed=seed)[0]]
        env.action_space.seed(seed)
        for _ in range(50):
            cells.append(env.step(env.action_space.sample())[0])
        return cells
    assert episode(4) == episode(4) and episode(4) != episode(5)


def test_bad_goals_are_refused():
    for goal in ((0, 0), (6, 1), 104, -1):
        with pytest.raises(ValueError):
            FourRooms(goal=goal)


def test_frames_show_the_grid():
    env = FourRooms(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (208, 208, 3) and frame.dtype == np.uint8 and frame.std() > 10


@pytest.mark.parametrize("algo", ["option-critic", "dqn", "actor-critic"])
@pytest.mark.slow
def test_trains_through_the_cli_with_no_extra(algo, tmp_path):
    result = run_drlab("train", algo, "drlab/FourRooms-v0", "--run-dir", tmp_path / "run", "--total-steps", "2000",
                       "--no-progress", "--final-eval-episodes", "2")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "summary.json").exists()


def test_total_episodes_stops_training_after_that_many_episodes(tmp_path):
    result = run_drlab("train", "dqn", "drlab/FourRoomsTransfer-v0", "--run-dir", tmp_path / "run", "--total-steps",
                       "1000000", "--total-episodes", "5", "--no-progress", "--final-eval-episodes", "1")
    assert result.returncode == 0, result.stderr
    lengths = [r["episode/length"] for r in read_metrics(tmp_path / "run") if "episode/length" in r]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # the run stops at the step that ends episode 5; each earlier end cost one autoreset step
    assert len(lengths) == 5 and summary["steps"] == sum(lengths) + 4


def test_the_doorway_ratio_by_hand():
    from drlab.plots.four_rooms import doorway_ratios, near_doorways

    near = near_doorways()
    assert near.sum() == 12  # four doorways and the two cells each joins
    beta = np.where(near, 0.9, 0.3)[None, :].repeat(2, axis=0)
    beta[1] = 0.5
    np.testing.assert_allclose(doorway_ratios(beta), [3.0, 1.0])


@pytest.mark.slow
def test_plot_options_draws_the_options_on_the_grid(tmp_path):
    run = tmp_path / "run"
    trained = run_drlab("train", "option-critic", "drlab/FourRooms-v0", "--run-dir", run, "--total-steps", "2000",
                        "--num-options", "3", "--no-progress", "--final-eval-episodes", "1")
    assert trained.returncode == 0, trained.stderr
    drawn = run_drlab("plot", "options", run, "--out", tmp_path / "pictures")
    assert drawn.returncode == 0, drawn.stderr
    assert "termination near the doorways / elsewhere" in drawn.stdout
    usage = json.loads((tmp_path / "pictures" / "options.json").read_text())
    assert len(usage["doorway_termination_ratio"]) == 3 and usage["goal"] == [7, 9] and len(usage["option_share"]) == 3
    assert (tmp_path / "pictures" / "four_rooms_options.png").stat().st_size > 10_000
    refused = run_drlab("plot", "options", run, "--dims", "0", "1")
    assert refused.returncode == 2 and "Four Rooms is drawn on its grid" in refused.stderr


def test_a_same_as_preset_file_takes_the_other_envs_presets_and_refuses_chains(tmp_path, monkeypatch):
    from drlab import config
    from drlab.errors import DrlabError

    (tmp_path / "dqn").mkdir()
    (tmp_path / "dqn" / "Base-v0.toml").write_text("[default]\nlr = 0.5\n[fast]\nlr = 0.9\n")
    (tmp_path / "dqn" / "Alias-v0.toml").write_text('same_as = "Base-v0"\n')
    (tmp_path / "dqn" / "Chain-v0.toml").write_text('same_as = "Alias-v0"\n')
    (tmp_path / "dqn" / "Self-v0.toml").write_text('same_as = "Self-v0"\n')
    (tmp_path / "dqn" / "Mixed-v0.toml").write_text('same_as = "Base-v0"\n[default]\nlr = 0.1\n')
    monkeypatch.setattr(config, "preset_file", lambda algo, env_id: tmp_path / algo / (env_id.replace("/", "_") + ".toml"))
    assert config.load_presets("dqn", "Alias-v0") == config.load_presets("dqn", "Base-v0") == {
        "default": {"lr": 0.5}, "fast": {"lr": 0.9}}
    for env_id in ("Chain-v0", "Self-v0", "Mixed-v0"):
        with pytest.raises(DrlabError, match="same_as"):
            config.load_presets("dqn", env_id)


def test_four_rooms_presets_are_tabular_and_the_transfer_env_shares_them():
    """The transfer experiment's learners are tabular (no hidden layer, one env, 2,000 episodes), and
    drlab/FourRoomsTransfer-v0 runs with drlab/FourRooms-v0's presets."""
    from drlab.algos import get_algo
    from drlab.config import build_config, load_presets

    for algo in ("option-critic", "actor-critic", "dqn"):
        presets = load_presets(algo, "drlab/FourRooms-v0")
        assert load_presets(algo, "drlab/FourRoomsTransfer-v0") == presets
        cfg = build_config(get_algo(algo).Config, "drlab/FourRooms-v0", presets["default"])
        cfg.validate()
        assert tuple(cfg.hidden) == () and cfg.num_envs == 1 and cfg.total_episodes == 2000
    assert load_presets("option-critic", "drlab/FourRooms-v0")["default"]["num_options"] == 4
