"""DQN logs the same numbers before and after its loop moved to the shared off-policy loop
(drlab.algos.off_policy): each variant, a short run on a fixed seed, against the metrics the same run
logged before (saved by running this file: ``python tests/test_dqn_variants_fixture.py``, from the
version of drlab before the move, commit 1f78803).

The numbers depend on the CPU's vector instructions: float32 products sum in another order with
AVX-512 than with AVX2, PER's sampling then draws other transitions, and the Atari cases run under
bfloat16 only where the CPU has it. So there is one fixture per PyTorch CPU capability
(``torch.backends.cpu.get_cpu_capability()``), each recorded on such a CPU from commit 1f78803:

    git worktree add /tmp/pre-move 1f78803 && cd /tmp/pre-move
    PYTHONPATH=src python tests/test_dqn_variants_fixture.py   # writes ..._loop.json: rename it ..._loop.CAPABILITY.json

The cases cover every replay (online, uniform, symlog-softmax, per), every bootstrap target (max,
double, sarsa with its one-step-late insert, expected-sarsa), n-step windows, Polyak and hard target
updates, no target network, several envs, and frames (Atari, with the frame store)."""

import json
from pathlib import Path

import pytest
import torch

import drlab
from fixture_runs import assert_logged_as_before, logged_metrics, write_fixture

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "dqn_variants_before_off_policy_loop.json"  # what the generator below writes
CAPABILITY = torch.backends.cpu.get_cpu_capability()
RECORDED = FIXTURES / f"dqn_variants_before_off_policy_loop.{CAPABILITY}.json"  # AVX2 and AVX512 so far
ATARI = "SpaceInvadersNoFrameskip-v4"
SHORT = dict(final_eval_episodes=2, eval_interval=0, log_interval=250, progress=False)

CASES = {
    "uniform-max": ("CartPole-v1", dict(total_steps=2500)),
    "uniform-double-3step-polyak": ("CartPole-v1", dict(total_steps=2500, target="double", n_step=3, tau=0.05,
                                                       target_update_interval=4)),
    "uniform-sarsa-3envs": ("CartPole-v1", dict(total_steps=2400, target="sarsa", num_envs=3, max_episode_steps=40)),
    "uniform-expected-sarsa-huber-penalty": ("CartPole-v1", dict(total_steps=2500, target="expected-sarsa", n_step=2,
                                                                loss="huber", q_penalty=0.1, gradient_steps=2)),
    "online": ("CartPole-v1", dict(total_steps=1500, replay="online", num_envs=1, learning_starts=0,
                                   target_update_interval=200, q_penalty=0.1)),
    "online-sarsa-no-target-2envs": ("CartPole-v1", dict(total_steps=1500, replay="online", num_envs=2,
                                                         learning_starts=0, target_update_interval=0, target="sarsa",
                                                         max_episode_steps=30)),
    "symlog-softmax": ("CartPole-v1", dict(total_steps=2500, replay="symlog-softmax", sort_interval=300, loss="huber")),
    "per-double-3step": ("CartPole-v1", dict(total_steps=2500, replay="per", target="double", n_step=3,
                                             max_episode_steps=50)),
    "per-sarsa": ("CartPole-v1", dict(total_steps=2500, replay="per", target="sarsa")),
    "atari-sarsa-3step": (ATARI, dict(total_steps=240, num_envs=2, learning_starts=80, batch_size=8, buffer_size=200,
                                      target="sarsa", n_step=3, target_update_interval=40, log_interval=40,
                                      final_eval_episodes=0)),
    "atari-per": (ATARI, dict(total_steps=200, num_envs=2, learning_starts=80, batch_size=8, buffer_size=200,
                              replay="per", target_update_interval=40, log_interval=40, final_eval_episodes=0)),
}


def logged(case: str, run_dir: Path) -> dict:
    env_id, overrides = CASES[case]
    run = drlab.train("dqn", env_id, seed=3, run_dir=run_dir, **{**SHORT, **overrides})
    return {"metrics": logged_metrics(run_dir), "eval": (run.summary.get("eval") or {}).get("mean")}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.slow
def test_dqn_variants_log_what_they_logged_before_the_shared_loop(case, tmp_path):
    if not RECORDED.exists():
        pytest.skip(f"no fixture recorded on a {CAPABILITY} CPU (the old loop's numbers cannot come from this "
                    "version; see the module's docstring)")
    before = json.loads(RECORDED.read_text())[case]
    now = logged(case, tmp_path / "run")
    assert_logged_as_before(now, before)


if __name__ == "__main__":  # write the fixture from the drlab this runs against
    write_fixture(CASES, logged, FIXTURE)
