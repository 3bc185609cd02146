"""Replay-based algorithms on frames through the CLI: DQN's frame replay in checkpoints and on
resume, Option-Critic with the CNN body on Atari and VizDoom, its pictures and video."""

import json

import pytest
import torch

from test_cli import drlab

pytest.importorskip("ale_py")
ATARI = "BreakoutNoFrameskip-v4"
SPACE_INVADERS = "SpaceInvadersNoFrameskip-v4"  # no FIRE needed to start: an untrained agent's game ends soon
DOOM = "VizdoomDefendCenter-v1"
SHORT = ["--num-envs", "2", "--eval-interval", "0", "--final-eval-episodes", "0", "--no-progress"]


def checkpoint(run_dir):
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)


@pytest.mark.parametrize("save_replay", ["auto", "true"])
@pytest.mark.slow
def test_dqn_pixel_checkpoint_and_resume_say_what_became_of_the_replay(tmp_path, save_replay):
    run_dir = tmp_path / "run"
    result = drlab("train", "dqn", ATARI, "--total-steps", "120", "--learning-starts", "40", "--batch-size", "8",
                   "--buffer-size", "100", "--n-step", "3", "--replay", "per", "--save-replay", save_replay,
                   "--run-dir", run_dir, *SHORT)
    assert result.returncode == 0, result.stderr
    learner = checkpoint(run_dir)["learner"]
    if save_replay == "auto":  # frames: not saved by default, the checkpoint stays small
        assert "buffer" not in learner
        # weights, target network and Adam moments: ~27 MB (with 100 transitions as stacks: +5.6 MB)
        assert (run_dir / "checkpoints" / "latest.pt").stat().st_size < 30 * 2**20
    else:  # saved compactly: single frames, about one per transition, and 4-index handles
        observations = learner["buffer"]["observations"]
        assert observations["obs"].shape == (100, 4)
        assert 100 <= len(observations["frames"]) <= 100 + 40
    (run_dir / "summary.json").unlink()  # resume the finished run: it restores, saves and evaluates
    result = drlab("resume", run_dir)
    assert result.returncode == 0, result.stderr
    if save_replay == "auto":
        assert "the checkpoint holds no replay (save_replay auto: not for frames): it refills from empty, " \
               "and updates wait until it holds 40 transitions" in result.stderr
    else:
        assert "restored the replay from the checkpoint (100 transitions)" in result.stderr


@pytest.mark.slow
def test_dqn_pixel_runs_every_replay_variant(tmp_path):
    for replay in ("online", "uniform", "symlog-softmax"):
        result = drlab("train", "dqn", ATARI, "--total-steps", "60", "--learning-starts", "20", "--batch-size", "8",
                       "--buffer-size", "40", "--sort-interval", "10", "--replay", replay,
                       "--run-dir", tmp_path / replay, *SHORT)
        assert result.returncode == 0, (replay, result.stderr)


@pytest.mark.parametrize("env_id", [SPACE_INVADERS, DOOM])
@pytest.mark.slow
def test_option_critic_trains_on_frames_and_draws_its_options(tmp_path, env_id):
    if env_id == DOOM:
        pytest.importorskip("vizdoom")
    run_dir = tmp_path / "run"
    result = drlab("train", "option-critic", env_id, "--total-steps", "96", "--learning-starts", "32",
                   "--batch-size", "8", "--update-interval", "2", "--buffer-size", "64", "--num-options", "3", "--log-interval", "32",
                   "--max-episode-steps", "100",  # the evaluation, pictures and video play capped episodes
                   "--run-dir", run_dir, *SHORT[:-3], "--final-eval-episodes", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("train/critic_loss" in row for row in metrics)

    result = drlab("plot", "options", run_dir, "--out", tmp_path / "pictures")
    assert result.returncode == 0, result.stderr
    usage = json.loads((tmp_path / "pictures" / "options.json").read_text())
    assert usage["maps"] is None and len(usage["option_share"]) == 3
    assert abs(sum(usage["option_share"]) - 1) < 1e-6
    for name in ("option_timeline.png", "option_frames.png"):
        assert (tmp_path / "pictures" / name).stat().st_size > 10_000
    assert "option_frames.png" in result.stdout

    result = drlab("plot", "options", run_dir, "--dims", "0", "1")
    assert result.returncode != 0 and "this run sees frames" in result.stderr

    result = drlab("record", run_dir, "--out", tmp_path / "video.mp4")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "video.mp4").stat().st_size > 1_000
