import numpy as np
import pytest

from drlab.buffers.prioritized import SumTree


@pytest.mark.parametrize("capacity, fanout", [(1, 16), (2, 2), (5, 2), (8, 2), (37, 2), (1000, 2),
                                             (5, 16), (16, 16), (17, 16), (1000, 16), (4099, 4)])
def test_sum_tree_matches_brute_force_under_random_updates(capacity, fanout):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity, fanout)
    reference = np.zeros(capacity)
    for _ in range(200):
        k = rng.integers(1, 2 * capacity + 2)
        slots = rng.integers(0, capacity, size=k)
        values = rng.random(k) * rng.choice([0.01, 1.0, 100.0])
        tree.update(slots, values)
        # Repeated slots: the last value wins, as with sequential assignment.
        for s, v in zip(slots, values):
            reference[s] = v
        assert tree.total == pytest.approx(reference.sum(), rel=1e-9)
        np.testing.assert_allclose(tree.get(np.arange(capacity)), reference)
        # Every internal node is the sum of its children.
        for parent, children in zip(tree.levels[:-1], tree.levels[1:]):
            np.testing.assert_allclose(parent, children.reshape(-1, fanout).sum(axis=1), rtol=1e-9, atol=1e-12)
        # find() agrees with a cumulative-sum search, including the ends of the range.
        cumsum = np.cumsum(reference)
        queries = np.concatenate([rng.random(64) * reference.sum(), [0.0, reference.sum() * (1 - 1e-12)]])
        expected = np.searchsorted(cumsum, queries, side="right")
        expected = np.minimum(expected, capacity - 1)
        found = tree.find(queries)
        # Where a query lands exactly on a boundary next to zero-priority slots, any slot with
        # positive priority at that prefix is correct; check the returned slot covers the query.
        lo = cumsum[found] - reference[found]
        assert np.all(reference[found] > 0) or reference.sum() == 0
        assert np.all((lo <= queries + 1e-9) & (queries <= cumsum[found] + 1e-9))
        same = reference[expected] > 0
        assert np.array_equal(found[same], expected[same])


@pytest.mark.parametrize("fanout", [2, 16])
def test_find_never_returns_an_empty_leaf_at_the_top_of_the_range(fanout):
    tree = SumTree(5, fanout)  # leaves 5.. are empty padding
    tree.update(np.arange(5), np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    slots = tree.find(np.array([tree.total, tree.total * (1 + 1e-15), np.nextafter(tree.total, 0)]))
    assert np.all(slots == 4)
