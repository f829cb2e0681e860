"""What the pages show, read from the run store and the job runner (no Dash in here).

Queries are shaped for the browser's needs: the runs table is two statements however many runs
there are (completed runs carry their final metrics in ``summary``; only unfinished runs look at
their last metric rows), and the run page's poll reads only metric rows newer than the last row
id it saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from workbench import jobs
from workbench.store import INTERRUPTED, Run, RunStore, effective_status

KEY_METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")
TERMINAL_RUN = ("completed", "failed", "cancelled", INTERRUPTED)


def runs_overview(store: RunStore) -> list[dict]:
    """One dict per run, newest first: id, name, kind, task, status, created, steps and the
    key metrics (final ones for completed runs, the latest logged ones otherwise)."""
    # JSON fields are extracted by SQLite: decoding 1,000 summaries in Python costs more.
    metrics_sql = ", ".join(f"json_extract(summary, '$.{k}') AS {k}" for k in KEY_METRICS)
    rows = store.execute("SELECT id, name, kind, task, status, owner, created, "
                         "summary IS NOT NULL AS has_summary, "
                         f"json_extract(config, '$.train.steps') AS steps, {metrics_sql} "
                         "FROM runs ORDER BY created DESC")
    out, open_ids = [], []
    for r in rows:
        item = {"id": r["id"], "name": r["name"] or "", "kind": r["kind"], "task": r["task"],
                "status": effective_status(r["status"], r["owner"]),
                "created_ts": r["created"],
                "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])),
                "steps": r["steps"]}
        for key in KEY_METRICS:
            item[key] = r[key]
        if r["status"] != "completed" or not r["has_summary"]:
            open_ids.append(r["id"])
        out.append(item)
    latest = _latest_metrics(store, open_ids)
    for item in out:
        for key, value in latest.get(item["id"], {}).items():
            if item.get(key) is None:
                item[key] = value
    return out


def _latest_metrics(store: RunStore, run_ids: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i:i + 500]
        # The last eval step logs one row per metric; 16 rows cover it with room for extras.
        rows = store.execute(
            "SELECT run_id, name, value FROM (SELECT run_id, name, value, ROW_NUMBER() OVER "
            "(PARTITION BY run_id ORDER BY id DESC) AS rn FROM metrics WHERE run_id IN "
            f"({','.join('?' * len(chunk))})) WHERE rn <= 16 ORDER BY rn DESC", chunk)
        for r in rows:  # oldest first, so the newest value of each name wins
            if r["name"] in KEY_METRICS:
                out.setdefault(r["run_id"], {})[r["name"]] = r["value"]
    return out


def filter_sort(rows: list[dict], *, text: str = "", status: str | None = None,
                sort: str = "created", descending: bool = True) -> list[dict]:
    """Filter runs by a free-text match (id, name, task, kind) and status, then sort."""
    text = (text or "").strip().lower()
    if text:
        rows = [r for r in rows if any(text in str(r[k]).lower()
                                       for k in ("id", "name", "task", "kind"))]
    if status:
        rows = [r for r in rows if r["status"] == status]
    key = "created_ts" if sort == "created" else sort
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]  # runs without the metric go last
    return sorted(present, key=lambda r: r[key], reverse=descending) + missing


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


def checkpoints(store: RunStore, run_id: str) -> list[dict]:
    return [{"step": a.step, "path": a.path, "sha256": a.sha256[:12]}
            for a in store.artifacts(run_id, "checkpoint")]


def active_jobs(store: RunStore) -> list[jobs.Job]:
    return jobs.list_jobs(store=store, status="running")
