"""Failures through the real command line (a diverged run of every algorithm: test_every_algorithm.py):
a run that diverges after a checkpoint, a full or read-only disk, a vanished run
directory, two writers, kill -9 while checkpointing, a torn metrics line, a hand-edited config.json.
Each ends in one line on stderr and a documented exit status, and keeps what it had."""

import errno
import json
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from test_cli import DRLAB, assert_one_line_error, drlab
from test_every_algorithm import exploding

EXIT_DIVERGED, EXIT_WRITE_FAILED = 3, 4
QUICK = ["--no-progress", "--eval-interval", "0", "--final-eval-episodes", "5"]


def metric_steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def diverged_step(result) -> int:
    return int(result.stderr.split("diverged at step ")[1].split(":")[0].replace(",", ""))


@pytest.mark.parametrize("algo", ["dqn", "option-critic"])
@pytest.mark.slow
def test_a_run_that_diverges_after_a_checkpoint_keeps_it_and_says_so(tmp_path, algo):
    """Updates (with an exploding learning rate) start at step 1,500, after the checkpoint of step 1,000."""
    run = tmp_path / "r"
    flags = [*exploding(algo), "--learning-starts", "1500"]
    result = drlab("train", algo, "CartPole-v1", "--total-steps", "20000", "--checkpoint-interval", "1000",
                   "--run-dir", run, *flags, *QUICK)
    assert result.returncode == EXIT_DIVERGED, result.stderr
    assert 1000 < diverged_step(result) < 2000
    assert_one_line_error(result, f"{algo} diverged", "kept the checkpoint of step 1,000", f"drlab resume {run}")
    from drlab.run.checkpoint import load_checkpoint

    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] == 1000
    assert not (run / "summary.json").exists()
    assert max(metric_steps(run)) <= diverged_step(result)
    assert drlab("eval", run, "--episodes", "2").returncode == 0  # the kept weights still load


def test_a_resumed_run_that_diverges_keeps_the_checkpoint_it_resumed_from(tmp_path):
    """a2c resumed with a hand-edited learning rate (the policy-gradient optimizers take theirs from
    the config at every update)."""
    run = tmp_path / "r"
    healthy = drlab("train", "a2c", "CartPole-v1", "--total-steps", "1000", "--run-dir", run, *QUICK)
    assert healthy.returncode == 0, healthy.stderr
    (run / "summary.json").unlink()
    checkpoint = (run / "checkpoints" / "latest.pt").read_bytes()
    config = json.loads((run / "config.json").read_text())
    config.update(lr=1e30, max_grad_norm=0.0, total_steps=20_000)
    (run / "config.json").write_text(json.dumps(config))
    result = drlab("resume", run)
    assert result.returncode == EXIT_DIVERGED, result.stderr
    assert diverged_step(result) > 1000
    assert_one_line_error(result, "a2c diverged", "kept the checkpoint of step 1,000", f"drlab resume {run}")
    assert (run / "checkpoints" / "latest.pt").read_bytes() == checkpoint
    assert not (run / "summary.json").exists()
    assert max(metric_steps(run)) <= diverged_step(result)


@pytest.mark.slow
def test_a_diverged_sweep_point_is_recorded_as_diverged(tmp_path):
    out = tmp_path / "sw"
    result = drlab("sweep", "a2c", "CartPole-v1", "--set", "lr=1e-3,1e30", "--set", "max_grad_norm=0",
                   "--set", "total_steps=2000", "--set", "final_eval_episodes=2", "--seeds", "0", "--jobs", "2",
                   "--out", out)
    assert result.returncode == 1, result.stderr
    statuses = {p["values"]["lr"]: p["status"] for p in json.loads((out / "sweep.json").read_text())["points"]}
    assert statuses == {0.001: "ok", 1e30: "diverged"}


