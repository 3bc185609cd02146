"""Bad input through the real command line: one line on stderr, non-zero exit, no traceback,
and nothing already in a run directory lost."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forked_cli import run_drlab

DRLAB = [sys.executable, "-m", "drlab.cli"]


def drlab(*args, cwd=None, refuse=(), env=None):
    """`drlab ARGS` in a process of its own (``env``: its environment variables, default ours); ``refuse``:
    top-level modules that process cannot import, as on a machine without them (a finder in front of
    the import system refuses them). Without either, a child forked from a process that has imported
    drlab already (tests/forked_cli.py; DRLAB_TESTS_NO_FORK=1 starts `python -m drlab.cli` instead)."""
    if not refuse and env is None and not os.environ.get("DRLAB_TESTS_NO_FORK"):
        return run_drlab(args, cwd=cwd)
    command = DRLAB if not refuse else [sys.executable, "-c", REFUSE_IMPORTS, ",".join(refuse)]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


REFUSE_IMPORTS = """
import sys
refused = set(sys.argv.pop(1).split(","))

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in refused:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Refuse())
from drlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("drlab: error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragments", [
    (["train", "dqn", "CartPoel-v1"], ["unknown environment 'CartPoel-v1'", "CartPole-v1"]),
    (["train", "dqn", "Pendulum-v1"], ["dqn needs a Discrete action space", "Pendulum-v1", "Box(", "reinforce, a2c, ppo, sac, td3 take it"]),
    (["train", "dqn", "CartPole-v1", "--lr", "-0.001"], ["lr must be > 0"]),
    (["train", "dqn", "CartPole-v1", "--batch-size", "512", "--buffer-size", "100"], ["batch_size (512)", "buffer_size (100)"]),
    (["train", "dqn", "CartPole-v1", "--num-envs", "0"], ["num_envs must be > 0"]),
    (["train", "dqn", "CartPole-v1", "--total-steps", "0"], ["total_steps must be > 0"]),
    (["train", "dqn", "CartPole-v1", "--gamma", "1.5"], ["gamma must be in [0, 1]"]),
    (["train", "dqn", "CartPole-v1", "--preset", "nonsense"], ["no preset 'nonsense'", "symlog-softmax, none"]),
    (["train", "ddpg", "CartPole-v1"], ["unknown algorithm 'ddpg'", "sac, td3"]),
    (["train", "dqn", "ALE/Pong-v5"], ["pip install 'drlab[atari]'"]),
    (["train", "dqn", "VizdoomDefendCenter-v1"], ["pip install 'drlab[vizdoom]'"]),
    (["eval", "no/such/run"], ["no run directory at no/such/run"]),
    (["train", "ppo", "CartPole-v1", "--batch-size", "100"], ["batch_size (100) must divide the rollout", "64 * 8 = 512"]),
    (["train", "a2c", "CartPole-v1", "--gae-lambda", "2"], ["gae_lambda must be in [0, 1]"]),
    (["train", "reinforce", "CartPole-v1", "--baseline", "median"], ["invalid choice 'median'", "--baseline", "'learned'"]),
    (["train", "a2c", "CartPole-v1", "--lr", "abc"], ["--lr", "'abc'"]),
    (["train", "ppo", "CartPole-v1", "--no-such-flag", "1"], ["--no-such-flag"]),
    (["train", "actor-critic", "LunarLanderContinuous-v3"], ["actor-critic needs a Discrete action space", "reinforce, a2c, ppo, sac, td3 take it"]),
])
@pytest.mark.slow
def test_bad_input_is_one_line_and_creates_nothing(tmp_path, args, fragments):
    refuse = ("ale_py",) if "ALE/Pong-v5" in args else ("vizdoom",) if "VizdoomDefendCenter-v1" in args else ()
    result = drlab(*args, cwd=tmp_path, refuse=refuse)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "runs").exists(), "a failed command must not leave a run directory behind"


