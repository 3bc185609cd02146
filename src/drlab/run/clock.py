"""The run's clock: training time across sessions, and where this session's wall time goes."""

from __future__ import annotations

import time

PHASES = ("env", "inference", "learn")


class PhaseClock:
    """Training seconds of the whole run (earlier sessions' from the checkpoint plus this one's), and
    this session's wall time by phase of the pipeline: ``env`` (stepping the envs), ``inference``
    (choosing actions), ``learn`` (storage and updates), and any phase a loop names (a Ray run's
    ``runner_wait``).

    A loop times its phases with laps: ``lap()`` starts one, ``lap("env")`` adds the time since the
    last lap to ``env`` and starts the next. Time between ``lap("env")`` and a bare ``lap()`` counts
    nowhere."""

    def __init__(self, train_seconds: float = 0.0):
        self.earlier = train_seconds  # seconds trained before this session's start()
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._started = self._mark = time.perf_counter()
        self.start_seconds = train_seconds

    def start(self) -> None:
        """This session's training starts now."""
        self._started = self._mark = time.perf_counter()
        self.start_seconds = self.earlier

    def elapsed(self) -> float:
        """Training seconds of the run so far."""
        return self.earlier + (time.perf_counter() - self._started)

    def session(self) -> float:
        """Seconds of this session's training so far."""
        return max(self.elapsed() - self.start_seconds, 1e-9)

    def stop(self) -> float:
        """Training stops now; returns the run's training seconds. Whatever comes after (the final
        checkpoint, the evaluation) starts counting from there, and is not counted twice."""
        self.earlier, self._started = self.elapsed(), time.perf_counter()
        return self.earlier

    def lap(self, phase: str | None = None) -> None:
        now = time.perf_counter()
        if phase is not None:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._mark
        self._mark = now

    def add(self, phase: str, seconds: float) -> None:
        """Time measured elsewhere (a Ray runner's) added to ``phase``."""
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def fractions(self) -> dict[str, float]:
        """``perf/PHASE_fraction`` of this session's wall time, for the phases timed so far."""
        session = self.session()
        return {f"perf/{phase}_fraction": seconds / session for phase, seconds in self.seconds.items() if seconds}
