"""The study: its storage, the trial count every process shares, heartbeats and retries, and the
driver's loop (ask -> start -> report/prune in the worker -> tell), the same for every executor.

- ``--trials N`` is the study's size, whatever the number of processes working on it: a process
  asks for a trial only while the study has fewer than N (finished, running or waiting), under a
  lock (a file lock next to an SQLite study, an advisory lock on PostgreSQL) so that two processes
  never both take the last one.
- A trial whose process dies (SIGKILL, a lost machine) stops sending heartbeats; after 4 missed ones
  any process working on the study marks it failed and queues it again with the same settings (a
  "retry", up to ``RETRIES`` times). A retry run by a process working in the same study directory
  (``--resume``) continues the trial's runs from their checkpoints; one taken over by another process
  starts over in that process's directory. A retried trial does not count towards N; its retry does.
- Ctrl-C / SIGTERM stops the running trials with a checkpoint; each is queued again, so that
  ``drlab tune --resume`` continues it.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import sys
import time
import warnings
from pathlib import Path

from drlab.errors import EXIT_INTERRUPTED, DrlabError
from drlab.run.signals import install_stop_signals, restore_signals
from drlab.tune.spec import SAME_STUDY, TuneSpec

RETRIES = 2  # a trial whose worker died runs again this many times before it counts as failed
POLL_S = 0.25
MISSED_HEARTBEATS = 4
ATTEMPT, RETRY_OF, DIR, REASON, EVALS, PRUNED, SPEC = (
    "drlab:attempt", "drlab:retry_of", "drlab:dir", "drlab:fail_reason", "drlab:evals", "drlab:pruned", "drlab:spec")


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise DrlabError("drlab tune needs Optuna: pip install 'drlab[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # drlab's driver sends the heartbeats itself (ask and tell, not Study.optimize).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    return optuna


def make_storage(url: str, heartbeat: int | None = None):
    """Optuna's RDB storage for ``url`` (SQLite waits for a busy file rather than failing; with
    ``heartbeat`` a trial silent for 4 heartbeats is failed and retried)."""
    optuna = import_optuna()
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    beats = {} if heartbeat is None else dict(heartbeat_interval=heartbeat, grace_period=MISSED_HEARTBEATS * heartbeat,
                                               heartbeat_stale_trial_callback=retry_trial)
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **beats)
        except ModuleNotFoundError as err:
            raise DrlabError(f"--storage {redact(url)}: its database driver is not installed ({err.name}; "
                             "PostgreSQL: pip install 'drlab[tune]')") from None
        except Exception as err:  # noqa: BLE001 - SQLAlchemy's many errors: a bad URL, a server not reached
            # Two processes that open a new database at once both create Optuna's tables, and one of
            # them fails on the other's: a moment later the tables are there.
            if ("duplicate key" in str(err) or "already exists" in str(err)) and attempt < 2:
                time.sleep(1.0)
                continue
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise DrlabError(f"cannot open the study storage {redact(url)}: {first}"[:300]) from None


def redact(url: str) -> str:
    """The URL without its password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':')[0]}:***@{tail}" if ":" in user else url


def make_pruner(spec: dict):
    optuna = import_optuna()
    if spec["name"] == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=spec["startup_trials"], n_warmup_steps=spec["warmup_steps"])


def make_sampler(name: str):
    optuna = import_optuna()
    return optuna.samplers.RandomSampler() if name == "random" else optuna.samplers.TPESampler()


def open_study(spec: TuneSpec, storage):
    """Create the study, or join it (``--storage`` shared by several processes, or ``--resume``); a
    study of the same name made for another algorithm, env, seeds or space is refused."""
    optuna = import_optuna()
    study = optuna.create_study(study_name=spec.study_name, storage=storage, direction="maximize",
                                load_if_exists=True, sampler=make_sampler(spec.sampler),
                                pruner=make_pruner(spec.pruner))
    mine = {k: v for k, v in spec.to_json().items() if k in SAME_STUDY}
    theirs = study.user_attrs.get(SPEC)
    if theirs is None:
        study.set_user_attr(SPEC, mine)
    elif theirs != mine:
        differ = [k for k in SAME_STUDY if theirs.get(k) != mine.get(k)]
        raise DrlabError(f"the study {spec.study_name!r} in {redact(spec.storage_url)} was made with another "
                         f"{', '.join(differ)}; give another --study name")
    return study


