"""The report's statistics against brute-force references."""

from __future__ import annotations

import numpy as np

from drlab.report.stats import mean_band


def test_mean_band_is_the_percentile_bootstrap_of_the_mean_per_column():
    rng = np.random.default_rng(3)
    values = rng.exponential(size=(20, 3)) * np.array([1.0, 10.0, 100.0])
    mean, low, high = mean_band(values)
    np.testing.assert_allclose(mean, values.mean(axis=0))
    # brute force: resample the seeds (rows) with replacement, the 2.5th and 97.5th percentiles of the means
    resampled = values[rng.integers(0, 20, size=(20_000, 20))].mean(axis=1)
    np.testing.assert_allclose(low, np.percentile(resampled, 2.5, axis=0), rtol=0.05)
    np.testing.assert_allclose(high, np.percentile(resampled, 97.5, axis=0), rtol=0.05)
    assert np.all(low < mean) and np.all(mean < high)


def test_mean_band_of_one_seed_or_equal_seeds_is_the_value():
    for values in (np.array([[4.0, 5.0]]), np.full((6, 2), 7.0)):
        mean, low, high = mean_band(values)
        np.testing.assert_array_equal(low, mean)
        np.testing.assert_array_equal(high, mean)
