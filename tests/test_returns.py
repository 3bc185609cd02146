import numpy as np
import pytest
import torch

from drlab.returns import complete_mask, discounted_returns, explained_variance, gae

GAMMA = 0.9


# ---------------------------------------------------------------- brute-force reference

def episodes(terminated, truncated, valid):
    """Per column, the valid steps split into episode segments by walking the column step by step.

    Each segment is (column, [step indices], how it ends): "terminated", "truncated", or "running"
    when the rollout ends first.
    """
    steps, num_envs = valid.shape
    segments = []
    for n in range(num_envs):
        current = []
        for t in range(steps):
            if not valid[t, n]:
                continue
            current.append(t)
            if terminated[t, n] or truncated[t, n]:
                segments.append((n, current, "terminated" if terminated[t, n] else "truncated"))
                current = []
        if current:
            segments.append((n, current, "running"))
    return segments


def value_after(t, n, values, last_value):
    """V of the observation after step t: values[t + 1] (an autoreset row holds the final obs) or
    last_value after the last row."""
    return float(values[t + 1, n]) if t + 1 < len(values) else float(last_value[n])


def reference_returns(rewards, terminated, truncated, valid, gamma, values=None, last_value=None):
    out = np.zeros(rewards.shape)
    for n, seg, end in episodes(terminated, truncated, valid):
        last = seg[-1]
        if end == "terminated" or values is None:
            future = 0.0
        else:
            future = value_after(last, n, values, last_value)
        # Textbook: G_t = sum_k gamma^k r_{t+k} over the rest of the episode, plus the discounted tail.
        for i, t in enumerate(seg):
            rest = seg[i:]
            out[t, n] = sum(gamma**k * float(rewards[s, n]) for k, s in enumerate(rest)) \
                + gamma ** len(rest) * future
    return out


def reference_gae(rewards, values, last_value, terminated, truncated, valid, gamma, lam):
    adv = np.zeros(rewards.shape)
    for n, seg, end in episodes(terminated, truncated, valid):
        deltas = []
        for t in seg:
            v_next = 0.0 if terminated[t, n] else value_after(t, n, values, last_value)
            deltas.append(float(rewards[t, n]) + gamma * v_next - float(values[t, n]))
        for i, t in enumerate(seg):
            adv[t, n] = sum((gamma * lam) ** k * d for k, d in enumerate(deltas[i:]))
    returns = np.where(valid, adv + values, 0.0)
    return adv, returns


def reference_complete(terminated, truncated, valid):
    mask = np.zeros(valid.shape, dtype=bool)
    for n, seg, end in episodes(terminated, truncated, valid):
        if end != "running":
            for t in seg:
                mask[t, n] = True
    return mask


def rollout(seed, steps=17, num_envs=5, first_invalid=None):
    """Random rollout obeying next-step autoreset; invalid steps carry garbage rewards."""
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(steps, num_envs)).astype(np.float32)
    values = rng.normal(size=(steps, num_envs)).astype(np.float32)
    last_value = rng.normal(size=num_envs).astype(np.float32)
    terminated = rng.random((steps, num_envs)) < 0.15
    truncated = rng.random((steps, num_envs)) < 0.15
    valid = np.ones((steps, num_envs), dtype=bool)
    valid[0] = rng.random(num_envs) < 0.6 if first_invalid is None else ~first_invalid
    for t in range(steps):
        if t > 0:
            valid[t] = ~(terminated[t - 1] | truncated[t - 1])
        # The env reports no episode end on its autoreset step.
        terminated[t] &= valid[t]
        truncated[t] &= valid[t]
    rewards[~valid] = 1e9
    return rewards, values, last_value, terminated, truncated, valid


SEEDS = range(6)


