"""Greedy or stochastic evaluation over N episodes, and video of one episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from drlab.envs import EpisodeStats, game_signals, make_env, make_vec_env

MAX_EVAL_ENVS = 16


def evaluate(agent, env_id: str, episodes: int, seed: int, greedy: bool = True) -> dict:
    """Mean and std of raw returns over exactly ``episodes`` episodes.

    The episodes run on up to 16 envs at once. Each env is given a fixed quota of episodes
    up front; taking "the first N episodes to finish" instead would favour short episodes.
    """
    n = min(episodes, MAX_EVAL_ENVS)
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    envs = make_vec_env(env_id, n)
    try:
        obs, _ = envs.reset(seed=seed)
        stats = EpisodeStats(n)
        finished = np.zeros(n, dtype=np.int64)
        prev_done = np.zeros(n, dtype=bool)
        starts = np.ones(n, dtype=bool)  # envs whose observation begins an episode (agents with options care)
        returns: list[float] = []
        while (finished < quota).any():
            obs, rewards, terminated, truncated, info = envs.step(agent.act(obs, greedy=greedy, starts=starts))
            done = terminated | truncated
            valid = ~prev_done
            starts = prev_done  # this step was an autoreset step: obs is a reset observation
            rewards, game_over, game_step = game_signals(rewards, done, valid, info)
            ended = np.flatnonzero(game_over & game_step)
            episode_returns, _ = stats.update(rewards, game_over, game_step)
            for env_index, ret in zip(ended, episode_returns):
                if finished[env_index] < quota[env_index]:
                    returns.append(float(ret))
                    finished[env_index] += 1
            prev_done = done
    finally:
        envs.close()
    return {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "episodes": len(returns), "greedy": greedy}


def record_video(agent, env_id: str, out: Path, seed: int, greedy: bool = True, max_steps: int = 10_000) -> dict:
    """Play one episode in a rendering env and write it as an H.264 MP4; returns its return and length."""
    import imageio_ffmpeg

    env = make_env(env_id, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        labels: list[str] = []  # per frame, for agents with options: the option acting in that state
        total, steps = 0.0, 0
        for steps in range(1, max_steps + 1):
            action = agent.act(obs[None], greedy=greedy, starts=np.array([steps == 1]))[0]
            if hasattr(agent, "options"):
                labels.append(f"option {int(agent.options[0])}")
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            frames.append(env.render())
            if terminated or truncated:
                break
        fps = int(env.metadata.get("render_fps", 30))
    finally:
        env.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    # H.264 with yuv420p needs even sizes; pad by one pixel where needed.
    pad_h, pad_w = height % 2, width % 2
    tmp = out.with_name(f".{out.name}.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(str(tmp), (width + pad_w, height + pad_h), fps=fps,
                                         codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1)
    writer.send(None)
    if labels:
        labels.append(labels[-1])  # the final frame: the last option that acted
        frames = [write_label(frame, label) for frame, label in zip(frames, labels)]
    for frame in frames:
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)))
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    tmp.replace(out)
    return {"return": total, "length": steps, "frames": len(frames), "path": str(out)}


def write_label(frame: np.ndarray, text: str) -> np.ndarray:
    """``text`` in the top-left corner of an RGB frame (white on a dark box)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((8, 6), text)
    draw.rectangle((left - 4, top - 3, right + 4, bottom + 3), fill=(20, 20, 20))
    draw.text((8, 6), text, fill=(255, 255, 255))
    return np.asarray(image)
