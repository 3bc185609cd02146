"""Atomic checkpoint and JSON writes; loading never executes code from the file."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from drlab.errors import DrlabError

FORMAT = "drlab-checkpoint-1"


def atomic_write_bytes(path: Path, write) -> None:
    """Write via a temp file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    atomic_write_bytes(path, lambda f: torch.save({"format": FORMAT, **payload}, f))


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
