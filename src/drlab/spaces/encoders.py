"""Observation spaces -> what buffers store and what networks take: the observation side of the
seam between environments and algorithms. The only place that knows what an observation space is.

Two halves, both built from the env's observation space:

- **Packing** (NumPy, in the env factory): every observation becomes one array, so rollouts,
  replay, n-step windows and Ray runners store it without knowing the space. Flat vectors and
  drlab's stacked grayscale frames (Atari, VizDoom) stay as they are. Everything else is packed:

  ======================  =============================================  ====================
  space                   packed as                                      encoded (network)
  ======================  =============================================  ====================
  Box, any rank           float32, flattened                             as it is
  image (uint8, 2-D, or   uint8 (C, H, W): channels-last images are      Nature CNN, or a
  3-D with channels       transposed, a 2-D image gets one channel       small CNN below 36 px
  first or last)
  Discrete(n, start)      float32 index ``obs - start``                  one-hot (n)
  MultiDiscrete(nvec)     float32 indices                                one-hot of each
  MultiBinary             float32 bits, flattened                        as it is
  Dict, Tuple             each part as above, flattened and concatenated  each part as above,
                          in the space's own order (Dict: sorted keys)   concatenated
  Text, Graph, Sequence   dropped (a note names the key)
  ======================  =============================================  ====================

- **Encoding** (PyTorch, in the networks): :func:`make_body` builds the body an algorithm puts its
  heads on; :func:`mlp_on` an MLP with its input encoded. Flat vectors keep the plain MLP they
  always had (same parameters, same initialisation); images get a CNN of their own.

The packed space is a :class:`PackedBox`, a Box that carries its :class:`Part` layout, so that an
agent built from ``envs.single_observation_space`` (in training, in a Ray runner or when a run is
loaded) encodes exactly what was packed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from drlab.errors import DrlabError
from drlab.nets import NatureCNN, mlp, mlp_body

# What every algorithm's networks take (for `drlab list`).
OBSERVATION_SPACES = "Box of any rank, images, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple of those"

# Below this many pixels on a side the Nature CNN's 8x8/4, 4x4/2 and 3x3/1 convolutions do not fit.
NATURE_CNN_MIN_SIZE = 36


# Spaces whose dropped parts were noted (a vector env packs in each of its copies).
NOTED: list = []


@dataclass(frozen=True)
class Part:
    """One piece of a packed observation: ``kind`` is "vector", "onehot" or "image"; it occupies
    ``size`` entries from ``start`` of the packed vector (or the whole packed array for a lone image);
    ``shape`` is the image's (C, H, W); ``nvec`` the number of values of each one-hot index."""

    key: str
    kind: str
    start: int
    size: int
    shape: tuple[int, ...] = ()
    nvec: tuple[int, ...] = ()


class PackedBox(gym.spaces.Box):
    """The Box of packed observations, with the layout of its parts."""

    def __init__(self, low, high, shape, dtype, parts: tuple[Part, ...]):
        super().__init__(low, high, shape, dtype)
        self.parts = parts

    def __repr__(self) -> str:
        return f"PackedBox({self.shape}, {self.dtype}, parts={[(p.key or '.', p.kind) for p in self.parts]})"

    def __eq__(self, other) -> bool:
        return isinstance(other, PackedBox) and super().__eq__(other) and self.parts == other.parts


# ---- packing ---------------------------------------------------------------------------------

def image_layout(space: gym.Space) -> str | None:
    """"hwc", "chw" or "hw" for an image space (uint8 Box of rank 2, or of rank 3 with the channels
    the smallest dimension at either end); "khwc" or "kchw" for K such images stacked (--frame-stack);
    else None."""
    if not (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8):
        return None
    shape = space.shape
    if len(shape) == 4:
        inner = image_layout(gym.spaces.Box(0, 255, shape[1:], np.uint8))
        return "k" + inner if inner in ("hwc", "chw") else None
    if len(shape) == 2:
        return "hw"
    if len(shape) == 3:
        if shape[-1] == min(shape):
            return "hwc"
        if shape[0] == min(shape):
            return "chw"
    return None


