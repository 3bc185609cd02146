"""`drlab tune`: search spaces as data (every algorithm's built-in one, and each mistake one line),
a trial's runs and pruning, the command line end to end (study.md, the preset, Ctrl-C and --resume),
and a study shared by two processes through a real PostgreSQL server, one of them killed with SIGKILL
mid-trial (tests/test_tune_postgres.py)."""

import json
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from drlab.algos import ALGORITHMS, get_algo
from drlab.cli import main
from drlab.errors import DrlabError
from drlab.tune.space import load_space, sample, space_source
from conftest import wait_for
from forked_cli import run_drlab

optuna = pytest.importorskip("optuna", reason="drlab tune needs Optuna: pip install 'drlab[tune]'")

# A few hundred steps per trial: these test the plumbing, not the search.
TINY = ["--set", "total_steps=1500", "--set", "learning_starts=200", "--set", "eval_interval=500",
        "--set", "eval_episodes=2", "--set", "final_eval_episodes=2", "--set", "log_interval=500"]


def tune_command(*args) -> list[str]:
    return [sys.executable, "-m", "drlab.cli", "tune", *map(str, args)]


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_has_a_search_space_that_builds_valid_configs(algo):
    from drlab.config import field_types

    config_cls = get_algo(algo).Config
    space = load_space(algo, config_cls, *space_source(algo, None))
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    variants = [{}, *({"replay": r} for r in ("per",) if "replay" in field_types(config_cls))]
    for base in variants:  # conditional settings (PER's alpha) sampled too
        sample_valid_configs(study, config_cls, space, "CartPole-v1", base)


def sample_valid_configs(study, config_cls, space, env_id: str, base: dict, trials: int = 20) -> None:
    """Sample ``trials`` settings from ``space`` on top of ``base``; each must build a valid config."""
    from drlab.config import build_config, field_types

    for _ in range(trials):
        trial = study.ask()
        settings = sample(trial, space, base, field_types(config_cls))
        build_config(config_cls, env_id, {**base, **settings}).validate()
        study.tell(trial, 0.0)


BENCHMARK_SPACES = sorted((Path(__file__).parent.parent / "benchmarks" / "spaces").glob("*.toml"))


@pytest.mark.parametrize("path", BENCHMARK_SPACES, ids=[p.stem for p in BENCHMARK_SPACES])
def test_the_benchmarks_narrowed_spaces_build_valid_configs_for_their_env(path):
    """benchmarks/spaces/ALGO-ENV.toml: the spaces the presets' studies used, still valid for drlab tune."""
    from drlab.config import preset_overrides

    algo = next(a for a in sorted(ALGORITHMS, key=len, reverse=True) if path.stem.startswith(a + "-"))
    env_id = path.stem.removeprefix(algo + "-")
    config_cls = get_algo(algo).Config
    space = load_space(algo, config_cls, *space_source(algo, path))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sample_valid_configs(study, config_cls, space, env_id, preset_overrides(algo, env_id, "default"))


@pytest.mark.parametrize("text, message", [
    ("[lrr]\nlow = 1e-4\nhigh = 1e-2", "unknown setting for dqn (did you mean lr?)"),
    ("[lr]\nlow = 1e-2\nhigh = 1e-4", "low (0.01) must be below high (0.0001)"),
    ("[lr]\nlow = 0.0\nhigh = 1e-2\nlog = true", "a log range needs low > 0"),
    ("[batch_size]\nlow = 16.5\nhigh = 64", "batch_size is an integer setting"),
    ("[lr]\nhigh = 1e-2", "give low and high (or choices)"),
    ("[lr]\nlow = 1e-4\nhigh = 1e-2\nsteps = 2", "unknown key steps"),
    ("[target]\nchoices = [\"max\", \"maxx\"]", "'maxx' is not one of"),
    ("[hidden]\nlow = 1\nhigh = 3", "a range does not fit this setting"),
    ("[seed]\nchoices = [1, 2]", "use --seeds"),
    ("[per_alpha]\nlow = 0.1\nhigh = 0.9\nwhen = { replayy = \"per\" }", "when: unknown setting replayy"),
    ("[lr]\nchoices = []", "choices must be a non-empty list"),
    ("[total_steps]\nchoices = [1000, 2000]", "cannot be searched: every trial's budget"),
    ("[lr]\nlow = 1e-4\nhigh = 1e-2\nwhen = 3", "when must be a table"),
    ("[target]\nchoices = [1979-05-27]", "choices must be numbers, strings, booleans"),
    ("lr = 3", "expected a table"),
    ("[lr", "not valid TOML"),
])
def test_a_mistake_in_a_search_space_is_one_line(text, message):
    with pytest.raises(DrlabError, match=None) as err:
        load_space("dqn", get_algo("dqn").Config, text, "space.toml")
    assert message in str(err.value) and str(err.value).startswith("space.toml")
    assert "\n" not in str(err.value)


