"""Action spaces -> the policy's distribution: the action side of the seam between environments
and algorithms. The only place that knows what an action space is.

A policy network ends in one linear layer of ``head.num_inputs`` outputs; the head turns those
outputs into a distribution and owns everything that depends on the action space:

====================  ==========================================  ==================  ===============
action space          distribution                                stored sample       greedy (mode)
====================  ==========================================  ==================  ===============
Discrete(n, start)    categorical over n logits                   int64 index         argmax
MultiDiscrete(nvec)   one categorical per entry (log-probs add)   int64 indices       argmax of each
MultiBinary(n)        one Bernoulli per bit (log-probs add)       int8 bits           p > 0.5
Box(low, high)        diagonal Gaussian, state-independent        float32, the        the mean
                      log-std (a parameter of the head)           unclipped sample
Box, squash=True      the Gaussian through tanh, rescaled to      float32, the        tanh of the
                      the bounds (log-prob with the tanh          pre-tanh sample     mean, rescaled
                      log-det correction)
Box, gSDE             diagonal Gaussian whose std depends on the  float32, the        the mean
                      state: the noise is the policy's last       unclipped sample
                      features times a random matrix held for
                      sde_sample_freq steps (Raffin et al. 2022)
====================  ==========================================  ==================  ===============

What the loops and losses call, never branching on the space:

- ``sample(outputs, rng)`` / ``mode(outputs)``: NumPy, batched over envs, the sample as stored;
  every random draw covers the whole batch (``rng.random`` or ``rng.standard_normal`` of shape
  (N, ...)), which is what lets a Ray runner reproduce its rows of the batch exactly;
- ``to_env(samples)``: what is sent to the env: indices shifted by the space's ``start``, Gaussian
  samples clipped to the bounds (the unclipped sample is what is stored and scored, as in
  Stable-Baselines3 and CleanRL), squashed ones rescaled;
- ``log_prob(outputs, samples)`` and ``log_prob_entropy(outputs, samples)``: PyTorch, per row;
- ``diagnostics(samples, valid)``: what a continuous policy needs watched (the policy's std, the
  fraction of sampled action components outside the bounds), over the rows where ``valid`` holds.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from drlab.errors import DrlabError


def gumbel_argmax(logits: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """One draw per row from softmax(logits) over the last axis, by Gumbel-max: argmax(logits +
    Gumbel noise made from ``uniform``), two NumPy ops instead of a softmax and a cumulative search."""
    return (logits - np.log(-np.log(uniform))).argmax(axis=-1)


def sample_categorical(logits: np.ndarray, rng) -> np.ndarray:
    """One draw per row from softmax(logits), with the noise of ``rng.random`` of the logits' shape."""
    return gumbel_argmax(logits, rng.random(logits.shape))


