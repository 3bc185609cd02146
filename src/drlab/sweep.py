"""`drlab sweep`: a grid of hyperparameter values x seeds, run as parallel local processes.

    drlab sweep ALGO ENV_ID --set NAME=V1,V2,... [--set NAME2=...] --seeds 0,1,2
                [--preset NAME] [--jobs K] [--out DIR]

Value syntax of ``--set`` (commas separate values, so no value may contain one):
  int / float     ``lr=1e-3,3e-4``  ``batch_size=32,64``  (``100_000`` and ``1e5`` work for ints)
  bool            ``double_dqn=true,false``  (also yes/no, on/off, 1/0)
  str / Literal   ``replay=uniform,per``  (a Literal must be one of its choices)
  tuple of ints   ``hidden=64x64,128x128x128``  (sizes joined by ``x``)
  optional        ``stop_threshold=none,200``  (``none`` is None)
A ``--set`` with one value is a fixed override for every point. Names are the config's field
names; dashes work for underscores (``--set batch-size=32``).

Each point of the grid is a plain JSON-serializable config dict (the contents of its run's
``config.json``): the preset's overrides, the fixed overrides, the point's values, its seed and its
run directory, checked by ``build_config`` + ``validate()`` before anything runs. Running points
is :func:`run_local`, a function of a list of ``(algo, config dict)`` -> a list of outcomes; a
distributed backend (e.g. Ray tasks calling :func:`run_point`) can replace it behind the same
command.

The output directory holds one run directory per point (``lr=0.001-s0``), ``sweep.json`` (the
grid, and each point's config, status and summary), ``summary.md`` (one table row per value
combination) and ``sweep.png`` (mean ``episode/reward_mean_100`` over seeds, band min to max).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import re
import signal
import statistics
import sys
import traceback
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from drlab.errors import DrlabError

SWEEP_FILE = "sweep.json"
TABLE_FILE = "summary.md"
PLOT_FILE = "sweep.png"
# Fields the sweep sets itself: name -> how to set it instead.
RESERVED = {
    "env_id": "the environment is the ENV_ID argument",
    "seed": "use --seeds",
    "run_dir": "use --out (each point gets its own run directory inside it)",
    "progress": "progress bars are always off in a sweep",
}
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


# ---- parsing ---------------------------------------------------------------------------------

def parse_set(text: str) -> tuple[str, list[str]]:
    """``NAME=V1,V2`` -> (name with dashes as underscores, raw values)."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise DrlabError(f"--set {text!r}: expected NAME=VALUE[,VALUE...]")
    raw = [v.strip() for v in values.split(",")]
    if not values.strip() or any(not v for v in raw):
        raise DrlabError(f"--set {text!r}: empty value (values are separated by commas)")
    return name, raw


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise DrlabError(f"--seeds {text!r}: expected integers separated by commas, e.g. 0,1,2") from None
    if any(s < 0 for s in seeds):
        raise DrlabError(f"--seeds {text!r}: seeds must be >= 0")
    if len(set(seeds)) != len(seeds):
        raise DrlabError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def field_types(config_cls: type) -> dict[str, Any]:
    """{field name: resolved type} of a config dataclass (Annotated stripped)."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def parse_value(name: str, tp: Any, text: str) -> Any:
    """One ``--set`` value from its string to the field's type, or a one-line DrlabError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    low = text.lower()
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and low in ("none", "null"):
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return parse_value(name, option, text)
            except DrlabError as err:
                errors.append(str(err))
        raise DrlabError(errors[0] + (" or none" if type(None) in args else ""))
    if origin is Literal:
        for choice in args:
            if str(choice).lower() == low:
                return choice
        raise DrlabError(f"{name}: {text!r} is not one of {', '.join(map(str, args))}")
    if tp is bool:
        if low in TRUE_WORDS:
            return True
        if low in FALSE_WORDS:
            return False
        raise DrlabError(f"{name}: {text!r} is not a bool (true or false)")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number.is_integer():
            return int(number)
        raise DrlabError(f"{name}: {text!r} is not an integer")
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise DrlabError(f"{name}: {text!r} is not a number") from None
    if tp is str:
        return text
    if origin is tuple and args and all(a is int or a is Ellipsis for a in args):
        try:
            sizes = tuple(int(part) for part in text.lower().split("x"))
        except ValueError:
            raise DrlabError(f"{name}: {text!r} is not a tuple of integers (write sizes joined by x, e.g. 64x64)") from None
        if args[-1] is not Ellipsis and len(sizes) != len(args):
            raise DrlabError(f"{name}: {text!r} needs {len(args)} integers joined by x")
        return sizes
    raise DrlabError(f"{name} (type {tp}) cannot be set by drlab sweep")


