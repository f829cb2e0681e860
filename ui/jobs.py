"""Job controls the pages share: cancelling the job a page follows. Starting a job is each
capability's own (its argv, its run row), e.g. :func:`ui.runs.launch.launch_training`."""

from __future__ import annotations

from workbench.errors import UserError
from workbench.jobs import Job, cancel_job
from workbench.store import RunStore


def request_cancel(store: RunStore, job: Job | None) -> str:
    """Ask ``job`` to stop (SIGTERM now, SIGKILL after the grace, without waiting); the
    message for the page."""
    if job is None or job.done:
        return "nothing to cancel"
    try:
        cancel_job(job.id, store=store, wait=False)
    except UserError as exc:
        return str(exc)
    return f"cancelling job {job.id}…"
