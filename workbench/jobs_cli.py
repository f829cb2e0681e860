"""``workbench jobs list|show|cancel``: follow and stop the detached jobs of
:mod:`workbench.jobs`."""

from __future__ import annotations

import argparse
import datetime as dt

from workbench.cli import emit
from workbench.jobs import DEFAULT_GRACE, JOB_STATUSES, cancel_job, job_status, list_jobs


def register(sub: argparse._SubParsersAction) -> None:
    jobs = sub.add_parser("jobs", help="list, show or cancel background jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    p = jobs_sub.add_parser("list", help="list jobs, newest first")
    p.add_argument("--status", choices=JOB_STATUSES,
                   help="only jobs in this status")
    p.add_argument("--run", help="only jobs of this run id")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_list)

    p = jobs_sub.add_parser("show", help="show a job and the end of its log")
    p.add_argument("job", metavar="JOB", help="job id (j-...)")
    p.add_argument("--lines", type=int, default=20, help="log lines to show (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_show)

    p = jobs_sub.add_parser("cancel", help="stop a job (SIGTERM, then SIGKILL after a grace)")
    p.add_argument("job", metavar="JOB", help="job id (j-...)")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE,
                   help=f"seconds before SIGKILL (default {DEFAULT_GRACE:g})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cancel)


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _list(args) -> int:
    jobs = list_jobs(status=args.status, run_id=args.run)
    lines = [f"{'ID':<15} {'RUN':<15} {'STATUS':<10} {'STARTED':<20} COMMAND"]
    for j in jobs:
        lines.append(f"{j.id:<15} {(j.run_id or '-'):<15} {j.status:<10} {_when(j.started):<20} "
                     f"{' '.join(j.argv)}")
    emit({"jobs": [j.to_json() for j in jobs]}, args.json,
         "\n".join(lines) if jobs else "no jobs")
    return 0


def _show_text(job, lines: int) -> str:
    out = [f"job {job.id}: {job.status}" + (f" (exit code {job.exit_code})"
                                             if job.exit_code is not None else ""),
           f"  command: workbench {' '.join(job.argv)}",
           f"  run: {job.run_id or '-'}   pid: {job.pid or '-'}",
           f"  started: {_when(job.started)}   ended: {_when(job.ended)}",
           f"  log: {job.log_path}"]
    tail = job.log_tail(lines)
    if tail:
        out.append("  --- last log lines ---")
        out += ["  " + line for line in tail]
    return "\n".join(out)


def _show(args) -> int:
    job = job_status(args.job)
    emit(job.to_json(tail=args.lines), args.json, _show_text(job, args.lines))
    return 0


def _cancel(args) -> int:
    job = cancel_job(args.job, grace=args.grace)
    emit(job.to_json(), args.json, f"job {job.id}: {job.status}")
    return 0
