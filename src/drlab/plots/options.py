"""Pictures of what an Option-Critic agent learned (`drlab plot options RUN --out DIR`).

On vector observations:
* option_maps.png: for each option, Q_Omega(s, w) and beta_w(s) over a grid of two observation
  dimensions, the other dimensions held at fixed values (0 unless given);
* option_choice.png: a grid of slices (4 x 4 by default, as the course notebooks draw): each panel
  maps the option the greedy agent picks when it chooses, argmax_w Q_Omega(s, w), over the same two
  dimensions, with two further dimensions held at the panel's values; the shading is how likely that
  option is to end on arriving there (its beta): full colour where the picked option holds, pale
  where it would end at once;
* option_timeline.png: the active option over one greedy episode, above the observation traces.

On frames (Atari, VizDoom), where no two observation dimensions make a map:
* option_timeline.png: the active option over one greedy episode, above the termination
  probability beta_w(s_t) of the option in force on arriving in s_t (the greedy agent ends it
  where that is >= 0.5);
* option_frames.png: for each option, the screens where it took over and where it ended, for up
  to six of its spells in that episode.

Both write options.json: the share of that episode's steps each option was active, and the switches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from drlab.errors import DrlabError
from drlab.nets import obs_tensor
from drlab.plots.four_rooms import is_four_rooms, plot_four_rooms_options
from drlab.spaces.encoders import has_images, is_flat_vector

MAX_SPELLS_SHOWN = 6  # per option, in option_frames.png

# Env id -> (dimension indices, their names, their plotted ranges).
DEFAULT_DIMS = {
    "CartPole-v1": ((2, 3), ("pole angle (rad)", "pole angular velocity"), ((-0.21, 0.21), (-2.0, 2.0))),
    "LunarLander-v3": ((0, 1), ("x position", "y position"), ((-1.0, 1.0), (0.0, 1.5))),
    "MountainCar-v0": ((0, 1), ("position", "velocity"), ((-1.2, 0.6), (-0.07, 0.07))),
}
# Env id -> (the two dimensions the slices step through, their ranges): the grid of option_choice.png.
DEFAULT_SLICE_DIMS = {
    "CartPole-v1": ((0, 1), ((-1.5, 1.5), (-1.5, 1.5))),
    "LunarLander-v3": ((2, 3), ((-1.0, 1.0), (-1.0, 0.5))),
}
OBS_NAMES = {
    "CartPole-v1": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "LunarLander-v3": ("x", "y", "vx", "vy", "angle", "angular velocity", "left leg", "right leg"),
}


def option_colors(num_options: int) -> list[str]:
    """One colour per option, the same in every picture (matplotlib's default cycle)."""
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[w % len(cycle)] for w in range(num_options)]


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


