"""Reading the stored prior-localisation results for the pages and the widget (no Dash).

Where they live (written by :mod:`probes.prior_cli`):

- the analysis (``workbench probes prior``): a result of kind ``"prior"`` with key
  ``"task=<task> step=<step>"`` on the model's run; stores written before that kept it as kind
  ``"probes"`` with a key starting ``"prior task="``. Both are read, ``"prior"`` preferred;
- the finetune (``workbench probes prior-finetune``): a result of kind ``"prior_finetune"``
  (key ``"task=<task>"``) on the new ``prior-finetune`` run, whose ``parent`` is the source run;
  older runs have only ``prior_finetune.json`` at the run root (the five evaluations), completed
  here from the run's config (layers, control layers, task).

Nothing is computed: these are the payloads the API wrote, keyed the same way for both layouts.
"""

from __future__ import annotations

import json
import re

from workbench.store import Run, RunStore

ANALYSIS_KIND = "prior"
LEGACY_KIND, LEGACY_PREFIX = "probes", "prior "
FINETUNE_KIND = "prior_finetune"
FINETUNE_RUN_KIND = "prior-finetune"


def analyses(store: RunStore, run_id: str) -> dict[str, dict]:
    """``{"task=<task> step=<step>": PriorResult JSON}`` stored on ``run_id`` (both layouts;
    the ``"prior"`` kind wins where both hold the same key), newest step last."""
    out = {}
    for kind in (LEGACY_KIND, ANALYSIS_KIND):  # the "prior" kind second: it wins
        for key, payload in store.results(run_id, kind).items():
            name = _analysis_key(kind, key)
            if name is not None and isinstance(payload, dict):
                out[name] = payload
    return dict(sorted(out.items(), key=lambda kv: (_step(kv[0]), kv[0])))


def _analysis_key(kind: str, key: str) -> str | None:
    """The analysis key a stored ``(kind, key)`` is read under (None: not an analysis)."""
    if kind == ANALYSIS_KIND:
        return key
    return key[len(LEGACY_PREFIX):] if key.startswith(LEGACY_PREFIX + "task=") else None


def _step(key: str) -> int:
    match = re.search(r"step=(\d+)", key)
    return int(match.group(1)) if match else -1


def analysis_label(key: str, payload: dict) -> str:
    """``"count · step 30 · 600 prompts"`` for a picker."""
    step = _step(key)
    return " · ".join([str(payload.get("task", key))] + ([f"step {step}"] if step >= 0 else [])
                      + [f"{payload.get('n_examples', '?')} prompts"])


def finetune_result(store: RunStore, run: Run) -> dict | None:
    """The FinetuneResult JSON of a ``prior-finetune`` run (None if it has none yet)."""
    stored = store.results(run.id, FINETUNE_KIND)
    if stored:
        key = f"task={run.task}"
        return dict(stored.get(key) or next(iter(stored.values())))
    path = store.layout(run.id).prior_finetune
    try:
        evaluations = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(evaluations, dict) or "before" not in evaluations:
        return None
    config = run.config or {}
    return {"run_id": run.id, "task": run.task, "config": config,
            "layers": list(config.get("layers") or []),
            "control_layers": list(config.get("control_layers") or []), **evaluations}


def parent_id(run: Run) -> str | None:
    """The source run of a finetune run (its ``parent``, or ``config["parent"]``)."""
    return run.parent or (run.config or {}).get("parent")


def finetune_runs(store: RunStore, parent: str | None = None) -> list[Run]:
    """``prior-finetune`` runs, newest first; with ``parent``, only those made from it."""
    runs = store.list_runs(kind=FINETUNE_RUN_KIND)
    return [r for r in runs if parent is None or parent_id(r) == parent]


def has_prior(store: RunStore, run: Run) -> bool:
    """Whether ``run`` has something the prior page shows."""
    return run.kind == FINETUNE_RUN_KIND or bool(analyses(store, run.id)) or \
        bool(finetune_runs(store, run.id))


def prior_runs(store: RunStore) -> list[dict]:
    """Runs with prior results, newest first: ``{"run", "analyses", "finetunes"}`` where
    ``analyses`` are the stored analysis keys and ``finetunes`` the runs made from it."""
    finetunes = finetune_runs(store)
    children: dict[str, list[Run]] = {}
    for r in finetunes:
        children.setdefault(parent_id(r), []).append(r)
    held = store.result_keys((LEGACY_KIND, ANALYSIS_KIND))  # keys only: no payload is read
    out = []
    for run in store.list_runs():
        names = {_analysis_key(kind, key) for kind, stored in held.get(run.id, {}).items()
                 for key in stored} - {None}
        keys = sorted(names, key=lambda k: (_step(k), k))
        if keys or run.kind == FINETUNE_RUN_KIND or run.id in children:
            out.append({"run": run, "analyses": keys, "finetunes": children.get(run.id, [])})
    return out
