"""Where trials run: ``LocalExecutor`` (a process per trial on this machine) or ``RayExecutor`` (a
Ray task per trial). Both take ``start(key, payload)`` with payload {algo, configs, storage (URL),
study (name), trial_id, pruner, retry}, hand back ``finished() -> [(key, outcome)]`` as trials end, and on
``stop()`` let the running trials stop with a checkpoint (their outcomes: "interrupted")."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from drlab.workers import wait_for_driver_exit, worker_context

STOP_GRACE_S = 60.0  # time for a running trial to stop with a checkpoint after the driver's SIGINT
ORPHAN_GRACE_S = 60.0  # an orphaned worker's time to stop with a checkpoint before it exits anyway


def run_payload(payload) -> dict:
    """A trial from its payload, in whatever process runs it; never raises."""
    from drlab.tune.trial import run_trial, storage_reporter

    report = None
    try:
        report = storage_reporter(payload["storage"], payload["study"], payload["trial_id"], payload["pruner"])
        return run_trial(payload["algo"], payload["configs"], report)
    except KeyboardInterrupt:
        return {"state": "interrupted", "reason": "interrupted"}
    except Exception as err:  # noqa: BLE001 - e.g. the storage could not be reached from this worker
        return {"state": "fail", "reason": f"{type(err).__name__}: {err}"[:300], "retry": True}
    finally:
        if report is not None:
            report.close()


def _trial_process(conn, payload) -> None:
    # A session of its own: a terminal's Ctrl-C reaches the driver only, which passes one SIGINT on (a
    # second one would interrupt a checkpoint being written).
    os.setsid()
    threading.Thread(target=_stop_when_orphaned, daemon=True).start()
    outcome = run_payload(payload)
    try:
        conn.send(outcome)
    except OSError:
        pass  # the driver is gone


def _stop_when_orphaned() -> None:
    """A worker whose driver died (SIGKILL) stops its run as after a Ctrl-C (a checkpoint, which the
    trial's retry continues from) instead of training on for nobody."""
    wait_for_driver_exit()
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(ORPHAN_GRACE_S)
    os._exit(1)


class LocalExecutor:
    def __init__(self, jobs: int):
        self.width = jobs
        self._ctx = worker_context("drlab.tune.trial", "optuna")
        self._workers: dict[int, tuple] = {}  # key -> (process, receiving end)

    def start(self, key: int, payload) -> None:
        receive, send = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=_trial_process, args=(send, payload), name=f"trial-{key}")
        process.start()
        send.close()
        self._workers[key] = (process, receive)

    def finished(self) -> list[tuple[int, dict]]:
        done = []
        for key, (process, receive) in list(self._workers.items()):
            outcome = self._receive(process, receive)
            if outcome is not None:
                done.append((key, outcome))
                del self._workers[key]
                process.join()
        return done

    @staticmethod
    def _receive(process, receive) -> dict | None:
        try:
            if receive.poll():
                return receive.recv()
        except (EOFError, OSError):
            pass
        if process.is_alive():
            return None
        return {"state": "fail", "reason": f"its worker process died (exit code {process.exitcode}; killed, "
                                           "or out of memory)", "retry": True}

    def stop(self) -> dict[int, dict]:
        """Stop every running trial at the end of its step, with a checkpoint."""
        outcomes: dict[int, dict] = {}

        def collect(until: float) -> None:
            while self._workers and time.monotonic() < until:
                for key, outcome in self.finished():
                    outcomes[key] = outcome
                time.sleep(0.1)

        try:
            for process, _ in self._workers.values():
                if process.is_alive():
                    os.kill(process.pid, signal.SIGINT)  # the runner stops at the end of its step, with a checkpoint
            collect(time.monotonic() + STOP_GRACE_S)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once
            pass
        for key, (process, _) in list(self._workers.items()):
            process.terminate()
            process.join(5.0)
            outcomes[key] = {"state": "interrupted", "reason": "stopped (Ctrl-C or SIGTERM) before a checkpoint"}
        self._workers.clear()
        return outcomes

    def close(self) -> None:
        self.stop() if self._workers else None


