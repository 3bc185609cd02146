"""``drlab tune``: hyperparameter search on Optuna (see docs/tuning.md).

space.py   search spaces as data (spaces/ALGO.toml), checked against the algorithm's config
trial.py   one trial in a worker: its seeds as ordinary drlab runs, evaluations reported for pruning
study.py   the study: storage, the trial count shared by every process, heartbeats, retries, results
executors.py  where trials run: processes on this machine, or Ray tasks
cli.py     the command line
"""
