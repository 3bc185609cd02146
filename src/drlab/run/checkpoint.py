"""Atomic checkpoint and JSON writes; loading never executes code from the file."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from drlab.errors import DrlabError, writing

FORMAT = "drlab-checkpoint-1"


def atomic_write_bytes(path: Path, write) -> None:
    """Write via a temp file in the same (existing) folder, fsync, then rename over ``path``: the file is
    either the old one or the new one, never a torn mix. A failed write (disk full, no permission,
    read-only filesystem, the folder gone) removes the temp file and raises ``OSError`` naming
    ``path``."""
    path = Path(path)
    tmp = None
    try:  # the folder must exist: a run directory that vanished is a failure, not made anew here
        with writing(path):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:  # the folder itself is gone or unwritable: nothing left to clean up
            pass


def write_json(path: Path, obj: Any) -> None:
    data = (json.dumps(obj, indent=2) + "\n").encode()
    atomic_write_bytes(path, lambda f: f.write(data))


def read_json(path: Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DrlabError(f"no {what} at {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DrlabError(f"{what} {path} is unreadable ({err.__class__.__name__})") from None


def save_checkpoint(path: Path, payload: dict) -> None:
    def write(f) -> None:
        recorder = _WriteRecorder(f)
        try:
            torch.save({"format": FORMAT, **payload}, recorder)
        except RuntimeError:
            if recorder.error is not None:  # torch's zip writer turns a failed write into a RuntimeError
                raise recorder.error from None
            raise

    atomic_write_bytes(path, write)


class _WriteRecorder:
    """A file that remembers the first OSError its writes raised (a full disk), so that it can be
    reported as itself; streaming, so a large checkpoint is never held in memory twice."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self.f.flush()


def load_checkpoint(path: Path) -> dict:
    """Load with ``weights_only=True``: tensors and plain containers only, no pickled code."""
    path = Path(path)
    if not path.is_file():
        raise DrlabError(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols before refusing them
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated/garbage/unsafe files
        raise DrlabError(f"checkpoint {path} is corrupt or not a drlab checkpoint ({err.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DrlabError(f"checkpoint {path} is not a drlab checkpoint")
    return payload


def non_finite_weight(state: dict, prefix: str = "") -> str | None:
    """The name of the first non-finite float tensor among a learner's networks and scalars (every
    entry of its state but the optimizers' and the replay's), or None."""
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if key == "buffer" or "opt" in key:  # optimizer, optimizers, critic_opt, ...
                continue
            if (bad := non_finite_weight(value, name + ".")) is not None:
                return bad
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def random_state(rng, agent_rng, device) -> dict:
    """Every random stream a run draws from: the run's generator (replay sampling, ...), the agent's
    (exploration), torch's (initialisation, dropout), and CUDA's where the run is on a GPU (SAC's and
    TD3's noise is drawn on the device)."""
    return {"numpy": rng.bit_generator.state, "agent": agent_rng.bit_generator.state, "torch": torch.get_rng_state(),
            **({"cuda": torch.cuda.get_rng_state_all()} if device.type == "cuda" else {})}


def restore_random_state(state: dict, rng, agent_rng, device) -> None:
    rng.bit_generator.state = state["numpy"]
    agent_rng.bit_generator.state = state["agent"]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda"])
