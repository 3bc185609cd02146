"""One trial, in a worker process (or a Ray task): its seeds as ordinary drlab runs, one after
another, each periodic evaluation reported to the study so that the pruner can stop the trial.

Seed i's evaluation at step s is reported at step ``i * total_steps + s`` (s rounded down to the
evaluation interval, so that trials whose rollouts end at other steps still compare): every trial of
a study runs the same seeds in the same order, so the pruner compares like with like.
"""

from __future__ import annotations

import statistics
import sys

from drlab.sweep.backend import run_point


def run_trial(algo: str, configs: list[dict], report) -> dict:
    """Train the trial's runs (``configs``: one per seed) and say how it ended; never raises.

    ``report(step, value) -> bool`` is called after each periodic evaluation; True (prune) stops the
    run at the end of its step, with a checkpoint, and ends the trial.

    Returns {"state": "complete", "value", "evals"} | {"state": "pruned", "step", "value"} |
    {"state": "fail" | "interrupted", "reason"}.
    """
    budget = max(int(c["total_steps"]) for c in configs)
    evals: list[float] = []
    for i, config in enumerate(configs):
        interval = int(config.get("eval_interval") or 0)
        pruned: list[tuple[int, float]] = []

        def on_eval(step: int, mean: float, offset: int = i * budget, interval: int = interval) -> bool:
            at = offset + (step // interval * interval if interval else step)
            if report(at, float(mean)):
                pruned.append((at, float(mean)))
                return True
            return False

        outcome = run_point(algo, config, on_eval=on_eval)
        if pruned:
            return {"state": "pruned", "step": pruned[0][0], "value": pruned[0][1]}
        if outcome["status"] == "interrupted":
            return {"state": "interrupted", "reason": "stopped (Ctrl-C or SIGTERM) with a checkpoint"}
        if outcome["status"] != "ok":
            return {"state": "fail", "reason": f"seed {config['seed']} {outcome['status']}: {outcome['error']}"}
        result = outcome["summary"].get("eval")
        if result is None:
            return {"state": "fail", "reason": f"seed {config['seed']}: no final evaluation (final_eval_episodes = 0)"}
        evals.append(float(result["mean"]))
    return {"state": "complete", "value": statistics.fmean(evals), "evals": evals}


def storage_reporter(url: str, study_name: str, trial_id: int, pruner: dict):
    """``report(step, value) -> prune?`` for a trial of the study in ``url``, from any process that
    reaches the storage (the driver alone asks for trials and tells their results)."""
    import optuna

    from drlab.tune.study import make_pruner, make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(url)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(pruner))
    trial = optuna.trial.Trial(study, trial_id)

    def report(step: int, value: float) -> bool:
        try:
            trial.report(value, step)
            return trial.should_prune()
        except Exception as err:  # noqa: BLE001 - a database blip, or the trial ended by another process:
            # the run goes on unpruned rather than die without a checkpoint
            print(f"drlab: warning: trial {trial.number}: could not report step {step:,} to the study "
                  f"({type(err).__name__})", file=sys.stderr)
            return False

    report.close = storage.engine.dispose  # the worker's connections, when the trial is over
    return report