# ---- disks that refuse writes -----------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 600 KB tmpfs (this machine's tests run as root); None where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# Fallback where no filesystem can be mounted: the same run with every checkpoint write after the
# first refused by the OS layer drlab writes through (os.fsync raises ENOSPC).
INJECT_ENOSPC = """
import errno, os, sys
real_fsync, calls = os.fsync, []
def full_fsync(fd):
    calls.append(fd)
    if len(calls) > 2:  # config.json and the first checkpoint get through
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_fsync(fd)
os.fsync = full_fsync
from drlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_full_disk_ends_in_one_line_and_keeps_the_previous_checkpoint(tmp_path, small_disk):
    args = ["train", "dqn", "CartPole-v1", "--total-steps", "8000", "--learning-starts", "500",
            "--checkpoint-interval", "2000", *QUICK]
    if small_disk is not None:
        run = small_disk / "r"
        result = drlab(*args, "--run-dir", run)
    else:
        run = tmp_path / "r"
        result = subprocess.run([sys.executable, "-c", INJECT_ENOSPC, *args, "--run-dir", str(run)],
                                capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_WRITE_FAILED, result.stderr
    assert_one_line_error(result, "cannot write", "No space left on device")
    assert not (run / "summary.json").exists()
    assert not (run / "lock").exists()
    assert not [p for p in run.rglob("*.tmp")], "temp files must be cleaned up"
    from drlab.run.checkpoint import load_checkpoint

    assert load_checkpoint(run / "checkpoints" / "latest.pt")["step"] >= 2000  # the previous one, intact


def test_a_full_disk_while_recording_a_video(tmp_path, trained_run, small_disk):
    if small_disk is None:
        pytest.skip("no tmpfs can be mounted here; the checkpoint test covers the fallback")
    run = small_disk / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("videos", "tb", "checkpoints"))
    (run / "checkpoints").mkdir()
    shutil.copy(trained_run / "checkpoints" / "latest.pt", run / "checkpoints")
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - 4096))  # room for the lock-free steps, not for a video
    result = drlab("record", run)
    assert result.returncode == EXIT_WRITE_FAILED, result.stderr
    assert_one_line_error(result, "cannot write", "greedy.mp4", "No space left on device")
    assert not list((run / "videos").iterdir())


@pytest.mark.slow
def test_a_read_only_run_directory(tmp_path, trained_run, small_disk):
    if small_disk is None:
        pytest.skip("no tmpfs can be mounted here to make read-only")
    run = small_disk / "run"
    run.mkdir()
    for name in ("config.json", "metrics.jsonl"):
        shutil.copy(trained_run / name, run)
    (run / "checkpoints").mkdir()
    shutil.copy(trained_run / "checkpoints" / "latest.pt", run / "checkpoints")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    for command in (["record", run], ["resume", run], ["plot", run]):
        result = drlab(*command)
        assert result.returncode == EXIT_WRITE_FAILED, (command, result.stderr)
        assert_one_line_error(result, "cannot write", "Read-only file system")


@pytest.mark.slow
def test_a_run_directory_removed_while_training(tmp_path):
    run = tmp_path / "r"
    proc = subprocess.Popen([*DRLAB, "train", "dqn", "CartPole-v1", "--total-steps", "200000", "--learning-starts",
                             "500", "--checkpoint-interval", "3000", "--run-dir", str(run), *QUICK],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "latest.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    # Moved away in one step, then deleted: an rmtree of the live directory races the run's own
    # writes (a file it creates in tb/ meanwhile leaves "Directory not empty").
    run.rename(tmp_path / "removed")
    shutil.rmtree(tmp_path / "removed", ignore_errors=True)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_WRITE_FAILED, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("drlab: error: cannot write") and "No such file or directory" in lines[0]
    assert not run.exists(), "a vanished run directory is not made anew"


# ---- one writer per run directory --------------------------------------------------------------

@pytest.mark.slow
def test_two_writers_started_together_get_one_run_and_one_line(tmp_path):
    run = tmp_path / "r"
    command = [*DRLAB, "train", "dqn", "CartPole-v1", "--total-steps", "15000", "--run-dir", str(run), *QUICK]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.strip().startswith("drlab: error:") and len(loser.strip().splitlines()) == 1, loser
    assert "is being written by process" in loser and "already holds files" not in loser
    assert (run / "summary.json").exists() and not (run / "lock").exists()


def test_a_writer_that_finds_the_lock_taken_before_the_holder_wrote_its_line_still_names_it(tmp_path, monkeypatch):
    # The holder takes the lock, then writes its line: a second writer in between waits for the line
    # (here the line is written at the second writer's first wait) instead of naming "another process".
    import fcntl
    import os

    from drlab.errors import DrlabError
    from drlab.run.rundir import RunLock

    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held, with no line yet
    holder = {"pid": 4242, "host": "somehost", "since": "2026-01-01T00:00:00", "command": "drlab train dqn CartPole-v1"}
    real_sleep = time.sleep

    def sleep(seconds):
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        real_sleep(0)

    monkeypatch.setattr(time, "sleep", sleep)
    try:
        with pytest.raises(DrlabError, match="is being written by process 4242 on somehost"):
            RunLock(tmp_path)
    finally:
        os.close(fd)


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    holder = {"pid": dead.pid, "host": socket.gethostname(), "since": "2026-01-01T00:00:00", "command": "drlab train"}
    (run / "lock").write_text(json.dumps(holder))
    result = drlab("train", "dqn", "CartPole-v1", "--total-steps", "600", "--run-dir", run, *QUICK)
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of {run} from process {dead.pid}" in result.stderr
    assert not (run / "lock").exists()


def test_a_lock_of_another_host_is_not_taken_over(tmp_path, trained_run):
    run = tmp_path / "r"
    shutil.copytree(trained_run, run)
    (run / "summary.json").unlink()
    holder = {"pid": 1, "host": "another-host", "since": "2026-01-01T00:00:00", "command": "drlab train"}
    (run / "lock").write_text(json.dumps(holder))
    result = drlab("resume", run)
    assert_one_line_error(result, "locked by process 1 on another-host", "delete")
    assert json.loads((run / "lock").read_text())["host"] == "another-host"


@pytest.mark.slow
def test_kill_9_while_checkpointing_often_then_resume(tmp_path):
    """SIGKILL at random moments of a run that checkpoints every 100 steps; each time `drlab resume`
    picks it up (taking over the dead process's lock), and the last one finishes the run."""
    run = tmp_path / "r"
    rng = random.Random(0)
    command = ["train", "a2c", "CartPole-v1", "--total-steps", "60000", "--no-stop-on-solve",
               "--checkpoint-interval", "100", "--run-dir", str(run), *QUICK]
    for attempt in range(3):
        proc = subprocess.Popen([*DRLAB, *command], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "latest.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.5, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        command = ["resume", str(run)]
    result = drlab(*command)
    assert result.returncode == 0, result.stderr
    assert "took over the lock" in result.stderr and "Traceback" not in result.stderr
    assert json.loads((run / "summary.json").read_text())["steps"] >= 60000
    assert not [p for p in run.rglob("*.tmp")] and not (run / "lock").exists()


# ---- what a reader meets -----------------------------------------------------------------------

def test_a_torn_last_metrics_line_still_plots(tmp_path, trained_run):
    run = tmp_path / "r"
    shutil.copytree(trained_run, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 99999, "time_s": 1.0, "episode/ret')  # a crash in the middle of a write
    result = drlab("plot", run, "--out", tmp_path / "curve.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "curve.png").stat().st_size > 10_000


@pytest.mark.parametrize("command, edit, fragments", [
    ("eval", lambda c: c.update(lr="fast"), ["setting 'lr' must be a number (got 'fast')"]),
    ("record", lambda c: c.update(replay="sorted"), ["setting 'replay' must be one of 'online'"]),
    ("plot", lambda c: c.update(hidden=[64, "x"]), ["setting 'hidden' must be a list of integers"]),
    ("resume", lambda c: c.update(total_steps=1.5), ["setting 'total_steps' must be an integer"]),
    ("eval", lambda c: c.update(learning_rate=0.1), ["unknown setting(s)", "learning_rate"]),
    ("resume", lambda c: c.pop("gamma"), ["missing setting(s): gamma"]),
    ("record", lambda c: c.update(gamma=3.0), ["gamma must be in [0, 1]"]),
])
@pytest.mark.slow
def test_a_hand_edited_config_json_is_one_line_naming_the_field_and_the_file(tmp_path, trained_run, command, edit,
                                                                             fragments):
    run = tmp_path / "r"
    shutil.copytree(trained_run, run)
    (run / "summary.json").unlink()
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = drlab(command, run)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result, str(run / "config.json"), *fragments)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_checkpoint_errors_name_the_file_and_the_reason(tmp_path):
    """The one-line form of a failed write, from the lowest writer up."""
    from drlab.errors import write_failure
    from drlab.run.checkpoint import write_json

    with pytest.raises(OSError) as failure:
        write_json(tmp_path / "no" / "such" / "dir" / "x.json", {})
    assert failure.value.errno == errno.ENOENT
    assert write_failure(failure.value) == f"cannot write {tmp_path}/no/such/dir/x.json: No such file or directory"
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_reader_that_goes_away_gets_no_traceback():
    proc = subprocess.Popen([*DRLAB, "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout.readline().strip() == "dqn"
    proc.stdout.close()  # as `drlab list | head -1` does
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and stderr == "", stderr


@pytest.mark.slow
def test_an_update_with_no_new_transitions_is_not_a_divergence(tmp_path):
    """Option-Critic with one env updating every step: an autoreset step leaves its actor nothing to
    learn from; that is skipped, not a NaN loss."""
    result = drlab("train", "option-critic", "CartPole-v1", "--num-envs", "1", "--update-interval", "1",
                   "--learning-starts", "100", "--total-steps", "600", "--run-dir", tmp_path / "r", *QUICK)
    assert result.returncode == 0, result.stderr
