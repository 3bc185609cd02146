"""Joining a Ray cluster, for the Ray sweep backend and for rollout runners on Ray actors. Ray is
an optional extra (``pip install 'drlab[ray]'``); nothing else in drlab imports it."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from drlab.errors import DrlabError
from drlab.run.signals import STOP_SIGNALS


def import_ray():
    try:
        import ray
    except ImportError:
        raise DrlabError("--backend ray and --runners need Ray: pip install 'drlab[ray]'") from None
    return ray


def connect(address: str | None):
    """``ray.init`` (a local Ray when ``address`` is None and no cluster is running here, else the
    cluster at ``address``), keeping drlab's SIGINT/SIGTERM handlers: ray.init replaces SIGTERM's."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    check_reachable(address)
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"at {address}" if address else "on this machine"
        raise DrlabError(f"cannot start or reach a Ray cluster {where}: {str(err).strip().splitlines()[0]}"[:300]) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ray


def check_recorded_cluster() -> None:
    """Without an address, ray.init joins RAY_ADDRESS or the cluster `ray start` recorded on this
    machine; a record left by a cluster that died without `ray stop` would have it retry for minutes."""
    if os.environ.get("RAY_ADDRESS"):
        return check_reachable(os.environ["RAY_ADDRESS"])
    try:
        record = Path(import_ray()._common.utils.get_ray_address_file(None))
        recorded = record.read_text().strip()
    except (AttributeError, OSError):
        return  # no record (or a Ray that keeps it elsewhere): ray.init starts a Ray of its own
    try:
        check_reachable(recorded)
    except DrlabError:
        raise DrlabError(f"{record} names a Ray cluster at {recorded} that is not running (a `ray start` without "
                         "`ray stop`?): `ray stop` forgets it, or --address local starts a Ray for this run") from None


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A HOST:PORT address (or, with none, the cluster ray.init would join) must accept a connection:
    ray.init would otherwise retry an unreachable one for minutes before it gives up."""
    if address is None:
        return check_recorded_cluster()
    host, _, port = (address or "").rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # None, "auto", "local", ray://... : Ray's own lookup
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise DrlabError(f"cannot reach the Ray cluster at {address}: {err.strerror or err} (is `ray start --head` "
                         "running there, and is this its GCS port?)") from None
