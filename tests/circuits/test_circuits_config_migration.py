"""Store migration 4 turns an old circuits run's config (search settings nested) into a whole
DiscoverConfig, and says so."""

import sqlite3

from circuits.api import DiscoverConfig
from workbench.store import RunStore


def test_old_circuits_run_config_becomes_a_discover_config(tmp_path):
    home = tmp_path / "home"
    store = RunStore(home)
    legacy = {"model": "r-000000000001", "task": "induction", "method": "eap",
              "search": {"target_sparsity": 0.9, "steps": 50, "seed": 3, "ablation": "zero",
                         "objective": "kl", "batch_size": 8, "lr": 0.5, "lambda_lr": 0.5,
                         "precision": "fp32", "checkpoint": False},
              "n_examples": 64}
    run = store.create_run(kind="circuits", task="induction", config=legacy)
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("PRAGMA user_version = 3")
    migrated = RunStore(home).get_run(run.id).config
    config = DiscoverConfig.from_dict(migrated)
    assert (config.method, config.steps, config.seed, config.ablation, config.n_examples) == (
        "eap", 50, 3, "zero", 64)
    assert "resolved with the defaults" in migrated["migration"]
    assert migrated["search"] == legacy["search"]  # kept for readers of the old field
