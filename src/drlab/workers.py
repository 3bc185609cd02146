"""The processes that train a sweep's points (``drlab sweep``'s local pool) and a study's trials
(``drlab tune``'s local executor).

They are forked from a forkserver (``multiprocessing``'s "forkserver" start method) that imported
drlab's training stack once: PyTorch, Gymnasium, the algorithms and ``torch._dynamo``, which
PyTorch's optimizers import when they are built. A fresh interpreter per worker ("spawn") pays
those imports again each time, 4 to 8 seconds of CPU on a 2-core machine, once per trial of a
study. The forkserver is a clean process of its own (started by the driver, no threads, no GPU
context), so a worker forked from it starts as a spawned one would, in milliseconds. Where the
platform has no forkserver (Windows), workers are spawned.

A worker's driver is its parent in ``multiprocessing``'s sense (the forkserver is only the one that
forks it): :func:`wait_for_driver_exit` returns once the driver is gone, however it ended.
"""

from __future__ import annotations

import multiprocessing

TRAINING_MODULES = ("drlab.run.runner", "drlab.sweep.backend", "torch._dynamo")


def worker_context(*more_modules: str):
    """The multiprocessing context to start workers with: a forkserver that has imported
    :data:`TRAINING_MODULES`, every algorithm and ``more_modules``, or "spawn" without one."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from drlab.algos import ALGORITHMS

    context = multiprocessing.get_context("forkserver")
    # Read when the forkserver starts (the first worker this process starts); a module that fails to
    # import there is imported again by the worker that needs it, and fails there in its own words.
    context.set_forkserver_preload([*TRAINING_MODULES, *ALGORITHMS.values(), *more_modules])
    return context


def wait_for_driver_exit(timeout: float | None = None) -> bool:
    """In a worker: wait until the process that started it has exited (killed included), at most
    ``timeout`` seconds; True if it has. The driver holds the write end of a pipe whose read end is the
    worker's parent sentinel, so its exit, however it comes, is seen here at once."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: there is no driver to outlive
        return False
    parent.join(timeout)
    return not parent.is_alive()