def plot_options(run_dir: Path, out_dir: Path, dims: tuple[int, int] | None = None, seed: int = 0,
                 fixed_values: dict[int, float] | None = None, slices: int = 4,
                 slice_dims: tuple[int, int] | None = None) -> dict:
    """Draw the option pictures of an option-critic run into ``out_dir``. Vectors: ``dims`` are the
    maps' axes; ``fixed_values`` {dimension: value} hold the others (0 where not given); the choice
    grid steps ``slice_dims`` through ``slices`` values each (0: no grid)."""
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
    if has_images(agent.obs_space):
        if dims is not None or fixed_values or slice_dims is not None:
            raise DrlabError("--dims, --fixed and --slice-dims pick observation dimensions of a vector env; "
                             "this run sees frames")
        return plot_pixel_options(agent, Path(out_dir), seed)
    if is_four_rooms(env_id):
        if dims is not None or fixed_values or slice_dims is not None:
            raise DrlabError("--dims, --fixed and --slice-dims pick observation dimensions of a vector env; "
                             "Four Rooms is drawn on its grid")
        from drlab.run.logger import read_metrics

        episodes = sum("episode/length" in r for r in read_metrics(Path(run_dir)))  # where a moving goal is now
        usage = {**plot_four_rooms_options(agent, Path(out_dir), episodes), **greedy_episode_usage(agent, seed)}
        (Path(out_dir) / "options.json").write_text(json.dumps(usage, indent=1) + "\n")
        return usage
    if not is_flat_vector(agent.obs_space):
        raise DrlabError(f"option maps step through the dimensions of vector observations; {env_id} has "
                         f"{agent.obs_space}")
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
    fixed = np.zeros(obs_dim, dtype=np.float32)
    for d, value in (fixed_values or {}).items():
        if not 0 <= d < obs_dim:
            raise DrlabError(f"--fixed names observation dimension {d}; this env has 0..{obs_dim - 1}")
        fixed[d] = value
    if slices < 0:
        raise DrlabError(f"--slices must be >= 0 (got {slices})")
    default_slice_dims, slice_ranges = DEFAULT_SLICE_DIMS.get(env_id, (None, ((-1.0, 1.0), (-1.0, 1.0))))
    if slice_dims is None:  # the env's own (unless the maps use them), or the first two the maps do not use
        if default_slice_dims is None or set(default_slice_dims) & set(dims):
            default_slice_dims, slice_ranges = None, ((-1.0, 1.0), (-1.0, 1.0))
        slice_dims = default_slice_dims or tuple(d for d in range(obs_dim) if d not in dims)[:2]
        if len(slice_dims) < 2:  # too few dimensions to slice through (MountainCar): one panel
            slice_dims, slices = None, min(slices, 1)
    elif tuple(slice_dims) != default_slice_dims:
        slice_ranges = ((-1.0, 1.0), (-1.0, 1.0))
    if slices and slice_dims is not None and (len(slice_dims) != 2 or len(set(slice_dims) | set(dims)) != 4
                   or not all(0 <= d < obs_dim for d in slice_dims)):
        raise DrlabError(f"--slice-dims needs two observation indices in 0..{obs_dim - 1} other than the maps' "
                         f"{list(dims)} (got {list(slice_dims)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Option maps: one column per option, Q_Omega on top, beta below.
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
    others = ", ".join(f"{names[i]} = {fixed[i]:g}" for i in range(obs_dim) if i not in dims)
    fig.suptitle(f"{env_id}: what each option learned ({others})", fontsize=10)
    fig.tight_layout()
    maps = out_dir / "option_maps.png"
    fig.savefig(maps)
    plt.close(fig)
    choice = None
    if slices:
        choice = out_dir / "option_choice.png"
        plot_choice_grid(net, env_id, choice, dims, ranges, labels, fixed, slice_dims, slice_ranges, slices, names)

    # Timeline of one greedy episode.
    env = make_env(env_id, max_episode_steps=agent.config.max_episode_steps,
                   frame_stack=agent.config.frame_stack)
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

    colors = option_colors(num_options)
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
        "maps": str(maps), "choice": str(choice) if choice else None, "timeline": str(timeline),
        "pictures": [str(p) for p in (maps, choice, timeline) if p],
    }
    (out_dir / "options.json").write_text(json.dumps(usage, indent=1) + "\n")
    return usage


