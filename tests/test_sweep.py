"""`drlab sweep`: value parsing, one-line errors, the table, and a tiny real grid through the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import train_steps
from forked_cli import run_drlab

from drlab.algos.dqn import Config
from drlab.cli import main
from drlab.errors import DrlabError
from drlab.sweep.command import execute
from drlab.sweep.grid import plan_sweep, point_name
from drlab.config import field_types
from drlab.sweep.values import format_value, parse_seeds, parse_set, parse_value

TINY = ["--set", "total_steps=300", "--set", "learning-starts=100", "--set", "eval_interval=0",
        "--set", "final_eval_episodes=2", "--set", "log_interval=100"]
TYPES = field_types(Config)


@pytest.mark.parametrize("name, text, value", [
    ("lr", "1e-3", 0.001),
    ("batch_size", "64", 64),
    ("total_steps", "100_000", 100_000),
    ("total_steps", "1e5", 100_000),
    ("stop_on_solve", "True", True),
    ("stop_on_solve", "no", False),
    ("replay", "symlog-softmax", "symlog-softmax"),
    ("hidden", "64x64", (64, 64)),
    ("hidden", "256", (256,)),
    ("stop_threshold", "none", None),
    ("stop_threshold", "200", 200.0),
    ("device", "cpu", "cpu"),
])
def test_values_are_parsed_to_the_field_type(name, text, value):
    parsed = parse_value(name, TYPES[name], text)
    assert parsed == value and type(parsed) is type(value)
    assert parse_value(name, TYPES[name], format_value(parsed)) == parsed  # names and tables round-trip


@pytest.mark.parametrize("name, text, fragment", [
    ("lr", "fast", "not a number"),
    ("batch_size", "1.5", "not an integer"),
    ("stop_on_solve", "maybe", "not a bool"),
    ("replay", "prioritized", "not one of online, uniform, symlog-softmax, per"),
    ("hidden", "64xx64", "tuple of integers"),
    ("stop_threshold", "high", "or none"),
])
def test_unparsable_values(name, text, fragment):
    with pytest.raises(DrlabError, match=fragment):
        parse_value(name, TYPES[name], text)


def test_set_and_seed_syntax():
    assert parse_set("ent-coef=0.01,0.1") == ("ent_coef", ["0.01", "0.1"])
    assert parse_set("hidden=64x64, 128x128") == ("hidden", ["64x64", "128x128"])
    for bad in ["lr", "=1", "lr=", "lr=1,,2"]:
        with pytest.raises(DrlabError):
            parse_set(bad)
    assert parse_seeds("0,1,2") == [0, 1, 2]
    for bad in ["0,a", "1.5", "0,0", "-1", ""]:
        with pytest.raises(DrlabError):
            parse_seeds(bad)
    assert point_name({"hidden": (64, 64), "replay": "symlog-softmax"}, 1) == "hidden=64x64-replay=symlog-softmax-s1"
    assert point_name({"tag": "a/b c"}, 0) == "tag=a_b_c-s0"


def test_mean_band_interpolates_onto_a_common_grid_and_holds_the_last_value():
    from drlab.plots.curves import mean_band

    a = (np.array([0, 10, 10, 20]), np.array([0.0, 5.0, 10.0, 20.0]))  # two episodes end at step 10
    b = (np.array([5, 40]), np.array([0.0, 30.0]))
    grid, mean, low, high = mean_band([a, b], num=8)
    assert grid[0] == 5 and grid[-1] == 40
    ya = np.interp(grid, [0, 10, 20], [0.0, 10.0, 20.0])  # the last value at step 10 counts; 20 held after
    yb = np.interp(grid, [5, 40], [0.0, 30.0])
    np.testing.assert_allclose(mean, (ya + yb) / 2)
    np.testing.assert_allclose(low, np.minimum(ya, yb))
    np.testing.assert_allclose(high, np.maximum(ya, yb))


@pytest.mark.parametrize("args, fragment", [
    (["--set", "lr"], "expected NAME=VALUE"),
    (["--set", "lr="], "empty value"),
    (["--set", "ent_coef=0.01,0.1"], "unknown setting for dqn"),
    (["--set", "lr=fast,0.1"], "lr: 'fast' is not a number"),
    (["--set", "lr=0.1,0.1"], "repeated"),
    (["--set", "lr=1e-3", "--set", "lr=1e-4"], "given twice"),
    (["--set", "seed=1,2"], "use --seeds"),
    (["--set", "lr=-1,0.1"], "lr must be > 0 (got -1.0) (at lr=-1.0)"),
    (["--seeds", "0,x"], "--seeds '0,x'"),
    (["--jobs", "0"], "--jobs must be between 1"),
    (["--preset", "nonsense"], "no preset 'nonsense'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", "dqn", "CartPole-v1", *args]
    if "--seeds" not in args:
        argv += ["--seeds", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drlab: error:") and fragment in err[0], err
    assert not any(tmp_path.iterdir()), "a rejected sweep must not write anything"


@pytest.mark.parametrize("algo, env_id, fragment", [
    ("ddpg", "CartPole-v1", "unknown algorithm 'ddpg'"),
    ("sac", "CartPole-v1", "sac needs a Box action space"),
    ("dqn", "CartPoel-v1", "unknown environment 'CartPoel-v1'"),
    ("dqn", "Pendulum-v1", "dqn needs a Discrete action space"),
])
def test_unknown_algorithm_or_env(algo, env_id, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", algo, env_id, "--set", "lr=1e-3,1e-4", "--seeds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not any(tmp_path.iterdir())


def _summary(seed, mean, solved, steps=300):
    return {"algo": "dqn", "env_id": "CartPole-v1", "seed": seed, "steps": steps, "train_seconds": 1.0 + seed,
            "sps": 300.0, "eval": {"mean": mean, "std": 0.0, "episodes": 2, "greedy": True},
            "threshold": 475.0, "solved": solved}


def test_a_failed_point_is_recorded_and_the_others_kept(tmp_path, capsys):
    sweep = plan_sweep("dqn", "CartPole-v1", ["lr=1e-3,1e-4", "total_steps=300"], "0,1", out=tmp_path / "sw")

    def backend(points, jobs, on_result):  # stands in for the process pool: no training
        outcomes = []
        for i, (algo, config) in enumerate(points):
            if config["lr"] == 1e-4 and config["seed"] == 1:
                outcome = {"status": "failed", "error": "RuntimeError: boom", "traceback": "Traceback ..."}
            else:
                mean = 500.0 if config["lr"] == 1e-3 else 20.0 + config["seed"]
                outcome = {"status": "ok", "summary": _summary(config["seed"], mean, mean >= 475),
                           "final_reward_mean_100": 10.0 * (config["seed"] + 1)}
            on_result(i, outcome)
            outcomes.append(outcome)
        return outcomes

    assert execute(sweep, backend=backend) == 1
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == ["drlab: error: run lr=0.0001-s1 failed: RuntimeError: boom"]
    rows = [line for line in out.splitlines() if line.startswith("| lr=")]
    assert [r.split("|")[1:3] for r in rows] == [[" lr=0.001  ", " 2/2    "], [" lr=0.0001 ", " 0/2    "]]
    cells = [c.strip() for c in rows[1].split("|")[1:-1]]
    assert cells[2:] == ["20.0", "[20.0, 20.0]", "1.0", "300", "10.0", "1"]
    data = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [p["status"] for p in data["points"]] == ["ok", "ok", "ok", "failed"]
    assert data["points"][3]["traceback"] == "Traceback ..." and data["grid"] == {"lr": [0.001, 0.0001]}
    assert "no plot" in out  # no metrics.jsonl without real runs
    assert (tmp_path / "sw" / "summary.md").read_text().count("| lr=") == 2


@pytest.mark.slow
def test_a_tiny_grid_through_the_command_line(tmp_path):
    out = tmp_path / "sweep"
    jobs = min(2, os.cpu_count() or 1)
    result = run_drlab(["sweep", "dqn", "CartPole-v1", "--set", "lr=1e-3,3e-4", "--seeds", "0,1", "--jobs", jobs,
                        "--out", out, *TINY], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    names = ["lr=0.001-s0", "lr=0.001-s1", "lr=0.0003-s0", "lr=0.0003-s1"]
    for name in names:
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["steps"] >= 300 and summary["eval"]["episodes"] == 2
        config = json.loads((out / name / "config.json").read_text())
        assert config["progress"] is False and config["learning_starts"] == 100
    data = json.loads((out / "sweep.json").read_text())
    assert [p["name"] for p in data["points"]] == names
    assert all(p["status"] == "ok" and p["summary"]["seed"] == p["seed"] for p in data["points"])
    table = (out / "summary.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| lr=")]
    assert len(rows) == 2 and all("/2 " in row for row in rows)
    assert rows[0] in result.stdout and f"sweep directory: {out}" in result.stdout
    assert (out / "sweep.png").stat().st_size > 10_000


@pytest.mark.parametrize("algo, env_id, settings", [
    ("ppo", "Pendulum-v1", ["--set", "sde=false,true", "--set", "n_steps=64", "--set", "batch_size=64"]),
    ("reinforce", "tests.action_space_envs:DrlabTestMultiBinaryTarget-v0", ["--set", "lr=1e-3,3e-3"]),
])
@pytest.mark.slow
def test_sweeps_run_on_box_and_multi_binary_actions(algo, env_id, settings, tmp_path):
    out = tmp_path / "sweep"
    result = run_drlab(["sweep", algo, env_id, *settings, "--seeds", "0", "--jobs", "1", "--out", out,
                        "--set", "total_steps=256", "--set", "eval_interval=0", "--set", "final_eval_episodes=2",
                        "--set", "num_envs=2"], cwd=Path(__file__).parent.parent)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert len(points) == 2 and all(p["status"] == "ok" and p["summary"]["eval"]["episodes"] == 2 for p in points)


def _children(pid: int) -> list[int]:
    """The processes below ``pid`` (its workers are forked by a forkserver it started), but the
    resource tracker, which multiprocessing keeps until the process that started it exits."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                cmdline = open(f"/proc/{entry}/cmdline").read()
            except OSError:
                continue
            if "resource_tracker" not in cmdline:
                # the field after the ")" that closes the command name: state, then the parent's pid
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    below, found = {pid}, True
    while found:
        found = {p for p, parent in parents.items() if parent in below and p not in below}
        below |= found
    return sorted(below - {pid})


