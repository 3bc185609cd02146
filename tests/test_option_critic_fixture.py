"""Option-Critic logs the same numbers before and after its losses were rewritten on one batch layout
(drlab.algos.option_critic): each variant of the actor's targets and advantages, a short run on a
fixed seed, against the metrics the same run logged before (saved by running this file,
``python tests/test_option_critic_fixture.py``, from the version before the rewrite). One fixture per
PyTorch CPU capability, as for the DQN variants' fixture (float sums differ between AVX2 and AVX-512)."""

import json
from pathlib import Path

import pytest
import torch

import drlab
from fixture_runs import assert_logged_as_before, logged_metrics, write_fixture

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "option_critic_before_one_layout.json"  # what the generator below writes
RECORDED = FIXTURES / f"option_critic_before_one_layout.{torch.backends.cpu.get_cpu_capability()}.json"
SHORT = dict(total_steps=2400, learning_starts=300, batch_size=64, eval_interval=0, final_eval_episodes=2,
             log_interval=200, progress=False, num_envs=4)
CASES = {
    "one-step-raw": dict(),
    "one-step-scaled-cost": dict(termination_advantage="scaled", deliberation_cost=0.5, xi=0.1),
    "one-step-normalized-softmax": dict(termination_advantage="normalized", option_choice="softmax", num_options=3),
    "rollout-normalized-advantages": dict(actor_return="rollout", normalize_advantages=True, max_episode_steps=60,
                                          deliberation_cost=0.0),
}


def logged(case: str, run_dir: Path) -> dict:
    run = drlab.train("option-critic", "CartPole-v1", seed=11, run_dir=run_dir, **{**SHORT, **CASES[case]})
    return {"metrics": logged_metrics(run_dir), "eval": run.summary["eval"]["mean"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_option_critic_logs_what_it_logged_before_the_one_layout_losses(case, tmp_path):
    if not RECORDED.exists():
        pytest.skip(f"no fixture recorded on a {torch.backends.cpu.get_cpu_capability()} CPU")
    before = json.loads(RECORDED.read_text())[case]
    now = logged(case, tmp_path / "run")
    assert_logged_as_before(now, before)


if __name__ == "__main__":  # write the fixture from the drlab this runs against
    write_fixture(CASES, logged, FIXTURE)
