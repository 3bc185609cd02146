"""Metrics to metrics.jsonl and TensorBoard, and the progress bar."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

from tqdm import tqdm

from drlab.errors import writing

METRICS_FILE = "metrics.jsonl"
TB_DIR = "tb"


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines logged after ``last_step`` (a run resumed from an older checkpoint re-logs them)."""
    if not path.is_file():
        return
    kept = []
    for line in read_lines(path):
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a crash
    from drlab.run.checkpoint import atomic_write_bytes

    data = "".join(line + "\n" for line in kept).encode()
    atomic_write_bytes(path, lambda f: f.write(data))


class Logger:
    """One JSON object per event in metrics.jsonl (with ``step`` and ``time_s``), mirrored to TensorBoard.

    A failed write (disk full, ...) raises ``OSError`` naming the file that could not be written."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        quiet_tensorboard_thread()
        self.path, self.tb_dir = run_dir / METRICS_FILE, run_dir / TB_DIR
        if resume_step is not None:
            truncate_metrics(self.path, resume_step)
        with writing(self.path):
            self.file = open(self.path, "a", buffering=1)
        with writing(self.tb_dir):
            self.tb = SummaryWriter(log_dir=str(self.tb_dir), purge_step=resume_step)

    def log(self, step: int, time_s: float, metrics: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items()}
        record = {"step": int(step), "time_s": round(time_s, 3)}
        record.update({k: (v if math.isfinite(v) else None) for k, v in clean.items()})
        with writing(self.path):
            self.file.write(json.dumps(record) + "\n")
        with writing(self.tb_dir):
            for key, value in clean.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        """Close both files, even when the first fails; raise the first failure."""
        try:
            with writing(self.path):
                self.file.close()
        finally:
            with writing(self.tb_dir):
                self.tb.close()


def quiet_tensorboard_thread() -> None:
    """TensorBoard writes events in a thread of its own. When a write fails there (disk full, the
    folder gone) the thread dies with a traceback on stderr, and the error comes back in this thread
    at the next write, where it is reported in one line: so the thread's own traceback is dropped."""
    previous = threading.excepthook
    if getattr(previous, "drlab_quiet", False):
        return

    def hook(args):
        if not (type(args.thread).__name__ == "_AsyncWriterThread" and issubclass(args.exc_type, OSError)):
            previous(args)

    hook.drlab_quiet = True
    threading.excepthook = hook


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError as err:
        from drlab.errors import DrlabError

        raise DrlabError(f"cannot read {path}: {err.strerror or err}") from None


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    records = []
    if path.is_file():
        for line in read_lines(path):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def progress_bar(total: int, initial: int, enabled: bool) -> tqdm:
    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True,
                disable=not enabled, mininterval=0.5, smoothing=0.1)


def log_hparams(run_dir: Path, hparams: dict, metrics: dict[str, float]) -> None:
    """TensorBoard hyperparameters with their results (the HParams tab), in the run's tb/ next to the
    scalars."""
    from torch.utils.tensorboard import SummaryWriter

    tb_dir = Path(run_dir) / TB_DIR
    with writing(tb_dir):
        writer = SummaryWriter(log_dir=str(tb_dir))
        writer.add_hparams(hparams, metrics, run_name=".")
        writer.close()
