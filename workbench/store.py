"""The run store: an embedded SQLite (WAL) index of runs, metrics, artifacts and results, plus
one directory per run under ``WORKBENCH_HOME``.

Work on a run goes through :meth:`RunStore.lifecycle` (:mod:`workbench.lifecycle`: statuses and
their one meaning), its files through :meth:`RunStore.layout` (:mod:`workbench.layout`), and
schema changes through numbered migrations (:mod:`workbench.store_schema`, then the run-config
data migration of :mod:`workbench.run_migrations`), tracked in ``PRAGMA user_version``.

The CLI, notebooks, the browser app and job subprocesses all open the same database; every
write is a short transaction with a generous busy timeout, so concurrent writers queue instead
of failing. Files are written before the row that points at them is committed, so a row always
names a complete file.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import UserError
from workbench.layout import RunLayout
from workbench.lifecycle import INTERRUPTED, RUN_STATUSES, RunLifecycle
from workbench.liveness import owner_alive, owner_tag
from workbench.store_queries import StoreQueries
from workbench.store_schema import SCHEMA_VERSION, STORE_VERSION, migrate

__all__ = ["INTERRUPTED", "RUN_STATUSES", "SCHEMA_VERSION", "STORE_VERSION", "Artifact", "Run",
           "RunStore", "default_home", "effective_status", "validate_name"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ID_RE = re.compile(r"^r-[0-9a-f]{12}$")


def default_home() -> Path:
    """``$WORKBENCH_HOME`` or ``~/.workbench``."""
    env = os.environ.get("WORKBENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".workbench"


def validate_name(name: str) -> str:
    """Run names become lookup keys (never paths), but are still kept to a safe alphabet."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or _ID_RE.match(name):
        raise UserError(f"invalid run name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit, and not of the form r-<12 hex>")
    return name


@dataclass(frozen=True)
class Run:
    """A row of the ``runs`` table, with JSON columns decoded."""

    id: str
    name: str | None
    kind: str
    task: str
    config: dict
    status: str
    parent: str | None
    message: str | None
    summary: dict | None
    created: float
    updated: float
    owner: str | None = None  # host:pid of the process that last set it running

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Artifact:
    run_id: str
    path: str  # relative to the run directory
    kind: str
    step: int | None
    sha256: str
    created: float


