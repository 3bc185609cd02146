"""The local backend of ``drlab sweep``: the points as a pool of processes on this machine."""

from __future__ import annotations

import itertools
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from drlab.sweep.backend import RETRIES, SweepInterrupted, failed_outcome, run_point
from drlab.workers import wait_for_driver_exit, worker_context

ORPHAN_GRACE_S = 60.0  # an orphaned worker's time to stop with a checkpoint before it exits anyway
_IDLE = None  # in a worker: a threading.Event, set while no point is training


def run_point_in_worker(algo: str, config: dict) -> dict:
    """:func:`run_point`, with the worker's idle flag cleared while it trains."""
    _IDLE.clear()
    try:
        return run_point(algo, config)
    finally:
        _IDLE.set()


def _worker_init() -> None:
    # An idle worker ignores Ctrl-C (no traceback from the pool); a training worker gets the
    # runner's handler, which stops at the end of the step and writes a checkpoint.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import threading
    global _IDLE
    _IDLE = threading.Event()
    _IDLE.set()
    threading.Thread(target=_stop_when_orphaned, daemon=True).start()


def _stop_when_orphaned() -> None:
    """A worker whose sweep process died (killed, not Ctrl-C) would otherwise train on with nobody
    to report to, holding a core for hours: stop it like a Ctrl-C, then exit."""
    wait_for_driver_exit()
    os.kill(os.getpid(), signal.SIGINT)  # a training point stops at the end of its step, with a checkpoint
    _IDLE.wait(ORPHAN_GRACE_S)
    os._exit(1)


STOP_GRACE_S = (3.0, 30.0)  # wait for workers to stop on their own, then after a SIGINT from us


def run_local(points: list[tuple[str, dict]], jobs: int, on_result=None, echo=print) -> list[dict]:
    """The local backend (see drlab.sweep.backend for the contract): at most ``jobs`` processes
    (drlab.workers: forked from a forkserver that imported the training stack) at once. On Ctrl-C, pending points are cancelled and running ones stop at the
    end of their step with a checkpoint. A point whose worker dies runs again, resuming from its
    last checkpoint, up to ``RETRIES`` times."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    outcomes: list[dict | None] = [None] * len(points)
    attempts = [0] * len(points)
    workers = max(1, min(jobs, len(points)))
    context = worker_context()

    def new_pool():
        return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init)

    def submit(i: int) -> None:
        nonlocal executor
        attempts[i] += 1
        try:
            futures[executor.submit(run_point_in_worker, *points[i])] = i
        except BrokenProcessPool:
            # A worker died (killed, out of memory) and the pool stopped every worker with it: wait
            # until they are gone (each stops at the end of its step with a checkpoint and releases
            # its run directory), then go on in a fresh pool.
            executor.shutdown(wait=True, cancel_futures=True)
            executor = new_pool()
            futures[executor.submit(run_point_in_worker, *points[i])] = i
        _watch_new_workers(executor)

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
                if isinstance(future.exception(), BrokenProcessPool) and attempts[i] <= RETRIES:
                    name = Path(points[i][1]["run_dir"]).name
                    echo(f"sweep: {name}: its worker was lost (killed, or stopped by the pool when another was killed); "
                         f"running it again from its last checkpoint (attempt {attempts[i] + 1} of {RETRIES + 1})")
                    submit(i)
                    continue
                outcomes[i] = _outcome(future, attempts[i])
                if on_result is not None:
                    on_result(i, outcomes[i])
                for j in itertools.islice(queue, 1):
                    submit(j)
    except KeyboardInterrupt:
        _stop(executor, futures, outcomes)
        raise SweepInterrupted(outcomes) from None
    except BaseException:  # e.g. sweep.json could not be written: stop the points rather than wait for them
        _stop(executor, futures, outcomes)
        raise
    executor.shutdown(wait=True)
    return outcomes


def _watch_new_workers(executor) -> None:
    """Make the pool's manager thread watch the worker that ``submit`` may just have started.

    CPython's ProcessPoolExecutor.submit (3.9-3.13) wakes its manager thread before it starts the new
    worker, so the manager can go back to waiting on the old list of workers; a worker missing from
    it can die unnoticed (no BrokenProcessPool, no retry) until another point returns, which may be
    hours. A second wakeup, now that the worker is in the pool, makes the manager read the list again.
    Without the private attribute (another Python), nothing is done."""
    wakeup = getattr(executor, "_executor_manager_thread_wakeup", None)
    lock = getattr(executor, "_shutdown_lock", None)
    if wakeup is None or lock is None:
        return
    with lock:
        if not getattr(executor, "_shutdown_thread", False):
            wakeup.wakeup()


def _outcome(future, attempts: int = 1) -> dict:
    try:
        return future.result()
    except BrokenProcessPool:
        return failed_outcome(f"its worker process died {attempts} time{'s' * (attempts > 1)} (killed, e.g. out of memory)")
    except Exception as err:  # noqa: BLE001 - the pool could not run the point at all
        return failed_outcome(f"worker process failed: {type(err).__name__}: {err}"[:300])


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
            outcomes[i] = failed_outcome("stopped (Ctrl-C or SIGTERM) before it could write a checkpoint", "interrupted")
    executor.shutdown(wait=False, cancel_futures=True)
