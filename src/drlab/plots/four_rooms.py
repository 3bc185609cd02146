"""What an Option-Critic agent learned on Four Rooms (`drlab plot options RUN` on a drlab/FourRooms
run), drawn on the grid as Bacon et al. (2017, Figure 3) draw it.

four_rooms_options.png, one row per option: its termination probability beta_w(s) in each cell, its
greedy action (arrows, darker where the intra-option policy is surer), and the cells where the greedy
choice of options, argmax_w Q_Omega(s, w), picks it. options.json adds the doorway ratio of each
option: the mean beta_w over the doorway cells and the cells next to them, divided by its mean over
the other cells (above 1: the option tends to end at the doorways, as the paper shows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from drlab.envs.four_rooms import CELLS, DOORWAYS, MOVES, WALLS, FourRooms
from drlab.nets import obs_tensor

ARROWS = ("^", "v", "<", ">")  # up, down, left, right, as four_rooms.MOVES


def is_four_rooms(env_id: str) -> bool:
    return env_id.split(":")[-1].startswith("drlab/FourRooms")


def near_doorways() -> np.ndarray:
    """Mask over the cell indices: the doorways and the free cells next to them."""
    cells = set(DOORWAYS)
    for row, col in DOORWAYS:
        cells |= {(row + dr, col + dc) for dr, dc in MOVES if not WALLS[row + dr, col + dc]}
    return np.array([cell in cells for cell in CELLS])


def doorway_ratios(beta: np.ndarray) -> list[float]:
    """Per option (rows of ``beta``, cells in columns): mean beta near the doorways / mean beta elsewhere."""
    near = near_doorways()
    return [float(b[near].mean() / max(b[~near].mean(), 1e-12)) for b in beta]


@torch.no_grad()
def cell_values(net, device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q_Omega (cells, options), beta (options, cells) and the intra-option policies (options, cells, actions)
    of every cell, the observation being the cell's index."""
    q, beta, logits = net(obs_tensor(np.arange(len(CELLS), dtype=np.float32)[:, None], device))
    return q.float().cpu().numpy(), beta.float().cpu().numpy().T, torch.softmax(logits.float(), -1).cpu().numpy().transpose(1, 0, 2)


def goal_of(config, episodes: int | None) -> int | None:
    """The goal cell of the run's env after ``episodes`` training episodes. A goal that moves depends on
    the seed only (env 0 is reset with the run's seed); None where that cannot be known (several envs,
    each with its own count; the count unknown)."""
    from drlab.envs import env_spec

    kwargs = dict(env_spec(config.env_id).kwargs)
    env = FourRooms(**kwargs)
    env.reset(seed=config.seed)
    moves = kwargs.get("goal_change_episodes", 0)
    if not moves:
        return env.goal
    if episodes is None or config.num_envs != 1:
        return None
    return env.moved_goal if episodes >= moves else env.goal


def grid(values: np.ndarray) -> np.ndarray:
    """Per-cell values on the 13x13 grid, NaN on the walls."""
    out = np.full(WALLS.shape, np.nan)
    for (row, col), value in zip(CELLS, values):
        out[row, col] = value
    return out


def plot_four_rooms_options(agent, out_dir: Path, episodes: int | None) -> dict:
    """Draw four_rooms_options.png of a Four Rooms run whose training saw ``episodes`` episodes; returns
    what options.json holds of it (the doorway ratios, each option's share of the greedy choice, the goal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    q, beta, policy = cell_values(agent.net, agent.device)
    num_options = beta.shape[0]
    chosen = q.argmax(1)
    goal_index = goal_of(agent.config, episodes)
    walls = np.where(WALLS, 1.0, np.nan)
    fig, axes = plt.subplots(num_options, 3, figsize=(10, 3.3 * num_options), dpi=100, squeeze=False)
    ratios = doorway_ratios(beta)
    for w in range(num_options):
        row = axes[w]
        image = row[0].imshow(grid(beta[w]), cmap="magma", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=row[0], fraction=0.046, pad=0.04)
        row[0].set_title(f"option {w}: termination beta (doorways x{ratios[w]:.2f})", fontsize=9)
        row[1].imshow(grid(np.zeros(len(CELLS))), cmap="Greys", vmin=0, vmax=1)
        for (r, c), probs in zip(CELLS, policy[w]):
            a = int(probs.argmax())
            row[1].text(c, r, ARROWS[a], ha="center", va="center", fontsize=9,
                        alpha=float(np.clip((probs[a] - 0.25) / 0.75, 0.15, 1.0)))
        row[1].set_title(f"option {w}: greedy action", fontsize=9)
        row[2].imshow(grid((chosen == w).astype(float)), cmap=ListedColormap(["#eeeeee", "#3b75af"]), vmin=0, vmax=1)
        row[2].set_title(f"option {w}: where the greedy choice picks it ({np.mean(chosen == w):.0%})", fontsize=9)
        for ax in row:
            ax.imshow(walls, cmap=ListedColormap(["#333333"]), vmin=0, vmax=1)
            if goal_index is not None:
                ax.plot(CELLS[goal_index][1], CELLS[goal_index][0], marker="*", color="#2ca02c", markersize=12,
                        markeredgecolor="k")
            ax.set_xticks([])
            ax.set_yticks([])
    where = "star: the goal" if goal_index is not None else "the goal moved, where to is not known for several envs"
    fig.suptitle(f"{agent.config.env_id}: what each option learned ({where})", fontsize=10)
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "four_rooms_options.png"
    fig.savefig(path)
    plt.close(fig)
    usage = {"pictures": [str(path)], "doorway_termination_ratio": ratios, "choice_share": [float(np.mean(chosen == w)) for w in range(num_options)],
             "mean_termination": [float(b.mean()) for b in beta],
             "goal": list(CELLS[goal_index]) if goal_index is not None else None}
    return usage
