"""Shared fixtures: an isolated WORKBENCH_HOME per test, a store on it, single-threaded torch.

Tests run on a 2-core machine, often in parallel: one torch thread per process avoids OpenMP
oversubscription (which slows small-model steps by an order of magnitude).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Keep every test at one torch thread, even after code that changes the setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh WORKBENCH_HOME, also seen by subprocesses started by the test."""
    path = tmp_path / "wbhome"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    return path


@pytest.fixture
def store(home):
    from workbench.store import RunStore

    return RunStore(home)


@pytest.fixture
def run_cli(home):
    """Run ``workbench ARGS`` in a subprocess; returns the CompletedProcess."""

    def run(*args, timeout=300, check=False):
        env = dict(os.environ, WORKBENCH_HOME=str(home), OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-m", "workbench.cli", *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"workbench {' '.join(map(str, args))} failed:\n{proc.stderr}")
        return proc

    return run


def pytest_collection_modifyitems(config, items):
    """Browser tests share one xdist worker (``--dist loadgroup``): dash_duo serves on a fixed
    port, so two at once on different workers would collide."""
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))
