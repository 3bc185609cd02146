"""`drlab report`, `drlab plot --diagnostics`, videos during training and TensorBoard HParams,
through the command line. The report in a real browser is tests/test_report_browser.py."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from drlab.cli import main
from drlab.report.stats import MIN_SEEDS_FOR_CI, aggregate

A2C_TINY = ["--total-steps", "2048", "--eval-interval", "1024", "--eval-episodes", "2", "--final-eval-episodes", "3",
            "--log-interval", "256", "--no-progress"]


def comparable(run_dir: Path) -> list[dict]:
    """metrics.jsonl without wall times (time_s, perf/*): what must not depend on taking videos."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "time_s" and not k.startswith("perf/")} for r in records]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two a2c CartPole runs with the same seed, one taking a video every 1024 steps."""
    root = tmp_path_factory.mktemp("report")
    assert main(["train", "a2c", "CartPole-v1", "--run-dir", str(root / "plain"), *A2C_TINY]) == 0
    assert main(["train", "a2c", "CartPole-v1", "--run-dir", str(root / "videos"), "--video-interval", "1024",
                 *A2C_TINY]) == 0
    return root


def test_videos_during_training_leave_training_as_it_was(runs):
    videos = sorted(p.name for p in (runs / "videos" / "videos").glob("*.mp4"))
    steps = [int(re.fullmatch(r"step-(\d{9})\.mp4", name).group(1)) for name in videos]
    # one at the first update past each multiple of 1024 (the preset's updates are 40 steps apart)
    assert len(steps) == 2 and 1024 <= steps[0] < 1064 and 2048 <= steps[1] < 2088
    assert comparable(runs / "plain") == comparable(runs / "videos")
    assert json.loads((runs / "videos" / "config.json").read_text())["video_interval"] == 1024


def test_the_config_and_final_results_are_tensorboard_hparams(runs):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = set()
    for events in (runs / "plain" / "tb").glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                tags.add(value.tag)
                if value.tag == "_hparams_/session_start_info":
                    content = value.metadata.plugin_data.content
                    assert b"ent_coef" in content and b"CartPole-v1" in content
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "hparam/final_eval_mean"} <= tags


def test_diagnostics_png(runs, capsys):
    assert main(["plot", str(runs / "plain"), "--diagnostics"]) == 0
    png = runs / "plain" / "diagnostics.png"
    assert png.stat().st_size > 20_000 and f"wrote {png}" in capsys.readouterr().out
    assert main(["plot", str(runs / "plain"), str(runs / "videos"), "--diagnostics"]) == 2


def test_a_run_report_is_one_self_contained_page(runs, capsys):
    out = runs / "videos" / "report.html"
    assert main(["report", str(runs / "videos")]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text()
    # Nothing the browser would fetch: no external script, stylesheet, image, video or frame.
    assert not re.search(r"<(script|link|img|video|iframe|source)[^>]+(src|href)=\"(?!data:)", page)
    assert page.count("<video") == 2 and page.count('src="data:video/mp4;base64,') == 2
    plots = re.findall(r'<div class="plot" id="(plot\d+)"></div>', page)
    assert len(plots) >= 4 + 8 and all(f"Plotly.newPlot(\"{p}\"" in page for p in plots)
    for text in ["Learning curves", "Diagnostics", "explained variance of the value", "policy entropy",
                 "steps per second", "summary.json", "config.json", "step-0000020"]:
        assert text in page, text
    # The summary's floats as a person reads them, not 17 digits.
    summary = json.loads((runs / "videos" / "summary.json").read_text())
    assert f"<td>eval.std</td><td>{summary['eval']['std']:.4g}</td>" in page
    assert not re.search(r"<td>\d+\.\d{6,}</td>", page)


@pytest.mark.slow
def test_a_sweep_report_has_bands_and_the_table(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "a2c", "CartPole-v1", "--set", "lr=1e-3,3e-3", "--seeds", "0,1", "--jobs", "1",
                 "--out", str(out), "--set", "total_steps=1024", "--set", "eval_interval=512",
                 "--set", "eval_episodes=2", "--set", "final_eval_episodes=2", "--set", "log_interval=256"]) == 0
    # A sweep still going: one point has not started (its run directory does not exist yet).
    sweep = json.loads((out / "sweep.json").read_text())
    for path in (out / "lr=0.003-s1").iterdir():
        if path.is_file():
            path.unlink()
        else:
            import shutil
            shutil.rmtree(path)
    (out / "lr=0.003-s1").rmdir()
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "3 runs, 3 finished, 1 not started yet" in page
    assert "95% CI of the IQM" in page and "lr=0.001 (2 seeds, min-max band)" in page
    assert '"fill": "toself"' in page and sweep["algo"] == "a2c"


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no run or sweep directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_iqm_and_its_bootstrap_interval():
    small = aggregate([1.0, 2.0, 3.0, 100.0])
    assert small["n"] == 4 and small["ci"] is None and small["iqm"] == pytest.approx(2.5)
    assert (small["min"], small["max"], small["median"]) == (1.0, 100.0, 2.5)
    values = np.arange(10, dtype=float)
    big = aggregate(values)
    assert big["iqm"] == pytest.approx(4.5)  # the mean of the middle half: 2..7 (25% trimmed each side)
    low, high = big["ci"]
    assert low < 4.5 < high and 0 <= low and high <= 9
    same = aggregate([500.0] * MIN_SEEDS_FOR_CI)
    assert same["ci"] == (500.0, 500.0)
    assert aggregate([None])["n"] == 0
