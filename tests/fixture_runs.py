"""What the equivalence fixtures share: a run's logged metrics without timing, the comparison against
the numbers recorded before a restructure, and writing a new fixture."""

import json
import sys
import tempfile
from pathlib import Path

import pytest

from drlab.run.logger import read_metrics


def logged_metrics(run_dir: Path) -> list[dict]:
    """Every metrics.jsonl row without wall times (time_s, perf/*)."""
    return [{k: v for k, v in row.items() if k != "time_s" and not k.startswith("perf/")}
            for row in read_metrics(run_dir)]


def assert_logged_as_before(now: dict, before: dict) -> None:
    """The same rows with the same keys, every value equal to JSON's precision, the same evaluation."""
    assert [sorted(row) for row in now["metrics"]] == [sorted(row) for row in before["metrics"]]
    for row, old in zip(now["metrics"], before["metrics"]):
        for key, value in old.items():
            assert row[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (row["step"], key)
    assert now["eval"] == (None if before["eval"] is None else pytest.approx(before["eval"], rel=1e-6))


def write_fixture(cases, logged, path: Path) -> None:
    """Run each case with ``logged(case, run_dir)`` and save what it logged to ``path``."""
    saved = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in sorted(cases):
            saved[case] = logged(case, Path(tmp) / case)
            print(case, len(saved[case]["metrics"]), "rows, eval", saved[case]["eval"], file=sys.stderr)
    path.write_text(json.dumps(saved, indent=0) + "\n")
