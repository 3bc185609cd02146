"""Video of episodes of a trained agent, as one H.264 MP4: each frame says the episode, its return so
far and, for agents with options, the active option."""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from drlab.envs import env_spec, is_mujoco, make_env
from drlab.errors import DrlabError, writing
from drlab.evaluate import play_episode


def record_video(agent, env_id: str, out: Path, seed: int, greedy: bool = True, max_steps: int = 10_000,
                 episodes: int = 1, max_episode_steps: int | None = None, title: str = "",
                 frame_stack: int = 1) -> dict:
    """Play ``episodes`` episodes (seeds seed, seed + 1, ...; each at most ``max_steps`` steps, in an
    env truncating at ``max_episode_steps`` when given) in a rendering env and write them as one
    H.264 MP4 (``title`` starts every frame's label); returns each episode's return and length."""
    # Frames are drawn off screen (rgb_array); without a display SDL's default video driver would
    # print "XDG_RUNTIME_DIR is invalid" on every call.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = rendering_env(env_id, max_episode_steps, frame_stack)
    frames, returns, lengths = [], [], []
    try:
        fps = int(env.metadata.get("render_fps", 30))
        for k in range(episodes):
            episode = play_episode(agent, env, seed + k, greedy, max_steps, render=True)
            if not all(isinstance(f, np.ndarray) and f.ndim == 3 and f.shape[-1] == 3 for f in episode.frames[:1]):
                raise DrlabError(f"{env_id} cannot draw frames: its render() in render_mode 'rgb_array' returned "
                                 f"{type(episode.frames[0]).__name__}, not an (H, W, 3) RGB array")
            frames.extend(labelled_frames(episode, k, episodes, title))
            returns.append(episode.total)
            lengths.append(episode.length)
    finally:
        env.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.mp4")
    try:  # imageio-ffmpeg raises a bare IOError when ffmpeg dies mid-stream
        with writing(out, "the video encoder stopped"):
            encode(frames, tmp, fps)
            tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"returns": returns, "lengths": lengths, "return": returns[0], "length": lengths[0],
            "frames": len(frames), "path": str(out)}


def rendering_env(env_id: str, max_episode_steps: int | None, frame_stack: int = 1):
    """One env drawing RGB frames, or one line saying that the env (a user's, say) draws none."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # read when MuJoCo makes its first context
    no_frames = (f"{env_id} cannot draw frames for a video: a video needs an env that takes render_mode='rgb_array' "
                 "(listed in its metadata['render_modes']) and whose render() returns an (H, W, 3) RGB array")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_mode.*not in the possible render_modes")
        try:
            env = make_env(env_id, render_mode="rgb_array", max_episode_steps=max_episode_steps,
                           frame_stack=frame_stack)
        except TypeError as err:
            if "render_mode" in str(err):  # a constructor without render_mode
                raise DrlabError(no_frames) from None
            raise
    if "rgb_array" not in env.metadata.get("render_modes", ()):
        env.close()
        raise DrlabError(no_frames)
    if is_mujoco(env_spec(env_id)):
        check_offscreen_gl(env, env_id)
    return env


# MuJoCo draws frames through an OpenGL context; without a display that is EGL (Debian: libegl1 and a
# driver, libegl-mesa0) or OSMesa (libosmesa6). drlab picks EGL unless the user set MUJOCO_GL.
MUJOCO_GL_PACKAGES = {"egl": "libegl1 libegl-mesa0", "osmesa": "libosmesa6", "glfw": "libglfw3 and a display"}


def check_offscreen_gl(env, env_id: str) -> None:
    """Draw one frame, or say in one line which Debian package gives MuJoCo its offscreen OpenGL."""
    backend = os.environ["MUJOCO_GL"]
    try:
        with warnings.catch_warnings():  # GLFW warns before it fails; the failure is the line below
            warnings.simplefilter("ignore")
            env.reset(seed=0)
            env.render()
    except Exception as err:  # noqa: BLE001 (PyOpenGL fails with ImportError, AttributeError or its own errors)
        env.close()
        package = MUJOCO_GL_PACKAGES.get(backend, "an OpenGL for it")
        raise DrlabError(f"{env_id} draws its video frames with OpenGL off screen (MUJOCO_GL={backend}), which failed "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no message'}); "
                         f"install it (Debian: apt install {package})"
                         + (" or set MUJOCO_GL=osmesa (Debian: libosmesa6)" if backend == "egl" else "")) from None


def labelled_frames(episode, index: int, episodes: int, title: str = "") -> list[np.ndarray]:
    """The episode's frames, each with "episode k/N  return R" (the raw return up to that frame) and,
    for agents with options, the option acting in that state (the final frame: the last one)."""
    returns_so_far = np.concatenate([[0.0], np.cumsum(episode.rewards)])
    options = episode.options + episode.options[-1:] if episode.options else None
    labelled = []
    for t, frame in enumerate(episode.frames):
        label = f"{title}  " * bool(title) + f"episode {index + 1}/{episodes}  return {returns_so_far[t]:g}"
        if options:
            label += f"  option {options[t]}"
        labelled.append(write_label(frame, label))
    return labelled


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
    """``text`` in the top-left corner of an RGB frame (white on a dark box), its fields (separated by
    two spaces) wrapped onto more lines where one line would run past the frame's edge (Atari's 160 px)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    first, *fields = text.split("  ")
    lines = [first]
    for field in fields:
        joined = f"{lines[-1]}  {field}"
        if draw.textlength(joined) + 16 > frame.shape[1]:
            lines.append(field)
        else:
            lines[-1] = joined
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((8, 6), text)
    draw.rectangle((left - 4, top - 3, right + 4, bottom + 3), fill=(20, 20, 20))
    draw.multiline_text((8, 6), text, fill=(255, 255, 255))
    return np.asarray(image)
