"""Knowledge-storage figures and tables from stored ``workbench probes knowledge run``
payloads: the per-attribute P-probe accuracy over anchors, the held-out QA accuracy table across
results (one row per result, so single / multi5+permute+fullname / mixed read side by side),
the Q-probe vs QA scatter (one point per attribute per result) and the Q-probe accuracy over the
pretraining run's checkpoints. Plain Plotly and plain rows, no Dash: shared by page and widget.
"""

from __future__ import annotations

import plotly.graph_objects as go

from ui.probes.figures import empty_note

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f")


def attributes_of(payload: dict) -> list[str]:
    return list((payload.get("p_probe") or {}).get("attributes")
                or (payload.get("q_probe") or {}).get("attributes") or [])


def p_probe_curves(payload: dict | None = None, *, height: int = 380,
                   empty: str | None = None) -> go.Figure:
    """Held-out P-probe accuracy of each attribute (one trace each) at every anchor."""
    fig = go.Figure()
    table = (payload or {}).get("p_probe")
    if table:
        anchors = list(table["anchors"])
        for j, attr in enumerate(table["attributes"]):
            fig.add_trace(go.Scatter(
                x=anchors, y=[row[j] for row in table["accuracy"]], name=attr,
                mode="lines+markers", customdata=[table["chance"][j]] * len(anchors),
                hovertemplate=attr + " @ %{x}: %{y:.3f} (chance %{customdata:.3f})"
                "<extra></extra>"))
    fig.update_layout(height=height, template="plotly_white",
                      title="P-probe: held-out accuracy per attribute, by anchor",
                      margin={"l": 60, "r": 20, "t": 40, "b": 60})
    fig.update_xaxes(title_text="anchor position", type="category")
    fig.update_yaxes(title_text="accuracy", range=[-0.02, 1.02])
    if not fig.data:
        fig.add_trace(go.Scatter(x=[], y=[], name="P-probe"))
        empty_note(fig, empty or "no knowledge result", width=60)
    return fig


def q_probe_accuracy(payload: dict) -> dict[str, float]:
    """Held-out Q-probe accuracy per attribute (the probe on the name alone)."""
    table = payload.get("q_probe") or {}
    if not table.get("accuracy"):
        return {}
    anchors = list(table.get("anchors") or ["name"])
    row = table["accuracy"][anchors.index("name") if "name" in anchors else 0]
    return dict(zip(table["attributes"], row))


def qa_table(entries) -> tuple[list[str], list[dict]]:
    """``(columns, rows)``: one row per knowledge result, held-out QA exact match per attribute
    (and "all"), with its augmentation, protocol, size, mean Q-probe accuracy and the share of
    biography values the pretrained model writes (``memorisation``, when stored); rows ordered
    by augmentation, then protocol."""
    attributes: list[str] = []
    for e in entries:
        attributes += [a for a in attributes_of(e.payload) if a not in attributes]
    columns = ["run", "augmentation", "protocol", "people", "steps", *attributes, "all",
               "Q-probe mean", "bio memorised"]
    rows = []
    for e in entries:
        cfg, qa = e.payload.get("config") or {}, e.payload.get("qa_accuracy") or {}
        q = q_probe_accuracy(e.payload)
        row = {"run": e.run.name or e.run.id, "run_id": e.run.id, "key": e.key,
               "augmentation": cfg.get("augmentation"), "protocol": cfg.get("protocol"),
               "people": cfg.get("people"), "steps": cfg.get("steps"),
               "all": qa.get("all"), "Q-probe mean": sum(q.values()) / len(q) if q else None,
               "bio memorised": (e.payload.get("memorisation") or {}).get("all")}
        row.update({a: qa.get(a) for a in attributes})
        rows.append(row)
    rows.sort(key=lambda r: (str(r["augmentation"]), str(r["protocol"]), r["run"]))
    return columns, rows