def stacked_frames(space: gym.Space) -> bool:
    """drlab's own stacked grayscale frames ((K, H, W) uint8 from the Atari and VizDoom envs): the
    frame replay stores each of them once. Every other image comes packed (a :class:`PackedBox`)."""
    return isinstance(space, gym.spaces.Box) and not isinstance(space, PackedBox) \
        and len(space.shape) == 3 and space.dtype == np.uint8


def needs_packing(space: gym.Space) -> bool:
    """False for flat float vectors and drlab's stacked frames, which go to the networks as they are
    (integer vectors, such as an Atari console's RAM bytes, are packed as float32)."""
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and np.issubdtype(space.dtype, np.floating):
        return False
    return not stacked_frames(space)


class Packer:
    """Packs one env's observations of ``space`` into one array of :attr:`space` (a PackedBox).
    ``env_id`` names the env in the note about dropped parts and in a refusal."""

    def __init__(self, space: gym.Space, env_id: str):
        parts, dropped, lows, highs = [], [], [], []
        self._leaves = []  # (path, pack function: observation leaf -> flat array, or the (C, H, W) image)
        for path, leaf in leaves(space):
            entry = leaf_packing(leaf)
            if entry is None:
                dropped.append(f"{path or 'the observation'} ({type(leaf).__name__})")
                continue
            kind, shape, nvec, low, high, fn = entry
            parts.append(Part(path, kind, sum(p.size for p in parts), len(low), shape, nvec))
            lows.append(low)
            highs.append(high)
            self._leaves.append((path, fn))
        if not parts:
            raise DrlabError(f"{env_id} has observations a network cannot take: {space}")
        if dropped and (env_id, space) not in NOTED:  # once, not once per env copy
            NOTED.append((env_id, space))
            print(f"drlab: note: {env_id}: the networks leave out {', '.join(dropped)}: "
                  "a network cannot take that kind of observation", file=sys.stderr)
        self.lone_image = len(parts) == 1 and parts[0].kind == "image"
        if self.lone_image:
            self.space = PackedBox(0, 255, parts[0].shape, np.uint8, tuple(parts))
        else:
            self.space = PackedBox(np.concatenate(lows), np.concatenate(highs), (len(np.concatenate(lows)),),
                                   np.float32, tuple(parts))

    def __call__(self, obs) -> np.ndarray:
        if self.lone_image:
            path, fn = self._leaves[0]
            return np.ascontiguousarray(fn(leaf_value(obs, path)))
        return np.concatenate([np.asarray(fn(leaf_value(obs, path)), np.float32).reshape(-1)
                               for path, fn in self._leaves])


def image_shape(s: tuple[int, ...], layout: str) -> tuple[int, int, int]:
    """The (C, H, W) an image of shape ``s`` and ``layout`` (see :func:`image_layout`) is packed into."""
    if layout == "hwc":
        return (s[2], s[0], s[1])
    if layout == "hw":
        return (1, *s)
    if layout == "khwc":
        return (s[0] * s[3], s[1], s[2])
    if layout == "kchw":
        return (s[0] * s[1], s[2], s[3])
    return tuple(s)


