"""The run store's schema and its numbered migrations, tracked in ``PRAGMA user_version``.

Each migration is a function of an open connection, applied once, in order, inside one
``BEGIN IMMEDIATE`` transaction that also bumps ``user_version``; so concurrent openers of an
old store queue on the write lock, and the second one finds the work done. A store's version is
the number of migrations applied (0: a new file, or a store made before migrations existed).

Add a schema change by appending a function to :data:`MIGRATIONS`; never edit an old one. The
data migration that resolves old runs' configs needs the packages above the core and runs after
these (:mod:`workbench.run_migrations`).
"""

from __future__ import annotations

import sqlite3

from workbench.errors import UserError

_BASE = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE,
    kind TEXT NOT NULL,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    parent TEXT REFERENCES runs(id) ON DELETE SET NULL,
    message TEXT,
    summary TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, id);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER,
    sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run_id, kind, key)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
    argv TEXT NOT NULL,
    pid INTEGER,
    status TEXT NOT NULL,
    log_path TEXT NOT NULL,
    exit_code INTEGER,
    started REAL NOT NULL,
    ended REAL
);
"""


def _m1_base_tables(conn: sqlite3.Connection) -> None:
    """The tables of the first store (idempotent: stores older than migrations have them)."""
    for statement in _BASE.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m2_run_owner(conn: sqlite3.Connection) -> None:
    """``runs.owner``: host:pid of the process that set the run running."""
    if "owner" not in _columns(conn, "runs"):  # added ad hoc by stores of an older version
        conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT")


def _m3_drop_meta(conn: sqlite3.Connection) -> None:
    """The ``meta`` table held a ``schema_version`` row nothing read; ``user_version`` does."""
    conn.execute("DROP TABLE IF EXISTS meta")


MIGRATIONS = (_m1_base_tables, _m2_run_owner, _m3_drop_meta)
SCHEMA_VERSION = len(MIGRATIONS)  # after the SQL migrations
# Then the data migrations of :mod:`workbench.run_migrations` (run configs resolved: 4).
STORE_VERSION = SCHEMA_VERSION + 1


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this store lacks (one transaction); returns the version before.

    ``conn`` is in autocommit mode (``isolation_level=None``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = conn.execute("PRAGMA user_version").fetchone()[0]
        if before > STORE_VERSION:
            raise UserError(f"the run store is version {before}, newer than this code's "
                            f"{STORE_VERSION}; upgrade the workbench")
        for migration in MIGRATIONS[before:]:
            migration(conn)
        if before < SCHEMA_VERSION:  # data migrations bump it further once they are done
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