class RunStore(StoreQueries):
    """Handle on the store under ``home`` (default :func:`default_home`).

    Opening is cheap; each method uses its own short transaction, so one ``RunStore`` may be
    shared by threads of one process and many processes may open the same home at once.
    """

    def __init__(self, home: str | os.PathLike | None = None):
        self.home = Path(home).expanduser() if home is not None else default_home()
        try:
            (self.home / "runs").mkdir(parents=True, exist_ok=True)
            probe = self.home / f".write-probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"workbench home {str(self.home)!r} is not writable: "
                            f"{exc.strerror or exc}") from None
        self.db_path = self.home / "store.db"
        conn = self._connect().conn  # migrate() manages its own transaction
        try:
            _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            migrate(conn)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
        if version < STORE_VERSION:
            from workbench.run_migrations import migrate_runs

            migrate_runs(self, version)

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> "_Transaction":
        conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
        # journal_mode=WAL is persistent in the file: set once in __init__, not per connection,
        # where switching needs a lock that concurrent openers (torchrun ranks) can be refused
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")
        conn.row_factory = sqlite3.Row
        return _Transaction(conn)

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, *, kind: str, task: str, config: dict, name: str | None = None,
                   parent: str | None = None) -> Run:
        """Insert a run in status ``created`` and make its directory."""
        if name is not None:
            validate_name(name)
        now = time.time()
        run_id = "r-" + secrets.token_hex(6)
        with self._connect() as conn:
            if name is not None and conn.execute("SELECT 1 FROM runs WHERE name=?",
                                                 (name,)).fetchone():
                raise UserError(f"a run named {name!r} already exists")
            conn.execute(
                "INSERT INTO runs (id, name, kind, task, config, status, parent, created, updated)"
                " VALUES (?, ?, ?, ?, ?, 'created', ?, ?, ?)",
                (run_id, name, kind, task, json.dumps(config, sort_keys=True), parent, now, now))
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return self.get_run(run_id)

    def get_run(self, ref: str) -> Run:
        """Look a run up by id or unique name; ``UserError`` if there is none."""
        if not isinstance(ref, str) or not ref:
            raise UserError(f"invalid run reference {ref!r}")
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id=? OR name=?", (ref, ref)).fetchone()
        if row is None:
            raise UserError(f"no run {ref!r} in {self.home}")
        return _run_from_row(row)

    def list_runs(self, *, kind: str | None = None, limit: int | None = None) -> list[Run]:
        sql, args = "SELECT * FROM runs", []
        if kind is not None:
            sql, args = sql + " WHERE kind=?", [kind]
        sql += " ORDER BY created DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as conn:
            return [_run_from_row(r) for r in conn.execute(sql, args)]

    def set_status(self, run_id: str, status: str, message: str | None = None) -> None:
        """Set a run's status; ``running`` also records this process as the run's owner."""
        assert status in RUN_STATUSES, status
        with self._connect() as conn:
            if status == "running":
                conn.execute("UPDATE runs SET status=?, message=?, updated=?, owner=? "
                             "WHERE id=?", (status, message, time.time(), owner_tag(), run_id))
            else:
                conn.execute("UPDATE runs SET status=?, message=?, updated=? WHERE id=?",
                             (status, message, time.time(), run_id))

    def check_new_name(self, name: str) -> None:
        """``UserError`` unless ``name`` is a valid run name no run has yet (forms check it
        before anything starts; :meth:`create_run` checks again as it inserts)."""
        validate_name(name)
        if self.execute("SELECT 1 FROM runs WHERE name=?", (name,)):
            raise UserError(f"a run named {name!r} already exists")

    def set_config(self, run_id: str, config: dict) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE runs SET config=?, updated=? WHERE id=?",
                         (json.dumps(config, sort_keys=True), time.time(), run_id))

    def claim_created_run(self, run_id: str, kind: str, config: dict) -> Run:
        """Run ``run_id``, created beforehand (the app creates runs so that their jobs are linked
        at once), with ``config`` recorded; ``UserError`` unless it is a new ``kind`` run."""
        run = self.get_run(run_id)
        if run.kind != kind or run.status != "created":
            raise UserError(f"run {run_id!r} is not a new {kind} run ({run.kind}, {run.status})")
        self.set_config(run.id, config)
        return self.get_run(run.id)

    def set_summary(self, run_id: str, summary: dict) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE runs SET summary=?, updated=? WHERE id=?",
                         (json.dumps(summary, sort_keys=True), time.time(), run_id))

    def delete_run(self, ref: str) -> Run:
        """Delete a run's rows and directory (rows first: a half-deleted run is never listed)."""
        run = self.get_run(ref)
        with self._connect() as conn:
            conn.execute("DELETE FROM runs WHERE id=?", (run.id,))
        shutil.rmtree(self.run_dir(run.id), ignore_errors=True)
        return run

    def run_dir(self, run_id: str) -> Path:
        assert _ID_RE.match(run_id), run_id
        return self.home / "runs" / run_id

    def layout(self, run_id: str) -> RunLayout:
        """The paths of run ``run_id``'s files (:mod:`workbench.layout`)."""
        return RunLayout(self.run_dir(run_id))

    def lifecycle(self, run_id: str, *, resume: bool = False,
                  writer: bool = True) -> RunLifecycle:
        """``with store.lifecycle(run.id) as life: ...``: the run is ``running`` (owned by this
        process) inside the block and ``completed``, ``failed`` or ``cancelled`` after it;
        see :mod:`workbench.lifecycle` for the statuses and the options."""
        return RunLifecycle(self, run_id, resume=resume, writer=writer)

    # -- metrics ----------------------------------------------------------------------------
    def log_metrics(self, run_id: str, step: int, values: dict[str, float]) -> None:
        rows = [(run_id, int(step), k, float(v)) for k, v in values.items()]
        with self._connect() as conn:
            conn.executemany("INSERT INTO metrics (run_id, step, name, value) VALUES (?,?,?,?)",
                             rows)

    def metrics(self, run_id: str, *, since_id: int = 0,
                names: list[str] | None = None) -> list[tuple[int, int, str, float]]:
        """Metric rows ``(row_id, step, name, value)`` with ``row_id > since_id``, in order.

        Pollers pass the last row id they saw, so each poll reads only new rows (index seek).
        """
        sql = "SELECT id, step, name, value FROM metrics WHERE run_id=? AND id>?"
        args: list[Any] = [run_id, since_id]
        if names:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            args += names
        with self._connect() as conn:
            return [tuple(r) for r in conn.execute(sql + " ORDER BY id", args)]

    def metric_history(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        """All metrics of a run as ``{name: [(step, value), ...]}``."""
        out: dict[str, list[tuple[int, float]]] = {}
        for _, step, name, value in self.metrics(run_id):
            out.setdefault(name, []).append((step, value))
        return out

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT name, value FROM metrics WHERE id IN "
                "(SELECT MAX(id) FROM metrics WHERE run_id=? GROUP BY name)", (run_id,))
            return {r[0]: r[1] for r in rows}

    def truncate_metrics(self, run_id: str, after_step: int) -> None:
        """Drop metric rows logged after ``after_step`` (a resumed run re-logs them)."""
        with self._connect() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id=? AND step>?", (run_id, after_step))

    # -- artifacts --------------------------------------------------------------------------
    def add_artifact(self, run_id: str, path: str | os.PathLike, kind: str,
                     step: int | None = None, sha256: str | None = None) -> Artifact:
        """Record a file already written (atomically) inside the run directory."""
        full = Path(path)
        rel = full.relative_to(self.run_dir(run_id)) if full.is_absolute() else full
        full = self.run_dir(run_id) / rel
        assert full.is_file(), full
        if sha256 is None:
            from workbench.checkpoint import file_sha256
            sha256 = file_sha256(full)
        now = time.time()
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?,?,?)",
                         (run_id, str(rel), kind, step, sha256, now))
        return Artifact(run_id, str(rel), kind, step, sha256, now)

    def artifacts(self, run_id: str, kind: str | None = None) -> list[Artifact]:
        sql, args = "SELECT * FROM artifacts WHERE run_id=?", [run_id]
        if kind is not None:
            sql, args = sql + " AND kind=?", args + [kind]
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY step, created", args).fetchall()
        return [Artifact(*tuple(r)) for r in rows]

    def remove_artifact(self, run_id: str, rel_path: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM artifacts WHERE run_id=? AND path=?", (run_id, rel_path))
        (self.run_dir(run_id) / rel_path).unlink(missing_ok=True)

    # -- analysis results -------------------------------------------------------------------
    def put_result(self, run_id: str, kind: str, key: str, payload: dict) -> None:
        """Cache an analysis result (JSON) under ``(kind, key)``, e.g. ``("fourier", "step=1000")``."""
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?)",
                         (run_id, kind, key, json.dumps(payload), time.time()))

    def get_result(self, run_id: str, kind: str, key: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute("SELECT payload FROM results WHERE run_id=? AND kind=? AND key=?",
                               (run_id, kind, key)).fetchone()
        return None if row is None else json.loads(row[0])

    def results(self, run_id: str, kind: str) -> dict[str, dict]:
        with self._connect() as conn:
            rows = conn.execute("SELECT key, payload FROM results WHERE run_id=? AND kind=?",
                                (run_id, kind)).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    # -- raw access inside the core ---------------------------------------------------------
    def execute(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        """One statement in its own transaction, for the core's own modules and tests; other
        packages use the query methods (a layering test keeps SQL in the core)."""
        with self._connect() as conn:
            return conn.execute(sql, args).fetchall()


class _Transaction:
    """Context manager: ``BEGIN IMMEDIATE`` … ``COMMIT`` (or rollback), then close.

    IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading locks.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.conn.close()


def _run_from_row(row: sqlite3.Row) -> Run:
    d = dict(row)
    d["config"] = json.loads(d["config"])
    d["summary"] = json.loads(d["summary"]) if d["summary"] else None
    stored, d["status"] = d["status"], effective_status(d["status"], d.get("owner"))
    if d["status"] == INTERRUPTED and stored != INTERRUPTED:
        d["message"] = f"the process that ran it ({d['owner']}) is gone" + (
            f"; continue it with `workbench train --resume {d['id']}`" if d["kind"] == "train"
            else "")
    return Run(**d)


def effective_status(status: str, owner: str | None) -> str:
    """``status`` as stored, except a ``running`` run whose process is gone: ``interrupted``."""
    return INTERRUPTED if status == "running" and not owner_alive(owner) else status


def _retry_locked(fn, seconds: float = 60.0):
    """``fn()``, retried while SQLite reports the database locked without waiting (switching
    the journal mode as another process opens the same new store)."""
    deadline = time.time() + seconds
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.time() > deadline:
                raise
            time.sleep(0.05)
