"""`drlab sweep --backend ray` through the command line, on one local Ray for the module
(`ray.init(num_cpus=2)` in this process, the fixture ray_address; the sweeps are separate
processes that join it with --address). All Ray tests share one xdist group, so two Ray clusters never start at once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import train_steps, wait_for

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.ray]

TINY = ["--set", "learning_starts=500", "--set", "eval_interval=0", "--set", "final_eval_episodes=3",
        "--set", "log_interval=500"]


def sweep_command(out, *extra) -> list[str]:
    return [sys.executable, "-m", "drlab.cli", "sweep", "dqn", "CartPole-v1", "--out", str(out), *extra]


def points(out) -> list[dict]:
    return json.loads((out / "sweep.json").read_text())["points"]


def test_the_ray_and_local_backends_give_the_same_results(ray_address, tmp_path):
    grid = ["--set", "lr=1e-3,2e-3", "--seeds", "0,1", *TINY, "--set", "total_steps=3000"]
    local = subprocess.run(sweep_command(tmp_path / "local", *grid, "--jobs", "2"), capture_output=True, text=True,
                           timeout=300)
    on_ray = subprocess.run(sweep_command(tmp_path / "ray", *grid, "--backend", "ray", "--address", ray_address),
                            capture_output=True, text=True, timeout=300)
    assert local.returncode == 0 and on_ray.returncode == 0, on_ray.stderr
    assert "ray: 2 CPUs on 1 node, 1 per run: 2 runs at a time" in on_ray.stdout
    timing = ("train_seconds", "sps")
    for a, b in zip(points(tmp_path / "local"), points(tmp_path / "ray"), strict=True):
        assert a["name"] == b["name"] and a["status"] == b["status"] == "ok"
        assert {k: v for k, v in a["summary"].items() if k not in timing} == \
               {k: v for k, v in b["summary"].items() if k not in timing}
        assert b["config"]["run_dir"] == str(tmp_path / "ray" / b["name"])  # absolute, for every node
    assert (tmp_path / "ray" / "summary.md").read_text().count("| lr=") == 2
    assert (tmp_path / "ray" / "sweep.png").stat().st_size > 10_000


def test_a_point_whose_worker_is_killed_resumes_from_its_checkpoint(ray_address, tmp_path):
    out = tmp_path / "sw"
    sweep = subprocess.Popen(sweep_command(out, "--seeds", "0", *TINY, "--set", "total_steps=12000",
                                           "--set", "checkpoint_interval=2000", "--backend", "ray", "--address", ray_address),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = out / "s0"
    wait_for(lambda: (run_dir / "checkpoints" / "latest.pt").exists(), sweep, "a checkpoint")
    worker = json.loads((run_dir / "lock").read_text())["pid"]
    time.sleep(0.5)
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, stderr
    assert "s0: its worker died; running it again from its last checkpoint (attempt 2 of 3)" in stdout
    assert "Traceback" not in stderr
    [point] = points(out)
    assert point["status"] == "ok" and point["summary"]["steps"] == 12000
    steps = train_steps(run_dir)
    assert len(steps) == len(set(steps)) == 12000 // 500 and steps == sorted(steps)  # none twice, none missing


def test_a_stopped_ray_sweep_checkpoints_its_points_and_resumes(ray_address, tmp_path):
    out = tmp_path / "sw"
    grid = ["--seeds", "0,1,2", *TINY, "--set", "total_steps=6000", "--set", "checkpoint_interval=1000"]
    sweep = subprocess.Popen(sweep_command(out, *grid, "--jobs", "2", "--backend", "ray", "--address", ray_address),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(list(out.glob("*/checkpoints/latest.pt"))) == 2, sweep, "two checkpoints")
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, stderr
    assert "Traceback" not in stderr and f"continue with: drlab sweep --resume {out}" in stderr
    assert [p["status"] for p in points(out)] == ["interrupted", "interrupted", "cancelled"]
    stopped_at = {p["name"]: json.loads((out / p["name"] / "metrics.jsonl").read_text().splitlines()[-1])["step"]
                  for p in points(out)[:2]}
    assert all(step < 6000 for step in stopped_at.values())

    resumed = subprocess.run([sys.executable, "-m", "drlab.cli", "sweep", "--resume", str(out), "--backend", "ray",
                              "--address", ray_address], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [p["status"] for p in points(out)] == ["ok", "ok", "ok"]
    for p in points(out):
        steps = train_steps(out / p["name"])
        assert p["summary"]["steps"] == 6000 and len(steps) == len(set(steps)) == 12


def test_ray_options_without_the_ray_backend_are_refused(tmp_path, capsys):
    from drlab.cli import main

    assert main(["sweep", "dqn", "CartPole-v1", "--seeds", "0", "--address", "auto", "--out", str(tmp_path / "x")]) == 2
    assert "--address and --cpus-per-point are for --backend ray" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, capsys):
    from drlab.cli import main

    for args in (["sweep", "dqn", "CartPole-v1", "--seeds", "0", "--backend", "ray", "--out", str(tmp_path / "sw")],
                 ["train", "ppo", "CartPole-v1", "--runners", "2", "--run-dir", str(tmp_path / "run")]):
        assert main([*args, "--address", "127.0.0.1:1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot reach the Ray cluster at 127.0.0.1:1" in err
    assert not list(tmp_path.iterdir())


def test_a_stale_cluster_record_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    # `ray start` records its address for ray.init(address=None); a record left by a cluster that died
    # without `ray stop` would have Ray retry it for minutes.
    from drlab.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp" / "ray").mkdir(parents=True)
    (tmp_path / "tmp" / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")
    for args in (["sweep", "dqn", "CartPole-v1", "--seeds", "0", "--backend", "ray", "--out", str(tmp_path / "sw")],
                 ["train", "ppo", "CartPole-v1", "--runners", "2", "--run-dir", str(tmp_path / "run")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "names a Ray cluster at 127.0.0.1:1 that is not running" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]
