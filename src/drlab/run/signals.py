"""Ctrl-C and SIGTERM: how a run and a sweep are asked to stop."""

from __future__ import annotations

import signal

# SIGTERM is what a job scheduler or `kill` sends; both stop a run the same way, with a checkpoint.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop_signals(handler) -> dict | None:
    """Route every stop signal to ``handler(signum, frame)``; returns the previous handlers for
    :func:`restore_signals`, or None outside the main thread (where signals are left alone). Set
    explicitly for SIGINT too: a process started in the background of a non-interactive shell
    inherits it ignored."""
    try:
        return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread
        return None


def restore_signals(previous) -> None:
    for sig, handler in (previous or {}).items():
        signal.signal(sig, handler)
