"""Live progress from the store, for every page and widget that follows work while it runs:
the metric rows newer than the last row id seen (an index seek, however long the run), with the
run's and its job's state, and the ETA from the observed rate (no Dash in here)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from workbench import jobs
from workbench.store import INTERRUPTED, Run, RunStore

TERMINAL_RUN = ("completed", "failed", "cancelled", INTERRUPTED)


@dataclass
class Poll:
    """New data for the run page since ``since_id``."""

    run: Run
    job: jobs.Job | None
    rows: list[tuple[int, int, str, float]]
    last_id: int
    last_step: int
    total_steps: int | None

    @property
    def finished(self) -> bool:
        return self.run.status in TERMINAL_RUN and (self.job is None or self.job.done)


def poll_run(store: RunStore, run_id: str, since_id: int = 0, last_step: int = 0) -> Poll:
    """Metric rows newer than ``since_id`` (index seek), with the run's and its job's state."""
    rows = store.metrics(run_id, since_id=since_id)
    run = store.get_run(run_id)
    job = jobs.job_for_run(run_id, store=store)
    if job is not None and job.done and run.status in ("created", "running"):
        run = store.get_run(run_id)  # the job's end may have just updated the run
    last_id = rows[-1][0] if rows else since_id
    step = max([last_step] + [r[1] for r in rows])
    total = (run.config.get("train") or {}).get("steps") if isinstance(run.config, dict) else None
    return Poll(run=run, job=job, rows=rows, last_id=last_id, last_step=step, total_steps=total)


def eta_seconds(state: dict, step: int, total: int | None,
                now: float | None = None) -> float | None:
    """Remaining time from the rate observed since the first poll that saw progress.

    ``state`` (the page's dcc.Store dict) keeps ``eta_t0``/``eta_s0`` between polls.
    """
    now = time.time() if now is None else now
    if not total or step <= 0:
        return None
    if state.get("eta_t0") is None:
        state["eta_t0"], state["eta_s0"] = now, step
        return None
    done = step - state["eta_s0"]
    if done <= 0:
        return None
    return (total - step) * (now - state["eta_t0"]) / done


