"""The backend seam of ``drlab sweep``: what runs the points.

The backends are registered in :func:`drlab.sweep.command.backends`. A backend is a function ``backend(points, jobs, on_result) -> outcomes``: ``points`` is a list of
``(algo, config dict)``, at most ``jobs`` run at once, ``on_result(index, outcome)`` is called as
each point finishes, and the outcomes come back in the points' order. On Ctrl-C or SIGTERM it
stops its running points with a checkpoint, cancels the pending ones and raises
:class:`SweepInterrupted` with the outcomes so far (None: cancelled). Every backend runs a point
with :func:`run_point`, which takes and returns plain data only, so that any process or machine
can run it.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from pathlib import Path

from drlab.errors import Diverged, DrlabError, write_failure

RETRIES = 2  # a point whose worker (or node) dies is resumed this many times before it counts as failed


def run_point(algo: str, config: dict, on_eval=None) -> dict:
    """Train one point in this process, or carry it on; never raises (the outcome says what happened).

    A point's run directory may already hold an earlier attempt (``drlab sweep --resume``, or a Ray
    worker that died): one with summary.json is reported as it finished, one with a checkpoint is
    resumed from it (``drlab resume``), and one with files but no checkpoint (it died before its
    first checkpoint) is kept under another name while the point starts afresh, never over it.

    ``on_eval(step, mean)``, called after each periodic evaluation, stops the run (with a checkpoint,
    status "interrupted") when it returns True.

    Returns {"status": "ok" | "failed" | "diverged" | "interrupted", "summary", "final_reward_mean_100",
    "error", "traceback"}.
    """
    from drlab.run.logger import read_metrics
    from drlab.run.rundir import CHECKPOINT, SUMMARY_FILE, config_from_json
    from drlab.run.runner import resume, train_config

    outcome = failed_outcome(None)
    try:
        run_dir = Path(config["run_dir"])
        if (run_dir / SUMMARY_FILE).is_file():
            outcome.update(status="ok", summary=json.loads((run_dir / SUMMARY_FILE).read_text()))
        else:
            if (run_dir / CHECKPOINT).is_file():
                result = resume(run_dir, on_eval=on_eval)
            else:
                set_aside_unfinished(run_dir)
                _, cfg = config_from_json({"algo": algo, **{k: v for k, v in config.items() if k != "algo"}})
                # The sweep's driver ran the env checker once for every point.
                result = train_config(algo, dataclasses.replace(cfg, progress=False), env_checker=False,
                                      on_eval=on_eval)
            if result.interrupted:
                outcome.update(status="interrupted", error=f"interrupted; continue with: drlab resume {result.dir}")
            else:
                outcome.update(status="ok", summary=result.summary)
        means = [r["episode/reward_mean_100"] for r in read_metrics(run_dir)
                 if r.get("episode/reward_mean_100") is not None]
        outcome["final_reward_mean_100"] = float(means[-1]) if means else None
    except KeyboardInterrupt:
        outcome.update(status="interrupted", error="interrupted")
    except Diverged as err:
        outcome.update(status="diverged", error=str(err))
    except OSError as err:
        outcome.update(error=write_failure(err))
    except Exception as err:  # noqa: BLE001 - a failed point is reported, the others go on
        text = str(err).strip().splitlines()
        message = text[0] if text else ""
        outcome.update(error=message if isinstance(err, DrlabError) else f"{type(err).__name__}: {message}"[:300],
                       traceback=traceback.format_exc())
    return outcome


def set_aside_unfinished(run_dir: Path) -> None:
    """Rename a run directory that holds files but no checkpoint (an attempt that died before its
    first one) to NAME.incomplete-K, so that the point can start afresh without losing them."""
    from drlab.run.rundir import LOCK_FILE, RunLock

    if not run_dir.is_dir() or not any(path.name != LOCK_FILE for path in run_dir.iterdir()):
        return
    with RunLock(run_dir):  # one line, not a rename, if a live process is writing it
        pass
    k = 1
    while (target := run_dir.with_name(f"{run_dir.name}.incomplete-{k}")).exists():
        k += 1
    run_dir.rename(target)


def failed_outcome(error: str | None, status: str = "failed") -> dict:
    """The outcome of a point that did not finish (``error`` says why)."""
    return {"status": status, "summary": None, "final_reward_mean_100": None, "error": error, "traceback": None}


class SweepInterrupted(Exception):
    def __init__(self, outcomes: list[dict | None]):
        super().__init__("interrupted")
        self.outcomes = outcomes