def format_cell(value) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def q_vs_qa_points(entries) -> list[dict]:
    """One point per attribute per result: its Q-probe accuracy and its held-out QA accuracy."""
    points = []
    for e in entries:
        qa = e.payload.get("qa_accuracy") or {}
        for attr, q in q_probe_accuracy(e.payload).items():
            if qa.get(attr) is not None:
                points.append({"label": e.label, "run_id": e.run.id, "key": e.key,
                               "attribute": attr, "q_probe": q, "qa": qa[attr]})
    return points


def q_vs_qa_scatter(entries, *, height: int = 420, empty: str | None = None) -> go.Figure:
    """Q-probe accuracy (x) against held-out QA accuracy (y), a trace per result (labelled by
    augmentation and protocol), with the diagonal."""
    fig = go.Figure()
    by_result: dict[tuple, list[dict]] = {}
    for p in q_vs_qa_points(entries):
        by_result.setdefault((p["label"], p["run_id"], p["key"]), []).append(p)
    for (label, run_id, _key), points in by_result.items():
        fig.add_trace(go.Scatter(
            x=[p["q_probe"] for p in points], y=[p["qa"] for p in points], mode="markers",
            name=f"{label} ({run_id})", text=[p["attribute"] for p in points],
            marker={"size": 9},
            hovertemplate="%{text}: Q-probe %{x:.3f}, QA %{y:.3f}<extra></extra>"))
    fig.update_layout(height=height, template="plotly_white", title="Q-probe vs QA accuracy",
                      margin={"l": 60, "r": 20, "t": 40, "b": 40},
                      shapes=[{"type": "line", "x0": 0, "y0": 0, "x1": 1, "y1": 1,
                               "line": {"dash": "dot", "color": "#9ca3af"}}])
    fig.update_xaxes(title_text="Q-probe accuracy (name only)", range=[-0.02, 1.02])
    fig.update_yaxes(title_text="held-out QA accuracy", range=[-0.02, 1.02])
    if not fig.data:
        fig.add_trace(go.Scatter(x=[], y=[], name="results"))
        empty_note(fig, empty or "no knowledge result", width=110)
    return fig


def q_over_training(payload: dict | None = None, *, height: int = 360,
                    empty: str | None = None) -> go.Figure:
    """Q-probe accuracy per attribute over the pretraining checkpoints
    (``q_probe_over_training``: steps, attributes, accuracy[step][attribute]); then, dotted in
    the same colour, the P-probe at the name (``p_probe_name_over_training``) when stored."""
    fig = go.Figure()
    for field, suffix, dash in (("q_probe_over_training", "", "solid"),
                                ("p_probe_name_over_training", " · P-probe at name", "dot")):
        series = (payload or {}).get(field)
        if not series or not series.get("steps"):
            continue
        for j, attr in enumerate(series["attributes"]):
            fig.add_trace(go.Scatter(x=list(series["steps"]),
                                     y=[row[j] for row in series["accuracy"]],
                                     name=attr + suffix, legendgroup=attr, mode="lines+markers",
                                     line={"dash": dash, "color": PALETTE[j % len(PALETTE)]}))
    fig.update_layout(height=height, template="plotly_white",
                      title="Q-probe accuracy over training" + (
                          " (dotted: P-probe at the name)"
                          if (payload or {}).get("p_probe_name_over_training") else ""),
                      margin={"l": 60, "r": 20, "t": 40, "b": 40})
    fig.update_xaxes(title_text="pretraining step")
    fig.update_yaxes(title_text="held-out accuracy", range=[-0.02, 1.02])
    if not fig.data:
        fig.add_trace(go.Scatter(x=[], y=[], name="Q-probe"))
        empty_note(fig, empty or "no Q-probe over training", width=60)
    return fig


def knowledge_summary(payload: dict) -> str:
    """One line: the setting, held-out QA (all), and before finetuning when there was one."""
    cfg = payload.get("config") or {}
    qa = (payload.get("qa_accuracy") or {}).get("all")
    text = (f"{cfg.get('people')} people · {cfg.get('augmentation')} · {cfg.get('protocol')} · "
            f"{cfg.get('steps')} steps · held-out QA {format_cell(qa)}")
    before = (payload.get("qa_before_finetune") or {}).get("all")
    if before is not None:
        text += f" (before finetune {format_cell(before)})"
    return text
