"""The job runner: CLI commands (``workbench train …``) run as detached processes, recorded in
the run store's ``jobs`` table so that any process — the browser app, a notebook, ``workbench
jobs`` — can list, follow and cancel them.

Each job is a small *supervisor* process (this file run as a script, standard library only, so
it starts in milliseconds and holds no torch) in its own session; it starts
``python -m workbench.cli ARGV…``, waits for it and writes the exit code and final status to the
store. A job therefore outlives the server and the browser that started it. ``cancel_job`` sends
SIGTERM to the supervisor, which forwards it to the command (whose run lifecycle stops cleanly
and marks the run cancelled) and escalates to SIGKILL after a grace period. ``refresh`` catches
supervisors that died without recording an end (machine reboot, SIGKILL) and marks their jobs —
and the runs they drove — interrupted, with the last lines of the log.

Job statuses mean what run statuses mean (:mod:`workbench.lifecycle`): ``running``,
``completed`` (exit 0), ``failed`` (another exit code), ``cancelled`` (a cancel, or Ctrl-C: exit
130), ``interrupted`` (the command or the supervisor was killed). A job that ends leaves its run
in the same status if the command could not record one itself.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.liveness import pid_alive

if TYPE_CHECKING:  # the supervisor runs this file as a script and must not import torch
    from workbench.store import RunStore

# The supervisor cannot import the workbench package (it would import torch): these restate
# workbench.lifecycle's names, and a test checks that they agree.
JOB_STATUSES = ("running", "completed", "failed", "cancelled", "interrupted")
TERMINAL = ("completed", "failed", "cancelled", "interrupted")
_INTERRUPT_EXIT = 130  # what ``workbench`` returns after Ctrl-C (KeyboardInterrupt)
DEFAULT_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
_START_GRACE = 30.0  # a job row without a pid is "starting" for this long
_TAIL_LINES = 20


@dataclass(frozen=True)
class Job:
    """A row of the ``jobs`` table."""

    id: str
    run_id: str | None
    argv: list[str]
    pid: int | None
    status: str
    log_path: str
    exit_code: int | None
    started: float
    ended: float | None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def log_tail(self, n: int = _TAIL_LINES) -> list[str]:
        """The last ``n`` lines of the job's log (progress-bar carriage returns resolved)."""
        return _tail(Path(self.log_path), n)

    def to_json(self, tail: int = 0) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if tail:
            d["log_tail"] = self.log_tail(tail)
        return d


# -- public API ------------------------------------------------------------------------------
def start_job(argv: list[str], run_id: str | None = None, *, store: "RunStore | None" = None,
              env: dict[str, str] | None = None,
              command: list[str] | None = None) -> Job:
    """Start ``workbench ARGV…`` as a detached job and return it (status ``running``).

    ``command`` replaces the ``python -m workbench.cli`` prefix (tests run tiny scripts).

    The command sees ``WORKBENCH_HOME`` = this store's home. Its output goes to
    ``<run dir>/job-<id>.log`` when ``run_id`` is given, else ``<home>/jobs/<id>.log``.
    """
    store = _store(store)
    assert all(isinstance(a, str) for a in argv), argv
    job_id = "j-" + secrets.token_hex(6)
    if run_id is not None:
        store.get_run(run_id)  # UserError if there is no such run
        log_path = store.layout(run_id).job_log(job_id)
    else:
        log_path = store.home / "jobs" / f"{job_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    store.insert_job(job_id, run_id, list(argv), str(log_path))
    child_env = {**os.environ, **(env or {}), "WORKBENCH_HOME": str(store.home),
                 "PYTHONUNBUFFERED": "1",
                 "WORKBENCH_JOB_COMMAND": json.dumps(command or _CLI)}
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-P", __file__, "supervise", str(store.db_path), job_id],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, env=child_env)
    except OSError as exc:
        _finish(store.db_path, job_id, None, "failed", f"could not start the job: {exc}")
        raise
    _CHILDREN[proc.pid] = proc
    store.set_job_pid(job_id, proc.pid)
    return job_status(job_id, store=store)


def job_status(job_id: str, *, store: "RunStore | None" = None) -> Job:
    """The job's current row (``UserError`` if unknown). Checks that a running job is alive."""
    store = _store(store)
    job = _get(store, job_id)
    if job.status == "running" and not _alive(job):
        _mark_dead(store, job)
        job = _get(store, job_id)
    return job


def list_jobs(*, store: "RunStore | None" = None, run_id: str | None = None,
              status: str | None = None, limit: int | None = None) -> list[Job]:
    """Jobs, newest first, after a :func:`refresh`."""
    store = _store(store)
    refresh(store=store)
    return [_job_from_row(r) for r in store.job_rows(run_id=run_id, status=status, limit=limit)]


def refresh(*, store: "RunStore | None" = None) -> list[Job]:
    """Mark running jobs whose process is gone as interrupted; return the jobs so marked."""
    store = _store(store)
    dead = []
    for row in store.job_rows(status="running"):
        job = _job_from_row(row)
        if not _alive(job):
            _mark_dead(store, job)
            dead.append(_get(store, job.id))
    return dead


