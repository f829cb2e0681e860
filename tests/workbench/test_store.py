"""The run store: CRUD, name validation, metric polling, results, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from workbench.errors import UserError
from workbench.store import RunStore


def test_create_get_by_id_and_name(store):
    run = store.create_run(kind="train", task="modular-addition", config={"a": 1}, name="exp1")
    assert store.get_run(run.id) == store.get_run("exp1")
    assert run.status == "created" and run.config == {"a": 1}
    assert store.run_dir(run.id).is_dir()


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", " x", "r-0123456789ab", "x" * 65, ".hidden"])
def test_run_names_are_validated(store, bad):
    with pytest.raises(UserError):
        store.create_run(kind="train", task="t", config={}, name=bad)
    assert store.list_runs() == []


def test_duplicate_name_rejected(store):
    store.create_run(kind="train", task="t", config={}, name="same")
    with pytest.raises(UserError, match="already exists"):
        store.create_run(kind="train", task="t", config={}, name="same")
    assert len(store.list_runs()) == 1


def test_missing_run_is_user_error(store):
    with pytest.raises(UserError, match="no run 'nope'"):
        store.get_run("nope")


def test_metrics_since_id_reads_only_new_rows(store):
    run = store.create_run(kind="train", task="t", config={})
    store.log_metrics(run.id, 1, {"loss": 2.0, "acc": 0.1})
    first = store.metrics(run.id)
    assert [(r[1], r[2], r[3]) for r in first] == [(1, "loss", 2.0), (1, "acc", 0.1)]
    store.log_metrics(run.id, 2, {"loss": 1.0})
    new = store.metrics(run.id, since_id=first[-1][0])
    assert [(r[1], r[2], r[3]) for r in new] == [(2, "loss", 1.0)]
    assert store.latest_metrics(run.id) == {"loss": 1.0, "acc": 0.1}
    store.truncate_metrics(run.id, 1)
    assert store.metric_history(run.id) == {"loss": [(1, 2.0)], "acc": [(1, 0.1)]}


def test_artifacts_results_and_delete(store):
    run = store.create_run(kind="train", task="t", config={})
    f = store.run_dir(run.id) / "x.bin"
    f.write_bytes(b"abc")
    art = store.add_artifact(run.id, f, "blob", step=3)
    assert art.path == "x.bin" and len(art.sha256) == 64
    store.put_result(run.id, "fourier", "step=3", {"k": [1, 2]})
    assert store.get_result(run.id, "fourier", "step=3") == {"k": [1, 2]}
    store.delete_run(run.id)
    assert not store.run_dir(run.id).exists()
    assert store.list_runs() == []


def test_result_keys_list_each_runs_keys_of_the_asked_kinds(store):
    a = store.create_run(kind="train", task="t", config={})
    b = store.create_run(kind="train", task="t", config={})
    store.put_result(a.id, "probes", "k2", {"x": 1})
    store.put_result(a.id, "probes", "k1", {"x": 2})
    store.put_result(a.id, "knowledge", "c", {})
    store.put_result(b.id, "fourier", "step=3", {})
    assert store.result_keys(("probes", "knowledge")) == {
        a.id: {"knowledge": ["c"], "probes": ["k1", "k2"]}}
    assert store.result_keys(("fourier",)) == {b.id: {"fourier": ["step=3"]}}


def test_unwritable_home_is_user_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions do not bind
            target = tmp_path / "file"
            target.write_text("not a dir")
            with pytest.raises(UserError, match="not writable"):
                RunStore(target / "home")
        else:
            with pytest.raises(UserError, match="not writable"):
                RunStore(locked / "home")
    finally:
        os.chmod(locked, 0o700)


def _writer(home: str, run_id: str, worker: int, n: int) -> None:
    store = RunStore(home)
    for i in range(n):
        store.log_metrics(run_id, i, {f"w{worker}": float(i)})
        if i % 10 == 0:
            store.create_run(kind="train", task=f"w{worker}", config={"i": i})


def test_two_concurrent_writer_processes(home):
    store = RunStore(home)
    run = store.create_run(kind="train", task="t", config={})
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(home), run.id, w, 150)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    hist = store.metric_history(run.id)
    assert [v for _, v in hist["w0"]] == [float(i) for i in range(150)]
    assert [v for _, v in hist["w1"]] == [float(i) for i in range(150)]
    assert len(store.list_runs()) == 1 + 2 * 15
    mode = store.execute("PRAGMA journal_mode")[0][0]
    assert mode == "wal"


def test_running_run_whose_process_died_reads_as_interrupted(store):
    import sqlite3
    import subprocess
    import sys

    from workbench.liveness import owner_tag

    run = store.create_run(kind="train", task="t", config={})
    store.set_status(run.id, "running")
    assert store.get_run(run.id).status == "running"  # owned by this live process
    assert store.get_run(run.id).owner == owner_tag()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = owner_tag().rpartition(":")[0]
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE runs SET owner=? WHERE id=?", (f"{host}:{gone}", run.id))
    seen = store.get_run(run.id)
    assert seen.status == "interrupted"
    assert "--resume" in seen.message
    assert [r.status for r in store.list_runs()] == ["interrupted"]
    # a run owned by another host (shared home) is trusted to be running
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE runs SET owner=? WHERE id=?", (f"elsewhere:{gone}", run.id))
    assert store.get_run(run.id).status == "running"


def _legacy_store(home):
    """A store as the code before numbered migrations made it: no owner column, a meta
    table with an unread schema_version row, user_version 0."""
    import sqlite3

    from workbench import store_schema

    home.mkdir(parents=True)
    (home / "runs").mkdir()
    with sqlite3.connect(home / "store.db") as conn:
        store_schema._m1_base_tables(conn)
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO runs (id, name, kind, task, config, status, created, "
                     "updated) VALUES ('r-000000000001', 'old', 'elsewhere', 't', '{}', "
                     "'completed', 1, 1)")


def test_old_store_is_migrated_by_number(tmp_path):
    import sqlite3

    from workbench.store_schema import SCHEMA_VERSION, STORE_VERSION

    home = tmp_path / "old"
    _legacy_store(home)
    store = RunStore(home)
    version = store.execute("PRAGMA user_version")[0][0]
    assert version == STORE_VERSION and STORE_VERSION > SCHEMA_VERSION
    tables = {r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "meta" not in tables
    assert store.get_run("old").status == "completed"  # rows survive
    run = store.create_run(kind="train", task="t", config={})
    store.set_status(run.id, "running")  # the owner column exists now
    assert store.get_run(run.id).status == "running"
    RunStore(home)  # opening again applies nothing twice
    with sqlite3.connect(home / "store.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == STORE_VERSION


def test_store_newer_than_the_code_is_refused(tmp_path):
    import sqlite3

    from workbench.store_schema import STORE_VERSION

    RunStore(tmp_path / "h")
    with sqlite3.connect(tmp_path / "h" / "store.db") as conn:
        conn.execute(f"PRAGMA user_version = {STORE_VERSION + 1}")
    with pytest.raises(UserError, match="newer than this code"):
        RunStore(tmp_path / "h")


def test_concurrent_openers_migrate_an_old_store_once(tmp_path):
    home = tmp_path / "old"
    _legacy_store(home)
    procs = [mp.get_context("spawn").Process(target=RunStore, args=(str(home),))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert RunStore(home).get_run("old").status == "completed"
