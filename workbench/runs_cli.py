"""``workbench runs list|show|delete``: inspect and manage the run store."""

from __future__ import annotations

import argparse
import datetime as dt

from workbench.cli import emit
from workbench.runs import load_run
from workbench.store import RunStore


def register(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="list, show or delete runs in the store")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    p = runs_sub.add_parser("list", help="list runs, newest first")
    p.add_argument("--kind", help="only runs of this kind (train, programs, circuits, ...)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_list)

    p = runs_sub.add_parser("show", help="show a run's config, status, checkpoints and metrics")
    p.add_argument("run", metavar="RUN", help="run id or name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_show)

    p = runs_sub.add_parser("delete", help="delete a run and its files")
    p.add_argument("run", metavar="RUN", help="run id or name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_delete)


def _list(args) -> int:
    runs = RunStore().list_runs(kind=args.kind)
    rows = [{"id": r.id, "name": r.name, "kind": r.kind, "task": r.task, "status": r.status,
             "created": r.created} for r in runs]
    lines = [f"{'ID':<15} {'NAME':<20} {'KIND':<9} {'TASK':<22} {'STATUS':<10} CREATED"]
    for r in runs:
        when = dt.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M")
        lines.append(f"{r.id:<15} {(r.name or '-'):<20} {r.kind:<9} {r.task:<22} "
                     f"{r.status:<10} {when}")
    emit({"runs": rows}, args.json, "\n".join(lines) if runs else "no runs")
    return 0


def show_payload(ref: str) -> dict:
    handle = load_run(ref)
    run = handle.run
    return {"id": run.id, "name": run.name, "kind": run.kind, "task": run.task,
            "status": run.status, "message": run.message, "parent": run.parent,
            "config": run.config, "created": run.created, "updated": run.updated,
            "checkpoints": handle.checkpoints(),
            "metrics": handle.store.latest_metrics(run.id), "summary": run.summary,
            "directory": str(handle.directory)}


def _show(args) -> int:
    payload = show_payload(args.run)
    text = [f"run {payload['id']} ({payload['name'] or 'unnamed'}): {payload['kind']} "
            f"{payload['task']}, {payload['status']}"]
    if payload["message"]:
        text.append(f"  message: {payload['message']}")
    text.append(f"  directory: {payload['directory']}")
    text.append(f"  checkpoints: {payload['checkpoints']}")
    for k, v in sorted(payload["metrics"].items()):
        text.append(f"  {k}: {v:.6g}")
    emit(payload, args.json, "\n".join(text))
    return 0


def _delete(args) -> int:
    run = RunStore().delete_run(args.run)
    emit({"deleted": run.id}, args.json, f"deleted run {run.id}")
    return 0
