"""Joining a Ray cluster, for the Ray sweep backend and for rollout runners on Ray actors. Ray is
an optional extra (``pip install 'drlab[ray]'``); nothing else in drlab imports it."""

from __future__ import annotations

import signal

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
