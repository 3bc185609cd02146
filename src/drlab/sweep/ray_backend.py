"""The Ray backend of ``drlab sweep``: every point a Ray task, on a local Ray or a cluster.

Plain tasks, not Ray Tune: a grid needs no search algorithm, trial scheduler or early stopping,
and the points already are plain (algo, config) data run by :func:`run_point`, which the local
backend runs too. With tasks the driver keeps the seam's contract exactly (outcomes streamed as
points finish, the same statuses) and decides itself what happens when a worker dies, so that it
can say so.

- At most as many points run at once as the cluster has CPUs for (``cpus_per_point`` each), and
  never more than ``jobs``; the rest wait in the driver, not in Ray's queue, so that a stop finds
  nothing it cannot cancel.
- A point whose worker or node dies is submitted again (up to ``RETRIES`` times) and resumes from
  its checkpoint in the same run directory (see :func:`run_point`).
- Ctrl-C / SIGTERM: a stop flag (an actor) is raised; every running point sees it within a
  second and stops at the end of its step with a checkpoint, exactly as a Ctrl-C stops a local
  point. ``ray.cancel`` would kill them without one, so it is used only on a point that has not
  stopped after ``STOP_GRACE_S`` or on a second Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import deque
from pathlib import Path

from drlab.errors import DrlabError
from drlab.ray_cluster import connect, import_ray
from drlab.sweep.backend import RETRIES, SweepInterrupted, failed_outcome, run_point

STOP_GRACE_S = 60.0  # time for the running points to stop with a checkpoint after Ctrl-C
POLL_S = 0.5  # how often a point looks at the stop flag
PROBE_FILE = ".drlab-sweep"  # written by the driver in --out; every node must see it


class StopFlag:
    """Raised by the driver on Ctrl-C or SIGTERM; read by the running points (a Ray actor)."""

    def __init__(self):
        self.raised = False

    def raise_(self) -> None:
        self.raised = True

    def is_raised(self) -> bool:
        return self.raised


def point_task(algo: str, config: dict, stop_flag, attempt: int) -> dict:
    """One point in a Ray worker: :func:`run_point` with torch threads set to the CPUs Ray gave
    this task and a thread that turns the driver's stop flag into this process's Ctrl-C."""
    import ray

    run_dir = Path(config["run_dir"])
    if not (run_dir.parent / PROBE_FILE).is_file():
        return failed_outcome(not_shared(run_dir.parent))
    from drlab.envs import ENV_THREADS

    cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)))
    config = {**config, "torch_threads": cpus}  # threads follow the CPUs Ray gave this task
    ENV_THREADS["atari"] = cpus
    if attempt > 1:
        forget_dead_holder(run_dir)
    done = watch_stop_flag(stop_flag)
    try:
        return run_point(algo, config)
    finally:
        done.set()


def watch_stop_flag(stop_flag) -> threading.Event:
    """A thread that turns the driver's stop flag into this process's Ctrl-C; set the returned event
    when the work is done."""
    import _thread

    import ray

    done = threading.Event()

    def watch() -> None:
        while not done.wait(POLL_S):
            try:
                raised = ray.get(stop_flag.is_raised.remote())
            except Exception:  # noqa: BLE001 - the driver is gone: stop as after Ctrl-C
                raised = True
            if raised:
                # The main thread's SIGINT handler runs: inside the training loop, the runner's
                # cooperative stop (checkpoint at the end of the step); elsewhere KeyboardInterrupt.
                _thread.interrupt_main(signal.SIGINT)
                return

    threading.Thread(target=watch, daemon=True).start()
    return done


def not_shared(out: Path) -> str:
    return (f"node {socket.gethostname()} cannot see {out}: on a cluster, --out must be a directory on a filesystem "
            "every node shares (NFS, a cluster filesystem)")


def forget_dead_holder(run_dir: Path) -> None:
    """A retried point's earlier worker is dead (Ray said so). Its lock is taken over by RunLock
    when it held it on this host; a lock from another host cannot be checked from here, so it goes."""
    from drlab.run.rundir import LOCK_FILE, RunLock

    lock = run_dir / LOCK_FILE
    try:
        holder = RunLock._host(lock.read_text())
    except OSError:
        return
    if holder != socket.gethostname():
        lock.unlink(missing_ok=True)


def probe_task(out: str) -> str | None:
    return None if (Path(out) / PROBE_FILE).is_file() else not_shared(Path(out))


def check_shared_storage(ray, out: Path) -> None:
    """Every alive node with CPUs must see ``out`` (the driver's marker file in it)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    (out / PROBE_FILE).write_text(f"written by the sweep driver on {socket.gethostname()} (pid {os.getpid()})\n")
    probe = ray.remote(num_cpus=0)(probe_task)
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    answers = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                       .remote(str(out)) for n in nodes])
    problems = [a for a in answers if a]
    if problems:
        raise DrlabError(problems[0])


