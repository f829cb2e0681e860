"""What the runs pages show, read from the run store and the job runner (no Dash in here).

The runs table is two statements however many runs there are (completed runs carry their final
metrics in ``summary``; only unfinished runs look at their last metric rows); the live poll of
a run is the shell's (:mod:`ui.polling`).
"""

from __future__ import annotations

import time

from workbench import jobs
from workbench.store import RunStore, effective_status

KEY_METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")


def runs_overview(store: RunStore) -> list[dict]:
    """One dict per run, newest first: id, name, kind, task, status, created, steps and the
    key metrics (final ones for completed runs, the latest logged ones otherwise)."""
    rows = store.run_table()
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
    return store.latest_metrics_of(run_ids, KEY_METRICS)


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


def checkpoints(store: RunStore, run_id: str) -> list[dict]:
    return [{"step": a.step, "path": a.path, "sha256": a.sha256[:12]}
            for a in store.artifacts(run_id, "checkpoint")]


def active_jobs(store: RunStore) -> list[jobs.Job]:
    return jobs.list_jobs(store=store, status="running")