def categorical_terms(logits: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log pi(index), entropy) per row of one categorical."""
    log_pi = F.log_softmax(logits, dim=-1)
    entropy = -(log_pi.exp() * log_pi).sum(-1)
    return log_pi.gather(-1, index.unsqueeze(-1)).squeeze(-1), entropy


class ActionHead(nn.Module):
    """The interface; subclasses set ``num_inputs``, ``sample_shape`` and ``sample_dtype``."""

    num_inputs: int
    uses_features = False  # outputs end with the policy's last hidden features (gSDE; see set_feature_size)
    sample_shape: tuple[int, ...] = ()
    sample_dtype = np.int64
    continuous = False  # samples vary continuously with the outputs (not through an argmax or a threshold)

    def sample(self, outputs: np.ndarray, rng) -> np.ndarray:
        raise NotImplementedError

    def mode(self, outputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_env(self, samples: np.ndarray) -> np.ndarray:
        return samples

    def log_prob_entropy(self, outputs: torch.Tensor, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def log_prob(self, outputs: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        return self.log_prob_entropy(outputs, samples)[0]

    def diagnostics(self, samples: np.ndarray, valid: np.ndarray) -> dict:
        """Metrics of the policy and of the stored samples where ``valid`` (a mask of their leading
        axes) holds; a head with nothing to report does not index the samples."""
        return {}


class CategoricalHead(ActionHead):
    """Discrete(n, start): softmax over n logits; env action = index + start."""

    def __init__(self, n: int, start: int = 0):
        super().__init__()
        self.num_inputs, self.start = n, start

    def sample(self, outputs, rng):
        return sample_categorical(outputs, rng)

    def mode(self, outputs):
        return outputs.argmax(axis=-1)

    def to_env(self, samples):
        return samples + self.start if self.start else samples

    def log_prob_entropy(self, outputs, samples):
        return categorical_terms(outputs, samples)

    def log_prob(self, outputs, samples):  # without the entropy's softmax and sum
        return F.log_softmax(outputs, dim=-1).gather(-1, samples.unsqueeze(-1)).squeeze(-1)


class MultiCategoricalHead(ActionHead):
    """MultiDiscrete(nvec, start): one categorical per entry of nvec (flattened), independent, so
    log-probs and entropies add."""

    def __init__(self, nvec: np.ndarray, start: np.ndarray):
        super().__init__()
        self.shape, self.sizes = nvec.shape, [int(n) for n in nvec.reshape(-1)]
        self.start = start.reshape(-1).astype(np.int64)
        self.num_inputs, self.sample_shape = sum(self.sizes), (len(self.sizes),)
        self.bounds = np.cumsum([0, *self.sizes])

    def _groups(self, outputs: np.ndarray):
        return [outputs[..., a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:])]

    def sample(self, outputs, rng):
        uniform = rng.random(outputs.shape)  # one draw for the whole batch, split like the logits
        return np.stack([gumbel_argmax(logits, uniform[..., a:b]) for logits, a, b
                         in zip(self._groups(outputs), self.bounds[:-1], self.bounds[1:])], axis=-1)

    def mode(self, outputs):
        return np.stack([logits.argmax(axis=-1) for logits in self._groups(outputs)], axis=-1)

    def to_env(self, samples):
        return (samples + self.start).reshape(len(samples), *self.shape)

    def log_prob_entropy(self, outputs, samples):
        terms = [categorical_terms(logits, samples[..., i])
                 for i, logits in enumerate(torch.split(outputs, self.sizes, dim=-1))]
        return sum(t[0] for t in terms), sum(t[1] for t in terms)


class BernoulliHead(ActionHead):
    """MultiBinary(n): one Bernoulli per bit, p = sigmoid(logit)."""

    sample_dtype = np.int8

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = shape
        self.num_inputs = int(np.prod(shape))
        self.sample_shape = (self.num_inputs,)

    def sample(self, outputs, rng):
        # u < sigmoid(x)  <=>  log(u / (1 - u)) < x: no overflow in exp for large logits
        uniform = rng.random(outputs.shape)
        return (np.log(uniform) - np.log1p(-uniform) < outputs).astype(np.int8)

    def mode(self, outputs):
        return (outputs > 0).astype(np.int8)

    def to_env(self, samples):
        return samples.reshape(len(samples), *self.shape)

    def log_prob_entropy(self, outputs, samples):
        log_prob = -F.binary_cross_entropy_with_logits(outputs, samples.to(outputs.dtype), reduction="none").sum(-1)
        p = torch.sigmoid(outputs)
        entropy = (F.binary_cross_entropy_with_logits(outputs, p, reduction="none")).sum(-1)
        return log_prob, entropy


LOG_2PI = math.log(2 * math.pi)


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log |d tanh(u) / du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), summed over the
    last axis; the second form stays finite where tanh(u) rounds to +-1."""
    return (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)


