"""What every registered algorithm must do, run for each one in drlab.algos.ALGORITHMS without naming
it (a new algorithm gets these tests by being registered): the same seed gives the same metrics;
eval, record and resume work on its runs; an exploding learning rate ends in the divergence line
(exit 3) with nothing saved from bad weights; bad input is one line (exit 2); --help lists every
setting. Each runs in an env of an action space the algorithm declares, through the command line."""

import dataclasses
import json

import gymnasium as gym
import pytest

from drlab.algos import ALGORITHMS, get_algo
from drlab.cli import main

ALGOS = sorted(ALGORITHMS)
TIMING = ("time_s", "perf/")


def env_for(algo: str) -> str:
    """CartPole for an algorithm that takes Discrete actions, else Pendulum (Box)."""
    return "CartPole-v1" if issubclass(gym.spaces.Discrete, get_algo(algo).ACTION_SPACES) else "Pendulum-v1"


def fields(algo: str) -> set[str]:
    return {f.name for f in dataclasses.fields(get_algo(algo).Config)}


def short_run(algo: str, steps: int = 600) -> list[str]:
    """Flags for a run of a few hundred steps that updates often, from the config's defaults."""
    flags = ["--preset", "none", "--total-steps", str(steps), "--eval-interval", "0", "--final-eval-episodes", "2",
             "--log-interval", "100", "--no-progress"]
    if "learning_starts" in fields(algo):
        flags += ["--learning-starts", "100"]
    if "batch_size" in fields(algo):
        flags += ["--batch-size", "32"]
    if "buffer_size" in fields(algo):
        flags += ["--buffer-size", "5000"]
    return flags


def exploding(algo: str) -> list[str]:
    """Every learning rate at 1e38 and no gradient clipping: a step of about the learning rate takes the
    weights to the edge of float32, and the next forward pass overflows."""
    names = sorted(name for name in fields(algo) if name == "lr" or name.endswith("_lr"))
    flags = [part for name in names for part in (f"--{name.replace('_', '-')}", "1e38")]
    return flags + ["--max-grad-norm", "0"]


def records(run_dir) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith(TIMING)} for row in rows]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.slow
def test_same_seed_same_metrics_then_eval_record_and_resume(algo, tmp_path, capsys):
    env_id = env_for(algo)
    first, second = tmp_path / "a", tmp_path / "b"
    for run in (first, second):
        assert main(["train", algo, env_id, "--seed", "3", "--run-dir", str(run), *short_run(algo)]) == 0
    assert records(first) == records(second)
    assert any(k.startswith("train/") for row in records(first) for k in row)  # it updated

    assert main(["eval", str(first), "--episodes", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 2
    assert main(["record", str(first), "--max-steps", "30", "--out", str(tmp_path / "v.mp4")]) == 0
    assert (tmp_path / "v.mp4").stat().st_size > 1000

    # Resume carries a run on from its checkpoint: here a finished run given more steps.
    (first / "summary.json").unlink()
    config = json.loads((first / "config.json").read_text())
    (first / "config.json").write_text(json.dumps({**config, "total_steps": 900}))
    assert main(["resume", str(first)]) == 0
    assert json.loads((first / "summary.json").read_text())["steps"] >= 900
    steps = [row["step"] for row in records(first) if any(k.startswith("train/") for k in row)]
    assert steps == sorted(set(steps)) and steps[-1] > 600  # logged on, no step twice


@pytest.mark.parametrize("algo", ALGOS)
def test_an_exploding_learning_rate_is_a_divergence(algo, tmp_path, capsys):
    run = tmp_path / "r"
    status = main(["train", algo, env_for(algo), "--run-dir", str(run), "--checkpoint-interval", "100000",
                   *short_run(algo, steps=5000), *exploding(algo)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 3, err
    assert len(err) == 1 and f"{algo} diverged at step" in err[0] and "nothing was saved" in err[0]
    assert not (run / "checkpoints" / "latest.pt").exists() and not (run / "summary.json").exists()


@pytest.mark.parametrize("algo", ALGOS)
def test_bad_input_is_one_line_and_help_lists_every_setting(algo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env_id = env_for(algo)
    for flags in (["--total-steps", "0"], ["--no-such-setting", "1"], ["--gamma", "2"]):
        assert main(["train", algo, env_id, *flags]) == 2, flags
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("drlab: error:"), err
    assert not (tmp_path / "runs").exists()
    with pytest.raises(SystemExit) as done:
        main(["train", algo, env_id, "--help"])
    assert done.value.code in (0, None)
    text = capsys.readouterr().out
    hidden = {"env_id", "env_packages", "progress"}  # the positional env, --env-package, --no-progress
    for name in fields(algo) - hidden:
        assert f"--{name.replace('_', '-')}" in text, name
