"""Probes over a pretraining run's checkpoint series (issue 14, item 4): the Q-probe (name
only, rank ``q_rank``) and the P-probe at the name's last token of a biography (rank
``p_rank``) fitted afresh on each of ``n`` checkpoints spread over the series, showing when
each attribute becomes linearly readable from the name as the model learns the biographies.

Method as in :mod:`probes.knowledge_probe` (Allen-Zhu & Li, Physics of LMs 3.1), with the same
people split, probe settings and seed at every checkpoint, so the curves differ only by the
checkpoint. The checkpoints are chosen evenly over the run's sorted checkpoint list (which
holds log-spaced early steps and evenly spaced later ones), always with the last one.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from probes.knowledge_data import Encoded


def pick_checkpoints(steps: Sequence[int], n: int) -> list[int]:
    """``n`` of the sorted ``steps`` spread evenly by index, the first and last included."""
    steps = sorted(set(steps))
    if n <= 0 or not steps:
        return []
    if n >= len(steps):
        return steps
    if n == 1:
        return [steps[-1]]
    return sorted({steps[round(i * (len(steps) - 1) / (n - 1))] for i in range(n)})


def name_anchor_only(data: Encoded) -> Encoded:
    """Biographies cut to their first anchor (the name's last token) alone."""
    assert data.anchor_names[0] == "name"
    anchors = data.anchors[:, :1]  # [N, 1]
    width = int(anchors.max()) + 1
    return dataclasses.replace(data, ids=data.ids[:, :width], anchors=anchors,
                               lengths=data.lengths.clamp(max=width), anchor_names=("name",))


def probe_series(store, run_id: str, *, n: int, q_data: Encoded, p_data: Encoded | None,
                 train_ids: torch.Tensor, n_classes: list[int], attributes: tuple[str, ...],
                 q_cfg, p_cfg, device: str = "cpu") -> dict[str, dict]:
    """``{"q_probe_over_training": {...}, "p_probe_name_over_training": {...}}``, each
    ``{"steps": [int], "attributes": [str], "accuracy": [[float per attribute] per step]}``
    (held-out people); the P-probe entry only when ``p_data`` is given."""
    from probes.knowledge_probe import fit_knowledge_probe
    from training.checkpoints import checkpoint_steps_of
    from training.lm.series import checkpoint_dir
    from workbench.models import load_causal_lm

    steps = pick_checkpoints(checkpoint_steps_of(store, run_id), n)
    q_train = torch.isin(q_data.person_ids, train_ids)
    if p_data is not None:
        p_data = name_anchor_only(p_data)
        p_train = torch.isin(p_data.person_ids, train_ids)
    q_rows, p_rows = [], []
    for step in steps:
        model = load_causal_lm(checkpoint_dir(store, run_id, step), device=device)
        q_rows.append(fit_knowledge_probe(model, q_data, q_train, n_classes, attributes,
                                          q_cfg).accuracy[0])
        if p_data is not None:
            p_rows.append(fit_knowledge_probe(model, p_data, p_train, n_classes, attributes,
                                              p_cfg).accuracy[0])
        del model
    out = {"q_probe_over_training": {"steps": steps, "attributes": list(attributes),
                                     "accuracy": q_rows}}
    if p_data is not None:
        out["p_probe_name_over_training"] = {"steps": steps, "attributes": list(attributes),
                                             "accuracy": p_rows}
    return out


def format_series(title: str, series: dict) -> list[str]:
    """A step x attribute table of held-out accuracy."""
    short = [a[:10] for a in series["attributes"]]
    lines = [f"{title} (held-out accuracy per checkpoint)",
             f"{'step':>8} " + "  ".join(f"{s:>10}" for s in short) + f"  {'mean':>10}"]
    for step, row in zip(series["steps"], series["accuracy"]):
        lines.append(f"{step:>8} " + "  ".join(f"{v:10.3f}" for v in row)
                     + f"  {sum(row) / len(row):10.3f}")
    return lines
