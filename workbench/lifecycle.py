"""The run lifecycle: one context manager that every package uses to run work under a run.

Statuses, with one meaning in every kind of run (train, program, compiled, circuits, …)::

    created ──> running ──> completed      the block finished
                       ├──> failed         the block raised (an error, a diverged loss, bad
                       │                   input found late); the message names it
                       ├──> cancelled      someone stopped it on purpose: Ctrl-C (SIGINT) or a
                       │                   job cancel (SIGTERM); resumable where the kind is
                       └──> interrupted    the process vanished (SIGKILL, OOM, reboot): nothing
                                           wrote an end, so readers derive it from the dead
                                           owner pid, and the job supervisor stores it

Use::

    run = store.create_run(kind="program", task=task, config=config.to_dict())
    with store.lifecycle(run.id) as life:      # status running, owner = this host:pid
        ...                                    # the work; log metrics, write artifacts
        life.summary = {"test_acc": 0.99}      # stored with the final status
    # left normally: completed; KeyboardInterrupt: cancelled (re-raised); any other
    # exception: failed with "Type: message" (a RunFailed or UserError: its own message)

``resume=True`` also accepts a run that stopped before (cancelled, failed, interrupted) and
sets it running again; otherwise only a ``created`` run may start. ``writer=False`` (the
non-zero ranks under torchrun) makes the manager a no-op, so every rank runs the same code.
While the block runs in the main thread, SIGTERM raises KeyboardInterrupt, so a cancelled job
stops the way Ctrl-C does and is recorded ``cancelled`` by the run itself.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

from workbench.errors import UserError

if TYPE_CHECKING:
    from workbench.store import RunStore

CREATED, RUNNING, COMPLETED, FAILED, CANCELLED, INTERRUPTED = (
    "created", "running", "completed", "failed", "cancelled", "interrupted")
RUN_STATUSES = (CREATED, RUNNING, COMPLETED, FAILED, CANCELLED, INTERRUPTED)
FINISHED = (COMPLETED, FAILED, CANCELLED, INTERRUPTED)
RESUMABLE = (CREATED, FAILED, CANCELLED, INTERRUPTED)
CANCELLED_MESSAGE = "cancelled (Ctrl-C or a job cancel)"


class RunFailed(RuntimeError):
    """The work of a run failed in a way its message explains (e.g. the loss became NaN);
    the lifecycle records the message as is."""


class RunLifecycle:
    """Context manager for one stretch of work on run ``run_id`` (see the module docstring)."""

    def __init__(self, store: "RunStore", run_id: str, *, resume: bool = False,
                 writer: bool = True):
        self.store, self.run_id, self.resume, self.writer = store, run_id, resume, writer
        self.summary: dict | None = None  # set inside the block: stored on completion
        self._old_term = None

    def __enter__(self) -> "RunLifecycle":
        if not self.writer:
            return self
        run = self.store.get_run(self.run_id)
        allowed = RESUMABLE if self.resume else (CREATED,)
        if run.status not in allowed:
            owner = f" by process {run.owner}" if run.status == RUNNING else ""
            raise UserError(f"run {run.id} is {run.status}{owner}; it cannot be "
                            f"{'resumed' if self.resume else 'started'}")
        self.store.set_status(self.run_id, RUNNING)
        if threading.current_thread() is threading.main_thread():
            self._old_term = signal.signal(signal.SIGTERM, raise_interrupt)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.writer:
            return
        # A second signal (Ctrl-C reaches a job's supervisor too, which forwards SIGTERM) must
        # not interrupt the write of the final status: hold both off until it is written.
        main = self._old_term is not None
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if exc_type is None:
                if self.summary is not None:
                    self.store.set_summary(self.run_id, self.summary)
                self.store.set_status(self.run_id, COMPLETED)
            elif issubclass(exc_type, KeyboardInterrupt):
                self.store.set_status(self.run_id, CANCELLED, CANCELLED_MESSAGE)
            else:
                self.store.set_status(self.run_id, FAILED, failure_message(exc))
        finally:
            if main:
                signal.signal(signal.SIGTERM, self._old_term)
                signal.signal(signal.SIGINT, old_int)


def failure_message(exc: BaseException) -> str:
    """What a failed run's message says about ``exc`` (at most 500 characters)."""
    text = str(exc) if isinstance(exc, (RunFailed, UserError)) else f"{type(exc).__name__}: {exc}"
    return text[:500]


def raise_interrupt(signum, frame):
    """SIGTERM handler: a cancelled job stops like Ctrl-C (one meaning: ``cancelled``)."""
    raise KeyboardInterrupt
