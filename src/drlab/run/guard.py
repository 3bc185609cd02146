"""The divergence guard: a run whose losses, gradient norms or weights stop being finite ends in one
line (drlab.errors.Diverged, exit status 3) that says what was kept."""

from __future__ import annotations

import math
from pathlib import Path

from drlab.errors import Diverged
from drlab.run.checkpoint import non_finite_weight

# Update metrics that must stay finite: every loss and every gradient norm (explained variance, say,
# is legitimately NaN when the targets do not vary).
GUARDED = ("loss", "grad_norm")


class DivergenceGuard:
    def __init__(self, algo: str, run_dir: Path, saved_step: int | None = None):
        self.algo, self.dir = algo, run_dir
        self.saved_step = saved_step  # the step of the newest checkpoint in the run directory

    def check_metrics(self, step: int, metrics: dict) -> None:
        """A few floats per update."""
        for name, value in metrics.items():
            if name.endswith(GUARDED) and not math.isfinite(value := float(value)):
                raise Diverged(self.message(step, f"train/{name} is {value}"))

    def check_weights(self, step: int, learner_state: dict) -> None:
        """Before a checkpoint: bad weights are never saved over good ones."""
        if (bad := non_finite_weight(learner_state)) is not None:
            raise Diverged(self.message(step, f"weight {bad} is not finite"))

    def saved(self, step: int) -> None:
        self.saved_step = step

    def message(self, step: int, what: str) -> str:
        if self.saved_step is None:
            kept = "nothing was saved (no checkpoint had been written yet)"
        else:
            kept = f"kept the checkpoint of step {self.saved_step:,} (drlab resume {self.dir} continues from it)"
        return f"{self.algo} diverged at step {step:,}: {what}; {kept}"
