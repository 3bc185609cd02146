"""Network bodies, heads and initialisation shared by the algorithms, and the observation normaliser."""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch
from torch import nn

from drlab.returns import combine_moments

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """in_dim -> hidden... -> out_dim, with ``activation`` between layers and none at the end."""
    layers: list[nn.Module] = []
    sizes = (in_dim, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(sizes[-1], out_dim))
    return nn.Sequential(*layers)


def mlp_body(in_dim: int, hidden: tuple[int, ...], activation: type[nn.Module]) -> nn.Sequential:
    """in_dim -> hidden..., with ``activation`` after every layer: a body for heads to sit on."""
    return mlp(in_dim, hidden[:-1], hidden[-1], activation).append(activation())


def orthogonal_init(module: nn.Module, gain: float) -> None:
    """Orthogonal weights with ``gain`` and zero biases for every Linear and Conv2d layer in ``module``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            with torch.no_grad():  # through a contiguous copy: orthogonal_ cannot view a channels-last weight
                layer.weight.copy_(nn.init.orthogonal_(torch.empty(layer.weight.shape), gain))
            nn.init.zeros_(layer.bias)


def obs_tensor(obs: np.ndarray, device: torch.device) -> torch.Tensor:
    """A batch of observations as the networks take it: frames stay uint8 (the CNN scales them),
    vectors become float32."""
    dtype = torch.uint8 if obs.dtype == np.uint8 else torch.float32
    return torch.as_tensor(obs, dtype=dtype, device=device)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has bfloat16 kernels on this CPU (AVX512-BF16 or AMX); said once when not."""
    try:
        fast = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        fast = False
    if not fast:
        print("drlab: note: this CPU has no bfloat16 support (AVX512-BF16 or AMX): bf16 is ignored, the network runs "
              "in float32 (emulated bfloat16 would be several times slower)", file=sys.stderr)
    return fast


def bf16_autocast(device: torch.device, bf16: bool) -> torch.autocast:
    """bfloat16 autocast on ``device`` when ``bf16`` (and, on a CPU, when oneDNN has bfloat16 kernels
    for it; else float32, with a note): matrix products run in bfloat16, weights and gradients stay
    float32."""
    enabled = bf16 and (device.type != "cpu" or cpu_has_fast_bf16())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


class NatureCNN(nn.Module):
    """The DQN paper's body (Mnih et al. 2015): 32 8x8/4, 64 4x4/2, 64 3x3/1 convolutions, 512 units.

    Takes uint8 frames and scales them to [0, 1] itself, so rollouts and replay stay uint8 (4x less
    memory, no float copies) until a batch reaches the network. ``bf16`` runs the convolutions and
    the hidden layer under bfloat16 autocast (weights, gradients and outputs stay float32): on CPUs
    with AMX or AVX512-BF16, oneDNN then does a forward and backward pass ~1.7x faster. On a CPU
    without them bf16 is emulated and ~10x slower (60 frames forward and backward on a 2-core AMD
    EPYC with AVX2: 404 ms vs 37 ms), so there the setting is ignored, with a note on stderr.
    """

    features = 512

    def __init__(self, obs_shape: tuple[int, int, int], bf16: bool = False):
        super().__init__()
        channels, height, width = obs_shape
        self.bf16 = bf16
        convs = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten())
        with torch.no_grad():
            flat = convs(torch.zeros(1, channels, height, width)).shape[1]
        self.net = nn.Sequential(convs, nn.Linear(flat, self.features), nn.ReLU())
        # Channels-last (NHWC) weights and inputs: oneDNN's convolutions skip their layout reorders
        # (forward and backward of 60 frames under bf16, 2 threads: 35 -> 26 ms on this project's CPU).
        self.net.to(memory_format=torch.channels_last)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        frames = frames.contiguous(memory_format=torch.channels_last)  # reordered while still uint8
        x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
        with bf16_autocast(x.device, self.bf16):
            return self.net(x).float()


class ObsNormalizer(nn.Module):
    """(obs - running mean) / running std, clipped; the statistics are buffers, so they are saved
    with the weights and a loaded agent sees observations exactly as in training. Only training
    updates them (``update``)."""

    def __init__(self, dim: int, clip: float = 10.0):
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.tensor(1e-4))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self.mean) / torch.sqrt(self.var + 1e-8)).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, obs: torch.Tensor) -> None:
        if obs.shape[0] == 0:
            return
        mean, var, count = combine_moments(self.mean, self.var, self.count,
                                           obs.mean(0), obs.var(0, unbiased=False), obs.shape[0])
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(count)
