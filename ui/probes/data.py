"""The stored probe results the probes pages and widgets read: ``probes`` results of a run
(written by ``workbench probes fit``; those whose key starts with ``prior`` belong to the
prior-localisation page and are left out) and ``knowledge`` results (``workbench probes
knowledge run``), per run and across the store. Reads only; no Dash, nothing computed."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.store import Run, RunStore

FIT_KIND = "probes"
KNOWLEDGE_KIND = "knowledge"
PRIOR_PREFIX = "prior"  # ui/prior's share of the ``probes`` results

FIT_COMMAND = ("workbench probes collect --model RUN --data FILE --positions SPEC -o ACTS, then "
               "workbench probes fit ACTS --target COLUMN --control --baseline random")
SERIES_COMMAND = ("workbench probes collect --model RUN --checkpoint all ... -o ACTS, then "
                  "workbench probes fit ACTS --target COLUMN")
KNOWLEDGE_COMMAND = ("workbench probes knowledge run --people N --augmentation A "
                     "--protocol pretrain-finetune|mixed")

Q_TRAINING_EMPTY = ("no Q-probe over training in this result: workbench probes knowledge run "
                    "--series-checkpoints N probes N checkpoints of the pretraining run")


@dataclass(frozen=True)
class KnowledgeEntry:
    """One stored knowledge result, with the run it belongs to."""

    run: Run
    key: str
    payload: dict

    @property
    def label(self) -> str:
        cfg = self.payload.get("config") or {}
        return f"{cfg.get('augmentation', '?')} · {cfg.get('protocol', '?')}"


def _is_fit(key: str) -> bool:
    return not key.startswith(PRIOR_PREFIX)


def fit_results(store: RunStore, run_id: str) -> dict[str, dict]:
    """``{key: fit payload}`` of the run's probe fits (prior-localisation results left out)."""
    return {k: v for k, v in store.results(run_id, FIT_KIND).items() if _is_fit(k)}


def knowledge_results(store: RunStore, run_id: str) -> dict[str, dict]:
    return store.results(run_id, KNOWLEDGE_KIND)


def has_probe_results(store: RunStore, run: Run) -> bool:
    return bool(knowledge_results(store, run.id) or fit_results(store, run.id))


def probe_runs(store: RunStore, limit: int = 200) -> list[tuple[Run, int, int]]:
    """``(run, number of fits, number of knowledge results)`` of the runs that hold any."""
    held = store.result_keys((FIT_KIND, KNOWLEDGE_KIND))  # keys only: no payload is read
    out = []
    for run in store.list_runs(limit=limit):
        keys = held.get(run.id, {})
        fits = sum(map(_is_fit, keys.get(FIT_KIND, [])))
        knowledge = len(keys.get(KNOWLEDGE_KIND, []))
        if fits or knowledge:
            out.append((run, fits, knowledge))
    return out


def all_knowledge(store: RunStore, limit: int = 200) -> list[KnowledgeEntry]:
    """Every knowledge result in the store (newest run first), for the cross-run views."""
    held = store.result_keys((KNOWLEDGE_KIND,))
    return [KnowledgeEntry(run, key, payload)
            for run in store.list_runs(limit=limit) if run.id in held
            for key, payload in sorted(knowledge_results(store, run.id).items())]
