"""The report in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
.ci/run installs) opens the report of a short run with videos and of a tiny sweep with every
network request blocked, and checks in the rendered page that every plot drew, every video loaded
its metadata, nothing asked for the network and the console holds no error. Screenshots go to
tests' tmp dir (and to $DRLAB_SCREENSHOTS when set).

Without Chromium this test is skipped with one line saying so (in pytest's summary), except where
DRLAB_REQUIRE_BROWSER is set (.ci/run sets it), where it fails: in CI it must run."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from drlab.cli import main

CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser", "google-chrome"])), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        message = "no headless Chromium: apt-get install chromium chromium-driver (the report's browser test)"
        if os.environ.get("DRLAB_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--window-size=1400,1800", "--host-resolver-rules=MAP * ~NOTFOUND",
                "--proxy-server=http://127.0.0.1:9", "--autoplay-policy=no-user-gesture-required"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    yield driver
    driver.quit()


def open_report(driver, page: Path, screenshot: Path) -> dict:
    """Load ``page``; wait until every video has its metadata; return what the page shows."""
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get_log("browser")
    driver.get(page.as_uri())
    deadline = time.monotonic() + 60
    state = {}
    while time.monotonic() < deadline:
        state = driver.execute_script("""
            const plots = [...document.querySelectorAll('div.plot')];
            const videos = [...document.querySelectorAll('video')];
            return {plots: plots.length,
                    drawn: plots.filter(p => p.querySelector('svg.main-svg') && p.querySelector('.plot-container')).length,
                    traces: plots.map(p => (p.data || []).length),
                    videos: videos.length,
                    loaded: videos.filter(v => v.readyState >= 1 && v.duration > 0 && v.videoWidth > 0).length,
                    ready: document.readyState};""")
        if state["ready"] == "complete" and state["loaded"] == state["videos"] and state["drawn"] == state["plots"]:
            break
        time.sleep(0.5)
    driver.save_screenshot(str(screenshot))
    if os.environ.get("DRLAB_SCREENSHOTS"):
        shutil.copy(screenshot, Path(os.environ["DRLAB_SCREENSHOTS"]) / screenshot.name)
    requests = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    state["requests"] = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
    state["errors"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return state


def check(state: dict, plots: int, videos: int) -> None:
    assert state["plots"] >= plots and state["drawn"] == state["plots"], state
    assert all(n > 0 for n in state["traces"][:3]), state["traces"]  # the learning curves have data
    assert state["videos"] == videos and state["loaded"] == videos, state
    assert not [url for url in state["requests"] if not url.startswith(("file:", "data:"))], state["requests"]
    assert not state["errors"], state["errors"]


def test_a_run_report_renders_offline_with_its_videos(browser, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "a2c", "CartPole-v1", "--run-dir", str(run), "--total-steps", "2048", "--eval-interval", "1024",
                 "--eval-episodes", "2", "--final-eval-episodes", "3", "--log-interval", "256", "--video-interval",
                 "1024", "--no-progress"]) == 0
    assert main(["record", str(run)]) == 0
    assert main(["report", str(run)]) == 0
    state = open_report(browser, run / "report.html", tmp_path / "report-run.png")
    check(state, plots=4 + 8, videos=3)
    assert (tmp_path / "report-run.png").stat().st_size > 50_000


def test_a_sweep_report_renders_offline(browser, tmp_path):
    out = tmp_path / "sw"
    assert main(["sweep", "a2c", "CartPole-v1", "--set", "lr=1e-3,3e-3", "--seeds", "0,1", "--jobs", "2",
                 "--out", str(out), "--set", "total_steps=1024", "--set", "eval_interval=512",
                 "--set", "eval_episodes=2", "--set", "final_eval_episodes=2", "--set", "log_interval=256"]) == 0
    assert main(["report", str(out)]) == 0
    state = open_report(browser, out / "report.html", tmp_path / "report-sweep.png")
    check(state, plots=4 + 8, videos=0)


def test_a_study_report_renders_offline_with_optunas_figures(browser, tmp_path):
    pytest.importorskip("optuna", reason="drlab tune needs Optuna: pip install 'drlab[tune]'")
    out = tmp_path / "study"
    space = tmp_path / "space.toml"
    space.write_text("[lr]\nlow = 1e-4\nhigh = 1e-2\nlog = true\n[gamma]\nchoices = [0.95, 0.99]\n")
    assert main(["tune", "a2c", "CartPole-v1", "--trials", "3", "--jobs", "2", "--space", str(space), "--out", str(out),
                 "--set", "total_steps=1024", "--set", "eval_interval=512", "--set", "eval_episodes=2",
                 "--set", "final_eval_episodes=2", "--set", "log_interval=256"]) == 0
    assert main(["report", str(out)]) == 0
    state = open_report(browser, out / "report.html", tmp_path / "report-study.png")
    # Optuna's four figures (history, importances, parallel coordinates, intermediate values), then the
    # learning curves of every trial.
    assert state["traces"][0] > 0 and state["traces"][2] > 0, state["traces"]
    assert state["plots"] >= 4 + 4 + 8 and state["drawn"] == state["plots"], state
    assert not [url for url in state["requests"] if not url.startswith(("file:", "data:"))], state["requests"]
    assert not state["errors"], state["errors"]