class RayExecutor:
    """Trials as Ray tasks; the driver asks and tells, the task reports evaluations to the storage
    (which every node must reach: on a cluster, a database server given with --storage)."""

    def __init__(self, jobs: int | None, address: str | None, cpus_per_trial: float, out, embedded: bool,
                 echo=print):
        from drlab.errors import DrlabError
        from drlab.ray_cluster import check_reachable, connect, import_ray
        from drlab.sweep.ray_backend import StopFlag, check_shared_storage

        check_reachable(address)
        self._started = not import_ray().is_initialized()
        self._ray = ray = connect(address)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        if embedded and nodes > 1:
            self.close()
            raise DrlabError(f"the Ray cluster has {nodes} nodes: give --storage a database server every node "
                             "reaches (an SQLite file cannot be shared between machines)")
        out.mkdir(parents=True, exist_ok=True)
        check_shared_storage(ray, out)  # every node must see the trials' run directories
        cpus = ray.cluster_resources().get("CPU", 0.0)
        slots = int(cpus // cpus_per_trial)
        if slots < 1:
            self.close()
            raise DrlabError(f"the Ray cluster has {cpus:g} CPUs; --cpus-per-trial {cpus_per_trial:g} needs more")
        self.width = min(slots, jobs or slots)
        echo(f"ray: {cpus:g} CPUs, {cpus_per_trial:g} per trial: {self.width} trial(s) at a time")
        self._flag = ray.remote(num_cpus=0)(StopFlag).remote()
        self._task = ray.remote(num_cpus=cpus_per_trial, max_retries=0)(_trial_task)
        self._running: dict = {}  # object ref -> key

    def start(self, key: int, payload) -> None:
        self._running[self._task.remote(payload, self._flag)] = key

    def finished(self) -> list[tuple[int, dict]]:
        if not self._running:
            return []
        done, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        out = []
        for ref in done:
            key = self._running.pop(ref)
            try:
                out.append((key, self._ray.get(ref)))
            except Exception as err:  # noqa: BLE001 - the worker or its node died
                out.append((key, {"state": "fail", "reason": f"its Ray worker died ({type(err).__name__})",
                                  "retry": True}))
        return out

    def stop(self) -> dict[int, dict]:
        self._ray.get(self._flag.raise_.remote())
        outcomes: dict[int, dict] = {}
        until = time.monotonic() + STOP_GRACE_S[1]
        try:
            while self._running and time.monotonic() < until:
                outcomes.update(self.finished())
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        for ref, key in self._running.items():
            self._ray.cancel(ref, force=True)
            outcomes[key] = {"state": "interrupted", "reason": "stopped (Ctrl-C or SIGTERM) before a checkpoint"}
        self._running.clear()
        return outcomes

    def close(self) -> None:
        if getattr(self, "_running", None):
            self.stop()
        if self._started:
            self._ray.shutdown()


def _trial_task(payload, stop_flag) -> dict:
    """One trial in a Ray worker, with torch threads set to the CPUs Ray gave it and the driver's stop
    flag turned into this process's Ctrl-C."""
    import ray

    from drlab.sweep.ray_backend import watch_stop_flag

    from drlab.envs import ENV_THREADS
    from drlab.sweep.ray_backend import forget_dead_holder

    cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)))
    ENV_THREADS["atari"] = cpus
    payload = {**payload, "configs": [{**c, "torch_threads": cpus} for c in payload["configs"]]}
    if payload["retry"]:  # the attempt before it died: its lock, held on another host, goes
        for config in payload["configs"]:
            forget_dead_holder(Path(config["run_dir"]))
    done = watch_stop_flag(stop_flag)
    try:
        return run_payload(payload)
    finally:
        done.set()
