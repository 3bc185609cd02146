"""Every algorithm logs the same numbers before and after the run's services were taken apart
(drlab.run: the clock, episode bookkeeping, the divergence guard, periodic evaluation, checkpoints and
the logger as separate parts): for each registered algorithm and each kind of action space it
declares, a short run with periodic evaluations and checkpoints on a fixed seed, against the metrics
the same run logged before (saved by running this file, ``python tests/test_run_services_fixture.py``,
from the version of drlab before the split, commit d49717b).

The numbers depend on the CPU's vector instructions (float32 sums in another order with AVX-512 than
with AVX2), so the fixture is one per PyTorch CPU capability, as for the DQN variants' fixture:

    git worktree add /tmp/pre-split d49717b && cd /tmp/pre-split
    PYTHONPATH=src python tests/test_run_services_fixture.py   # writes ..._split.json: rename it ..._split.CAPABILITY.json
"""

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import drlab
from drlab.algos import ALGORITHMS, get_algo
from fixture_runs import assert_logged_as_before, logged_metrics, write_fixture

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "every_algorithm_before_services_split.json"  # what the generator below writes
CAPABILITY = torch.backends.cpu.get_cpu_capability()
RECORDED = FIXTURES / f"every_algorithm_before_services_split.{CAPABILITY}.json"
ENVS = {gym.spaces.Discrete: "CartPole-v1", gym.spaces.Box: "Pendulum-v1"}
SHORT = dict(total_steps=2000, eval_interval=1000, eval_episodes=2, checkpoint_interval=1000, log_interval=250,
             final_eval_episodes=2, progress=False)


def cases() -> dict[str, tuple[str, str]]:
    return {f"{algo}-{env_id}": (algo, env_id) for algo in sorted(ALGORITHMS)
            for space, env_id in ENVS.items() if issubclass(space, get_algo(algo).ACTION_SPACES)}


def logged(case: str, run_dir: Path) -> dict:
    algo, env_id = cases()[case]
    fields = {f.name for f in dataclasses.fields(get_algo(algo).Config)}
    # Replay learners start updating within the short run, on small batches.
    replay = {name: value for name, value in (("learning_starts", 300), ("batch_size", 64)) if name in fields}
    run = drlab.train(algo, env_id, seed=5, run_dir=run_dir, **{**SHORT, **replay})
    return {"metrics": logged_metrics(run_dir), "eval": (run.summary.get("eval") or {}).get("mean")}


@pytest.mark.parametrize("case", sorted(cases()))
def test_every_algorithm_logs_what_it_logged_before_the_services_split(case, tmp_path):
    if not RECORDED.exists():
        pytest.skip(f"no fixture recorded on a {CAPABILITY} CPU (see the module's docstring)")
    before = json.loads(RECORDED.read_text())
    if case not in before:
        pytest.skip(f"{case} was registered after the fixture was recorded")
    before = before[case]
    now = logged(case, tmp_path / "run")
    assert_logged_as_before(now, before)


if __name__ == "__main__":  # write the fixture from the drlab this runs against
    write_fixture(cases(), logged, FIXTURE)