class GaussianHead(ActionHead):
    """Box(low, high): a diagonal Gaussian over the flattened action, mean from the network and a
    state-independent log-std (a parameter, learned with the policy).

    squash=False: the sample is sent clipped to the bounds and stored unclipped (its log-prob is
    the Gaussian's). squash=True: the sample u goes through tanh and is rescaled to the bounds
    (which must be finite); the stored sample is u, and the log-prob is that of tanh(u), the
    Gaussian's minus the tanh log-det (the constant log-det of the rescaling left out: it
    cancels in every ratio and gradient). Its entropy has no closed form: the one-sample
    estimate -log pi(a) is used, as Stable-Baselines3 does.

    sde_sample_freq (an int: generalized state-dependent exploration, Raffin et al. 2022): the
    outputs are the mean followed by the policy's last hidden features z (F of them, detached, as
    Stable-Baselines3 does by default), and the log-std is an F x A matrix. A sample is
    mean + z @ E with E, one F x A matrix per env drawn from N(0, exp(log_std)^2), held for
    sde_sample_freq calls of ``sample`` (one per env step): the noise is smooth in time and
    depends on the state. Its distribution, for log-probs and entropy, is the Gaussian with
    variance (z^2) @ exp(log_std)^2 per action dimension.
    """

    sample_dtype = np.float32
    continuous = True

    def __init__(self, space: gym.spaces.Box, squash: bool = False, log_std_init: float = 0.0,
                 sde_sample_freq: int | None = None):
        super().__init__()
        self.shape, self.dtype, self.squash = space.shape, space.dtype, squash
        self.low = space.low.reshape(-1).astype(np.float64)
        self.high = space.high.reshape(-1).astype(np.float64)
        self.num_inputs = int(np.prod(space.shape))
        self.sample_shape = (self.num_inputs,)
        self.log_std_init, self.sde_sample_freq = float(log_std_init), sde_sample_freq
        self.uses_features = sde_sample_freq is not None
        if not self.uses_features:
            self.log_std = nn.Parameter(torch.full((self.num_inputs,), self.log_std_init))
        self.noise, self.samples_drawn = None, 0  # gSDE: the envs' current matrices E, and calls of sample
        if squash and not (np.isfinite(self.low).all() and np.isfinite(self.high).all()):
            raise DrlabError(f"squash_actions needs finite action bounds, but the action space is {space}")

    def set_feature_size(self, features: int) -> None:
        """gSDE: the size F of the features the network appends to the mean (called by the network)."""
        self.log_std = nn.Parameter(torch.full((features, self.num_inputs), self.log_std_init))

    def std(self) -> np.ndarray:
        return self.log_std.detach().exp().cpu().numpy()

    def sample(self, outputs, rng):
        if not self.uses_features:
            return (outputs + self.std() * rng.standard_normal(outputs.shape)).astype(np.float32)
        mean, features = outputs[:, :self.num_inputs], outputs[:, self.num_inputs:]
        if self.samples_drawn % self.sde_sample_freq == 0 or self.noise is None or len(self.noise) != len(outputs):
            std = self.std()
            self.noise = std * rng.standard_normal((len(outputs), *std.shape))
        self.samples_drawn += 1
        return (mean + np.einsum("nf,nfa->na", features, self.noise)).astype(np.float32)

    def mode(self, outputs):
        return outputs[:, :self.num_inputs].astype(np.float32)

    def to_env(self, samples):
        if self.squash:
            actions = self.low + (np.tanh(samples) + 1.0) * 0.5 * (self.high - self.low)
        else:
            actions = np.clip(samples, self.low, self.high)
        return actions.astype(self.dtype).reshape(len(samples), *self.shape)

    def log_prob_entropy(self, outputs, samples):
        if self.uses_features:  # the state's std: sqrt((z^2) @ exp(log_std)^2)
            mean, features = outputs[:, :self.num_inputs], outputs[:, self.num_inputs:]
            log_std = 0.5 * torch.log((features ** 2) @ torch.exp(2 * self.log_std) + 1e-6)  # + 1e-6 as SB3
        else:
            mean, log_std = outputs, self.log_std.expand_as(outputs)
        log_prob = (-0.5 * ((samples - mean) / log_std.exp()) ** 2 - log_std - 0.5 * LOG_2PI).sum(-1)
        if self.squash:
            log_prob = log_prob - tanh_log_det(samples)
            return log_prob, -log_prob
        return log_prob, (0.5 + 0.5 * LOG_2PI + log_std).sum(-1)

    def diagnostics(self, samples, valid):
        samples = samples[valid]
        # gSDE: the mean std of the noise matrices' entries (the action's std also scales with |z|)
        metrics = {"sde_weight_std" if self.uses_features else "policy_std": float(self.std().mean())}
        if not self.squash and len(samples):
            outside = (samples < self.low) | (samples > self.high)
            metrics["action_clip_fraction"] = float(outside.mean())
        return metrics


def make_head(action_space: gym.Space, squash: bool = False, log_std_init: float = 0.0,
              sde_sample_freq: int | None = None) -> ActionHead:
    """The head for an action space (the caller has checked it is one of these); ``sde_sample_freq``
    (Box only) asks for gSDE."""
    if sde_sample_freq is not None and not isinstance(action_space, gym.spaces.Box):
        raise DrlabError(f"sde (state-dependent exploration) needs a Box action space, not {action_space}")
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalHead(int(action_space.n), int(action_space.start))
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return MultiCategoricalHead(np.asarray(action_space.nvec), np.asarray(action_space.start))
    if isinstance(action_space, gym.spaces.MultiBinary):
        return BernoulliHead(tuple(np.atleast_1d(action_space.n)))
    if isinstance(action_space, gym.spaces.Box):
        return GaussianHead(action_space, squash, log_std_init, sde_sample_freq)
    raise DrlabError(f"no action head for {action_space}")


HEAD_SPACES = (gym.spaces.Discrete, gym.spaces.Box, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
