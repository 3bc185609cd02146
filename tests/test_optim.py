"""drlab.optim against PyTorch's own: the direct fused Adam step, the clipped gradient norm."""

from __future__ import annotations

import copy

import pytest
import torch

from drlab.optim import Optimizer, adam, clip_grad_norm, gradient_step


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def loss_of(model, i):
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(i))
    return model(x).pow(2).mean()


def test_gradient_step_is_torch_adam_bit_for_bit_across_steps_and_a_reload():
    ours, theirs = net(), net()
    ours_opt, theirs_opt = adam(list(ours.parameters()), 1e-2), torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    for i in range(20):
        if i == 10:  # a resume: new state tensors from a saved state dict
            ours_opt = adam(list(ours.parameters()), 1e-2)
            ours_opt.load_state_dict(copy.deepcopy(theirs_opt.state_dict()))
        gradient_step(ours_opt, list(ours.parameters()), loss_of(ours, i), 0.0)
        theirs_opt.zero_grad()
        loss_of(theirs, i).backward()
        theirs_opt.step()
        for a, b in zip(ours.parameters(), theirs.parameters()):
            assert torch.equal(a, b), i
    assert ours_opt.state_dict()["state"][0]["step"] == theirs_opt.state_dict()["state"][0]["step"] == 20


def test_two_groups_with_their_rates_and_a_decay_match_torch_adam():
    ours, theirs = net(), net()
    groups = [(list(ours[0].parameters()), 1e-2), (list(ours[2].parameters()), 1e-3)]
    ours_opt = Optimizer(groups, "adam", 1e-2, 1e-8, 0.99, max_grad_norm=0.0, decay_steps=10)
    theirs_opt = torch.optim.Adam([{"params": theirs[0].parameters(), "lr": 1e-2},
                                   {"params": theirs[2].parameters(), "lr": 1e-3}], eps=1e-8, fused=True)
    for i in range(8):
        ours_opt.set_progress(i)
        for group, base in zip(theirs_opt.param_groups, (1e-2, 1e-3)):
            group["lr"] = base * (1 - i / 10)
        ours_opt.step(loss_of(ours, i))
        theirs_opt.zero_grad()
        loss_of(theirs, i).backward()
        theirs_opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("max_norm", [0.0, 0.1])
def test_clip_grad_norm_matches_torch(max_norm):
    ours, theirs = net(), net()
    loss_of(ours, 0).backward()
    loss_of(theirs, 0).backward()
    norm = clip_grad_norm(list(ours.parameters()), max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm if max_norm else float("inf"))
    torch.testing.assert_close(norm, expected)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


def test_adamw_and_groups_without_gradients_take_torch_own_step():
    ours, theirs = net(), net()
    ours_opt = torch.optim.AdamW(ours.parameters(), lr=1e-2, weight_decay=0.1, fused=True)
    theirs_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-2, weight_decay=0.1, fused=True)
    for i in range(5):
        gradient_step(ours_opt, list(ours.parameters()), loss_of(ours, i), 0.0)
        theirs_opt.zero_grad()
        loss_of(theirs, i).backward()
        theirs_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters()))
    # a second group that got no gradient this time (its state exists from before)
    first, second = list(ours[0].parameters()), list(ours[2].parameters())
    opt = Optimizer([(first, 1e-2), (second, 1e-2)], "adam", 1e-2, 1e-8, 0.99, max_grad_norm=0.0)
    opt.step(loss_of(ours, 0))
    opt.step(ours[0](torch.ones(3, 5)).sum())  # the last layer gets no gradient
    assert all(p.grad is None for p in second)
