"""Why does a VizDoom agent's episode end? Per-episode kills, shots and ammo of a trained run.

    python benchmarks/doom_episodes.py RUN_DIR [--episodes 12] [--stochastic]

Plays greedy (or sampled) episodes with the run's latest weights on the training preprocessing and
prints, for each, the raw return, its length in agent steps, how often the agent chose ATTACK, and
the ammo and health the game reported on the agent's last step. For DefendCenter (26 bullets, +1 per
kill, -1 for dying) it shows whether the agent dies with ammo left (it misses monsters that reach it)
or runs dry first (it wastes shots).
"""

from __future__ import annotations

import argparse
import statistics

import gymnasium as gym
import vizdoom as vzd
import vizdoom.gymnasium_wrapper  # noqa: F401 - registers the Vizdoom*-v1 ids

from drlab.run.rundir import load_agent
from drlab.envs.vizdoom import make_vizdoom_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--stochastic", action="store_true")
    args = parser.parse_args()

    agent = load_agent(args.run_dir)
    env = make_vizdoom_env(gym.spec(agent.config.env_id))
    game = env.unwrapped.game
    buttons = game.get_available_buttons()
    attack = [i for i, combo in enumerate(env.unwrapped.button_map)
              if combo[buttons.index(vzd.Button.ATTACK)] and combo.sum() == 1][0]
    rows = []
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=args.seed + episode)
        ret, steps, shots = 0.0, 0, 0
        while True:
            ammo = game.get_game_variable(vzd.GameVariable.AMMO2)
            health = game.get_game_variable(vzd.GameVariable.HEALTH)
            action = int(agent.act(obs[None], greedy=not args.stochastic)[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            ret, steps, shots = ret + reward, steps + 1, shots + (action == attack)
            if terminated or truncated:
                break
        end = "died" if terminated else "timeout"
        rows.append((ret, steps, shots, ammo, health))
        print(f"episode {episode:2d}: return {ret:5.1f}  steps {steps:4d}  ATTACK chosen {shots:3d}  "
              f"last step: ammo {ammo:4.0f} health {health:4.0f}  ({end})")
    env.close()
    mean = [statistics.mean(col) for col in zip(*rows)]
    print(f"mean: return {mean[0]:.2f}, steps {mean[1]:.1f}, ATTACK chosen {mean[2]:.1f}, "
          f"ammo left {mean[3]:.1f}, health left {mean[4]:.1f}")


if __name__ == "__main__":
    main()
