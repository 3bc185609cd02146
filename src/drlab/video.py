"""Video of one episode of a trained agent, as an H.264 MP4, with the active option written on
the frames of agents with options."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from drlab.envs import make_env
from drlab.errors import writing
from drlab.evaluate import play_episode


def record_video(agent, env_id: str, out: Path, seed: int, greedy: bool = True, max_steps: int = 10_000) -> dict:
    """Play one episode in a rendering env and write it as an H.264 MP4; returns its return and length."""
    # Frames are drawn off screen (rgb_array); without a display SDL's default video driver would
    # print "XDG_RUNTIME_DIR is invalid" on every call.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = make_env(env_id, render_mode="rgb_array")
    try:
        episode = play_episode(agent, env, seed, greedy, max_steps, render=True)
        fps = int(env.metadata.get("render_fps", 30))
    finally:
        env.close()
    frames = episode.frames
    if episode.options:  # per frame: the option acting in that state; the final frame: the last one
        labels = [f"option {w}" for w in episode.options]
        frames = [write_label(frame, label) for frame, label in zip(frames, labels + labels[-1:])]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.mp4")
    try:  # imageio-ffmpeg raises a bare IOError when ffmpeg dies mid-stream
        with writing(out, "the video encoder stopped"):
            encode(frames, tmp, fps)
            tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"return": episode.total, "length": episode.length, "frames": len(frames), "path": str(out)}


def encode(frames: list[np.ndarray], path: Path, fps: int) -> None:
    """RGB frames to an H.264 MP4 at ``path``. ffmpeg reports a failed write (a full disk) only in
    its log, so the finished file is read back: a file that does not hold every frame raises OSError."""
    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    # H.264 with yuv420p needs even sizes; pad by one pixel where needed.
    pad_h, pad_w = height % 2, width % 2
    writer = imageio_ffmpeg.write_frames(str(path), (width + pad_w, height + pad_h), fps=fps, codec="libx264",
                                         pix_fmt_out="yuv420p", macro_block_size=1, ffmpeg_log_level="quiet")
    writer.send(None)
    for frame in frames:
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)))
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    try:
        written = imageio_ffmpeg.count_frames_and_secs(str(path))[0]
    except (RuntimeError, OSError):
        written = 0
    if written != len(frames):
        full = shutil.disk_usage(path.parent).free < 1 << 20
        code = errno.ENOSPC if full else errno.EIO
        raise OSError(code, os.strerror(code) + ("" if full else " (the video encoder could not finish the file)"),
                      str(path))


def write_label(frame: np.ndarray, text: str) -> np.ndarray:
    """``text`` in the top-left corner of an RGB frame (white on a dark box)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((8, 6), text)
    draw.rectangle((left - 4, top - 3, right + 4, bottom + 3), fill=(20, 20, 20))
    draw.text((8, 6), text, fill=(255, 255, 255))
    return np.asarray(image)