def _all_gone(pids: list[int], timeout: float = 90.0) -> bool:
    """Whether every process of ``pids`` ends within ``timeout`` seconds (the forkserver and a
    worker notice their driver's exit a moment after it)."""
    import time
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_training_sweep(out, total_steps: str, ignore_sigint: bool = False) -> subprocess.Popen:
    """A one-job a2c CartPole sweep, returned once its first point is training. ``ignore_sigint``
    starts it as a non-interactive shell starts a background job: with SIGINT ignored."""
    import signal
    import time
    sweep = subprocess.Popen(
        [sys.executable, "-m", "drlab.cli", "sweep", "a2c", "CartPole-v1", "--seeds", "0", "--jobs", "1",
         "--set", f"total_steps={total_steps}", "--set", "eval_interval=0", "--set", "log_interval=1000",
         "--set", "final_eval_episodes=2", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out.parent,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)
    deadline = time.monotonic() + 120
    while not list(out.glob("*/metrics.jsonl")):
        if time.monotonic() > deadline or sweep.poll() is not None:
            sweep.kill()
            pytest.fail("the sweep never started training")
        time.sleep(0.5)
    return sweep


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process parents from /proc")
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.slow
def test_a_stopped_sweep_checkpoints_its_points_and_writes_its_files(signame, tmp_path):
    # Ctrl-C, or SIGTERM from a scheduler, even for a sweep started in the background (SIGINT ignored):
    # the running point stops with a checkpoint, the pending one is cancelled, the sweep's files are written.
    import signal
    out = tmp_path / "sweep"
    sweep = _start_training_sweep(out, "50_000_000,2000", ignore_sigint=True)
    workers = _children(sweep.pid)
    try:
        sweep.send_signal(getattr(signal, signame))
        _, stderr = sweep.communicate(timeout=120)
    finally:
        sweep.kill()
    assert sweep.returncode == 130, stderr
    assert "Traceback" not in stderr and "sweep interrupted" in stderr
    assert _all_gone(workers)
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["status"] for p in points] == ["interrupted", "cancelled"]
    assert list(out.glob("*/checkpoints/latest.pt")) and (out / "summary.md").exists()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process parents from /proc")
