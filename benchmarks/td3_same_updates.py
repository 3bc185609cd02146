"""drlab's TD3 update and Stable-Baselines3's, from the same weights on the same batches.

Both learners start from one set of weights (SB3's, copied into drlab's networks), take the same
sequence of replay batches (random observations and actions; SB3's replay ``sample`` returns them)
and the same target-smoothing noise (the torch generator seeded alike before each update), and the
script prints how far their weights and losses drift apart. Float rounding alone (drlab's fused Adam,
its stacked critics) leaves relative differences around 1e-6; a difference in the algorithm shows up
at once as differences of order one.

    python benchmarks/td3_same_updates.py [--env HalfCheetah-v5] [--updates 2000] [--every 100]

It also runs drlab's learner a second time from weights nudged by one part in a million: if that copy
drifts from the first as far as SB3's does, the drift is rounding amplified by the updates, not a
difference between the two implementations.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import TD3
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn

from drlab.algos import get_algo
from drlab.buffers.replay import Batch
from drlab.config import build_config


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def copy_sb3_into_drlab(model: TD3, learner) -> None:
    for mine, theirs in ((learner.actor, model.actor.mu), (learner.actor_target, model.actor_target.mu)):
        for a, b in zip(linear_layers(mine), linear_layers(theirs), strict=True):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    for mine, theirs in ((learner.critic, model.critic), (learner.critic_target, model.critic_target)):
        for i, q in enumerate(theirs.q_networks):
            for w, b, layer in zip(mine.weights, mine.biases, linear_layers(q), strict=True):
                w[i].copy_(layer.weight.T)
                b[i, 0].copy_(layer.bias)


def max_difference(learner, model: TD3) -> dict[str, float]:
    """Largest |drlab - SB3| over each network's weights, relative to the largest |SB3| weight."""
    out = {}
    for name, mine, theirs in (("actor", learner.actor, model.actor.mu), ("actor_target", learner.actor_target,
                                                                           model.actor_target.mu)):
        pairs = [(a.weight, b.weight) for a, b in zip(linear_layers(mine), linear_layers(theirs))]
        out[name] = max(float((a - b).abs().max() / b.abs().max()) for a, b in pairs)  # noqa: B023
    for name, mine, theirs in (("critic", learner.critic, model.critic), ("critic_target", learner.critic_target,
                                                                          model.critic_target)):
        diffs = []
        for i, q in enumerate(theirs.q_networks):
            for w, layer in zip(mine.weights, linear_layers(q)):
                diffs.append(float((w[i] - layer.weight.T).abs().max() / layer.weight.abs().max()))
        out[name] = max(diffs)
    return out


def drlab_difference(a, b) -> float:
    """Largest relative |a - b| over the weights of two drlab TD3 learners' actors and critics."""
    pairs = [*zip(a.actor.parameters(), b.actor.parameters()), *zip(a.critic.parameters(), b.critic.parameters())]
    return max(float((x - y).abs().max() / y.abs().max()) for x, y in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", default="400,300")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=100, help="print every this many updates")
    args = parser.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]

    env = gym.make(args.env)
    model = TD3("MlpPolicy", env, learning_rate=args.lr, batch_size=args.batch_size, learning_starts=0,
                policy_kwargs={"net_arch": hidden}, seed=0, device="cpu")
    cfg = build_config(get_algo("td3").Config, args.env, {"hidden": hidden, "lr": args.lr, "batch_size": args.batch_size,
                                                          "seed": 0})
    algo = get_algo("td3")
    agent = algo.make_agent(cfg, env.observation_space, env.action_space, torch.device("cpu"))
    learner = algo.Learner(cfg, agent, np.random.default_rng(0))
    copy_sb3_into_drlab(model, learner)
    print("after copying:", max_difference(learner, model))
    # A third learner, drlab's again, with every weight moved by one part in a million: how far
    # rounding-sized differences grow on their own under these updates (the yardstick for SB3's).
    nudged = algo.Learner(cfg, algo.make_agent(cfg, env.observation_space, env.action_space, torch.device("cpu")),
                          np.random.default_rng(0))
    copy_sb3_into_drlab(model, nudged)
    with torch.no_grad():
        for p in [*nudged.actor.parameters(), *nudged.critic.parameters()]:
            p.mul_(1 + 1e-6 * torch.randn_like(p))

    rng = np.random.default_rng(1)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    batch_size = args.batch_size
    pending: dict = {}
    model.replay_buffer.sample = lambda *_, **__: pending["sb3"]
    sb3_losses, drlab_losses = [], []
    from stable_baselines3.common.logger import configure
    model.set_logger(configure(None, []))
    original_record = model.logger.record

    def record(key, value, *rest, **kw):
        if key == "train/critic_loss":
            sb3_losses.append(value)
        return original_record(key, value, *rest, **kw)

    model.logger.record = record
    for update in range(1, args.updates + 1):
        obs = torch.as_tensor(rng.normal(size=(batch_size, obs_dim)), dtype=torch.float32)
        next_obs = torch.as_tensor(rng.normal(size=(batch_size, obs_dim)), dtype=torch.float32)
        actions = torch.as_tensor(rng.uniform(-1, 1, size=(batch_size, act_dim)), dtype=torch.float32)
        rewards = torch.as_tensor(rng.normal(size=batch_size), dtype=torch.float32)
        terminated = torch.as_tensor(rng.random(batch_size) < 0.01, dtype=torch.float32)
        pending["sb3"] = ReplayBufferSamples(obs, actions, next_obs, terminated[:, None], rewards[:, None])
        torch.manual_seed(update)
        model.train(gradient_steps=1, batch_size=batch_size)
        batch = Batch(obs=obs, actions=actions, rewards=rewards, next_obs=next_obs, terminated=terminated,
                      discounts=torch.full((batch_size,), cfg.gamma), weights=torch.ones(batch_size),
                      indices=np.arange(batch_size))
        torch.manual_seed(update)
        drlab_losses.append(float(learner.update(batch, update)["critic_loss"]))
        torch.manual_seed(update)
        nudged.update(batch, update)
        if update in (1, 10) or update % args.every == 0:
            diff = {k: f"{v:.2e}" for k, v in max_difference(learner, model).items()}
            print(f"update {update}: critic loss drlab {drlab_losses[-1]:.6g} SB3 {sb3_losses[-1]:.6g}; "
                  f"max relative weight difference drlab vs SB3 {diff}; "
                  f"drlab vs drlab nudged by 1e-6: {drlab_difference(learner, nudged):.2e}", flush=True)


if __name__ == "__main__":
    main()
