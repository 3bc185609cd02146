"""The ``drlab tune`` command line: a new study, one joined through --storage, or --resume DIR."""

from __future__ import annotations

import argparse
from pathlib import Path

from drlab.cliparse import OneLineParser
from drlab.errors import DrlabError

TUNE_EPILOG = """\
Each trial is an ordinary drlab run per seed (run directories DIR/trial-NNNN/sSEED) with settings drawn
from the search space (the algorithm's built-in one, or --space FILE.toml: see docs/tuning.md); its score
is the final greedy evaluation, averaged over --seeds. Periodic evaluations are reported as the trial
goes, and the median pruner stops a trial below the median of earlier ones at the same step (with a
checkpoint). The study is an SQLite file in DIR unless --storage names a database (PostgreSQL:
postgresql://USER:PASSWORD@HOST/DB); processes on several machines that give the same --storage and
--study share the study and its --trials count, and the trial of a process that dies is run again by
another. At the end DIR holds study.md (every trial) and best-preset.toml; `drlab report DIR` shows the
study. Ctrl-C stops the running trials with a checkpoint; `drlab tune --resume DIR` continues them."""


def cmd_tune(argv: list[str]) -> int:
    p = OneLineParser(prog="drlab tune", epilog=TUNE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                      description="Search hyperparameters with Optuna (TPE and a median pruner by default) and write "
                                  "the best as a preset.")
    p.add_argument("algo", nargs="?")
    p.add_argument("env_id", nargs="?")
    p.add_argument("--trials", type=int, default=None,
                   help="trials in the study, counted over every process working on it (default 20; with --resume: "
                        "this many more)")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which this process starts no new trial")
    p.add_argument("--seeds", default=None, help="seeds of every trial, comma-separated; the score is their mean "
                                                 "(default: 0; keep the seeds you report on out)")
    p.add_argument("--space", type=Path, default=None, metavar="FILE.toml",
                   help="search space (default: the algorithm's built-in one; see docs/tuning.md)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed setting for every trial, e.g. total_steps=50000 (repeatable)")
    p.add_argument("--preset", default=None, help="the preset trials start from (default: default)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="an Optuna RDB storage URL shared by several processes, e.g. postgresql://user:pw@host/db "
                        "(default: DIR/study.db, SQLite)")
    p.add_argument("--study", default=None, metavar="NAME", help="the study's name in the storage (default: ALGO-ENV)")
    p.add_argument("--sampler", default=None, help="tpe (default) or random")
    p.add_argument("--pruner", default=None, help="median (default) or none")
    p.add_argument("--heartbeat", type=int, default=None, metavar="S",
                   help="seconds between a running trial's heartbeats; one silent for 4 is taken as dead and run "
                        "again (default: 30; every process on a study uses the same)")
    p.add_argument("--jobs", type=int, default=None, help="trials at once (default 1; ray: as many as CPUs allow)")
    p.add_argument("--env-package", dest="env_packages", action="append", default=[], metavar="NAME",
                   help="a package that registers envs on import (repeatable)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: a process per trial on this machine (default); ray: Ray tasks")
    p.add_argument("--address", default=None, help="ray: the cluster's address (default: a local Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="ray: CPUs reserved for each trial (default: 1)")
    p.add_argument("--out", type=Path, default=None, help="study directory (default: runs/tune-ALGO-ENV-TIME)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR", help="continue the study in DIR")
    args = p.parse_args(argv)

    from drlab.sweep.grid import max_jobs
    from drlab.tune.spec import load_spec, plan_spec
    from drlab.tune.study import import_optuna, make_storage, optimize

    import_optuna()  # one line naming the extra when Optuna is missing
    local = args.backend == "local"
    if local and (args.address is not None or args.cpus_per_trial != 1.0):
        raise DrlabError("--address and --cpus-per-trial are for --backend ray")
    if args.jobs is not None and (args.jobs < 1 or (local and args.jobs > max_jobs())):
        raise DrlabError(f"--jobs must be between 1 and {max_jobs()} (got {args.jobs})" if local
                         else f"--jobs must be >= 1 (got {args.jobs})")
    if args.timeout is not None and not args.timeout > 0:
        raise DrlabError(f"--timeout must be > 0 seconds (got {args.timeout:g})")
    if args.resume is not None:
        fixed = {"ALGO": args.algo, "ENV_ID": args.env_id, "--set": args.sets, "--space": args.space,
                 "--storage": args.storage, "--study": args.study, "--out": args.out, "--seeds": args.seeds,
                 "--preset": args.preset, "--sampler": args.sampler, "--pruner": args.pruner,
                 "--heartbeat": args.heartbeat, "--env-package": args.env_packages}
        if given := [name for name, value in fixed.items() if value]:
            raise DrlabError(f"--resume DIR takes the study from DIR/tune.json: give no {', '.join(given)} "
                             "(only --trials, --timeout, --jobs and the backend's options)")
        spec = load_spec(args.resume)
        if args.trials is not None:
            if args.trials < 1:
                raise DrlabError(f"--trials must be >= 1 (got {args.trials})")
            spec.trials += args.trials
        spec.timeout = args.timeout
    else:
        if not (args.algo and args.env_id):
            raise DrlabError("drlab tune needs ALGO ENV_ID (or --resume DIR)")
        spec = plan_spec(args.algo, args.env_id, preset=args.preset, seeds=args.seeds or "0",
                         trials=20 if args.trials is None else args.trials, sets=args.sets, space_file=args.space,
                         storage=args.storage, study_name=args.study, out=args.out, timeout=args.timeout,
                         sampler=args.sampler or "tpe", pruner=args.pruner or "median",
                         heartbeat=30 if args.heartbeat is None else args.heartbeat, jobs=args.jobs or 1,
                         env_packages=args.env_packages)
    spec.jobs = args.jobs or spec.jobs
    if spec.storage:  # the database reached, and a study of that name made for this one, before anything is written
        from drlab.tune.study import asking, open_study

        storage = make_storage(spec.storage_url)
        try:
            with asking(storage, spec):
                open_study(spec, storage)
        finally:
            storage.engine.dispose()
    executor = _executor(args, spec)
    try:
        spec.save()
    except BaseException:
        executor.close()
        raise
    print(f"tune: {spec.algo} on {spec.env_id}, study {spec.study_name!r}, {spec.trials} trials, seeds "
          f"{','.join(map(str, spec.seeds))}; {executor.width} trial(s) at a time; in {spec.out}")
    status = optimize(spec, executor)
    return _finish(spec, status)


def _executor(args, spec):
    if args.backend == "ray":
        from drlab.tune.executors import RayExecutor

        return RayExecutor(args.jobs, args.address, args.cpus_per_trial, spec.out.resolve(), spec.storage is None)
    from drlab.tune.executors import LocalExecutor

    return LocalExecutor(spec.jobs)


def _finish(spec, status: int) -> int:
    import sys

    from drlab.errors import EXIT_SWEEP_FAILED
    from drlab.tune.results import PRESET_FILE, TABLE_FILE, write_results
    from drlab.tune.study import make_storage

    storage = make_storage(spec.storage_url)
    try:
        result = write_results(spec, storage)
    finally:
        storage.engine.dispose()
    if status:
        return status
    counts = ", ".join(f"{n} {s.lower()}" for s, n in result["states"].items() if n)
    print(f"study: {counts}; every trial in {spec.out / TABLE_FILE}")
    best = result["best"]
    if best is None:
        print("drlab: error: no trial completed (see study.md for why)", file=sys.stderr)
        return EXIT_SWEEP_FAILED
    print(f"best: trial {best.number}, score {best.value:.2f}; preset written to {spec.out / PRESET_FILE} "
          f"(copy it to src/drlab/presets/{spec.algo}/{spec.env_id.replace('/', '_')}.toml)")
    return 0
