"""--max-episode-steps for every algorithm (a truncation, in training and in evaluation), and
`drlab record` with several episodes."""

import json

import pytest

from drlab.run.logger import read_metrics
from test_cli import assert_one_line_error, drlab

ALGOS = ["dqn", "reinforce", "actor-critic", "a2c", "ppo", "option-critic"]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.slow
def test_max_episode_steps_truncates_training_and_evaluation_episodes(tmp_path, algo):
    run_dir = tmp_path / algo
    result = drlab("train", algo, "CartPole-v1", "--max-episode-steps", 12, "--total-steps", 1500,
                   "--eval-interval", 500, "--eval-episodes", 3, "--final-eval-episodes", 5, "--no-stop-on-solve",
                   "--no-progress", "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "config.json").read_text())["max_episode_steps"] == 12
    lengths = [r["episode/length"] for r in read_metrics(run_dir) if "episode/length" in r]
    assert lengths and max(lengths) <= 12
    # CartPole's return is its length: an evaluation under the limit cannot pass 12.
    evals = [r["eval/mean"] for r in read_metrics(run_dir) if "eval/mean" in r]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert evals and max(evals) <= 12 and summary["eval"]["mean"] <= 12


@pytest.mark.slow
def test_eval_takes_the_runs_limit_unless_told_otherwise(trained_run, tmp_path):
    default = json.loads(drlab("eval", trained_run, "--episodes", 5, "--json").stdout)
    shorter = json.loads(drlab("eval", trained_run, "--episodes", 5, "--json", "--max-episode-steps", 7).stdout)
    assert shorter["mean"] == 7.0  # CartPole pays 1 per step; no agent falls before step 7
    assert default["mean"] > 7.0
    assert_one_line_error(drlab("eval", trained_run, "--max-episode-steps", 0), "--max-episode-steps must be >= 1")
    assert_one_line_error(drlab("train", "dqn", "CartPole-v1", "--max-episode-steps", 0, "--run-dir", tmp_path / "x"),
                          "max_episode_steps must be >= 1")


def test_record_writes_several_episodes_into_one_video(trained_run, tmp_path):
    import imageio_ffmpeg

    out = tmp_path / "three.mp4"
    result = drlab("record", trained_run, "--episodes", 3, "--max-steps", 20, "--out", out)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert "3 episode(s)" in line and line.count("steps)") == 3
    lengths = [int(part.split("(")[1].split()[0]) for part in line.split("returns: ")[1].split(", ")]
    assert all(length <= 20 for length in lengths)
    # Each episode: its steps plus its final frame.
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == sum(length + 1 for length in lengths)
    assert_one_line_error(drlab("record", trained_run, "--episodes", 0), "--episodes must be >= 1")


def test_the_episode_label_carries_the_return_so_far():
    import numpy as np

    from drlab.evaluate import Episode
    from drlab.video import labelled_frames

    episode = Episode(rewards=[1.0, 2.0], frames=[np.zeros((40, 200, 3), np.uint8)] * 3)
    frames = labelled_frames(episode, 1, 4)
    assert len(frames) == 3 and all(f.shape == (40, 200, 3) for f in frames)
    assert frames[0].any() and not np.array_equal(frames[0], frames[2])  # the label changes with the return


def test_a_label_wider_than_the_frame_wraps_inside_it():
    # Atari frames are 160 px wide: "step 15,000  episode 1/1  return 0" would run past the edge.
    import numpy as np

    from drlab.video import write_label

    text = "step 15,000  episode 1/1  return 0  option 3"
    labelled = write_label(np.zeros((210, 160, 3), np.uint8), text)
    assert not labelled[:, -3:].any()  # nothing drawn at the right edge
    rows = np.flatnonzero(labelled.any(axis=(1, 2)))
    assert rows.max() - rows.min() > 25  # on more than one line (one line: 16 px)
    one_line = write_label(np.zeros((40, 600, 3), np.uint8), text)
    assert np.flatnonzero(one_line.any(axis=(1, 2))).max() < 25  # a wide frame keeps one line
