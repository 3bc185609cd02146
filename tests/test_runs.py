"""Run directories, determinism, checkpoints, resume, and the eval / record / plot commands."""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import drlab
from drlab.algos import ALGORITHMS, get_algo
from drlab.run.checkpoint import load_checkpoint
from drlab.run.logger import read_metrics
from test_cli import drlab as drlab_cli

DRLAB = [sys.executable, "-m", "drlab.cli"]
SUMMARY_KEYS = {"algo", "env_id", "seed", "steps", "train_seconds", "sps", "eval", "threshold", "solved"}


def short_run(run_dir, **kw):
    settings = dict(total_steps=2500, learning_starts=300, eval_interval=1000, eval_episodes=2,
                    final_eval_episodes=3, progress=False, log_interval=250, run_dir=str(run_dir))
    settings.update(kw)
    return drlab.train("dqn", "CartPole-v1", **settings)


def comparable(records):
    """Metrics without wall-clock fields."""
    return [{k: v for k, v in r.items() if k != "time_s" and not k.startswith("perf/")} for r in records]


def test_run_directory_contract(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "checkpoints", "tb"} <= names
    summary = json.loads((trained_run / "summary.json").read_text())
    assert set(summary) == SUMMARY_KEYS
    assert set(summary["eval"]) == {"mean", "std", "episodes", "greedy"}
    assert summary["eval"]["episodes"] == 5 and summary["eval"]["greedy"] is True
    assert summary["threshold"] == 475.0 and summary["steps"] == 3000
    config = json.loads((trained_run / "config.json").read_text())
    assert config["algo"] == "dqn" and config["env_id"] == "CartPole-v1" and config["seed"] == 3
    records = read_metrics(trained_run)
    assert all("step" in r and "time_s" in r for r in records)
    keys = set().union(*records)
    for key in ("episode/return", "episode/reward_mean_100", "eval/mean", "train/loss", "train/q_mean",
                "train/td_error_abs", "train/epsilon", "train/grad_norm", "perf/sps"):
        assert key in keys, key
    assert any(f.name.startswith("events.out.tfevents") for f in (trained_run / "tb").iterdir())


