"""Four Rooms (Sutton, Precup and Singh 1999), the grid on which Bacon, Harb and Precup (2017) show
Option-Critic's temporal abstraction: four rooms joined by one-cell doorways, 104 free cells.

- Observation: the index of the agent's cell, ``Discrete(104)``, counted row by row over the free cells.
- Actions: up, down, left, right. Each fails with probability 1/3: the agent then moves in one of the
  three other directions, chosen uniformly. A move into a wall leaves the agent where it is.
- Reward: +1 on reaching the goal (the episode then terminates), 0 otherwise.
- Start: uniform over the free cells other than the goal.
- Goal: the east doorway (between the two rooms on the right, cell 62) unless ``goal`` names another
  cell (an index or a (row, col) pair). With ``goal_change_episodes=N`` the goal moves after N episodes
  (resets) to a cell of the lower-right room (the paper's transfer experiment). That cell is drawn at the
  seeded reset from a generator of its own, so it depends on the seed only, not on what the agent did:
  the same seed gives every learner the same moved goal. Each env counts its own episodes (in a vector
  env each copy moves its goal after its own N); a new env object, as an evaluation or a resumed run
  makes, starts again with the first goal.
- Registered as ``drlab/FourRooms-v0`` with an episode cap of 1000 steps (a truncation), and as
  ``drlab/FourRoomsTransfer-v0``: the same with the goal moved after 1000 episodes.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

LAYOUT = """\
wwwwwwwwwwwww
w     w     w
w     w     w
w           w
w     w     w
w     w     w
ww wwww     w
w     www www
w     w     w
w     w     w
w           w
w     w     w
wwwwwwwwwwwww"""

WALLS = np.array([[c == "w" for c in row] for row in LAYOUT.splitlines()])
CELLS = [(int(r), int(c)) for r, c in zip(*np.nonzero(~WALLS))]  # row-major: index -> (row, col)
INDEX = {cell: i for i, cell in enumerate(CELLS)}
DOORWAYS = ((3, 6), (6, 2), (7, 9), (10, 6))  # the cells joining two rooms
EAST_DOORWAY = (7, 9)
LOWER_RIGHT_ROOM = tuple(cell for cell in CELLS if cell[0] >= 8 and cell[1] >= 7)
MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])  # up, down, left, right
SLIP = 1.0 / 3.0
EPISODE_CAP = 1000


def cell_index(cell: int | tuple[int, int] | list[int]) -> int:
    """A free cell's index from its index or its (row, col); a ValueError for anything else."""
    if isinstance(cell, (tuple, list)):
        if tuple(cell) not in INDEX:
            raise ValueError(f"({', '.join(map(str, cell))}) is not a free cell of Four Rooms (a wall or off the grid)")
        return INDEX[tuple(cell)]
    if not 0 <= int(cell) < len(CELLS):
        raise ValueError(f"Four Rooms has free cells 0..{len(CELLS) - 1}, not {cell}")
    return int(cell)


class FourRooms(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(self, goal: int | tuple[int, int] = EAST_DOORWAY, goal_change_episodes: int = 0,
                 render_mode: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"Four Rooms renders rgb_array only, not {render_mode}")
        if goal_change_episodes < 0:
            raise ValueError(f"goal_change_episodes must be >= 0 (0: the goal never moves), not {goal_change_episodes}")
        self.observation_space = gym.spaces.Discrete(len(CELLS))
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.goal = cell_index(goal)
        self.goal_change_episodes = goal_change_episodes
        self.render_mode = render_mode
        self.episodes = 0  # episodes begun (resets) since the env was made
        self.moved_goal = None  # where the goal goes after goal_change_episodes (drawn at the seeded reset)
        self.cell = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self.moved_goal is None:
            # The moved goal's own stream: the slips and starts that draw from np_random do not change it.
            goal_rng = np.random.default_rng([seed if seed is not None else int(self.np_random.integers(2**62)), 1])
            self.moved_goal = INDEX[LOWER_RIGHT_ROOM[goal_rng.integers(len(LOWER_RIGHT_ROOM))]]
        self.episodes += 1
        if self.goal_change_episodes and self.episodes == self.goal_change_episodes + 1:
            self.goal = self.moved_goal
        start = int(self.np_random.integers(len(CELLS) - 1))
        self.cell = start + (start >= self.goal)  # uniform over the cells other than the goal
        return self.cell, {"goal": self.goal}

    def step(self, action):
        action = int(action)
        if self.np_random.random() < SLIP:  # a random other direction
            action = (action + 1 + int(self.np_random.integers(3))) % 4
        row, col = np.array(CELLS[self.cell]) + MOVES[action]
        if not WALLS[row, col]:
            self.cell = INDEX[(int(row), int(col))]
        reached = self.cell == self.goal
        return self.cell, float(reached), reached, False, {"goal": self.goal}

    def render(self) -> np.ndarray:
        """The grid, 16 pixels a cell: walls dark, the goal green, the agent red."""
        image = np.where(WALLS[..., None], 40, 235).astype(np.uint8).repeat(3, axis=-1)
        image[CELLS[self.goal]] = (60, 170, 75)
        if self.cell is not None:
            image[CELLS[self.cell]] = (215, 50, 50)
        return image.repeat(16, axis=0).repeat(16, axis=1)


def register() -> None:
    """Register the two ids with Gymnasium (idempotent)."""
    for env_id, kwargs in (("drlab/FourRooms-v0", {}), ("drlab/FourRoomsTransfer-v0", {"goal_change_episodes": 1000})):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="drlab.envs.four_rooms:FourRooms", max_episode_steps=EPISODE_CAP,
                         kwargs=kwargs)
