import numpy as np
import pytest
import torch

from drlab.buffers.prioritized import PrioritizedReplayBuffer, SymlogSoftmaxReplayBuffer
from drlab.returns import symlog

CPU = torch.device("cpu")


def filled(buffer_cls, n, **kw):
    buf = buffer_cls(n, (1,), np.float32, CPU, **kw)
    obs = np.arange(n, dtype=np.float32)[:, None]
    buf.add(obs, np.zeros(n, np.int64), np.zeros(n, np.float32), obs, np.zeros(n, np.float32), np.full(n, 0.99))
    return buf


def test_per_new_transitions_get_the_max_priority():
    buf = filled(PrioritizedReplayBuffer, 8, alpha=0.5)
    np.testing.assert_allclose(buf.tree.get(np.arange(8)), 1.0)
    buf.update_priorities(np.array([2]), np.array([15.0]))
    assert buf.max_priority == pytest.approx(15.0**0.5, rel=1e-6)
    o = np.zeros((1, 1), np.float32)
    slot = buf.add(o, np.zeros(1, np.int64), np.zeros(1, np.float32), o, np.zeros(1, np.float32), np.ones(1))
    assert buf.tree.get(slot)[0] == pytest.approx(15.0**0.5, rel=1e-6)


def test_per_sampling_frequencies_are_proportional_to_priority_power_alpha():
    n, alpha = 10, 0.7
    buf = filled(PrioritizedReplayBuffer, n, alpha=alpha, eps=0.0)
    td = np.array([0.1, 0.5, 1, 2, 3, 4, 5, 8, 10, 20], dtype=np.float64)
    buf.update_priorities(np.arange(n), td)
    expected = td**alpha / (td**alpha).sum()
    rng = np.random.default_rng(0)
    counts = np.zeros(n)
    draws = 0
    for _ in range(2000):
        batch = buf.sample(32, rng, beta=0.5)
        counts += np.bincount(batch.indices, minlength=n)
        draws += 32
    freq = counts / draws
    # Chi-square goodness of fit, 9 degrees of freedom: 99.9% quantile is 27.9.
    chi2 = ((counts - draws * expected) ** 2 / (draws * expected)).sum()
    assert chi2 < 27.9, (freq, expected)
    np.testing.assert_allclose(freq, expected, atol=0.01)


def test_per_importance_weights_match_the_formula():
    n, alpha, beta = 6, 0.6, 0.4
    buf = filled(PrioritizedReplayBuffer, n, alpha=alpha, eps=1e-6)
    td = np.array([0.2, 1.0, 3.0, 0.05, 7.0, 2.0])
    buf.update_priorities(np.arange(n), td)
    batch = buf.sample(64, np.random.default_rng(1), beta=beta)
    p = (np.abs(td) + 1e-6) ** alpha
    probs = p / p.sum()
    w = (n * probs) ** (-beta)
    w_max = (n * probs.min()) ** (-beta)
    expected = w[batch.indices] / w_max
    np.testing.assert_allclose(batch.weights.numpy(), expected, rtol=1e-5)
    assert batch.weights.max() <= 1.0 + 1e-6
    # The transition with the lowest priority, when drawn, has weight exactly 1.
    assert 3 in batch.indices
    assert batch.weights.numpy()[batch.indices == 3][0] == pytest.approx(1.0, rel=1e-6)


def test_symlog_softmax_probabilities_are_softmax_of_symlog_priorities():
    n = 7
    buf = filled(SymlogSoftmaxReplayBuffer, n, sort_interval=10_000)
    td = np.array([0.0, 0.5, 1.0, 3.0, 10.0, 100.0, 2.0])
    buf.update_priorities(np.arange(n), td)
    logits = np.sign(td) * np.log(np.abs(td) + 1)
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(buf.probabilities(), expected, rtol=1e-12)
    # ... which for non-negative priorities is (1 + p) / sum(1 + p).
    np.testing.assert_allclose(buf.probabilities(), (1 + td) / (1 + td).sum(), rtol=1e-12)
    np.testing.assert_allclose(np.exp(symlog(td)) / np.exp(symlog(td)).sum(), expected)
    rng = np.random.default_rng(0)
    counts = np.bincount(np.concatenate([buf.sample(64, rng).indices for _ in range(3000)]), minlength=n)
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.01)


def test_symlog_softmax_sort_makes_new_transitions_evict_the_lowest_priorities():
    n = 6
    buf = filled(SymlogSoftmaxReplayBuffer, n, sort_interval=10_000)
    # obs i has priority td[i]; the two lowest are obs 4 (0.1) and obs 1 (0.2).
    td = np.array([5.0, 0.2, 3.0, 4.0, 0.1, 9.0])
    buf.update_priorities(np.arange(n), td)
    buf.sort()
    assert list(buf.observations.obs[:, 0]) == [4, 1, 2, 3, 0, 5]
    assert list(buf.priorities) == sorted(td)
    new = np.array([[100.0], [101.0]], np.float32)
    buf.add(new, np.zeros(2, np.int64), np.zeros(2, np.float32), new, np.zeros(2, np.float32), np.ones(2))
    remaining = set(buf.observations.obs[:, 0].tolist())
    assert remaining == {100.0, 101.0, 2.0, 3.0, 0.0, 5.0}  # obs 4 and 1 were evicted
    # Rows stay intact through the sort: next_obs moved with obs.
    np.testing.assert_array_equal(buf.observations.obs, buf.observations.next_obs)


def test_symlog_softmax_sorts_itself_every_sort_interval_additions():
    buf = SymlogSoftmaxReplayBuffer(4, (1,), np.float32, CPU, sort_interval=4)
    o = np.arange(4, dtype=np.float32)[:, None]
    buf.add(o[:3], np.zeros(3, np.int64), np.zeros(3, np.float32), o[:3], np.zeros(3, np.float32), np.ones(3))
    buf.update_priorities(np.arange(3), np.array([3.0, 1.0, 2.0]))
    assert buf.added_since_sort == 3
    buf.add(o[3:], np.zeros(1, np.int64), np.zeros(1, np.float32), o[3:], np.zeros(1, np.float32), np.ones(1))
    assert buf.added_since_sort == 0
    assert np.all(np.diff(buf.priorities) >= 0) and buf.pos == 0


def test_buffers_round_trip_through_state_dict():
    for cls in (PrioritizedReplayBuffer, SymlogSoftmaxReplayBuffer):
        buf = filled(cls, 5)
        buf.update_priorities(np.arange(5), np.array([1.0, 2, 3, 4, 5]))
        other = cls(5, (1,), np.float32, CPU)
        other.load_state_dict(buf.state_dict())
        a, b = buf.sample(16, np.random.default_rng(3)), other.sample(16, np.random.default_rng(3))
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.weights.numpy(), b.weights.numpy())
