"""MuJoCo (the drlab[mujoco] extra): the four locomotion envs train with SAC/TD3 through drlab's own
env factory, a run's video has real frames drawn off screen (EGL), and a missing OpenGL is one line
naming the Debian package.

Without EGL the video test is skipped with one line saying which packages give it (in pytest's
summary), except where DRLAB_REQUIRE_EGL is set (.ci/run sets it), where it fails: in CI it must run."""

import ctypes
import os

import imageio_ffmpeg
import numpy as np
import pytest

from drlab.envs import make_vec_env
from test_cli import assert_one_line_error, drlab as run_drlab

pytest.importorskip("mujoco", reason="drlab[mujoco] is not installed (make install installs it)")

ENVS = {"HalfCheetah-v5": (17, 6), "Hopper-v5": (11, 3), "Walker2d-v5": (17, 6), "Ant-v5": (105, 8)}
TINY = ["--learning-starts", "50", "--batch-size", "16", "--hidden", "16", "16", "--no-progress",
        "--eval-interval", "0", "--final-eval-episodes", "1", "--max-episode-steps", "60"]


@pytest.mark.parametrize("env_id", ENVS)
def test_each_locomotion_env_steps_in_drlab_vector_envs(env_id):
    obs_dim, action_dim = ENVS[env_id]
    envs = make_vec_env(env_id, 2, seed=0, training=True)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, obs_dim) and envs.single_action_space.shape == (action_dim,)
        obs, rewards, terminated, truncated, _ = envs.step(np.zeros((2, action_dim), np.float32))
        assert obs.shape == (2, obs_dim) and np.isfinite(rewards).all()
    finally:
        envs.close()


def has_egl() -> bool:
    try:  # the EGL loader and Mesa's driver behind it
        ctypes.CDLL("libEGL.so.1")
        ctypes.CDLL("libEGL_mesa.so.0")
    except OSError:
        return False
    return True


@pytest.fixture
def egl():
    if not has_egl():
        message = "no EGL for MuJoCo's off-screen frames: apt-get install libegl1 libegl-mesa0 (the MuJoCo video test)"
        if os.environ.get("DRLAB_REQUIRE_EGL"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("algo, env_id", [("sac", "HalfCheetah-v5"), ("td3", "Hopper-v5")])
@pytest.mark.slow
def test_trains_and_records_a_video_with_frames_drawn_off_screen(algo, env_id, tmp_path, egl):
    run_dir = tmp_path / "run"
    trained = run_drlab("train", algo, env_id, "--run-dir", run_dir, "--total-steps", "120", *TINY)
    assert trained.returncode == 0, trained.stderr
    video = tmp_path / "v.mp4"
    recorded = run_drlab("record", run_dir, "--out", video, "--max-steps", "15")
    assert recorded.returncode == 0, recorded.stderr
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(meta["size"][1], meta["size"][0], 3) for f in reader]
    assert len(frames) == 16  # the first observation and 15 steps
    assert all(frame.std() > 10 for frame in frames)  # a scene, not a blank context


@pytest.mark.slow
def test_a_missing_offscreen_opengl_is_one_line_naming_the_package(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_drlab("train", "sac", "HalfCheetah-v5", "--run-dir", run_dir, "--total-steps", "60", *TINY)
    assert trained.returncode == 0, trained.stderr
    # GLFW needs a display, and there is none here: the same failure as EGL without its library
    headless = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = run_drlab("record", run_dir, "--out", tmp_path / "v.mp4", "--max-steps", "5",
                       env={**headless, "MUJOCO_GL": "glfw"})
    assert_one_line_error(result, "HalfCheetah-v5 draws its video frames with OpenGL off screen (MUJOCO_GL=glfw)",
                          "Debian: apt install")
    assert not (tmp_path / "v.mp4").exists()
