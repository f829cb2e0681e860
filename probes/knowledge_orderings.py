"""The paper's orderings on the bioS knowledge experiment (Allen-Zhu & Li, Physics of LMs 3.1),
read from three knowledge results: bioS single and multi5+permute+fullname under
pretrain-then-QA-finetune, and multi5+permute+fullname under mixed training.
:func:`figures_of` reduces one result to the figures compared, :func:`orderings` checks them
(held-out QA, P-probe diagonals after the name and just before each attribute, Q-probe, and
the Q-probe's rise over the checkpoint series). Shared by benchmarks/knowledge_reference.py
and tests/probes/test_knowledge_reference.py, so both check the same thing.
"""

from __future__ import annotations

CASES = (("single", "pretrain-finetune"), ("multi5+permute+fullname", "pretrain-finetune"),
         ("multi5+permute+fullname", "mixed"))


def _diag(table, anchor_of) -> float:
    """Mean held-out accuracy of each attribute at the anchor ``anchor_of(attribute)``."""
    rows = dict(zip(table["anchors"], table["accuracy"]))
    return sum(rows[anchor_of(a)][i] for i, a in enumerate(table["attributes"])) / \
        len(table["attributes"])


def _mean(row) -> float:
    return sum(row) / len(row)


def figures_of(result: dict) -> dict:
    p = result["p_probe"]
    series = result.get("q_probe_over_training") or {"steps": [], "accuracy": []}
    return {"qa_held_out": result["qa_accuracy"]["all"],
            "qa_held_out_per_attribute": result["qa_accuracy"],
            "qa_trained_people": result["qa_train_accuracy"]["all"],
            "qa_before_finetune": (result["qa_before_finetune"] or {}).get("all"),
            "pretrain_loss": result["pretrain"]["train_loss"],
            "p_after_name": _diag(p, lambda a: "name"),
            "p_just_before": _diag(p, lambda a: f"before:{a}"),
            "p_chance": _mean(p["chance"]),
            "q_probe": _mean(result["q_probe"]["accuracy"][0]),
            "q_probe_per_attribute": dict(zip(result["q_probe"]["attributes"],
                                              result["q_probe"]["accuracy"][0])),
            "q_over_training": dict(zip(series["steps"], map(_mean, series["accuracy"]))),
            "seconds": result["seconds"], "run_id": result["run_id"]}


ORDERINGS = {
    "QA: augmented >> single (by 0.2)":
        lambda s, a, m: a["qa_held_out"] > s["qa_held_out"] + 0.2,
    "QA: mixed above single (by 0.1)":
        lambda s, a, m: m["qa_held_out"] > s["qa_held_out"] + 0.1,
    "P single: just before > after name (by 0.1)":
        lambda s, a, m: s["p_just_before"] > s["p_after_name"] + 0.1,
    "P augmented: after name near just before (within 0.1)":
        lambda s, a, m: a["p_after_name"] > a["p_just_before"] - 0.1,
    "P after name: augmented > single (by 0.1)":
        lambda s, a, m: a["p_after_name"] > s["p_after_name"] + 0.1,
    "Q tracks QA: augmented > single (by 0.1)":
        lambda s, a, m: a["q_probe"] > s["q_probe"] + 0.1,
    "Q over training: augmented rises (final > first + 0.1)":
        lambda s, a, m: _rise(a["q_over_training"]) > 0.1,
    "Q tracks QA: the cases' Q-probe order is their QA order":
        lambda s, a, m: _order(s, a, m, "q_probe") == _order(s, a, m, "qa_held_out"),
}


def orderings(single: dict, aug: dict, mixed: dict) -> dict[str, bool]:
    """The paper's orderings (:data:`ORDERINGS`) on the three cases' figures
    (:func:`figures_of`, in :data:`CASES` order)."""
    return {name: bool(check(single, aug, mixed)) for name, check in ORDERINGS.items()}


def _order(single: dict, aug: dict, mixed: dict, figure: str) -> list[int]:
    """The three cases ranked by ``figure`` (indices in CASES order)."""
    values = [single[figure], aug[figure], mixed[figure]]
    return sorted(range(3), key=values.__getitem__)


def _rise(curve: dict) -> float:
    values = [curve[k] for k in sorted(curve)]
    return values[-1] - values[0] if values else 0.0