def cancel_job(job_id: str, *, store: "RunStore | None" = None, grace: float = DEFAULT_GRACE,
               wait: bool = True) -> Job:
    """Stop a job: SIGTERM, then SIGKILL to its whole process group after ``grace`` seconds.

    With ``wait=False`` the call returns at once; the supervisor still escalates on its own.
    Cancelling a finished job is a no-op that returns it.
    """
    from workbench.errors import UserError

    store = _store(store)
    job = job_status(job_id, store=store)
    if job.done:
        return job
    if job.pid is None:
        raise UserError(f"job {job_id} is still starting; try again in a moment")
    _signal(job.pid, signal.SIGTERM, group=False)
    if not wait:
        return job_status(job.id, store=store)
    deadline = time.time() + grace + 5.0
    while time.time() < deadline:
        job = job_status(job.id, store=store)
        if job.done:
            return job
        time.sleep(0.1)
    _signal(job.pid, signal.SIGKILL, group=True)
    proc = _CHILDREN.pop(job.pid, None)
    if proc is not None:
        proc.wait(timeout=5)  # reap our own child so no zombie keeps its pid
    _finish(store.db_path, job.id, None, "cancelled", "killed after the grace period")
    return job_status(job.id, store=store)


def job_for_run(run_id: str, *, store: "RunStore | None" = None) -> Job | None:
    """The newest job that drives ``run_id`` (``None`` if the run was not started as a job)."""
    store = _store(store)
    rows = store.job_rows(run_id=run_id, limit=1)
    if not rows:
        return None
    job = _job_from_row(rows[0])
    if job.status == "running" and not _alive(job):  # checks this job only: pollers call this
        _mark_dead(store, job)
        job = _get(store, job.id)
    return job


# -- helpers ---------------------------------------------------------------------------------
_CLI = [sys.executable, "-m", "workbench.cli"]
_CHILDREN: dict[int, subprocess.Popen] = {}  # supervisors this process started (to reap them)


def _store(store):
    from workbench.store import RunStore

    return store if store is not None else RunStore()


def _get(store, job_id: str) -> Job:
    row = store.job_row(job_id)
    if row is None:
        from workbench.errors import UserError

        raise UserError(f"no job {job_id!r} in {store.home}")
    return _job_from_row(row)


def _job_from_row(row) -> Job:
    d = dict(row)
    d["argv"] = json.loads(d["argv"])
    return Job(**d)


def _alive(job: Job) -> bool:
    if job.pid is None:
        return time.time() - job.started < _START_GRACE
    proc = _CHILDREN.get(job.pid)
    if proc is not None:  # our own child: poll() reaps it, so it never lingers as a zombie
        if proc.poll() is None:
            return True
        _CHILDREN.pop(job.pid, None)
        return False
    return pid_alive(job.pid, job.id.encode())


def _mark_dead(store, job: Job) -> None:
    tail = job.log_tail(_TAIL_LINES)
    message = "job process died without finishing" + (
        ": " + " | ".join(tail[-3:]) if tail else "")
    _finish(store.db_path, job.id, None, "interrupted", message)


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)  # the supervisor is its session's (and group's) leader
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, n: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in data.replace("\r\n", "\n").split("\n")]
    return [line for line in lines if line][-n:]


# -- store writes usable by the supervisor (sqlite3 only) -------------------------------------
def _connect(db_path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, timeout=60.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


def _finish(db_path, job_id: str, exit_code: int | None, status: str,
            message: str | None = None) -> None:
    """Record a job's end (only once) and give its run the same status if the command left it
    open (``created`` or ``running``)."""
    assert status in TERMINAL, status
    conn = _connect(db_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute("UPDATE jobs SET status=?, exit_code=?, ended=? "
                           "WHERE id=? AND status='running'",
                           (status, exit_code, time.time(), job_id))
        row = conn.execute("SELECT run_id FROM jobs WHERE id=?", (job_id,)).fetchone()
        if cur.rowcount and row and row[0] and status != "completed":
            conn.execute("UPDATE runs SET status=?, message=COALESCE(?, message), updated=? "
                         "WHERE id=? AND status IN ('created', 'running')",
                         (status, message, time.time(), row[0]))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _supervise(db_path: str, job_id: str) -> int:
    """Run the job's command, forward SIGTERM (then SIGKILL after a grace) and record the end."""
    conn = _connect(db_path)
    row = conn.execute("SELECT argv, log_path FROM jobs WHERE id=?", (job_id,)).fetchone()
    conn.close()
    argv, log_path = json.loads(row[0]), row[1]
    print(f"[job {job_id}] workbench {' '.join(argv)}", flush=True)
    prefix = json.loads(os.environ.pop("WORKBENCH_JOB_COMMAND", "null")) or _CLI
    term_at: float | None = None
    child: subprocess.Popen | None = None

    def on_term(signum, frame):
        nonlocal term_at
        if term_at is None:
            term_at = time.time()
            if child is not None:
                child.send_signal(signal.SIGTERM)

    # Handlers first: a cancel that arrives while the command starts must not be lost.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    child = subprocess.Popen([*prefix, *argv], stdin=subprocess.DEVNULL)
    if term_at is not None:
        child.send_signal(signal.SIGTERM)
    while True:
        try:
            code = child.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if term_at is not None and time.time() - term_at > DEFAULT_GRACE:
                child.kill()
    if code == 0:
        status, message = "completed", None
    elif term_at is not None or code == _INTERRUPT_EXIT:
        status, message = "cancelled", "cancelled"
    elif code < 0:  # killed by a signal nobody sent through a cancel (SIGKILL, OOM)
        status, message = "interrupted", f"the command was killed by signal {-code}"
    else:
        tail = _tail(Path(log_path), 3)
        status, message = "failed", f"exit code {code}" + (": " + " | ".join(tail) if tail else "")
    print(f"[job {job_id}] {status} (exit code {code})", flush=True)
    _finish(db_path, job_id, code, status, message)
    return 0


if __name__ == "__main__":
    assert sys.argv[1] == "supervise", sys.argv
    sys.exit(_supervise(sys.argv[2], sys.argv[3]))