def format_value(value: Any) -> str:
    """The value as --set syntax (also used in run-directory names and table rows)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def point_name(values: dict[str, Any], seed: int) -> str:
    """``lr=0.001-batch_size=64-s0``, with anything but letters, digits and ``._=+-`` made ``_``."""
    parts = [f"{k}={format_value(v)}" for k, v in values.items()] + [f"s{seed}"]
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", "-".join(parts))


def combo_label(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "(all points)"


# ---- the grid --------------------------------------------------------------------------------

@dataclass
class Point:
    name: str
    values: dict[str, Any]  # the varying settings of this point (not the seed)
    seed: int
    config: dict  # config.json contents: {"algo": ..., every config field}
    status: str = "pending"  # pending | ok | failed | interrupted | cancelled
    summary: dict | None = None
    final_reward_mean_100: float | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass
class Sweep:
    algo: str
    env_id: str
    preset: str
    grid: dict[str, list]  # settings with several values, in command-line order
    fixed: dict[str, Any]  # settings with one value
    seeds: list[int]
    jobs: int
    out: Path
    points: list[Point] = field(default_factory=list)

    def combos(self) -> list[dict[str, Any]]:
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]

    def to_json(self) -> dict:
        return {
            "algo": self.algo, "env_id": self.env_id, "preset": self.preset,
            "grid": {k: [_jsonable(v) for v in vs] for k, vs in self.grid.items()},
            "fixed": {k: _jsonable(v) for k, v in self.fixed.items()},
            "seeds": self.seeds, "jobs": self.jobs, "out": str(self.out),
            "points": [_jsonable(dataclasses.asdict(p)) for p in self.points],
        }


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def default_out_dir(algo: str, env_id: str) -> Path:
    from drlab.runner import timestamped_dir

    return timestamped_dir(f"sweep-{algo}-{re.sub(r'[^A-Za-z0-9._-]', '_', env_id)}")


def max_jobs() -> int:
    return os.cpu_count() or 1


def plan_sweep(algo: str, env_id: str, sets: list[str], seeds: str, preset: str | None = None,
               jobs: int | None = None, out: Path | None = None) -> Sweep:
    """Parse and check everything; every point's config is built and validated, nothing is written."""
    from drlab.algos import get_algo
    from drlab.config import DEFAULT_PRESET, build_config, preset_overrides
    from drlab.envs import env_spec
    from drlab.runner import config_to_json

    preset = preset or DEFAULT_PRESET
    module = get_algo(algo)
    env_spec(env_id)
    base = preset_overrides(algo, env_id, preset)
    seed_list = parse_seeds(seeds)
    if jobs is None:
        jobs = max_jobs()
    if not 1 <= jobs <= max_jobs():
        raise DrlabError(f"--jobs must be between 1 and {max_jobs()} (the number of CPUs; got {jobs})")

    types_ = field_types(module.Config)
    grid, fixed = {}, {}
    for text in sets:
        name, raw = parse_set(text)
        if name in RESERVED:
            raise DrlabError(f"--set {name}: {RESERVED[name]}")
        if name not in types_:
            close = difflib.get_close_matches(name, [n for n in types_ if n not in RESERVED], n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise DrlabError(f"--set {name}: unknown setting for {algo}{hint}")
        if name in grid or name in fixed:
            raise DrlabError(f"--set {name}: given twice (list every value in one --set {name}=V1,V2)")
        values = [parse_value(name, types_[name], v) for v in raw]
        if len({format_value(v) for v in values}) != len(values):
            raise DrlabError(f"--set {name}: a value is repeated")
        if len(values) == 1:
            fixed[name] = values[0]
        else:
            grid[name] = values

    out = Path(out) if out is not None else default_out_dir(algo, env_id)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DrlabError(f"{out} already exists and is not empty; choose another --out")
    sweep = Sweep(algo, env_id, preset, grid, fixed, seed_list, jobs, out)
    names = set()
    for combo in sweep.combos():
        for seed in seed_list:
            name = point_name(combo, seed)
            if name in names:  # two values that differ only in characters made "_"
                name = f"p{len(sweep.points)}-{name}"
            names.add(name)
            values = {**base, **fixed, **combo, "seed": seed, "run_dir": str(out / name), "progress": False}
            cfg = build_config(module.Config, env_id, values)
            try:
                cfg.validate()
            except DrlabError as err:
                where = f" (at {combo_label(combo)})" if combo else ""
                raise DrlabError(f"{err}{where}") from None
            sweep.points.append(Point(name, combo, seed, config_to_json(algo, cfg)))
    _check_env(module, algo, sweep.points[0].config)
    return sweep


def _check_env(module, algo: str, config: dict) -> None:
    """The algorithm's env check (e.g. discrete actions) once, here, rather than in every worker."""
    from drlab.envs import make_vec_env
    from drlab.runner import config_from_json

    _, cfg = config_from_json(config)
    envs = make_vec_env(cfg.env_id, 1)
    try:
        module.check_env(cfg, envs)
    finally:
        envs.close()


# ---- execution -------------------------------------------------------------------------------

ORPHAN_GRACE_S = 60.0  # an orphaned worker's time to stop with a checkpoint before it exits anyway
_IDLE = None  # in a worker: a threading.Event, set while no point is training


def run_point(algo: str, config: dict) -> dict:
    """Train one point in this process; never raises (the outcome says what happened).

    Returns {"status": "ok" | "failed" | "interrupted", "summary", "final_reward_mean_100",
    "error", "traceback"}. Only plain data goes in and out, so any process or machine can run it.
    """
    from drlab.logger import read_metrics
    from drlab.runner import config_from_json, train_config

    outcome = {"status": "failed", "summary": None, "final_reward_mean_100": None, "error": None, "traceback": None}
    if _IDLE is not None:
        _IDLE.clear()
    try:
        _, cfg = config_from_json({"algo": algo, **{k: v for k, v in config.items() if k != "algo"}})
        cfg = dataclasses.replace(cfg, progress=False)
        result = train_config(algo, cfg)
        if result.interrupted:
            outcome.update(status="interrupted", error=f"interrupted; continue with: drlab resume {result.dir}")
        else:
            outcome.update(status="ok", summary=result.summary)
        means = [r["episode/reward_mean_100"] for r in read_metrics(result.dir)
                 if r.get("episode/reward_mean_100") is not None]
        outcome["final_reward_mean_100"] = float(means[-1]) if means else None
    except KeyboardInterrupt:
        outcome.update(status="interrupted", error="interrupted")
    except Exception as err:  # noqa: BLE001 - a failed point is reported, the others go on
        text = str(err).strip().splitlines()
        message = text[0] if text else ""
        outcome.update(error=message if isinstance(err, DrlabError) else f"{type(err).__name__}: {message}"[:300],
                       traceback=traceback.format_exc())
    finally:
        if _IDLE is not None:
            _IDLE.set()
    return outcome


def _worker_init(sweep_pid: int) -> None:
    # An idle worker ignores Ctrl-C (no traceback from the pool); a training worker gets the
    # runner's handler, which stops at the end of the step and writes a checkpoint.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import threading
    global _IDLE
    _IDLE = threading.Event()
    _IDLE.set()
    threading.Thread(target=_stop_when_orphaned, args=(sweep_pid,), daemon=True).start()


def _stop_when_orphaned(sweep_pid: int) -> None:
    """A worker whose sweep process died (killed, not Ctrl-C) would otherwise train on with nobody
    to report to, holding a core for hours: stop it like a Ctrl-C, then exit."""
    import time
    while os.getppid() == sweep_pid:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGINT)  # a training point stops at the end of its step, with a checkpoint
    _IDLE.wait(ORPHAN_GRACE_S)
    os._exit(1)


