"""Known circuits: the ground truth a compiled Transformer Program carries, scored against a
found circuit.

A ``compiled`` run (``workbench programs compile``) keeps ``ground_truth.json``: every edge of
the compiled model's computation as ``{src, dst, port, role}`` over the nodes ``embed``,
``pos_embed``, ``attn.L.H``, ``mlp.L`` and ``unembed``. This module names those edges in
:mod:`circuits.graph` terms (one K/V group per head, as compiled models have) and reports
precision and recall of a found edge set against them.
"""

from __future__ import annotations

from workbench.errors import UserError
from workbench.files import read_mapping_file
from workbench.layout import GROUND_TRUTH_FORMAT

FORMAT = GROUND_TRUTH_FORMAT


def graph_edge_name(edge: dict) -> str:
    """A ground-truth edge ``{src, dst, port}`` as a circuits graph edge ``writer->reader``."""
    src = {"embed": "tok_embed", "pos_embed": "pos_embed"}.get(edge["src"])
    if src is None:
        kind, layer, *head = edge["src"].split(".")
        src = f"a{layer}.h{head[0]}" if kind == "attn" else f"m{layer}"
    if edge["dst"] == "unembed":
        dst = "logits"
    elif edge["dst"].startswith("mlp."):
        dst = f"m{edge['dst'].split('.')[1]}.in"
    else:
        _, layer, head = edge["dst"].split(".")
        port = edge["port"]
        dst = f"a{layer}.h{head}.q" if port == "q" else f"a{layer}.g{head}.{port}"
    return f"{src}->{dst}"


def load_ground_truth(run) -> set[str] | None:
    """The true edge names of run ``run`` (a ``RunHandle``), or None if it has none."""
    path = run.artifact_path("ground-truth")
    if path is None:
        return None
    obj = read_mapping_file(path, "ground-truth file", fmt="json")
    if obj.get("format") != FORMAT:
        raise UserError(f"run {run.id}: ground truth is not in format {FORMAT}")
    return {graph_edge_name(e) for e in obj["edges"]}


def score(found: set[str], truth: set[str]) -> dict:
    """Precision and recall of ``found`` against ``truth`` (edge names)."""
    hit = len(found & truth)
    return {"precision": hit / len(found) if found else 1.0,
            "recall": hit / len(truth) if truth else 1.0,
            "n_true": len(truth), "n_found": len(found), "missing": sorted(truth - found),
            "extra": sorted(found - truth)}