def run_ray(points: list[tuple[str, dict]], jobs: int | None, on_result=None, *, address: str | None = None,
            cpus_per_point: float = 1.0, echo=print) -> list[dict]:
    """The Ray backend (see drlab.sweep.backend for the contract). A Ray this call started (no
    cluster was running) is shut down at the end."""
    started = not import_ray().is_initialized()
    ray = connect(address)
    try:
        return _run(ray, points, jobs, on_result, cpus_per_point, echo)
    finally:
        if started:
            ray.shutdown()


def _run(ray, points, jobs, on_result, cpus_per_point, echo) -> list[dict]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    outcomes: list[dict | None] = [None] * len(points)
    out = Path(points[0][1]["run_dir"]).parent
    cpus = ray.cluster_resources().get("CPU", 0.0)
    slots = int(cpus // cpus_per_point)
    if slots < 1:
        raise DrlabError(f"the Ray cluster has {cpus:g} CPUs; --cpus-per-point {cpus_per_point:g} needs at least that many")
    width = min(slots, len(points), jobs or slots)
    check_shared_storage(ray, out)
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    echo(f"ray: {cpus:g} CPUs on {nodes} node{'s' if nodes != 1 else ''}, {cpus_per_point:g} per run: "
         f"{width} run{'s' if width != 1 else ''} at a time")
    if any(not config.get("checkpoint_interval") for _, config in points):
        echo("ray: note: with checkpoint_interval 0 a run whose worker dies starts over "
             "(--set checkpoint_interval=N to resume it from its last checkpoint)")
    # The flag lives on the driver's node: a point watching it reads "stop" when it cannot reach it
    # (the driver is gone), so it must not die with some other node.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    stop_flag = ray.remote(num_cpus=0)(StopFlag).options(scheduling_strategy=here).remote()
    task = ray.remote(num_cpus=cpus_per_point, max_retries=0)(point_task)
    queue, running = deque(range(len(points))), {}  # running: object ref -> (point index, attempt)

    def submit(i: int, attempt: int) -> None:
        running[task.remote(*points[i], stop_flag, attempt)] = (i, attempt)

    try:
        while queue or running:
            while queue and len(running) < width:
                submit(queue.popleft(), 1)
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                i, attempt = running.pop(ref)
                outcome = _outcome(ray, ref)
                if outcome is None:  # the worker or its node died
                    name = Path(points[i][1]["run_dir"]).name
                    if attempt <= RETRIES:
                        echo(f"ray: {name}: its worker died; running it again from its last checkpoint "
                             f"(attempt {attempt + 1} of {RETRIES + 1})")
                        submit(i, attempt + 1)
                        continue
                    outcome = failed_outcome(f"its Ray worker died {attempt} times (killed, out of memory or its node lost)")
                outcomes[i] = outcome
                if on_result is not None:
                    on_result(i, outcome)
    except KeyboardInterrupt:
        _stop(ray, stop_flag, running, outcomes)
        raise SweepInterrupted(outcomes) from None
    except BaseException:
        _stop(ray, stop_flag, running, outcomes)
        raise
    return outcomes


def _outcome(ray, ref) -> dict | None:
    """The point's outcome, or None when its worker or node died (worth a retry)."""
    from ray.exceptions import RayError, RayTaskError, TaskCancelledError

    try:
        return ray.get(ref)
    except TaskCancelledError:
        return failed_outcome("stopped (Ctrl-C or SIGTERM) before it could write a checkpoint", "interrupted")
    except RayTaskError as err:  # run_point never raises: an import or pickling failure in the worker
        return failed_outcome(f"the Ray task failed: {str(err).strip().splitlines()[-1]}"[:300])
    except RayError:
        return None


def _stop(ray, stop_flag, running: dict, outcomes: list) -> None:
    """Raise the stop flag, wait for the running points to stop with a checkpoint, cancel what has
    not stopped after the grace time (or at a second Ctrl-C)."""
    left = list(running)
    try:
        stop_flag.raise_.remote()
        deadline = time.monotonic() + STOP_GRACE_S
        while left and time.monotonic() < deadline:
            _, left = ray.wait(left, num_returns=len(left), timeout=1.0)
    except KeyboardInterrupt:
        pass
    for ref in left:
        ray.cancel(ref, force=True)
    for ref, (i, _) in running.items():
        outcome = _outcome(ray, ref) if ref not in left else None
        outcomes[i] = outcome or failed_outcome("stopped (Ctrl-C or SIGTERM) before it could write a checkpoint",
                                                "interrupted")