class SweepInterrupted(Exception):
    def __init__(self, outcomes: list[dict | None]):
        super().__init__("interrupted")
        self.outcomes = outcomes


STOP_GRACE_S = (3.0, 30.0)  # wait for workers to stop on their own, then after a SIGINT from us


def run_local(points: list[tuple[str, dict]], jobs: int, on_result=None) -> list[dict]:
    """The local backend: ``(algo, config dict)`` points -> outcomes (see :func:`run_point`), in order.

    At most ``jobs`` processes ("spawn" context) run at once. ``on_result(index, outcome)`` is called
    as each finishes. On Ctrl-C, pending points are cancelled, running ones stop at the end of their
    step with a checkpoint, and :class:`SweepInterrupted` carries the outcomes so far (None:
    cancelled). A Ray backend would be another function with this signature.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    outcomes: list[dict | None] = [None] * len(points)
    workers = max(1, min(jobs, len(points)))

    def new_pool():
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init, initargs=(os.getpid(),))

    def submit(i: int) -> None:
        nonlocal executor
        try:
            futures[executor.submit(run_point, *points[i])] = i
        except BrokenProcessPool:
            # A worker died (killed, out of memory): its point is reported failed; the rest go on
            # in a fresh pool.
            executor.shutdown(wait=False, cancel_futures=True)
            executor = new_pool()
            futures[executor.submit(run_point, *points[i])] = i

    executor = new_pool()
    # Submit only as many points as there are workers, so that nothing waits in the pool's queue
    # and a Ctrl-C never finds a point it cannot cancel.
    queue = iter(range(len(points)))
    futures: dict = {}
    try:
        for i in itertools.islice(queue, workers):
            submit(i)
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                i = futures.pop(future)
                outcomes[i] = _outcome(future)
                if on_result is not None:
                    on_result(i, outcomes[i])
                for j in itertools.islice(queue, 1):
                    submit(j)
    except KeyboardInterrupt:
        _stop(executor, futures, outcomes)
        raise SweepInterrupted(outcomes) from None
    executor.shutdown(wait=True)
    return outcomes


def _outcome(future) -> dict:
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - e.g. BrokenProcessPool when a worker was killed
        return {"status": "failed", "summary": None, "final_reward_mean_100": None,
                "error": f"worker process failed: {type(err).__name__}: {err}"[:300], "traceback": None}


def _stop(executor, futures: dict, outcomes: list) -> None:
    """After Ctrl-C: let the running points stop with a checkpoint (the runner's SIGINT handler),
    pass the Ctrl-C on if it reached only this process, and kill what is still running after that."""
    from concurrent.futures import wait

    running = list(futures)
    processes = list(getattr(executor, "_processes", {}).values())
    try:
        _, left = wait(running, timeout=STOP_GRACE_S[0])
        if left:
            for process in processes:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGINT)
            _, left = wait(left, timeout=STOP_GRACE_S[1])
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once
        left = {f for f in running if not f.done()}
    if left:
        for process in processes:
            if process.is_alive():
                process.terminate()
        wait(left, timeout=5.0)  # the pool marks the killed workers' futures as failed
    for future in running:
        i = futures[future]
        if future.done() and future not in left:
            outcomes[i] = _outcome(future)
        else:
            outcomes[i] = {"status": "interrupted", "summary": None, "final_reward_mean_100": None,
                           "error": "stopped (Ctrl-C or SIGTERM) before it could write a checkpoint", "traceback": None}
    executor.shutdown(wait=False, cancel_futures=True)


# ---- the whole command -----------------------------------------------------------------------

def execute(sweep: Sweep, backend=run_local, echo=print) -> int:
    """Run the sweep, write sweep.json / summary.md / sweep.png; the exit status (0, 1 or 130)."""
    from drlab.checkpoint import write_json

    sweep.out.mkdir(parents=True, exist_ok=True)
    write_json(sweep.out / SWEEP_FILE, sweep.to_json())
    total, finished = len(sweep.points), 0
    echo(f"sweep: {total} runs ({_count(len(sweep.combos()), 'setting')} x {_count(len(sweep.seeds), 'seed')}), "
         f"{min(sweep.jobs, total)} at a time, in {sweep.out}")

    def on_result(i: int, outcome: dict) -> None:
        nonlocal finished
        finished += 1
        _apply(sweep.points[i], outcome)
        write_json(sweep.out / SWEEP_FILE, sweep.to_json())
        echo(f"[{finished}/{total}] {sweep.points[i].name}: {_point_line(sweep.points[i])}")

    from drlab.runner import restore_signals

    previous_handlers = _install_stop_signals()
    try:
        backend([(sweep.algo, p.config) for p in sweep.points], sweep.jobs, on_result)
    except SweepInterrupted as stop:
        for point, outcome in zip(sweep.points, stop.outcomes):
            if outcome is None:
                point.status, point.error = "cancelled", "cancelled: the sweep was stopped (Ctrl-C or SIGTERM)"
            elif point.status == "pending":
                _apply(point, outcome)
        write_json(sweep.out / SWEEP_FILE, sweep.to_json())
        (sweep.out / TABLE_FILE).write_text(summary_markdown(sweep))
        counts = {s: sum(p.status == s for p in sweep.points) for s in ("ok", "interrupted", "cancelled")}
        print(f"drlab: sweep interrupted: {counts['ok']} of {total} runs finished, {counts['interrupted']} stopped "
              f"with a checkpoint, {counts['cancelled']} cancelled; results so far in {sweep.out}", file=sys.stderr)
        return 130
    finally:
        restore_signals(previous_handlers)

    table = summary_markdown(sweep)
    (sweep.out / TABLE_FILE).write_text(table)
    plot_note = _plot(sweep)
    write_json(sweep.out / SWEEP_FILE, sweep.to_json())
    echo("")
    echo(table_only(sweep))
    echo(f"sweep directory: {sweep.out}" + (f" ({plot_note})" if plot_note else ""))
    failures = [p for p in sweep.points if p.status != "ok"]
    for p in failures:
        print(f"drlab: error: run {p.name} {p.status}: {p.error}", file=sys.stderr)
    return 1 if failures else 0


def _install_stop_signals() -> dict:
    """SIGTERM (a job scheduler, `kill`) stops a sweep like Ctrl-C. SIGINT is set explicitly too: a
    sweep started in the background of a non-interactive shell inherits it ignored."""
    from drlab.runner import STOP_SIGNALS

    try:
        return {sig: signal.signal(sig, signal.default_int_handler) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        return {}


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _apply(point: Point, outcome: dict) -> None:
    point.status = outcome["status"]
    point.summary = outcome.get("summary")
    point.final_reward_mean_100 = outcome.get("final_reward_mean_100")
    point.error = outcome.get("error")
    point.traceback = outcome.get("traceback")


def _point_line(point: Point) -> str:
    if point.status != "ok":
        return f"{point.status}: {point.error}"
    s = point.summary
    line = f"{s['steps']} steps in {s['train_seconds']:.1f} s"
    if s["eval"] is not None:
        line += f", greedy eval {s['eval']['mean']:.1f}"
    if s["solved"] is not None:
        line += ", solved" if s["solved"] else ", not solved"
    return line


def _plot(sweep: Sweep) -> str | None:
    """Write sweep.png; a note instead of an error when there is nothing to draw."""
    from drlab.plots import plot_sweep

    groups = []
    for combo in sweep.combos():
        dirs = [Path(p.config["run_dir"]) for p in sweep.points if p.values == combo and p.status == "ok"]
        if dirs:
            groups.append((combo_label(combo), dirs))
    try:
        plot_sweep(groups, sweep.out / PLOT_FILE,
                   f"{sweep.algo} on {sweep.env_id}: mean over seeds {','.join(map(str, sweep.seeds))}, band min to max")
    except DrlabError as err:
        return f"no plot: {err}"
    return None


# ---- the table -------------------------------------------------------------------------------

COLUMNS = ["setting", "solved", "eval mean (median)", "eval [min, max]", "train s (median)",
           "steps (median)", "reward_mean_100 (median)", "failed"]


def summary_rows(sweep: Sweep) -> list[list[str]]:
    from drlab.envs import reward_threshold

    threshold = reward_threshold(sweep.env_id)
    rows = []
    for combo in sweep.combos():
        points = [p for p in sweep.points if p.values == combo]
        ok = [p.summary for p in points if p.status == "ok"]
        evals = [s["eval"]["mean"] for s in ok if s["eval"] is not None]
        judged = threshold is not None and all(p.config["final_eval_episodes"] for p in points)
        solved = f"{sum(bool(s['solved']) for s in ok)}/{len(points)}" if judged else "n/a"
        rows.append([
            combo_label(combo).replace("|", "\\|"),
            solved,
            _fmt(_median(evals), ".1f"),
            f"[{min(evals):.1f}, {max(evals):.1f}]" if evals else "-",
            _fmt(_median([s["train_seconds"] for s in ok]), ".1f"),
            _fmt(_median([s["steps"] for s in ok]), ".0f"),
            _fmt(_median([p.final_reward_mean_100 for p in points if p.status == "ok"]), ".1f"),
            str(sum(p.status != "ok" for p in points)),
        ])
    return rows


def _median(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table_only(sweep: Sweep) -> str:
    rows = [COLUMNS, *summary_rows(sweep)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def summary_markdown(sweep: Sweep) -> str:
    fixed = ", ".join(f"{k}={format_value(v)}" for k, v in sweep.fixed.items()) or "none"
    return (f"# Sweep: {sweep.algo} on {sweep.env_id}\n\n"
            f"Preset `{sweep.preset}`; fixed settings: {fixed}; seeds {', '.join(map(str, sweep.seeds))}.\n"
            "solved: seeds whose final greedy evaluation reached the environment's threshold; "
            "medians over the runs that finished; reward_mean_100: the last logged mean of the last "
            "100 training episodes.\n\n"
            f"{table_only(sweep)}\n")