def test_tensorboard_has_the_same_curves(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(trained_run / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"episode/return", "episode/reward_mean_100", "eval/mean", "train/loss", "perf/sps"} <= tags
    returns = [e.value for e in acc.Scalars("episode/return")]
    logged = [r["episode/return"] for r in read_metrics(trained_run) if "episode/return" in r]
    np.testing.assert_allclose(returns, logged, rtol=1e-6)


def test_same_seed_same_metrics(tmp_path):
    a = short_run(tmp_path / "a", seed=11)
    b = short_run(tmp_path / "b", seed=11)
    c = short_run(tmp_path / "c", seed=12)
    assert comparable(read_metrics(a.dir)) == comparable(read_metrics(b.dir))
    assert comparable(read_metrics(a.dir)) != comparable(read_metrics(c.dir))
    assert a.summary["eval"] == b.summary["eval"]
    wa = load_checkpoint(a.dir / "checkpoints" / "latest.pt")["learner"]["agent"]
    wb = load_checkpoint(b.dir / "checkpoints" / "latest.pt")["learner"]["agent"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("replay", ["per", "symlog-softmax"])
def test_checkpoint_holds_everything_and_loads_back(tmp_path, replay):
    result = short_run(tmp_path / "r", replay=replay, total_steps=1500)
    ckpt = load_checkpoint(result.dir / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 1500 and ckpt["algo"] == "dqn"
    # The checkpoint's clock is the summary's, not counted twice (a resumed run continues from it).
    assert ckpt["train_seconds"] == pytest.approx(result.summary["train_seconds"], abs=0.05)
    assert {"agent", "target", "optimizer", "buffer"} <= set(ckpt["learner"])
    assert ckpt["learner"]["buffer"]["size"] > 1000
    assert {"numpy", "torch", "agent"} <= set(ckpt["rng"])
    agent = drlab.load(result.dir)
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    # The loaded agent acts exactly as the trained one's saved weights say.
    from drlab.nets import mlp

    q = mlp(4, tuple(agent.config.hidden), 2)
    q.load_state_dict(ckpt["learner"]["agent"])
    with torch.no_grad():
        expected = q(torch.from_numpy(obs)).argmax(1).numpy()
    np.testing.assert_array_equal(agent.act(obs, greedy=True), expected)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_a_stop_signal_writes_a_checkpoint_and_resume_finishes_the_run(stop_signal, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [*DRLAB, "train", "dqn", "CartPole-v1", "--run-dir", str(run_dir), "--total-steps", "400000",
           "--learning-starts", "1000000", "--eval-interval", "0", "--log-interval", "500", "--no-progress",
           "--final-eval-episodes", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = run_dir / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) > 5):
        time.sleep(0.2)
    proc.send_signal(stop_signal)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "drlab resume" in err and "Traceback" not in err
    ckpt = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    stopped_at = ckpt["step"]
    assert 0 < stopped_at < 400000
    assert not (run_dir / "summary.json").exists()
    logged_steps = [r["step"] for r in read_metrics(run_dir)]
    assert max(logged_steps) <= stopped_at

    # Shorten the remaining work for the test by editing the saved config, as a user could.
    config = json.loads((run_dir / "config.json").read_text())
    config["total_steps"] = stopped_at + 3000
    (run_dir / "config.json").write_text(json.dumps(config))
    r = drlab_cli("resume", run_dir)
    assert r.returncode == 0, r.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == stopped_at + 3000
    assert summary["train_seconds"] >= ckpt["train_seconds"]
    steps = [r["step"] for r in read_metrics(run_dir)]
    assert steps == sorted(steps), "metrics stay in step order across the resume"


def test_resume_continues_with_the_saved_state(tmp_path):
    """A run resumed from a checkpoint starts from exactly the saved weights, optimizer and buffer."""
    from drlab.run.rundir import config_from_json
    from drlab.run.runner import Run
    from drlab.run.checkpoint import read_json

    result = short_run(tmp_path / "r", total_steps=1500, final_eval_episodes=0)
    (result.dir / "summary.json").unlink()
    algo, cfg = config_from_json(read_json(result.dir / "config.json", "run config"))
    ckpt = load_checkpoint(result.dir / "checkpoints" / "latest.pt")
    run = Run(algo, cfg, result.dir, checkpoint=ckpt)
    assert run.step == 1500 and run.episodes.count == ckpt["episodes"]
    state = run.learner.state_dict()
    for key, tensor in ckpt["learner"]["agent"].items():
        assert torch.equal(state["agent"][key], tensor)
    assert state["buffer"]["size"] == ckpt["learner"]["buffer"]["size"]
    np.testing.assert_array_equal(state["buffer"]["observations"]["obs"].numpy(), ckpt["learner"]["buffer"]["observations"]["obs"].numpy())
    assert run.rng.bit_generator.state == ckpt["rng"]["numpy"]
    run.envs.close()


@pytest.mark.slow
def test_eval_json_record_and_plot(trained_run, tmp_path):
    r = drlab_cli("eval", trained_run, "--episodes", "4", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(result) == {"mean", "std", "episodes", "greedy"} and result["episodes"] == 4 and result["greedy"]
    r = drlab_cli("eval", trained_run, "--episodes", "3", "--stochastic", "--json")
    assert json.loads(r.stdout)["greedy"] is False

    out = tmp_path / "greedy.mp4"
    r = drlab_cli("record", trained_run, "--out", out)
    assert r.returncode == 0, r.stderr
    import imageio_ffmpeg

    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames >= 10 and seconds > 0
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert tuple(meta["size"]) == (600, 400)  # CartPole's native render size
    frame = np.frombuffer(next(reader), dtype=np.uint8)
    assert frame.std() > 0

    png = tmp_path / "curves.png"
    r = drlab_cli("plot", trained_run, trained_run, "--out", png)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_labels_tell_apart_runs_of_the_same_algorithm_env_and_seed(trained_run, tmp_path):
    from drlab.plots.curves import run_labels
    copies = [tmp_path / "before-fix", tmp_path / "after-fix"]
    for d in copies:
        d.mkdir()
        (d / "config.json").write_text((trained_run / "config.json").read_text())
    one = run_labels([trained_run])[0]
    assert trained_run.name not in one
    assert run_labels(copies) == [f"{one} (before-fix)", f"{one} (after-fix)"]


def test_same_seed_eval_is_reproducible(trained_run):
    agent = drlab.load(trained_run)
    from drlab.evaluate import evaluate

    a = evaluate(agent, "CartPole-v1", 6, seed=5)
    b = evaluate(agent, "CartPole-v1", 6, seed=5)
    assert a == b and a["episodes"] == 6


@pytest.mark.parametrize("algo", ["dqn", "option-critic"])
def test_runs_from_before_the_frame_replay_still_resume(tmp_path, algo):
    """A config.json without the settings added since (save_replay; bf16 for Option-Critic) and a
    checkpoint whose replay holds obs and next_obs at the top level, as drlab wrote them then."""
    from drlab.run.runner import resume

    run = drlab.train(algo, "CartPole-v1", total_steps=1_200, learning_starts=500, eval_interval=0,
                      final_eval_episodes=0, progress=False, run_dir=str(tmp_path / "run"))
    config = json.loads((run.dir / "config.json").read_text())
    for name in ("save_replay", "bf16") if algo == "option-critic" else ("save_replay",):
        del config[name]
    (run.dir / "config.json").write_text(json.dumps(config))
    path = run.dir / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint(path)
    buffer = ckpt["learner"]["buffer"]
    buffer.update(buffer.pop("observations"))
    torch.save(ckpt, path)
    (run.dir / "summary.json").unlink()
    result = resume(run.dir)
    assert result.summary["steps"] == 1_200
    assert load_checkpoint(path)["learner"]["buffer"]["size"] == buffer["size"]


@pytest.mark.parametrize("algo", list(ALGORITHMS))
@pytest.mark.slow
def test_every_algorithm_logs_where_its_wall_time_goes(algo, tmp_path):
    """perf/env_fraction, perf/inference_fraction and perf/learn_fraction for every registered algorithm."""
    env_id = "CartPole-v1" if gym.spaces.Discrete in get_algo(algo).ACTION_SPACES else "Pendulum-v1"
    fields = {f.name for f in dataclasses.fields(get_algo(algo).Config)}
    small = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 500}  # updates of every size take time
    drlab.train(algo, env_id, total_steps=2000, log_interval=1000, eval_interval=0, final_eval_episodes=0,
                run_dir=tmp_path / "run", progress=False, **{k: v for k, v in small.items() if k in fields})
    last = [row for row in read_metrics(tmp_path / "run") if "perf/sps" in row][-1]
    fractions = [last[f"perf/{part}_fraction"] for part in ("env", "inference", "learn")]
    assert all(f > 0 for f in fractions) and sum(fractions) <= 1.0, last
