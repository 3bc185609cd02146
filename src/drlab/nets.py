"""Network bodies and heads shared by the algorithms."""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """in_dim -> hidden... -> out_dim, with ``activation`` between layers and none at the end."""
    layers: list[nn.Module] = []
    sizes = (in_dim, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(sizes[-1], out_dim))
    return nn.Sequential(*layers)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from drlab.errors import DrlabError

        raise DrlabError("device 'cuda' was asked for but PyTorch sees no CUDA GPU (use --device cpu or auto)")
    return torch.device(name)


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale gradients so their global L2 norm is at most ``max_norm`` (0: never); return the norm
    before clipping. Same result as nn.utils.clip_grad_norm_, with fewer kernel calls: on small
    networks that call overhead, not arithmetic, is the cost."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if max_norm > 0:
        torch._foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm


def adam(params, lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam with the fused kernel (one call for all parameters instead of several per tensor)."""
    return torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