def test_a_conditional_setting_is_sampled_only_when_its_condition_holds():
    from drlab.config import field_types

    config_cls = get_algo("dqn").Config
    space = load_space("dqn", config_cls, "[replay]\nchoices = ['uniform', 'per']\n"
                                          "[per_alpha]\nlow = 0.2\nhigh = 0.9\nwhen = { replay = 'per' }", "s")
    types = field_types(config_cls)
    seen = set()
    for replay in ("uniform", "per"):
        settings = sample(optuna.trial.FixedTrial({"replay": replay, "per_alpha": 0.5}), space, {}, types)
        seen.add(tuple(sorted(settings)))
        assert ("per_alpha" in settings) == (replay == "per")
    assert len(seen) == 2
    # A condition on a fixed setting (the preset's or --set's) counts too.
    only = load_space("dqn", config_cls, "[per_alpha]\nlow = 0.2\nhigh = 0.9\nwhen = { replay = 'per' }", "s")
    assert sample(optuna.trial.FixedTrial({"per_alpha": 0.3}), only, {"replay": "per"}, types) == {"per_alpha": 0.3}
    assert sample(optuna.trial.FixedTrial({"per_alpha": 0.3}), only, {"replay": "uniform"}, types) == {}


def test_a_setting_that_set_fixes_is_not_searched(tmp_path):
    from drlab.tune.spec import plan_spec

    def searched(sets):
        spec = plan_spec("dqn", "CartPole-v1", preset="default", seeds="0", trials=1, sets=sets, space_file=None,
                         storage=None, study_name=None, out=tmp_path / "study", timeout=None, sampler="tpe",
                         pruner="median", heartbeat=30, jobs=1)
        return {p.name for p in spec.space()}

    everything = searched([])
    assert {"lr", "batch_size"} <= everything
    assert searched(["lr=3e-4", "batch_size=64"]) == everything - {"lr", "batch_size"}


def test_a_pruned_trial_stops_its_run_with_a_checkpoint_and_no_summary(tmp_path):
    from drlab.run.rundir import CHECKPOINT, SUMMARY_FILE
    from drlab.tune.spec import plan_spec
    from drlab.tune.trial import run_trial

    spec = plan_spec("dqn", "CartPole-v1", preset="default", seeds="0,1", trials=1, sets=TINY[1::2],
                     space_file=None, storage=None, study_name=None, out=tmp_path / "study", timeout=None,
                     sampler="tpe", pruner="median", heartbeat=30, jobs=1)
    reports = []

    def report(step, value):  # prune at the second evaluation of the second seed
        reports.append(step)
        return len(reports) == 5

    outcome = run_trial("dqn", spec.trial_configs({"lr": 1e-3}, "trial-0000"), report)
    # Seed 1's evaluations are reported after seed 0's whole budget: 500, 1000, 1500 | 2000, 2500.
    assert reports == [500, 1000, 1500, 2000, 2500]
    assert outcome["state"] == "pruned" and outcome["step"] == 2500
    first, second = tmp_path / "study" / "trial-0000" / "s0", tmp_path / "study" / "trial-0000" / "s1"
    assert (first / SUMMARY_FILE).is_file()
    assert (second / CHECKPOINT).is_file() and not (second / SUMMARY_FILE).exists()