@contextlib.contextmanager
def asking(storage, spec: TuneSpec):
    """One process at a time counts the study's trials and asks for one."""
    url = spec.storage_url
    if url.startswith("sqlite:///"):
        import fcntl

        with open(Path(url[len("sqlite:///"):]).with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    elif url.startswith("postgresql"):
        from sqlalchemy import text

        key = int.from_bytes(hashlib.sha1(spec.study_name.encode()).digest()[:8], "big", signed=True)
        with storage.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    else:  # another database: without a lock two processes may, rarely, both take the last trial
        yield


def retry_trial(study, trial, count: bool = True) -> None:
    """Queue ``trial`` (failed: its worker died, or interrupted) again with the same settings and the
    same run directories; ``count``: the attempt counts against RETRIES. Its intermediate values are
    not copied: the retry reports again from where its runs go on (their checkpoints, or the start)."""
    optuna = import_optuna()
    attempt = int(trial.system_attrs.get(ATTEMPT, 1)) + (1 if count else 0)
    if attempt > RETRIES + 1:
        return
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k == DIR},
        system_attrs={ATTEMPT: attempt, RETRY_OF: trial.number}))


def counted(trials) -> list:
    """The trials that count towards the study's size: all but those queued again as a retry."""
    retried = {t.system_attrs.get(RETRY_OF) for t in trials}
    return [t for t in trials if not (t.state.name == "FAIL" and t.number in retried)]


