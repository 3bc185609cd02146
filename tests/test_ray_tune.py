"""`drlab tune --backend ray`: trials as Ray tasks on a local Ray (the fixture ray_address), the
driver asking and telling Optuna, the tasks reporting their evaluations to the study."""

import subprocess

import pytest

from test_tune import TINY, tune_command

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.ray]
optuna = pytest.importorskip("optuna", reason="drlab tune needs Optuna: pip install 'drlab[tune]'")


def test_trials_run_as_ray_tasks(ray_address, tmp_path):
    out = tmp_path / "study"
    space = tmp_path / "space.toml"
    space.write_text("[lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n")
    result = subprocess.run(tune_command("dqn", "CartPole-v1", "--trials", 3, "--space", space, "--out", out,
                                         "--backend", "ray", "--address", ray_address, *TINY),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ray: 2 CPUs, 1 per trial: 2 trial(s) at a time" in result.stdout
    study = optuna.load_study(study_name="dqn-CartPole-v1", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert (out / "best-preset.toml").is_file()
    for t in trials:
        assert (out / t.user_attrs["drlab:dir"] / "s0" / "config.json").is_file()