def leaf_packing(space: gym.Space):
    """(kind, image shape, nvec, low, high, pack function) of one leaf space, or None for a space a
    network cannot take. low and high are the bounds of the packed (flattened) entries."""
    layout = image_layout(space)
    if layout is not None:  # to (C, H, W); stacked images (K, ...) to (K * C, H, W)
        chw = image_shape(space.shape, layout)
        pack = {"hwc": lambda x: np.transpose(x, (2, 0, 1)), "chw": np.asarray, "hw": lambda x: np.asarray(x)[None],
                "khwc": lambda x: np.transpose(x, (0, 3, 1, 2)).reshape(chw), "kchw": lambda x: np.reshape(x, chw)}
        size = int(np.prod(chw))
        return "image", chw, (), np.zeros(size, np.float32), np.full(size, 255, np.float32), pack[layout]
    if isinstance(space, (gym.spaces.Box, gym.spaces.MultiBinary)):
        if isinstance(space, gym.spaces.Box):
            low, high = space.low.reshape(-1).astype(np.float32), space.high.reshape(-1).astype(np.float32)
        else:
            low, high = np.zeros(int(np.prod(space.shape)), np.float32), np.ones(int(np.prod(space.shape)), np.float32)
        return "vector", (), (), low, high, lambda x: np.asarray(x, np.float32).reshape(-1)
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return ("onehot", (), (int(space.n),), np.zeros(1, np.float32), np.array([space.n - 1], np.float32),
                lambda x: np.array([int(x) - start], np.float32))
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec, start = space.nvec.reshape(-1), np.asarray(space.start).reshape(-1)
        return ("onehot", (), tuple(int(n) for n in nvec), np.zeros(len(nvec), np.float32),
                (nvec - 1).astype(np.float32), lambda x: (np.asarray(x).reshape(-1) - start).astype(np.float32))
    return None


def leaves(space: gym.Space, path: str = "") -> list[tuple[str, gym.Space]]:
    """(path, leaf space) of every leaf of nested Dict/Tuple spaces, in the space's own order;
    paths are keys and indices joined by "/" ("" for a space that is not nested)."""
    if isinstance(space, gym.spaces.Dict):
        return [leaf for key, sub in space.spaces.items() for leaf in leaves(sub, f"{path}/{key}".lstrip("/"))]
    if isinstance(space, gym.spaces.Tuple):
        return [leaf for i, sub in enumerate(space.spaces) for leaf in leaves(sub, f"{path}/{i}".lstrip("/"))]
    return [(path, space)]


def leaf_value(obs, path: str):
    """The part of a (nested dict/tuple) observation at ``path``."""
    for key in path.split("/") if path else ():
        obs = obs[int(key)] if isinstance(obs, (tuple, list)) else obs[key]
    return obs


def packing_wrapper(env: gym.Env, env_id: str) -> gym.Env:
    """``env`` with its observations packed, or ``env`` itself when they go to the networks as they are."""
    if not needs_packing(env.observation_space):
        return env
    packer = Packer(env.observation_space, env_id)
    return gym.wrappers.TransformObservation(env, packer, packer.space)


# ---- encoding --------------------------------------------------------------------------------

def parts_of(space: gym.Space) -> tuple[Part, ...]:
    """The layout of a packed space; flat vectors and stacked frames are one part."""
    if isinstance(space, PackedBox):
        return space.parts
    if stacked_frames(space):
        return (Part("", "image", 0, int(np.prod(space.shape)), tuple(space.shape)),)
    return (Part("", "vector", 0, int(np.prod(space.shape))),)


def is_lone_image(space: gym.Space) -> bool:
    """Observations that are one image (stacked frames included): a CNN body, heads on its features."""
    parts = parts_of(space)
    return len(parts) == 1 and parts[0].kind == "image"


def has_images(space: gym.Space) -> bool:
    return any(p.kind == "image" for p in parts_of(space))


def is_flat_vector(space: gym.Space) -> bool:
    """Observations that reach the network as they are packed (only Box/MultiBinary parts)."""
    return all(p.kind == "vector" for p in parts_of(space))


class SmallCNN(nn.Module):
    """For images too small for the Nature CNN (MiniGrid's 7x7 view, say): three 3x3 convolutions
    that keep the size (padding 1; 16, 32, 32 channels), then a 256-unit layer. Scales uint8 to [0, 1]."""

    features = 256

    def __init__(self, obs_shape: tuple[int, int, int]):
        super().__init__()
        channels, height, width = obs_shape
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * height * width, self.features), nn.ReLU())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames.float() / 255.0)


def image_cnn(shape: tuple[int, int, int], bf16: bool = False) -> nn.Module:
    """The Nature CNN for images it fits (at least 36x36), the small CNN for smaller ones."""
    if min(shape[1:]) >= NATURE_CNN_MIN_SIZE:
        return NatureCNN(shape, bf16=bf16)
    return SmallCNN(shape)


