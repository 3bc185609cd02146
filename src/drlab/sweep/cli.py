"""The ``drlab sweep`` command line: a new grid, or ``--resume DIR``, on the local or the Ray backend."""

from __future__ import annotations

import argparse
from pathlib import Path

from drlab.cliparse import OneLineParser
from drlab.errors import DrlabError


SWEEP_EPILOG = """\
--set NAME=V1,V2,... takes config field names (dashes or underscores) and comma-separated values:
numbers (lr=1e-3,3e-4), bools (shared_body=true,false), choices (target=max,double), tuples of
ints joined by x (hidden=64x64,128x128), none for an optional value. A --set with one value is a
fixed override for every run. The grid is every combination of the values x every seed; each run
gets its own directory in --out, plus sweep.json, summary.md (one row per combination) and sweep.png."""


def cmd_sweep(argv: list[str]) -> int:
    from drlab.config import DEFAULT_PRESET
    from drlab.sweep.grid import check_jobs, load_sweep, max_jobs, plan_sweep

    p = OneLineParser(prog="drlab sweep", epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                      description="Train a grid of hyperparameter values x seeds as parallel processes (or Ray tasks "
                                  "on a cluster) and compare them.")
    p.add_argument("algo", nargs="?")
    p.add_argument("env_id", nargs="?")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of one config field (repeat for more fields)")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (required for a new sweep)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help="preset the grid starts from (default: %(default)s)")
    p.add_argument("--env-package", dest="env_packages", action="append", default=[], metavar="NAME",
                   help="a package that registers envs on import, imported by the sweep and every point (repeatable); "
                        "ENV_ID may also be MODULE:ENV_ID")
    p.add_argument("--jobs", type=int, default=None,
                   help=f"runs at once (local: default and maximum the CPU count, {max_jobs()}; ray: default as many "
                        "as the cluster has CPUs for)")
    p.add_argument("--out", type=Path, default=None, help="sweep directory (default: runs/sweep-ALGO-ENV-TIME)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the sweep in DIR: stopped runs resume from their checkpoints, cancelled and failed "
                        "ones run again, finished ones are kept")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: processes on this machine (default); ray: Ray tasks (pip install 'drlab[ray]')")
    p.add_argument("--address", default=None,
                   help="ray: the cluster's address (e.g. 10.0.0.1:6379, auto, or local for a Ray of the sweep's own); "
                        "default: a cluster started on this machine with `ray start --head`, else a Ray of its own")
    p.add_argument("--cpus-per-point", type=float, default=1.0, help="ray: CPUs reserved for each run (default: 1)")
    args = p.parse_args(argv)
    if args.backend == "local" and (args.address is not None or args.cpus_per_point != 1.0):
        raise DrlabError("--address and --cpus-per-point are for --backend ray")
    if args.cpus_per_point <= 0:
        raise DrlabError(f"--cpus-per-point must be > 0 (got {args.cpus_per_point:g})")
    local = args.backend == "local"
    if args.resume is not None:
        if args.algo or args.env_id or args.sets or args.seeds or args.out or args.env_packages:
            raise DrlabError("--resume DIR takes the grid from DIR/sweep.json: give no ALGO, ENV_ID, --set, --seeds, "
                             "--out or --env-package")
        sweep = load_sweep(args.resume)
        sweep.jobs = check_jobs(args.jobs, local)
    else:
        if not (args.algo and args.env_id and args.seeds):
            raise DrlabError("drlab sweep needs ALGO ENV_ID --seeds S1,S2,... (or --resume DIR)")
        sweep = plan_sweep(args.algo, args.env_id, args.sets, args.seeds, args.preset, args.jobs, args.out, local,
                           env_packages=args.env_packages)
    from drlab.sweep.command import backends, execute

    backend = backends()[args.backend]
    if not local:
        from functools import partial

        from drlab.ray_cluster import check_reachable, import_ray

        import_ray()  # one line naming the extra when Ray is missing, before anything is written
        check_reachable(args.address)
        sweep.out = sweep.out.resolve()  # every node must find the same directories
        for point in sweep.points:
            point.config["run_dir"] = str(Path(point.config["run_dir"]).resolve())
        backend = partial(backend, address=args.address, cpus_per_point=args.cpus_per_point)
    return execute(sweep, backend)