def optimize(spec: TuneSpec, executor, echo=print) -> int:
    """Run the study's trials on ``executor`` until it has ``spec.trials`` (or ``--timeout``);
    returns the exit status (0; 130 after Ctrl-C / SIGTERM)."""
    from drlab.config import field_types
    from drlab.algos import get_algo
    from drlab.tune.space import sample

    optuna = import_optuna()
    states = optuna.trial.TrialState
    storage = make_storage(spec.storage_url, spec.heartbeat)
    with asking(storage, spec):
        study = open_study(spec, storage)
    space, base, types = spec.space(), spec.base(), field_types(get_algo(spec.algo).Config)
    running: dict[int, object] = {}  # trial number -> optuna Trial, for the trials this process runs
    started, waiting_note = time.monotonic(), False
    beating = Heartbeats(storage, spec.heartbeat)

    def start(trial) -> None:
        try:
            dirname = trial.user_attrs.get(DIR) or f"trial-{trial.number:04d}"
            trial.set_user_attr(DIR, dirname)
            settings = sample(trial, space, base, types)
            configs = spec.trial_configs(settings, dirname)
        except DrlabError as err:  # e.g. a sampled combination the config refuses
            beating.stop(trial)
            tell(study, trial, {"state": "fail", "reason": str(err)}, echo)
            return
        except BaseException:  # Ctrl-C here, or a bug: the trial is queued again rather than left RUNNING
            beating.stop(trial)
            tell(study, trial, {"state": "interrupted", "reason": "stopped before it started"}, echo)
            raise
        marks = storage.get_trial(trial._trial_id).system_attrs
        running[trial.number] = trial
        executor.start(trial.number, {"algo": spec.algo, "configs": configs, "storage": spec.storage_url,
                                      "study": spec.study_name, "trial_id": trial._trial_id, "pruner": spec.pruner,
                                      "retry": RETRY_OF in marks})
        again = f" (attempt {marks[ATTEMPT]}, after trial {marks[RETRY_OF]})" if RETRY_OF in marks else ""
        echo(f"trial {trial.number} started{again}: {describe(settings)}")

    def finish(number: int, outcome: dict) -> None:
        trial = running.pop(number)
        beating.stop(trial)
        tell(study, trial, outcome, echo)

    previous = install_stop_signals(signal.default_int_handler)
    try:
        while True:
            for number, outcome in executor.finished():
                finish(number, outcome)
            timed_out = spec.timeout is not None and time.monotonic() - started >= spec.timeout
            with asking(storage, spec):
                optuna.storages.fail_stale_trials(study)
                trials = study.get_trials(deepcopy=False)
                waiting = any(t.state == states.WAITING for t in trials)
                wanted = waiting or len(counted(trials)) < spec.trials
                trial = None
                if wanted and not timed_out and len(running) < executor.width:
                    trial = study.ask()
                    # Its first heartbeat before the lock is let go: a trial never heard from could never
                    # be found stale, and would keep every process waiting for it.
                    beating.start(trial)
            if trial is not None:
                start(trial)
                continue
            others = [t for t in trials if t.state == states.RUNNING and t.number not in running]
            if not running and (timed_out or (not wanted and not others)):
                break
            if not running and others and not waiting_note:
                echo(f"waiting for {len(others)} trial(s) of other processes (a dead one's is taken over)")
                waiting_note = True
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        for number, outcome in executor.stop().items():  # heartbeats go on while the workers stop
            finish(number, outcome)
        for number in list(running):
            finish(number, {"state": "interrupted", "reason": "stopped before a checkpoint"})
        print(f"drlab: tune interrupted; the study is in {spec.out}; continue with: drlab tune --resume {spec.out}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        restore_signals(previous)
        executor.close()
        beating.close()
        storage.engine.dispose()
    return 0


class Heartbeats:
    """A thread that records a heartbeat for each trial this process runs, every ``interval``
    seconds, whatever the driver is doing (waiting for workers to stop included)."""

    def __init__(self, storage, interval: int):
        import threading

        self.storage, self.interval = storage, interval
        self.trials: dict[int, int] = {}  # number -> trial id
        self.lock, self.done = threading.Lock(), threading.Event()
        threading.Thread(target=self._beat, daemon=True).start()

    def start(self, trial) -> None:
        self.storage.record_heartbeat(trial._trial_id)
        with self.lock:
            self.trials[trial.number] = trial._trial_id

    def stop(self, trial) -> None:
        with self.lock:
            self.trials.pop(trial.number, None)

    def _beat(self) -> None:
        while not self.done.wait(self.interval):
            with self.lock:
                ids = list(self.trials.values())
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a database blip: the next beat tries again
                    pass

    def close(self) -> None:
        self.done.set()


def tell(study, trial, outcome: dict, echo) -> None:
    """Record how a trial ended; an interrupted trial (or one whose worker died) is queued again. A
    trial that another process has already failed as stale (it has queued the retry) is left as it is."""
    optuna = import_optuna()
    states = optuna.trial.TrialState
    if study._storage.get_trial(trial._trial_id).state.is_finished():
        echo(f"trial {trial.number} ended here, but another process had already taken it as dead and queued it "
             "again; its result here is dropped")
        return
    state = outcome["state"]
    try:
        _tell(study, trial, outcome, echo, states)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError) as err:
        # Finished by another process between the check and here (Optuna refuses a second tell).
        echo(f"trial {trial.number}: its result could not be recorded ({type(err).__name__}); another process "
             "had already ended it")
        return
    retry = state == "interrupted" or (state == "fail" and outcome.get("retry", False))
    if retry:
        retry_trial(study, study._storage.get_trial(trial._trial_id), count=state != "interrupted")


def _tell(study, trial, outcome: dict, echo, states) -> None:
    state = outcome["state"]
    if state == "complete":
        trial.set_user_attr(EVALS, outcome["evals"])
        study.tell(trial, outcome["value"])
        echo(f"trial {trial.number} complete: {outcome['value']:.2f} (seeds: "
             f"{', '.join(f'{v:.1f}' for v in outcome['evals'])})")
    elif state == "pruned":
        trial.set_user_attr(PRUNED, f"at step {outcome['step']:,} (evaluation {outcome['value']:.2f})")
        study.tell(trial, state=states.PRUNED)
        echo(f"trial {trial.number} pruned at step {outcome['step']:,}: evaluation {outcome['value']:.2f} "
             "below the median of earlier trials")
    else:
        trial.set_user_attr(REASON, outcome["reason"])
        study.tell(trial, state=states.FAIL)
        retry = state == "interrupted" or outcome.get("retry", False)
        echo(f"trial {trial.number} {'stopped' if state == 'interrupted' else 'failed'}: {outcome['reason']}"
             + ("; queued again" if retry else ""))


def describe(settings: dict) -> str:
    from drlab.sweep.values import format_value

    return " ".join(f"{k}={format_value(v) if not isinstance(v, float) else f'{v:.4g}'}" for k, v in settings.items())
