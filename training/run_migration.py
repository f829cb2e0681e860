"""Store migration 4 for ``train`` runs (:mod:`workbench.run_migrations`): an old run's task
parameters resolved with today's defaults (said so in the config's ``migration`` field), its
task facts, and the split file newer runs are born with.

Idempotent: a run whose config is already resolved and whose split exists is left alone, so
two processes that open an old store at once do the same work twice at worst.
"""

from __future__ import annotations

from training.api import CUSTOM_TASK, load_data, write_run_files
from training.config import RunConfig
from training.tasks import make_task
from workbench.run_migrations import MIGRATION_NOTE


def upgrade_train_run(store, run) -> None:
    """Resolve ``run``'s config in place (a config that cannot be read is left as it is)."""
    try:
        config = RunConfig.from_dict(run.config)
        params = dict(config.task_params)
        if config.task == CUSTOM_TASK:
            resolved, facts = {"frac_train": 0.8, "seed": 0, **params}, {}
        else:
            task = make_task(config.task, **params)
            resolved, facts = task.params(), task.facts()
    except (KeyError, TypeError, ValueError):
        return  # not a config this code can resolve: the run keeps what it has
    changed = resolved != params or facts != config.task_facts
    has_split = any(a.kind == "split" for a in store.artifacts(run.id))
    if not changed and has_split:
        return
    if changed:
        note = f"task parameters {MIGRATION_NOTE} (stored: {params})"
        config = RunConfig.from_dict({**config.to_dict(), "task_params": resolved,
                                      "task_facts": facts, "migration": note})
        store.set_config(run.id, config.to_dict())
    try:
        data = load_data(config)
    except (OSError, ValueError):  # e.g. a custom run whose data copy is gone
        return
    write_run_files(store, run.id, config, data)
