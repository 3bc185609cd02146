"""Running a planned sweep: the points on a backend, their outcomes streamed into sweep.json,
then the table (summary.md) and the plot (sweep.png); Ctrl-C and SIGTERM stop it cleanly."""

from __future__ import annotations

import signal
import sys

from drlab.errors import EXIT_INTERRUPTED, EXIT_SWEEP_FAILED
from drlab.run.checkpoint import write_json
from drlab.run.signals import install_stop_signals, restore_signals
from drlab.sweep.backend import SweepInterrupted, backends
from drlab.sweep.grid import SWEEP_FILE, TABLE_FILE, Point, Sweep
from drlab.sweep.summary import plot, summary_markdown, table_only


def execute(sweep: Sweep, backend=None, echo=print) -> int:
    """Run the sweep on ``backend`` (default: the local process pool), writing sweep.json as
    points finish and summary.md / sweep.png at the end; returns the exit status (0, 1 or 130)."""
    backend = backend or backends()["local"]
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

    # SIGTERM (a job scheduler, `kill`) stops a sweep like Ctrl-C: the backend stops its points.
    previous_handlers = install_stop_signals(signal.default_int_handler)
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
