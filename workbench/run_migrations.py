"""Data migration 4 of the run store: every run's config fully resolved.

Runs made before it stored only what the user set (a default ``reverse`` run: task parameters
``{}``), so resuming or analysing them depended on the code's defaults at the time. The packages
that know a kind's defaults resolve its configs through the ``workbench.run_configs``
entry-point group (name: the run kind; value: ``upgrade(store, run) -> None``, which rewrites
the run's config with today's defaults, says so in the config's ``migration`` field, and writes
the files newer runs are born with). The core never imports them; a kind whose package is not
installed is left as it is and tried again on the next open.
"""

from __future__ import annotations

import sqlite3
from importlib.metadata import entry_points

from workbench.store_schema import SCHEMA_VERSION, STORE_VERSION

MIGRATION_NOTE = "resolved with the defaults of the code that migrated the store"


def migrate_runs(store, version: int) -> None:
    """Bring a store at ``version`` (>= the SQL schema's) to :data:`STORE_VERSION`."""
    assert SCHEMA_VERSION <= version < STORE_VERSION, version
    upgraders = {ep.name: ep for ep in entry_points(group="workbench.run_configs")}
    complete = True
    for run in store.list_runs():
        ep = upgraders.get(run.kind)
        if ep is None:
            continue
        try:
            upgrade = ep.load()
        except ModuleNotFoundError:
            complete = False  # the kind's package is not installed here
            continue
        upgrade(store, run)
    if complete:
        conn = sqlite3.connect(store.db_path, timeout=60.0, isolation_level=None)
        try:
            conn.execute(f"PRAGMA user_version = {STORE_VERSION}")
        finally:
            conn.close()