@pytest.mark.slow
def test_workers_of_a_killed_sweep_stop_with_a_checkpoint(tmp_path):
    # Killing the sweep process itself (SIGKILL, not Ctrl-C) must not leave its training workers running.
    import signal
    out = tmp_path / "sweep"
    sweep = _start_training_sweep(out, "50_000_000")
    workers = _children(sweep.pid)
    try:
        assert workers
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        assert _all_gone(workers), "an orphaned sweep worker kept running"
        assert list(out.glob("*/checkpoints/latest.pt")), "the stopped point wrote no checkpoint"
    finally:
        sweep.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def _lock_holder(run_dir, not_pid: int = 0, timeout: float = 120.0) -> int:
    """The pid in RUN_DIR/lock once a process other than ``not_pid`` holds it."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = json.loads((run_dir / "lock").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            pid = 0
        if pid and pid != not_pid and _alive(pid):
            return pid
        time.sleep(0.2)
    pytest.fail(f"no process took {run_dir}/lock")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process parents from /proc")
@pytest.mark.slow
def test_a_killed_worker_s_point_resumes_and_so_do_the_points_the_pool_stopped_with_it(tmp_path):
    # As when the kernel's OOM killer takes a worker: the process pool stops every worker with it
    # (each stops with a checkpoint); all their points run again in a new pool from their checkpoints.
    # Each worker is frozen (SIGSTOP) as soon as its point has a checkpoint, so that neither point
    # can finish before the kill lands, however fast or busy the machine; the other worker is let
    # go on (SIGCONT) once the sweep has seen the pool break, and then stops as the pool tells it to.
    import signal
    import time
    out, stdout_file, stderr_file = tmp_path / "sweep", tmp_path / "stdout", tmp_path / "stderr"
    with open(stdout_file, "w") as stdout, open(stderr_file, "w") as stderr:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "drlab.cli", "sweep", "a2c", "CartPole-v1", "--seeds", "0,1", "--jobs", "2",
             "--set", "total_steps=12000", "--set", "checkpoint_interval=4000", "--set", "log_interval=1000",
             "--set", "eval_interval=0", "--set", "final_eval_episodes=2", "--out", str(out)],
            stdout=stdout, stderr=stderr, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_for(ready, what: str) -> None:
        deadline = time.monotonic() + 120
        while not ready():
            assert sweep.poll() is None, f"the sweep ended before {what}: {stderr_file.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {what} after 120 s"
            time.sleep(0.2)

    workers = {}
    try:
        for name in ("s0", "s1"):
            wait_for((out / name / "checkpoints" / "latest.pt").exists, f"checkpoint of {name}")
            workers[name] = _lock_holder(out / name)
            os.kill(workers[name], signal.SIGSTOP)
        assert not any((out / name / "summary.json").exists() for name in workers), "a point finished before its freeze"
        os.kill(workers["s0"], signal.SIGKILL)
        # The pool saw the death and failed both points' futures; the sweep waits for s1's worker to stop.
        wait_for(lambda: "its worker was lost" in stdout_file.read_text(), "'its worker was lost' line")
        os.kill(workers["s1"], signal.SIGCONT)
        sweep.wait(timeout=240)
    finally:
        sweep.kill()
        for pid in workers.values():
            try:
                os.kill(pid, signal.SIGCONT)  # never leave a frozen process behind, whatever failed
            except ProcessLookupError:
                pass
    stdout, stderr = stdout_file.read_text(), stderr_file.read_text()
    assert sweep.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "s0: its worker was lost" in stdout and "s1: its worker was lost" in stdout and "(attempt 2 of 3)" in stdout
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["status"] for p in points] == ["ok", "ok"] and all(p["summary"]["steps"] == 12000 for p in points)
    for name in ("s0", "s1"):
        steps = train_steps(out / name)
        assert steps == sorted(set(steps)) and steps[-1] >= 11000  # resumed, and no step logged twice


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process parents from /proc")
@pytest.mark.slow
def test_a_point_whose_worker_dies_three_times_fails_and_the_sweep_goes_on(tmp_path):
    import signal
    out = tmp_path / "sweep"
    sweep = _start_training_sweep(out, "50_000_000,2000")
    try:
        [run_dir] = [path.parent for path in out.glob("*/metrics.jsonl")]
        killed = 0
        for _ in range(3):
            killed = _lock_holder(run_dir, not_pid=killed)
            os.kill(killed, signal.SIGKILL)
        stdout, stderr = sweep.communicate(timeout=240)
    finally:
        sweep.kill()
    assert sweep.returncode == 1, stderr
    assert "Traceback" not in stderr and "(attempt 3 of 3)" in stdout
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["status"] for p in points] == ["failed", "ok"]
    assert "its worker process died 3 times" in points[0]["error"] and points[1]["summary"]["steps"] >= 2000


def _sleep_forever():
    import time
    time.sleep(3600)


@pytest.mark.skipif(sys.version_info < (3, 9), reason="the pool's manager thread as in CPython 3.9+")
def test_the_pool_notices_the_death_of_the_worker_started_last(monkeypatch):
    # CPython's submit() wakes the pool's manager thread before it starts the new worker; made slow
    # here, the start lands after the manager has gone back to waiting on the old list of workers.
    # Without drlab.sweep.local._watch_new_workers the death of that worker went unnoticed (no
    # BrokenProcessPool, so the sweep neither reported nor retried its point).
    import multiprocessing
    import signal
    import time
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from drlab.sweep.local import _watch_new_workers

    spawn = ProcessPoolExecutor._spawn_process

    def slow_spawn(self):
        time.sleep(0.3)
        spawn(self)

    monkeypatch.setattr(ProcessPoolExecutor, "_spawn_process", slow_spawn)
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    futures = []
    try:
        for _ in range(2):
            futures.append(pool.submit(_sleep_forever))
            _watch_new_workers(pool)
        assert len(pool._processes) == 2
        os.kill(list(pool._processes)[-1], signal.SIGKILL)
        done, _ = wait(futures, timeout=120, return_when=FIRST_COMPLETED)
        assert done, "the pool did not notice its worker's death"
    finally:
        for process in list(pool._processes.values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
