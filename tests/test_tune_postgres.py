"""A study shared by two `drlab tune` processes through a real PostgreSQL server (Debian's
postgresql package; .ci/run installs it), one of them killed with SIGKILL mid-trial: the other takes
over its trial once its heartbeats stop, and the study ends with exactly the trials asked for, each
COMPLETE, PRUNED or FAIL-then-retried, none RUNNING.

The test starts a private server (initdb / pg_ctl in a temp dir, a free local port) and stops it
after. PostgreSQL refuses to run as root: as root the server runs as the `postgres` user the package
creates. Without PostgreSQL the test is skipped with one line saying so, except where
DRLAB_REQUIRE_POSTGRES is set (.ci/run sets it), where it fails: in CI it must run."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import wait_for
from test_tune import steps_logged, tune_command

pytestmark = pytest.mark.postgres
optuna = pytest.importorskip("optuna", reason="drlab tune needs Optuna: pip install 'drlab[tune]'")


def server_program(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = server_program("initdb"), server_program("pg_ctl")
    if not (initdb and pg_ctl):
        message = "no PostgreSQL server: apt-get install postgresql (drlab tune's shared-study test)"
        if os.environ.get("DRLAB_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    data = Path(tempfile.mkdtemp(prefix="drlab-postgres-"))
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL will not run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def server(*args):
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    server(initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres", "--no-sync")
    server(pg_ctl, "-D", str(data / "db"), "-l", str(data / "server.log"), "-w", "start",
           "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        server(pg_ctl, "-D", str(data / "db"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_two_processes_share_a_study_and_the_killed_ones_trial_is_run_again(postgres_url, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text("[lr]\nlow = 5e-4\nhigh = 5e-3\nlog = true\n")
    common = ["dqn", "CartPole-v1", "--storage", postgres_url, "--study", "shared", "--trials", 4, "--heartbeat", 2,
              "--space", space, "--set", "total_steps=6000", "--set", "train_freq=4", "--set", "learning_starts=500",
              "--set", "eval_interval=2000", "--set", "eval_episodes=2", "--set", "final_eval_episodes=2",
              "--set", "log_interval=500", "--set", "checkpoint_interval=2000"]
    first = subprocess.Popen(tune_command(*common, "--out", tmp_path / "a"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(tune_command(*common, "--out", tmp_path / "b"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(steps_logged(run) >= 2500 for run in (tmp_path / "b").glob("trial-*/s0")), second,
             "a trial of the second process past its first checkpoint")
    second.kill()  # SIGKILL: no checkpoint from the driver, no goodbye to the study
    second.communicate(timeout=60)
    try:
        out, err = first.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        first.kill()
        pytest.fail(f"the surviving process never finished: {first.communicate(timeout=60)[1][-2000:]}")
    assert first.returncode == 0, err
    assert "(attempt 2, after trial" in out  # the first process took over the dead one's trial

    storage = optuna.storages.RDBStorage(postgres_url)
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    retried = {t.system_attrs.get("drlab:retry_of") for t in trials} - {None}
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and "WAITING" not in states, states
    assert all(s in ("COMPLETE", "PRUNED") or t.number in retried for s, t in zip(states, trials)), states
    assert len([t for t in trials if t.number not in retried]) == 4  # the trial count asked for
    assert any(t.state.name == "FAIL" for t in trials)  # the killed one's
    # Both processes wrote their trials' runs in their own directories.
    assert list((tmp_path / "b").glob("trial-*/s0/config.json"))
    assert len(list((tmp_path / "a").glob("trial-*/s0/summary.json"))) >= 3
