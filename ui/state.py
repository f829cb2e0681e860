"""The store the running app serves (set by :func:`ui.app.create_app`, read by pages)."""

from __future__ import annotations

from flask import current_app

from workbench.store import RunStore

CONFIG_KEY = "WORKBENCH_STORE"


def get_store() -> RunStore:
    """The app's :class:`RunStore` (inside a request or callback)."""
    store = current_app.config.get(CONFIG_KEY)
    if store is None:
        store = current_app.config[CONFIG_KEY] = RunStore()
    return store


def job_env() -> dict[str, str] | None:
    """Extra environment for jobs the app starts (``create_app(job_env=…)``)."""
    return current_app.config.get("WORKBENCH_JOB_ENV")