def test_random_rollouts_cover_the_interesting_cases():
    """Guard for the generator: the seeds together hold every case the random tests rely on."""
    data = [rollout(seed) for seed in SEEDS]
    assert any((~v[0]).any() for *_, v in data)  # first row invalid
    assert all((~v[1:]).any() for *_, v in data)  # autoreset steps inside the rollout
    assert all(te.any() and tr.any() for *_, te, tr, v in data)
    assert any(tr[-1].any() for *_, te, tr, v in data)  # truncation on the last row
    assert any(te[-1].any() for *_, te, tr, v in data)
    assert any((v[-1] & ~te[-1] & ~tr[-1]).any() for *_, te, tr, v in data)  # still running at the end


# ---------------------------------------------------------------- discounted_returns

@pytest.mark.parametrize("seed", SEEDS)
def test_monte_carlo_returns_match_reference(seed):
    rewards, values, last_value, terminated, truncated, valid = rollout(seed)
    got = discounted_returns(rewards, terminated, truncated, valid, GAMMA)
    assert got.dtype == np.float32 and got.shape == rewards.shape
    want = reference_returns(rewards, terminated, truncated, valid, GAMMA)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_bootstrapped_returns_match_reference(seed):
    rewards, values, last_value, terminated, truncated, valid = rollout(seed)
    got = discounted_returns(rewards, terminated, truncated, valid, GAMMA, values, last_value)
    assert got.dtype == np.float32
    want = reference_returns(rewards, terminated, truncated, valid, GAMMA, values, last_value)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def one_column(rewards, terminated=(), truncated=(), valid_false=()):
    """A single-env rollout (T, 1) with episode ends and autoreset steps at the given rows."""
    rewards = np.asarray(rewards, dtype=np.float32)[:, None]
    shape = rewards.shape
    te, tr, va = np.zeros(shape, bool), np.zeros(shape, bool), np.ones(shape, bool)
    te[list(terminated), 0] = True
    tr[list(truncated), 0] = True
    va[list(valid_false), 0] = False
    return rewards, te, tr, va


def test_truncation_mid_rollout_bootstraps_from_the_next_rows_value():
    # Episode [0, 1] truncated at 1; row 2 is the autoreset step whose value is V(final obs).
    rewards, te, tr, va = one_column([1.0, 2.0, 1e9, 3.0], truncated=[1], valid_false=[2])
    values = np.array([[0.5], [0.25], [10.0], [0.75]], dtype=np.float32)
    last_value = np.array([4.0], dtype=np.float32)
    got = discounted_returns(rewards, te, tr, va, GAMMA, values, last_value)[:, 0]
    g1 = 2.0 + GAMMA * 10.0
    np.testing.assert_allclose(got, [1.0 + GAMMA * g1, g1, 0.0, 3.0 + GAMMA * 4.0], rtol=1e-6)
    # Monte-Carlo: the truncated episode just stops.
    got = discounted_returns(rewards, te, tr, va, GAMMA)[:, 0]
    np.testing.assert_allclose(got, [1.0 + GAMMA * 2.0, 2.0, 0.0, 3.0], rtol=1e-6)

    adv, ret = gae(rewards, values, last_value, te, tr, va, GAMMA, lam=0.5)
    d = [1.0 + GAMMA * 0.25 - 0.5, 2.0 + GAMMA * 10.0 - 0.25, 0.0, 3.0 + GAMMA * 4.0 - 0.75]
    want_adv = [d[0] + GAMMA * 0.5 * d[1], d[1], 0.0, d[3]]
    np.testing.assert_allclose(adv[:, 0], want_adv, rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], np.array(want_adv) + [0.5, 0.25, 0.0, 0.75], rtol=1e-6)