class ObservationEncoder(nn.Module):
    """Packed observations (B, D) -> features (B, out_dim): vectors as they are, one-hot indices,
    each image part through a CNN of its own; the parts concatenated in the packed order."""

    def __init__(self, parts: tuple[Part, ...], bf16: bool = False):
        super().__init__()
        self.parts = parts
        self.cnns = nn.ModuleDict()
        self.out_dim = 0
        for i, part in enumerate(parts):
            if part.kind == "image":
                cnn = image_cnn(part.shape, bf16)
                self.cnns[str(i)] = cnn
                self.out_dim += cnn.features
            elif part.kind == "onehot":
                self.register_buffer(f"offsets{i}", torch.tensor(np.cumsum((0, *part.nvec[:-1])), dtype=torch.long),
                                     persistent=False)
                self.out_dim += sum(part.nvec)
            else:
                self.out_dim += part.size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()
        out = []
        for i, part in enumerate(self.parts):
            x = obs[:, part.start:part.start + part.size]
            if part.kind == "image":
                out.append(self.cnns[str(i)](x.reshape(-1, *part.shape)))
            elif part.kind == "onehot":
                index = x.long() + getattr(self, f"offsets{i}")
                out.append(torch.zeros(len(x), sum(part.nvec), device=x.device).scatter_(1, index, 1.0))
            else:
                out.append(x)
        return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def mlp_on(space: gym.Space, hidden: tuple[int, ...], out_dim: int, activation: type[nn.Module] = nn.ReLU,
           bf16: bool = False) -> nn.Module:
    """An MLP (:func:`drlab.nets.mlp`) on the encoded observations: the plain MLP for flat vectors."""
    if is_flat_vector(space):
        return mlp(int(np.prod(space.shape)), hidden, out_dim, activation)
    encoder = ObservationEncoder(parts_of(space), bf16)
    return nn.Sequential(encoder, *mlp(encoder.out_dim, hidden, out_dim, activation))  # [-1]: the output layer


def make_body(space: gym.Space, hidden: tuple[int, ...], activation: type[nn.Module], bf16: bool = False
              ) -> tuple[nn.Module, int]:
    """(body, number of features) for heads to sit on: a CNN for one image (the Nature CNN as in Mnih
    et al. 2015 for frames), else an MLP body on the encoded observations (the plain MLP body for vectors).
    No hidden layers (``hidden == ()``) gives the encoded observation itself: linear heads, which on a
    one-hot observation are a table, as in Bacon et al.'s tabular Four Rooms experiment."""
    parts = parts_of(space)
    if is_lone_image(space):
        cnn = image_cnn(parts[0].shape, bf16)
        return cnn, cnn.features
    if is_flat_vector(space):
        in_dim = int(np.prod(space.shape))
        return (mlp_body(in_dim, hidden, activation), hidden[-1]) if hidden else (nn.Flatten(), in_dim)
    encoder = ObservationEncoder(parts, bf16)
    if not hidden:
        return encoder, encoder.out_dim
    return nn.Sequential(encoder, mlp_body(encoder.out_dim, hidden, activation)), hidden[-1]


def check_normalizable(algo: str, env_id: str, space: gym.Space) -> None:
    """Observation normalisation (running mean and std) is for vectors: one line for anything else."""
    if not is_flat_vector(space):
        kinds = sorted({p.kind for p in parts_of(space)} - {"vector"})
        what = {"image": "images (a CNN scales pixels to [0, 1] itself)",
                "onehot": "discrete observations (one-hot encoded)"}
        raise DrlabError(f"{algo}: normalize_obs normalises vector observations, but {env_id} has "
                         + " and ".join(what[k] for k in kinds))


def describe_space(space: gym.Space) -> str:
    """The observation kinds a packed space holds, in words (for `drlab list` and messages)."""
    return ", ".join(f"{p.key + ': ' if p.key else ''}{p.kind}" for p in parts_of(space))

