"""Running a planned sweep: the points on a backend, their outcomes streamed into sweep.json,
then the table (summary.md) and the plot (sweep.png); Ctrl-C and SIGTERM stop it cleanly."""

from __future__ import annotations

import signal
import sys

from drlab.errors import EXIT_INTERRUPTED, EXIT_SWEEP_FAILED
from drlab.run.checkpoint import write_json
from drlab.run.signals import install_stop_signals, restore_signals
from drlab.sweep.backend import SweepInterrupted
from drlab.sweep.grid import SWEEP_FILE, TABLE_FILE, Point, Sweep
from drlab.sweep.local import run_local
from drlab.sweep.ray_backend import run_ray
from drlab.sweep.summary import plot, summary_markdown, table_only


def backends() -> dict:
    """{name: backend function} (the contract: drlab.sweep.backend). ``local``: processes on this
    machine; ``ray``: Ray tasks, with keyword options ``address`` and ``cpus_per_point`` (Ray itself
    is imported only when it runs)."""
    return {"local": run_local, "ray": run_ray}


def execute(sweep: Sweep, backend=None, echo=print) -> int:
    """Run the sweep's points that have not finished ``ok`` (all of a new sweep; on ``drlab sweep
    --resume`` the interrupted ones continue from their checkpoints) on ``backend`` (default: the
    local process pool), writing sweep.json as points finish and summary.md / sweep.png at the end;
    returns the exit status (0, 1 or 130)."""
    backend = backend or backends()["local"]
    sweep.out.mkdir(parents=True, exist_ok=True)
    write_json(sweep.out / SWEEP_FILE, sweep.to_json())
    todo = [i for i, p in enumerate(sweep.points) if p.status != "ok"]
    for i in todo:
        sweep.points[i].status = "pending"
    total, finished = len(sweep.points), len(sweep.points) - len(todo)
    echo(f"sweep: {total} runs ({_count(len(sweep.combos()), 'setting')} x {_count(len(sweep.seeds), 'seed')}), "
         + (f"{finished} finished before, " if finished else "")
         + (f"{min(sweep.jobs, len(todo))} at a time, " if sweep.jobs else "")
         + f"in {sweep.out}")

    def on_result(k: int, outcome: dict) -> None:
        nonlocal finished
        finished += 1
        point = sweep.points[todo[k]]
        _apply(point, outcome)
        write_json(sweep.out / SWEEP_FILE, sweep.to_json())
        echo(f"[{finished}/{total}] {point.name}: {_point_line(point)}")

    # SIGTERM (a job scheduler, `kill`) stops a sweep like Ctrl-C: the backend stops its points.
    previous_handlers = install_stop_signals(signal.default_int_handler)
    try:
        if todo:
            backend([(sweep.algo, sweep.points[i].config) for i in todo], sweep.jobs, on_result)
    except SweepInterrupted as stop:
        for i, outcome in zip(todo, stop.outcomes):
            point = sweep.points[i]
            if outcome is None:
                point.status, point.error = "cancelled", "cancelled: the sweep was stopped (Ctrl-C or SIGTERM)"
            elif point.status == "pending":
                _apply(point, outcome)
        write_json(sweep.out / SWEEP_FILE, sweep.to_json())
        (sweep.out / TABLE_FILE).write_text(summary_markdown(sweep))
        counts = {s: sum(p.status == s for p in sweep.points) for s in ("ok", "interrupted", "cancelled")}
        print(f"drlab: sweep interrupted: {counts['ok']} of {total} runs finished, {counts['interrupted']} stopped "
              f"with a checkpoint, {counts['cancelled']} cancelled; results so far in {sweep.out}; "
              f"continue with: drlab sweep --resume {sweep.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        restore_signals(previous_handlers)

    table = summary_markdown(sweep)
    (sweep.out / TABLE_FILE).write_text(table)
    plot_note = plot(sweep)
    write_json(sweep.out / SWEEP_FILE, sweep.to_json())
    echo("")
    echo(table_only(sweep))
    echo(f"sweep directory: {sweep.out}" + (f" ({plot_note})" if plot_note else ""))
    failures = [p for p in sweep.points if p.status != "ok"]
    for p in failures:
        print(f"drlab: error: run {p.name} {p.status}: {p.error}", file=sys.stderr)
    return EXIT_SWEEP_FAILED if failures else 0


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