@pytest.mark.slow
def test_missing_and_corrupt_checkpoints(trained_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    ckpt = run / "checkpoints" / "latest.pt"
    ckpt.unlink()
    assert_one_line_error(drlab("eval", run), "no checkpoint at")
    ckpt.write_bytes(b"this is not a checkpoint" * 10)
    assert_one_line_error(drlab("eval", run), "corrupt or not a drlab checkpoint")
    assert_one_line_error(drlab("record", run), "corrupt or not a drlab checkpoint")
    (run / "config.json").write_text("{not json")
    assert_one_line_error(drlab("eval", run), "run config", "unreadable")


def test_a_pickle_that_would_run_code_is_refused(tmp_path, trained_run):
    """weights_only loading: a checkpoint carrying a code-executing pickle is rejected, not run."""
    import pickle
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    import torch

    torch.save({"format": "drlab-checkpoint-1", "learner": Evil()}, run / "checkpoints" / "latest.pt",
               pickle_protocol=pickle.HIGHEST_PROTOCOL)
    assert_one_line_error(drlab("eval", run), "corrupt or not a drlab checkpoint")
    assert not marker.exists()


def test_existing_run_directory_is_never_overwritten(trained_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert_one_line_error(drlab("train", "dqn", "CartPole-v1", "--run-dir", run), "already holds files")
    assert_one_line_error(drlab("resume", run), "already finished")
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert before == after


def test_usage_mistakes_exit_non_zero_without_traceback(tmp_path):
    r = drlab("frobnicate", cwd=tmp_path)
    assert r.returncode == 2 and "unknown command" in r.stderr and "Traceback" not in r.stderr
    r = drlab("eval", cwd=tmp_path)
    assert_one_line_error(r, "run_dir")
    r = drlab("train", "dqn", "CartPole-v1", "--lr", "abc", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--lr" in r.stderr


def test_list_shows_algorithms_variants_and_presets():
    r = drlab("list")
    assert r.returncode == 0
    for word in ("dqn", "online", "uniform", "symlog-softmax", "per", "CartPole-v1", "LunarLander-v3"):
        assert word in r.stdout
    spaces = [line for line in r.stdout.splitlines() if line.strip().startswith("spaces")]
    from drlab.algos import ALGORITHMS

    assert len(spaces) == len(ALGORITHMS) and all("Discrete, MultiDiscrete" in line and "Dict" in line for line in spaces)
    assert sum("actions: Box" in line for line in spaces) == 2  # sac, td3
    assert sum("actions: Discrete, Box, MultiDiscrete, MultiBinary" in line for line in spaces) == 3
    assert "sac" in r.stdout and "td3" in r.stdout and r.stdout.count("Pendulum-v1") >= 4


def test_every_preset_file_builds_a_valid_config():
    """A preset names only settings its algorithm has, with values of the right type and in range."""
    from drlab.algos import ALGORITHMS, get_algo
    from drlab.config import build_config, list_presets, load_presets

    checked = 0
    for algo in ALGORITHMS:
        module = get_algo(algo)
        for env_id, names in list_presets(algo).items():
            for name in names:
                build_config(module.Config, env_id, load_presets(algo, env_id)[name]).validate()
                checked += 1
    assert checked >= 20


def test_train_help_shows_preset_values():
    r = drlab("train", "dqn", "CartPole-v1", "--help")
    assert r.returncode == 0
    assert "--target" in r.stdout and "--replay" in r.stdout


def test_preset_none_trains_with_the_algorithms_defaults(tmp_path):
    """`--preset none` ignores the env's preset: config.json holds the dataclass defaults."""
    import dataclasses

    from drlab.algos import dqn

    r = drlab("train", "dqn", "CartPole-v1", "--preset", "none", "--total-steps", "300", "--learning-starts", "100",
              "--final-eval-episodes", "1", "--eval-interval", "0", "--no-progress", "--run-dir", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    defaults = {f.name: f.default for f in dataclasses.fields(dqn.Config)}
    assert config["lr"] == defaults["lr"] and config["train_freq"] == defaults["train_freq"]
    assert list(config["hidden"]) == list(defaults["hidden"]) != [64, 64]  # the preset's would be 64x64
