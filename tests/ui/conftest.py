"""Fixtures for the browser app and widget tests: a store in tmp_path, seeded runs, and the
headless Debian Chromium set-up for ``dash_duo`` (dash[testing])."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from workbench.store import RunStore

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


def pytest_setup_options():
    """Chrome options for dash_duo: Debian's chromium, headless, no sandbox (CI containers)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    if os.path.exists(CHROMIUM):
        options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"):
        options.add_argument(arg)
    return options


def pytest_collection_modifyitems(config, items):
    if shutil.which("chromedriver") is None:
        skip = pytest.mark.skip(reason="chromedriver not installed")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _free_dash_port():
    """Start each dash_duo server on a port the OS reports free: dash counts up from a fixed
    58050, which lies in Linux's ephemeral range, so gloo or chromedriver sockets of other tests
    can already hold it."""
    try:
        from dash.testing.application_runners import BaseDashRunner
    except ImportError:  # dash[testing] absent: the browser tests are skipped anyway
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        BaseDashRunner._next_port = probe.getsockname()[1]


@pytest.fixture
def store(tmp_path, monkeypatch) -> RunStore:
    """An empty store; jobs started by the code under test inherit its WORKBENCH_HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # jobs share two cores with the browser
    return RunStore(home)


def seed_run(store: RunStore, *, task="modular-addition", status="completed", steps=100,
             evals=4, name=None, acc=0.9):
    """A fake training run with metric rows (no training): ``evals`` evaluations to ``steps``."""
    run = store.create_run(kind="train", task=task, name=name,
                           config={"task": task, "train": {"steps": steps}})
    for i in range(1, evals + 1):
        step = steps * i // max(evals, 1) if status == "completed" else 10 * i
        store.log_metrics(run.id, step, {"train_loss": 2.0 / i, "test_loss": 3.0 / i,
                                         "train_acc": min(1.0, acc * i / evals),
                                         "test_acc": acc * i / evals / 2, "lr": 1e-3})
    if status == "completed":
        store.set_summary(run.id, {"train_loss": 2.0 / evals, "test_loss": 3.0 / evals,
                                   "train_acc": acc, "test_acc": acc / 2, "steps": steps})
    store.set_status(run.id, status)
    return store.get_run(run.id)


@pytest.fixture
def seed():
    """The :func:`seed_run` helper, as a fixture (test modules do not import conftest)."""
    return seed_run


@pytest.fixture
def screenshot():
    """``screenshot(dash_duo, "runs")`` saves test-output/screenshots/runs.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(dash_duo, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        dash_duo.driver.save_screenshot(str(path))
        return path

    return take