def plot_choice_grid(net, env_id: str, path: Path, dims, ranges, labels, fixed: np.ndarray, slice_dims,
                     slice_ranges, slices: int, names) -> None:
    """option_choice.png: slices x slices panels over ``dims``, ``slice_dims`` stepping through their
    ranges down the rows and across the columns. Each cell is coloured by the option a greedy choice
    picks there (argmax_w Q_Omega), paler where that option would end on arriving (beta near 1)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows_values, cols_values = (np.linspace(*r, slices) for r in slice_ranges)
    if slice_dims is None:  # a single panel: nothing to step through
        rows_values, cols_values, slice_dims = [None], [None], ()
    num_options = net.num_options
    colors = np.array([plt.matplotlib.colors.to_rgb(c) for c in option_colors(num_options)])
    panels = len(rows_values)
    fig, axes = plt.subplots(panels, panels, figsize=(max(8.0, 2.6 * panels + 1), 2.4 * panels + 1.5), dpi=100,
                             squeeze=False, sharex=True, sharey=True)
    for i, row_value in enumerate(rows_values):
        for j, col_value in enumerate(cols_values):
            panel_fixed = fixed.copy()
            if slice_dims:
                panel_fixed[slice_dims[0]], panel_fixed[slice_dims[1]] = row_value, col_value
            xs, ys, q, beta = grid_values(net, dims, ranges, panel_fixed, size=41)
            picked = q.argmax(0)
            holds = 1.0 - np.take_along_axis(beta, picked[None], 0)[0]
            # Full colour where the picked option holds, paler (never white) where it would end at once.
            image = 1.0 - (0.35 + 0.65 * holds[..., None]) * (1.0 - colors[picked])
            ax = axes[i, j]
            ax.imshow(image, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), aspect="auto")
            if slice_dims:
                ax.set_title(f"{names[slice_dims[0]]} {row_value:.2g}, {names[slice_dims[1]]} {col_value:.2g}",
                             fontsize=7)
            if i == len(rows_values) - 1:
                ax.set_xlabel(labels[0], fontsize=8)
            if j == 0:
                ax.set_ylabel(labels[1], fontsize=8)
    rest = [f"{names[d]} = {fixed[d]:g}" for d in range(len(fixed)) if d not in (*dims, *slice_dims)]
    fig.legend(handles=[Patch(color=colors[w], label=f"option {w}") for w in range(num_options)],
               loc="upper right", ncol=num_options, fontsize=8)
    fig.suptitle(f"{env_id}: the option a greedy choice picks (argmax Q_Omega); paler where it would end at once (beta ~ 1)"
                 + (f"; {', '.join(rest)}" if rest else ""), fontsize=9, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path)
    plt.close(fig)


def greedy_episode_usage(agent, seed: int) -> dict:
    """Return, length, each option's share and the switches of one greedy episode."""
    from drlab.envs import make_env
    from drlab.evaluate import play_episode

    env = make_env(agent.config.env_id, max_episode_steps=agent.config.max_episode_steps)
    try:
        episode = play_episode(agent, env, seed, greedy=True, max_steps=2_000)
    finally:
        env.close()
    options = np.array(episode.options)
    return {"episode_return": episode.total, "episode_steps": int(len(options)),
            "option_share": [float(np.mean(options == w)) for w in range(agent.cfg.num_options)],
            "switches": int(np.sum(options[1:] != options[:-1]))}


def spells(options: np.ndarray) -> list[tuple[int, int, int]]:
    """(option, first step, last step) of each run of one option in ``options``."""
    bounds = np.flatnonzero(np.diff(options)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(options)] - 1
    return [(int(options[a]), int(a), int(b)) for a, b in zip(starts, ends)]


def arrival_terminations(net, observations: np.ndarray, options: np.ndarray, batch: int = 256) -> np.ndarray:
    """beta_{w_{t-1}}(s_t): the termination probability, in s_t, of the option active before it
    (NaN at the first step, where an option is chosen afresh)."""
    betas = []
    with torch.no_grad():
        for i in range(0, len(observations), batch):
            betas.append(net(obs_tensor(observations[i: i + batch], torch.device("cpu")))[1].float().numpy())
    beta = np.concatenate(betas)
    out = np.full(len(options), np.nan)
    out[1:] = beta[np.arange(1, len(options)), options[:-1]]
    return out