def test_truncation_on_the_last_row_bootstraps_from_last_value():
    rewards, te, tr, va = one_column([1.0, 2.0], truncated=[1])
    values = np.array([[0.5], [0.25]], dtype=np.float32)
    last_value = np.array([4.0], dtype=np.float32)
    got = discounted_returns(rewards, te, tr, va, GAMMA, values, last_value)[:, 0]
    np.testing.assert_allclose(got, [1.0 + GAMMA * (2.0 + GAMMA * 4.0), 2.0 + GAMMA * 4.0], rtol=1e-6)
    adv, _ = gae(rewards, values, last_value, te, tr, va, GAMMA, lam=1.0)
    np.testing.assert_allclose(adv[1, 0], 2.0 + GAMMA * 4.0 - 0.25, rtol=1e-6)


def test_termination_does_not_bootstrap():
    # Terminations mid-rollout and on the last row; the values after them are huge and must not count.
    rewards, te, tr, va = one_column([1.0, 2.0, 1e9, 3.0], terminated=[1, 3], valid_false=[2])
    values = np.array([[0.5], [0.25], [1e6], [0.75]], dtype=np.float32)
    last_value = np.array([1e6], dtype=np.float32)
    got = discounted_returns(rewards, te, tr, va, GAMMA, values, last_value)[:, 0]
    np.testing.assert_allclose(got, [1.0 + GAMMA * 2.0, 2.0, 0.0, 3.0], rtol=1e-6)
    adv, ret = gae(rewards, values, last_value, te, tr, va, GAMMA, lam=0.8)
    np.testing.assert_allclose(adv[:, 0], [1.0 + GAMMA * 0.25 - 0.5 + GAMMA * 0.8 * (2.0 - 0.25),
                                           2.0 - 0.25, 0.0, 3.0 - 0.75], rtol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_invalid_steps_rewards_and_flags_do_not_leak(seed):
    rewards, values, last_value, terminated, truncated, valid = rollout(seed)
    clean = np.where(valid, rewards, 0.0).astype(np.float32)
    rng = np.random.default_rng(100 + seed)
    dirty = rewards.copy()
    dirty[~valid] = rng.choice([1e9, -1e9, np.inf, -np.inf, np.nan], size=(~valid).sum())
    # Garbage episode-end flags on invalid steps must not matter either.
    dirty_te = terminated | (~valid & (rng.random(valid.shape) < 0.5))
    dirty_tr = truncated | (~valid & (rng.random(valid.shape) < 0.5))

    outputs = [
        lambda r, te, tr: discounted_returns(r, te, tr, valid, GAMMA),
        lambda r, te, tr: discounted_returns(r, te, tr, valid, GAMMA, values, last_value),
        lambda r, te, tr: gae(r, values, last_value, te, tr, valid, GAMMA, 0.95)[0],
        lambda r, te, tr: gae(r, values, last_value, te, tr, valid, GAMMA, 0.95)[1],
        lambda r, te, tr: complete_mask(te, tr, valid),
    ]
    for f in outputs:
        got = f(dirty, dirty_te, dirty_tr)
        assert np.isfinite(got).all()
        assert not got[~valid].any()  # 0 / False at invalid steps
        np.testing.assert_array_equal(got, f(clean, terminated, truncated))
    assert np.abs(discounted_returns(dirty, dirty_te, dirty_tr, valid, GAMMA)).max() < 100


def test_values_without_last_value_is_an_error():
    rewards, values, last_value, terminated, truncated, valid = rollout(0)
    with pytest.raises(ValueError):
        discounted_returns(rewards, terminated, truncated, valid, GAMMA, values=values)


# ---------------------------------------------------------------- gae

@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_gae_matches_reference(seed, lam):
    rewards, values, last_value, terminated, truncated, valid = rollout(seed)
    adv, ret = gae(rewards, values, last_value, terminated, truncated, valid, GAMMA, lam)
    assert adv.dtype == np.float32 and ret.dtype == np.float32 and adv.shape == rewards.shape
    want_adv, want_ret = reference_gae(rewards, values, last_value, terminated, truncated, valid,
                                       GAMMA, lam)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, want_ret, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_gae_with_lambda_one_returns_the_bootstrapped_discounted_returns(seed):
    rewards, values, last_value, terminated, truncated, valid = rollout(seed)
    _, ret = gae(rewards, values, last_value, terminated, truncated, valid, GAMMA, 1.0)
    want = discounted_returns(rewards, terminated, truncated, valid, GAMMA, values, last_value)
    np.testing.assert_allclose(ret, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_gae_with_lambda_zero_is_the_one_step_td_error(seed):
    rewards, values, last_value, terminated, truncated, valid = rollout(seed)
    adv, _ = gae(rewards, values, last_value, terminated, truncated, valid, GAMMA, 0.0)
    next_values = np.concatenate([values[1:], last_value[None]])
    td = rewards + GAMMA * np.where(terminated, 0.0, next_values) - values
    np.testing.assert_allclose(adv, np.where(valid, td, 0.0), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- complete_mask

def test_complete_mask_hand_made():
    # Columns: 0 terminates at 1 then runs to the end; 1 starts invalid, is truncated at 3;
    # 2 never ends; 3 ends on the last row.
    T, F = True, False
    terminated = np.array([[F, F, F, F], [T, F, F, F], [F, F, F, F], [F, F, F, F], [F, F, F, T]])
    truncated = np.array([[F, F, F, F], [F, F, F, F], [F, F, F, F], [F, T, F, F], [F, F, F, F]])
    valid = np.array([[T, F, T, T], [T, T, T, T], [F, T, T, T], [T, T, T, T], [T, F, T, T]])
    want = np.array([[T, F, F, T], [T, T, F, T], [F, T, F, T], [F, T, F, T], [F, F, F, T]])
    got = complete_mask(terminated, truncated, valid)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", SEEDS)
def test_complete_mask_matches_reference(seed):
    _, _, _, terminated, truncated, valid = rollout(seed)
    np.testing.assert_array_equal(complete_mask(terminated, truncated, valid),
                                  reference_complete(terminated, truncated, valid))


# ---------------------------------------------------------------- explained_variance

def test_explained_variance():
    rng = np.random.default_rng(0)
    targets = rng.normal(size=100)
    assert explained_variance(targets, targets) == pytest.approx(1.0)
    assert explained_variance(np.full(100, targets.mean()), targets) == pytest.approx(0.0, abs=1e-12)
    noisy = targets + 0.5 * rng.normal(size=100)
    want = 1 - np.var(targets - noisy) / np.var(targets)
    assert explained_variance(noisy, targets) == pytest.approx(want)
    assert 0.0 < want < 1.0
    assert explained_variance(torch.tensor(noisy), torch.tensor(targets)) == pytest.approx(want)
    assert isinstance(explained_variance(torch.tensor(noisy), torch.tensor(targets)), float)
    assert np.isnan(explained_variance(targets[:5], np.full(5, 3.0)))


def test_reward_scaler_divides_by_the_std_of_the_discounted_return():
    """Brute force: the discounted return of each env over its real steps, reset at episode ends."""
    from drlab.returns import RewardScaler

    rng = np.random.default_rng(0)
    T, N, gamma = 40, 3, 0.9
    rewards = rng.normal(5.0, 3.0, (T, N))
    terminated = rng.random((T, N)) < 0.1
    truncated = np.zeros((T, N), bool)
    valid = np.ones((T, N), bool)
    valid[1:] = ~terminated[:-1]  # autoreset steps after each end
    seen = []
    for n in range(N):
        g = 0.0
        for t in range(T):
            if valid[t, n]:
                g = gamma * g + rewards[t, n]
                seen.append(g)
            if terminated[t, n]:
                g = 0.0
    scaler = RewardScaler(N, gamma)
    scaled = scaler(rewards, terminated, truncated, valid)
    assert np.isclose(scaler.var, np.var(seen), rtol=1e-3)
    assert np.allclose(scaled[valid], rewards[valid] / np.sqrt(np.var(seen)), rtol=1e-3)
    assert (scaled[~valid] == 0).all()
