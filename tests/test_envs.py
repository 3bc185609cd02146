import gymnasium as gym
import numpy as np
import pytest

from drlab.algos.protocol import Memoryless
from drlab.envs import make_vec_env
from drlab.envs.autoreset import EpisodeStats
from drlab.errors import DrlabError
from drlab.evaluate import evaluate


def test_cartpole_uses_the_native_vector_env_with_next_step_autoreset():
    envs = make_vec_env("CartPole-v1", 3, seed=0)
    assert type(envs).__name__ == "CartPoleVectorEnv"
    envs.close()
    envs = make_vec_env("DrlabTestCounter-v0", 2, seed=0)
    assert type(envs).__name__ == "SyncVectorEnv"
    envs.close()


def test_same_seed_gives_the_same_observations():
    a, b = make_vec_env("LunarLander-v3", 2), make_vec_env("LunarLander-v3", 2)
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    np.testing.assert_array_equal(oa, ob)
    for _ in range(20):
        oa = a.step(np.array([1, 2]))[0]
        ob = b.step(np.array([1, 2]))[0]
    np.testing.assert_array_equal(oa, ob)


def test_unknown_env_is_a_one_line_error_with_suggestions():
    with pytest.raises(DrlabError, match="unknown environment 'CartPole-v9'.*CartPole-v1"):
        make_vec_env("CartPole-v9", 1)


def test_episode_stats_against_a_per_env_brute_force():
    """Random reward/done streams under next-step autoreset; the reference walks each env alone."""
    rng = np.random.default_rng(0)
    n, steps = 4, 500
    rewards = rng.normal(size=(steps, n))
    dones = rng.random((steps, n)) < 0.1
    stats = EpisodeStats(n)
    got = []
    prev_done = np.zeros(n, dtype=bool)
    for t in range(steps):
        valid = ~prev_done
        returns, lengths = stats.update(rewards[t], dones[t], valid)
        ended = np.flatnonzero(dones[t] & valid)
        got += [(e, round(r, 9), l) for e, r, l in zip(ended, returns, lengths)]
        prev_done = dones[t] & valid  # a done reported on the reset step itself is not an episode end
    expected = []
    for e in range(n):
        total, length, skip = 0.0, 0, False
        for t in range(steps):
            if skip:  # the autoreset step: reward ignored
                skip = False
                continue
            total += rewards[t, e]
            length += 1
            if dones[t, e]:
                expected.append((e, round(total, 9), length))
                total, length, skip = 0.0, 0, True
    assert sorted(got) == sorted(expected)


SEEDS_SEEN: list = []


class SeedRecorder(gym.Env):
    """Records the seeds it is reset with; episodes last one step."""

    observation_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        SEEDS_SEEN.append(seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, True, False, {}


class FirstAction(Memoryless):
    def act(self, obs, greedy=True, starts=None):
        return np.zeros(len(obs), dtype=np.int64)


def test_evaluations_with_consecutive_seeds_share_no_env_s_episodes():
    """Env i of an evaluation with seed s is reset with 16 s + i, so the runs of seeds 0, 1, 2, ...
    (evaluated with their seed + an offset) are scored on different episodes; with s + i they
    would share 15 of 16 envs."""
    if "DrlabTestSeedRecorder-v0" not in gym.registry:
        gym.register("DrlabTestSeedRecorder-v0", entry_point=SeedRecorder)
    seen = {}
    for seed in (1_000_000, 1_000_001):
        SEEDS_SEEN.clear()
        assert evaluate(FirstAction(), "DrlabTestSeedRecorder-v0", 40, seed)["episodes"] == 40
        seen[seed] = {s for s in SEEDS_SEEN if s is not None}
    assert seen[1_000_000] == set(range(16_000_000, 16_000_016))
    assert seen[1_000_001] == set(range(16_000_016, 16_000_032))
