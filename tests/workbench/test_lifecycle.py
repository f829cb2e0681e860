"""The run lifecycle context manager: one meaning per status, whatever ends the block."""

from __future__ import annotations

import os
import signal

import pytest

from workbench.errors import UserError
from workbench.lifecycle import RunFailed
from workbench.liveness import owner_tag


def test_block_that_ends_completes_with_its_summary(store):
    run = store.create_run(kind="k", task="t", config={})
    with store.lifecycle(run.id) as life:
        seen = store.get_run(run.id)
        assert (seen.status, seen.owner) == ("running", owner_tag())
        life.summary = {"acc": 1.0}
    done = store.get_run(run.id)
    assert (done.status, done.summary) == ("completed", {"acc": 1.0})


@pytest.mark.parametrize("exc, status, message", [
    (ValueError("boom"), "failed", "ValueError: boom"),
    (RunFailed("loss became nan"), "failed", "loss became nan"),
    (UserError("bad value 3"), "failed", "bad value 3"),
    (KeyboardInterrupt(), "cancelled", "cancelled"),
])
def test_how_a_block_ends_decides_the_status(store, exc, status, message):
    run = store.create_run(kind="k", task="t", config={})
    with pytest.raises(type(exc)):
        with store.lifecycle(run.id):
            raise exc
    seen = store.get_run(run.id)
    assert seen.status == status and message in seen.message and seen.summary is None


def test_sigterm_inside_the_block_is_a_cancel(store):
    run = store.create_run(kind="k", task="t", config={})
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with store.lifecycle(run.id):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10**6):  # the handler runs between bytecodes
                pass
    assert store.get_run(run.id).status == "cancelled"
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_only_a_new_run_starts_and_only_a_stopped_one_resumes(store):
    run = store.create_run(kind="k", task="t", config={})
    with store.lifecycle(run.id):
        pass
    with pytest.raises(UserError, match="completed"):
        with store.lifecycle(run.id, resume=True):
            pass
    other = store.create_run(kind="k", task="t", config={})
    with pytest.raises(KeyboardInterrupt):
        with store.lifecycle(other.id):
            raise KeyboardInterrupt
    with pytest.raises(UserError, match="cancelled"):
        with store.lifecycle(other.id):
            pass
    with store.lifecycle(other.id, resume=True):
        assert store.get_run(other.id).status == "running"
        with pytest.raises(UserError, match="running by process"):
            store.lifecycle(other.id, resume=True).__enter__()
    assert store.get_run(other.id).status == "completed"


def test_non_writer_ranks_touch_nothing(store):
    run = store.create_run(kind="k", task="t", config={})
    with pytest.raises(ValueError):
        with store.lifecycle(run.id, writer=False):
            raise ValueError("rank 1 failed")
    assert store.get_run(run.id).status == "created"


def test_layout_names_paths_inside_the_run_directory(store):
    run = store.create_run(kind="k", task="t", config={})
    layout = store.layout(run.id)
    assert layout.checkpoint(7).parent == layout.checkpoints
    assert layout.checkpoint(7).name == "step_00000007.safetensors"
    for path in (layout.config, layout.split, layout.examples, layout.ground_truth,
                 layout.circuit("masks"), layout.job_log("j-1")):
        assert path.parent == store.run_dir(run.id)
