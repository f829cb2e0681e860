"""One meaning per run status in every job kind: Ctrl-C (SIGINT) -> cancelled, SIGKILL ->
interrupted, for ``train``, ``programs train``, ``programs compile`` and ``circuits discover``
started as jobs. The job's command holds inside its run lifecycle (a wrapper around the real
CLI), so the signal always lands while the run is ``running``."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from workbench import jobs

# The real ``workbench`` CLI, its run held running for up to a minute once the lifecycle has
# entered. A Ctrl-C to the job's process group also reaches the supervisor, which forwards
# SIGTERM at once: the hold records both signals and ends the block with one KeyboardInterrupt,
# as a signal landing in a package's own work would.
HOLD = """
import signal, sys, time
from workbench import lifecycle
enter = lifecycle.RunLifecycle.__enter__
def held(self):
    out = enter(self)
    if not self.writer:
        return out
    hit = []
    prev = {s: signal.signal(s, lambda n, f: hit.append(n)) for s in (signal.SIGINT,
                                                                     signal.SIGTERM)}
    deadline = time.time() + 60
    while not hit and time.time() < deadline:
        time.sleep(0.05)
    if not hit:
        for s, h in prev.items():
            signal.signal(s, h)
        return out
    self.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
    signal.signal(signal.SIGINT, prev[signal.SIGINT])
    raise KeyboardInterrupt
lifecycle.RunLifecycle.__enter__ = held
from workbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A store with a program run and its compiled run (what compile and discover read)."""
    from programs.api import train_run
    from programs.compiled_run import compile_run
    from workbench.store import RunStore

    home = tmp_path_factory.mktemp("statuses")
    store = RunStore(home)
    program = train_run("sort", preset_name="tiny", overrides={"epochs": 1}, store=store)
    compiled = compile_run(program["run_id"], store=store)
    return home, program["run_id"], compiled["run_id"]


def _argv(kind: str, program: str, compiled: str) -> list[str]:
    return {"train": ["train", "modular-addition", "--preset", "tiny", "--no-progress"],
            "programs train": ["programs", "train", "sort", "--preset", "tiny"],
            "programs compile": ["programs", "compile", program],
            "circuits discover": ["circuits", "discover", "--model", compiled, "--task",
                                  "resample", "--steps", "5", "--examples", "16"]}[kind]


def _running_run(store, before: set[str], job, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        new = [r for r in store.list_runs() if r.id not in before]
        if new and new[0].status == "running":
            return new[0]
        assert not jobs.job_status(job.id, store=store).done, job.log_tail()
        time.sleep(0.2)
    raise AssertionError(f"no run started: {job.log_tail()}")


def _done(store, job, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = jobs.job_status(job.id, store=store)
        if j.done:
            return j
        time.sleep(0.2)
    raise AssertionError(f"job still running: {job.log_tail()}")


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["train", "programs train", "programs compile",
                                  "circuits discover"])
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, "cancelled"),
                                         (signal.SIGKILL, "interrupted")])
def test_one_status_meaning_per_signal(sources, monkeypatch, kind, sig, status):
    from workbench.store import RunStore

    home, program, compiled = sources
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    store = RunStore(home)
    before = {r.id for r in store.list_runs()}
    job = jobs.start_job(_argv(kind, program, compiled), store=store,
                         command=[sys.executable, "-c", HOLD],
                         env={"OMP_NUM_THREADS": "1"})
    run = _running_run(store, before, job)
    if sig == signal.SIGINT:  # Ctrl-C at a terminal: the whole foreground process group
        os.killpg(job.pid, signal.SIGINT)
    else:  # the command itself dies; nothing in it gets to write an end
        os.kill(int(run.owner.rpartition(":")[2]), signal.SIGKILL)
    finished = _done(store, job)
    seen = store.get_run(run.id)
    assert (seen.status, finished.status) == (status, status), (seen.message, job.log_tail())
    assert seen.message
