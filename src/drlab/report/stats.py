"""Aggregate results across seeds: interquartile mean with a bootstrap confidence interval (Agarwal
et al. 2021, "Deep RL at the edge of the statistical precipice"), median, min-max, solve rate.

The interval is SciPy's percentile bootstrap of the IQM (25% trimmed mean) over the seeds. It is
given from ``MIN_SEEDS_FOR_CI`` seeds on: with n seeds a resample can only be one of C(2n-1, n)
multisets (10 for 3 seeds, 35 for 4), so the interval is little more than [min, max] and covers
less than it claims; below that the report shows min-max only, and says so.
"""

from __future__ import annotations

import warnings

import numpy as np

MIN_SEEDS_FOR_CI = 5
CONFIDENCE = 0.95
RESAMPLES = 2000


def iqm(values) -> float:
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float), 0.25))


def mean_band(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) over ``axis`` (the seeds), the band SciPy's percentile bootstrap of the mean at
    ``CONFIDENCE``; every other axis (episodes, steps) gets its own band in one vectorised call."""
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=float)
    mean = values.mean(axis=axis)
    if values.shape[axis] < 2:  # one seed: no band
        return mean, mean, mean
    with warnings.catch_warnings():  # columns with every seed equal: degenerate but valid bands
        warnings.simplefilter("ignore")
        ci = bootstrap((values,), np.mean, axis=axis, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                       method="percentile", rng=np.random.default_rng(0)).confidence_interval
    return mean, np.where(np.isfinite(ci.low), ci.low, mean), np.where(np.isfinite(ci.high), ci.high, mean)


def aggregate(values) -> dict:
    """{"n", "iqm", "ci" ((low, high) or None below MIN_SEEDS_FOR_CI seeds), "median", "min", "max"}."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if not len(values):
        return {"n": 0, "iqm": None, "ci": None, "median": None, "min": None, "max": None}
    result = {"n": len(values), "iqm": iqm(values), "ci": None, "median": float(np.median(values)),
              "min": float(values.min()), "max": float(values.max())}
    if len(values) >= MIN_SEEDS_FOR_CI:
        from scipy.stats import bootstrap, trim_mean

        with warnings.catch_warnings():  # all seeds equal (500.0 x 5): a degenerate but valid interval
            warnings.simplefilter("ignore")
            ci = bootstrap((values,), lambda x, axis: trim_mean(x, 0.25, axis=axis), confidence_level=CONFIDENCE,
                           n_resamples=RESAMPLES, method="percentile", rng=np.random.default_rng(0)).confidence_interval
        low, high = (float(ci.low), float(ci.high)) if np.isfinite([ci.low, ci.high]).all() else (result["iqm"],) * 2
        result["ci"] = (low, high)
    return result
