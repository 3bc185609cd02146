import numpy as np
import pytest

from drlab.buffers.nstep import NStepWindow


def reference(stream, n, gamma):
    """Per env, per episode, the n-step transitions written out by hand from the definition."""
    obs, actions, rewards, next_obs, terminated, done, valid = stream
    steps, num_envs = actions.shape
    out = []
    for e in range(num_envs):
        episode = []  # (obs, action, reward, next_obs) of the real steps of the running episode
        for t in range(steps):
            if not valid[t, e]:
                continue
            episode.append((obs[t, e], actions[t, e], rewards[t, e], next_obs[t, e]))
            ended = done[t, e]
            length = len(episode)
            # Steps whose window completes now: j + n == length while running; when the episode
            # ends, every step not emitted yet (j + n >= length).
            starts = range(max(0, length - n), length) if ended else ([length - n] if length >= n else [])
            for j in starts:
                m = min(n, length - j)
                ret = sum(gamma**k * episode[j + k][2] for k in range(m))
                last = episode[j + m - 1][3]
                term = bool(ended and terminated[t, e] and j + m == length)
                out.append((tuple(episode[j][0]), int(episode[j][1]), round(ret, 9), tuple(last), term,
                            round(gamma**m, 12)))
            if ended:
                episode = []
    return sorted(out)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_n_step_window_matches_the_definition(n):
    rng = np.random.default_rng(n)
    steps, num_envs, gamma = 400, 3, 0.9
    obs = rng.normal(size=(steps, num_envs, 2))
    next_obs = rng.normal(size=(steps, num_envs, 2))
    actions = rng.integers(0, 4, size=(steps, num_envs))
    rewards = rng.normal(size=(steps, num_envs))
    terminated = rng.random((steps, num_envs)) < 0.06
    truncated = rng.random((steps, num_envs)) < 0.04
    done = terminated | truncated
    valid = np.ones((steps, num_envs), dtype=bool)
    valid[1:] = ~done[:-1]  # next-step autoreset: the step after an episode end is not a transition
    stream = (obs, actions, rewards, next_obs, terminated, done, valid)

    window = NStepWindow(num_envs, n, gamma, (2,), np.float64)
    got = []
    for t in range(steps):
        o, a, r, no, term, disc = window.push(obs[t], actions[t], rewards[t], next_obs[t], terminated[t], done[t], valid[t])
        got += [(tuple(o[i]), int(a[i]), round(r[i], 9), tuple(no[i]), bool(term[i]), round(disc[i], 12))
                for i in range(len(a))]
    assert sorted(got) == reference(stream, n, gamma)
    assert any(not g[4] and g[5] == round(gamma**n, 12) for g in got)


def test_one_step_window_is_the_plain_transition():
    window = NStepWindow(2, 1, 0.99, (1,), np.float32)
    o, a, r, no, term, disc = window.push(np.array([[1.0], [2.0]]), np.array([0, 1]), np.array([0.5, 1.5]),
                                          np.array([[3.0], [4.0]]), np.array([True, False]),
                                          np.array([True, False]), np.array([True, True]))
    order = np.argsort(o[:, 0])
    np.testing.assert_array_equal(o[order, 0], [1.0, 2.0])
    np.testing.assert_array_equal(r[order], [0.5, 1.5])
    np.testing.assert_array_equal(no[order, 0], [3.0, 4.0])
    np.testing.assert_array_equal(term[order], [True, False])
    np.testing.assert_allclose(disc, 0.99)
