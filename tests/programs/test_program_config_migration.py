"""Store migration 4 resolves an old program run's task parameters with today's defaults."""

import sqlite3

from programs.config import ProgramRunConfig, preset
from training.tasks import make_task
from workbench.store import RunStore


def test_old_program_run_gets_every_task_parameter(tmp_path):
    home = tmp_path / "home"
    store = RunStore(home)
    legacy = {"program": preset("tiny", "sort").to_dict(), "preset": "tiny",
              "task_params": {"max_len": 5}, "data": None}
    run = store.create_run(kind="program", task="sort", config=legacy)
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("PRAGMA user_version = 3")
    migrated = RunStore(home).get_run(run.id).config
    assert migrated["task_params"] == make_task("sort", max_len=5).params()
    assert migrated["task"] == "sort" and "max_len" in migrated["migration"]
    assert ProgramRunConfig.from_dict(migrated).program == preset("tiny", "sort")