def plot_pixel_options(agent, out_dir: Path, seed: int) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from drlab.envs import make_env
    from drlab.evaluate import play_episode

    env_id, net = agent.config.env_id, agent.net
    num_options = net.num_options
    out_dir.mkdir(parents=True, exist_ok=True)
    env = make_env(env_id, render_mode="rgb_array", max_episode_steps=agent.config.max_episode_steps,
                   frame_stack=agent.config.frame_stack)
    try:
        episode = play_episode(agent, env, seed, greedy=True, max_steps=2_000, render=True)  # screens: 0.1-0.2 MB each
    finally:
        env.close()
    options = np.array(episode.options)
    beta = arrival_terminations(net, np.array(episode.observations), options)
    steps = np.arange(len(options))
    colors = option_colors(num_options)

    fig, (ax_opt, ax_beta) = plt.subplots(2, 1, figsize=(10, 4.5), dpi=110, sharex=True,
                                          gridspec_kw={"height_ratios": [1, 2]})
    ax_opt.imshow(options[None, :], aspect="auto", cmap=ListedColormap(colors), vmin=-0.5, vmax=num_options - 0.5,
                  extent=(-0.5, len(options) - 0.5, 0, 1), interpolation="nearest")
    ax_opt.legend(handles=[Patch(color=colors[w], label=f"option {w}") for w in range(num_options)],
                  loc="upper right", fontsize=8, ncol=num_options)
    ax_opt.set_yticks([])
    ax_opt.set_title(f"{env_id}: active option over one greedy episode (return {episode.total:.1f}, "
                     f"{len(steps)} steps)", fontsize=10)
    ax_beta.plot(steps, beta, color="black", linewidth=0.8)
    ax_beta.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    ax_beta.set_ylim(-0.02, 1.02)
    ax_beta.set_xlabel("step")
    ax_beta.set_ylabel("termination probability\nof the option in force")
    ax_beta.grid(alpha=0.3)
    fig.tight_layout()
    timeline = out_dir / "option_timeline.png"
    fig.savefig(timeline)
    plt.close(fig)

    # Screens where each option took over (top row) and where it ended (bottom row); episode.frames[t]
    # is the screen the agent saw at step t, so a spell's end is the last screen it acted on.
    runs = spells(options)
    active = [w for w in range(num_options) if any(r[0] == w for r in runs)]
    height, width = episode.frames[0].shape[:2]
    fig, axes = plt.subplots(2 * len(active), MAX_SPELLS_SHOWN, dpi=90, squeeze=False,
                             figsize=(1.9 * MAX_SPELLS_SHOWN, 2 * len(active) * (1.9 * height / width + 0.3)))
    for ax in axes.ravel():
        ax.axis("off")
    for row_pair, w in enumerate(active):
        mine = [r for r in runs if r[0] == w]
        shown = [mine[i] for i in np.linspace(0, len(mine) - 1, min(len(mine), MAX_SPELLS_SHOWN)).astype(int)]
        axes[2 * row_pair, 0].set_title(f"option {w}: {len(mine)} spells, {np.mean(options == w):.0%} of steps",
                                        loc="left", fontsize=9, color=colors[w])
        for col, (_, first, last) in enumerate(shown):
            for row, step, word in ((2 * row_pair, first, "starts"), (2 * row_pair + 1, last, "ends")):
                ax = axes[row, col]
                ax.imshow(episode.frames[step])
                ax.text(0.02, 0.98, f"{word} @ {step}", transform=ax.transAxes, va="top", fontsize=7,
                        color="white", bbox=dict(facecolor=colors[w], alpha=0.8, pad=1, linewidth=0))
    idle = [str(w) for w in range(num_options) if w not in active]
    fig.suptitle(f"{env_id}: where each option takes over and ends (one greedy episode)"
                 + (f"; never active: option {', '.join(idle)}" if idle else ""), fontsize=10)
    fig.tight_layout()
    frames_png = out_dir / "option_frames.png"
    fig.savefig(frames_png)
    plt.close(fig)

    durations = [last - first + 1 for _, first, last in runs]
    usage = {
        "episode_return": episode.total, "episode_steps": int(len(options)),
        "option_share": [float(np.mean(options == w)) for w in range(num_options)],
        "switches": int(np.sum(options[1:] != options[:-1])), "mean_spell_steps": float(np.mean(durations)),
        "maps": None, "frames": str(frames_png), "timeline": str(timeline),
        "pictures": [str(timeline), str(frames_png)],
    }
    (out_dir / "options.json").write_text(json.dumps(usage, indent=1) + "\n")
    return usage