@pytest.mark.parametrize("args, message", [
    (["dqn", "CartPole-v1", "--sampler", "grid"], "--sampler grid: unknown sampler (known: tpe, random)"),
    (["dqn", "CartPole-v1", "--pruner", "hyperband"], "--pruner hyperband: unknown pruner"),
    (["dqn", "CartPole-v1", "--trials", "0"], "--trials must be >= 1"),
    (["dqn", "CartPole-v1", "--set", "lrr=1"], "--set lrr: unknown setting for dqn"),
    (["dqn", "CartPole-v1", "--set", "lr=1e-3,2e-3"], "takes one value per setting"),
    (["dqn", "CartPole-v1", "--set", "eval_interval=0"], "pruning needs periodic evaluations"),
    (["dqn", "CartPole-v1", "--space", "nowhere.toml"], "--space nowhere.toml:"),
    (["dqn", "CartPole-v1", "--storage", "nosuchdb://x"], "cannot open the study storage nosuchdb://x"),
    (["dqn", "CartPole-v1", "--storage", "postgresql://u:secret@127.0.0.1:1/db"], "u:***@127.0.0.1:1/db"),
    (["--resume", "."], "holds no tune.json: not a study directory"),
    (["--resume", ".", "--seeds", "1"], "give no --seeds"),
    (["dqn", "CartPole-v1", "--timeout", "-5"], "--timeout must be > 0"),
    (["dqn"], "drlab tune needs ALGO ENV_ID"),
])
def test_bad_input_is_one_line_with_status_2_and_writes_nothing(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "study"
    extra = [] if "--resume" in args or len(args) < 2 else ["--out", str(out)]
    assert main(["tune", *args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "secret" not in err
    assert not out.exists() and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_study_runs_writes_its_table_and_preset_and_resume_adds_trials(tmp_path):
    out = tmp_path / "study"
    space = tmp_path / "space.toml"
    space.write_text("[lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n[hidden]\nchoices = ['32', '64x64']\n")
    first = run_drlab(["tune", "dqn", "CartPole-v1", "--trials", 3, "--jobs", 2, "--space", space, "--out", out, *TINY])
    assert first.returncode == 0, first.stderr
    assert "trial(s) at a time" in first.stdout and "best: trial" in first.stdout
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")
    trials = optuna.load_study(study_name="dqn-CartPole-v1", storage=storage).get_trials()
    assert len(trials) == 3 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    table = (out / "study.md").read_text()
    assert table.count("| trial-000") == 3
    preset = tomllib.loads((out / "best-preset.toml").read_text())["default"]
    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert preset["lr"] == pytest.approx(best.params["lr"]) and preset["total_steps"] == 1500
    assert preset["hidden"] == ([32] if best.params["hidden"] == "32" else [64, 64])
    # The preset is a valid config for `drlab train`.
    from drlab.config import build_config
    build_config(get_algo("dqn").Config, "CartPole-v1", preset).validate()
    # Each trial's runs are ordinary run directories, with the trial's settings.
    for t in trials:
        config = json.loads((out / t.user_attrs["drlab:dir"] / "s0" / "config.json").read_text())
        assert config["lr"] == pytest.approx(t.params["lr"]) and config["seed"] == 0

    more = run_drlab(["tune", "--resume", out, "--trials", 1])
    assert more.returncode == 0, more.stderr
    trials = optuna.load_study(study_name="dqn-CartPole-v1", storage=storage).get_trials()
    assert len(trials) == 4 and json.loads((out / "tune.json").read_text())["trials"] == 4

    report = run_drlab(["report", out])
    assert report.returncode == 0, report.stderr
    page = (out / "report.html").read_text()
    assert "Optimization History Plot" in page and "(best, " in page


def steps_logged(run_dir: Path) -> int:
    from drlab.run.logger import read_metrics

    if not (run_dir / "metrics.jsonl").is_file():
        return 0
    return max((r["step"] for r in read_metrics(run_dir)), default=0)


@pytest.mark.slow
def test_a_stopped_study_keeps_its_checkpoints_and_resume_finishes_it(tmp_path):
    # SIGTERM, as a job scheduler stops a job (Ctrl-C takes the same path: drlab.run.signals).
    from conftest import train_steps

    out = tmp_path / "study"
    space = tmp_path / "space.toml"  # one cheap network: the resumed trial's budget takes seconds
    space.write_text("[lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n")
    tune = subprocess.Popen(tune_command("dqn", "CartPole-v1", "--trials", 1, "--out", out, "--pruner", "none",
                                         "--space", space, "--set", "total_steps=8000", "--set", "eval_interval=0",
                                         "--set", "hidden=64", "--set", "final_eval_episodes=2",
                                         "--set", "log_interval=500"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = out / "trial-0000" / "s0"
    wait_for(lambda: steps_logged(run) >= 1000, tune, "a trial's first thousand steps")
    tune.send_signal(signal.SIGTERM)
    _, err = tune.communicate(timeout=120)
    assert tune.returncode == 130, err
    assert err.strip().splitlines()[-1] == (f"drlab: tune interrupted; the study is in {out}; "
                                            f"continue with: drlab tune --resume {out}")
    assert (run / "checkpoints" / "latest.pt").is_file() and not (run / "summary.json").exists()
    stopped_at = steps_logged(run)
    assert stopped_at < 8000
    # --resume runs the interrupted trial again with its settings, from its checkpoint; the study still
    # has the one trial it was asked for (the interrupted attempt is not counted).
    done = run_drlab(["tune", "--resume", out])
    assert done.returncode == 0, done.stderr
    assert "trial 1 started (attempt 1, after trial 0)" in done.stdout and "study: 1 complete" in done.stdout
    assert json.loads((run / "summary.json").read_text())["steps"] == 8000
    # Resumed, not restarted: every log interval once (what was logged after the checkpoint is dropped).
    assert train_steps(run) == list(range(500, 8001, 500))
    assert "stopped (Ctrl-C or SIGTERM) with a checkpoint; retried" in (out / "study.md").read_text()
