"""Pictures of what an Option-Critic agent learned (`drlab plot options RUN --out DIR`).

* option_maps.png: for each option, Q_Omega(s, w) and beta_w(s) over a grid of two observation
  dimensions, the other dimensions held at fixed values (0 unless given);
* option_timeline.png: the active option over one greedy episode, above the observation traces;
* options.json: the share of that episode's steps each option was active, and the switches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from drlab.errors import DrlabError

# Env id -> (dimension indices, their names, their plotted ranges).
DEFAULT_DIMS = {
    "CartPole-v1": ((2, 3), ("pole angle (rad)", "pole angular velocity"), ((-0.21, 0.21), (-2.0, 2.0))),
    "LunarLander-v3": ((0, 1), ("x position", "y position"), ((-1.0, 1.0), (0.0, 1.5))),
}
OBS_NAMES = {
    "CartPole-v1": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "LunarLander-v3": ("x", "y", "vx", "vy", "angle", "angular velocity", "left leg", "right leg"),
}


def grid_values(net, dims, ranges, fixed: np.ndarray, size: int = 61):
    """Q_Omega and beta on a size x size grid over ``dims`` (others = ``fixed``): arrays (O, size, size),
    indexed [option, i along dims[1], j along dims[0]]."""
    xs, ys = np.linspace(*ranges[0], size), np.linspace(*ranges[1], size)
    obs = np.tile(fixed.astype(np.float32), (size * size, 1))
    grid_x, grid_y = np.meshgrid(xs, ys)
    obs[:, dims[0]], obs[:, dims[1]] = grid_x.ravel(), grid_y.ravel()
    with torch.no_grad():
        q, beta, _ = net(torch.from_numpy(obs))
    shape = (size, size, -1)
    return xs, ys, q.numpy().reshape(shape).transpose(2, 0, 1), beta.numpy().reshape(shape).transpose(2, 0, 1)


def plot_options(run_dir: Path, out_dir: Path, dims: tuple[int, int] | None = None, seed: int = 0) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from drlab.envs import make_env
    from drlab.evaluate import play_episode
    from drlab.run.rundir import load_agent

    agent = load_agent(run_dir)
    if agent.algo != "option-critic":
        raise DrlabError(f"{run_dir} is a {agent.algo} run; option pictures need an option-critic run")
    env_id, net = agent.config.env_id, agent.net
    obs_dim = net.body[0].in_features
    names = OBS_NAMES.get(env_id, tuple(f"obs[{i}]" for i in range(obs_dim)))
    default_dims, default_labels, default_ranges = DEFAULT_DIMS.get(env_id, ((0, 1), None, ((-1.0, 1.0), (-1.0, 1.0))))
    if dims is None:
        dims, labels, ranges = default_dims, default_labels, default_ranges
    else:
        if len(dims) != 2 or len(set(dims)) != 2 or not all(0 <= d < obs_dim for d in dims):
            raise DrlabError(f"--dims needs two different observation indices in 0..{obs_dim - 1} (got {list(dims)})")
        labels, ranges = None, ((-1.0, 1.0), (-1.0, 1.0))
        if tuple(dims) == tuple(default_dims):
            labels, ranges = default_labels, default_ranges
    labels = labels or tuple(names[d] for d in dims)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Option maps: one column per option, Q_Omega on top, beta below.
    fixed = np.zeros(obs_dim, dtype=np.float32)
    xs, ys, q, beta = grid_values(net, dims, ranges, fixed)
    num_options = q.shape[0]
    fig, axes = plt.subplots(2, num_options, figsize=(4.2 * num_options, 7), dpi=110, squeeze=False)
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    q_min, q_max = float(q.min()), float(q.max())
    for w in range(num_options):
        for row, (values, title, vmin, vmax, cmap) in enumerate((
                (q[w], f"option {w}: Q_Omega(s, {w})", q_min, q_max, "viridis"),
                (beta[w], f"option {w}: termination beta_{w}(s)", 0.0, 1.0, "magma"))):
            ax = axes[row, w]
            image = ax.imshow(values, origin="lower", extent=extent, aspect="auto", vmin=vmin, vmax=vmax, cmap=cmap)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    others = ", ".join(f"{names[i]} = 0" for i in range(obs_dim) if i not in dims)
    fig.suptitle(f"{env_id}: what each option learned ({others})", fontsize=10)
    fig.tight_layout()
    maps = out_dir / "option_maps.png"
    fig.savefig(maps)
    plt.close(fig)

    # Timeline of one greedy episode.
    env = make_env(env_id)
    try:
        episode = play_episode(agent, env, seed, greedy=True, max_steps=2_000)
    finally:
        env.close()
    observations, options, total = np.array(episode.observations), np.array(episode.options), episode.total
    steps = np.arange(len(options))
    fig, (ax_opt, ax_obs) = plt.subplots(2, 1, figsize=(10, 6), dpi=110, sharex=True,
                                         gridspec_kw={"height_ratios": [1, 3]})
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colors = [plt.rcParams["axes.prop_cycle"].by_key()["color"][w % 10] for w in range(num_options)]
    # One pixel column per step, so that even one-step options show.
    ax_opt.imshow(options[None, :], aspect="auto", cmap=ListedColormap(colors), vmin=-0.5, vmax=num_options - 0.5,
                  extent=(-0.5, len(options) - 0.5, 0, 1), interpolation="nearest")
    ax_opt.legend(handles=[Patch(color=colors[w], label=f"option {w}") for w in range(num_options)],
                  loc="upper right", fontsize=8, ncol=num_options)
    ax_opt.set_yticks([])
    ax_opt.set_title(f"active option over one greedy episode (return {total:.1f}, {len(steps)} steps)", fontsize=10)
    for i in range(obs_dim):
        ax_obs.plot(steps, observations[:, i], linewidth=1.0, label=names[i])
    ax_obs.set_xlabel("step")
    ax_obs.set_ylabel("observation")
    ax_obs.grid(alpha=0.3)
    ax_obs.legend(fontsize=7, loc="upper right", ncol=2)
    fig.tight_layout()
    timeline = out_dir / "option_timeline.png"
    fig.savefig(timeline)
    plt.close(fig)

    usage = {
        "episode_return": total, "episode_steps": int(len(options)),
        "option_share": [float(np.mean(options == w)) for w in range(num_options)],
        "switches": int(np.sum(options[1:] != options[:-1])),
        "maps": str(maps), "timeline": str(timeline),
    }
    (out_dir / "options.json").write_text(json.dumps(usage, indent=1) + "\n")
    return usage
