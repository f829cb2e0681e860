"""``workbench fourier RUN`` for sparse-parity and group-composition runs: load the stored run,
rebuild what the analysis needs from its config and vocabulary, run
:mod:`~workbench.fourier.parity_analysis` or :mod:`~workbench.fourier.group_analysis` on one
checkpoint or all of them, and cache the payload in the store like the modular path
(``("fourier", "step=<N>")`` / ``("fourier", "series")``).

Everything about the task comes from the run itself: its resolved task parameters (``n``,
``k``), its task facts (the parity ``support``) and its stored split (the group pairs trained
on, :func:`~workbench.fourier.pair_split.pair_train_mask`), so no default of the task's code is
restated here.
"""

from __future__ import annotations

from workbench.errors import UserError
from workbench.fourier.group_analysis import analyze_group_model
from workbench.fourier.pair_split import pair_train_mask
from workbench.fourier.parity_analysis import analyze_parity_model
from workbench.fourier.progress import Progress

TASKS = ("sparse-parity", "group-composition")


def _steps(handle, which) -> list[int]:
    steps = handle.checkpoints()
    if not steps:
        raise UserError(f"run {handle.id} has no checkpoints")
    if which == "all":
        return steps
    step = steps[-1] if which == "final" else int(which)
    if step not in steps:
        raise UserError(f"run {handle.id} has no checkpoint at step {step}; steps: {steps}")
    return [step]


def _vocab(handle, state_meta: dict) -> dict:
    vocab = state_meta.get("vocab") or {}
    if not vocab.get("input_vocab"):
        raise UserError(f"run {handle.id} stores no vocabulary with its checkpoints")
    return vocab


def _parity_context(handle, meta: dict) -> dict:
    from workbench.models import ModelConfig, build_native

    params, facts = handle.task_params, handle.task_facts
    if not {"n", "k"} <= set(params) or "support" not in facts:
        raise UserError(f"run {handle.id} stores no parity parameters n, k and support")
    n, k = int(params["n"]), int(params["k"])
    vocab = _vocab(handle, meta)
    ins, outs = vocab["input_vocab"], vocab["output_vocab"]
    try:
        bit_tokens = (ins.index("0"), ins.index("1"))
        query = ins.index("=")
        classes = (outs.index("0"), outs.index("1"))
    except ValueError:
        raise UserError(f"run {handle.id}: unexpected parity vocabulary {vocab}") from None
    cfg = ModelConfig.from_dict(handle.config["model"])
    return dict(model=build_native(cfg), n=n, k=k,
                support=tuple(facts["support"]), n_heads=cfg.n_heads,
                normalization=cfg.normalization_type, bit_tokens=bit_tokens, query_token=query,
                classes=classes)


def _group_context(handle, meta: dict) -> dict:
    model = handle.config.get("model") or {}
    tokens = [t for t in _vocab(handle, meta)["input_vocab"] if t != "="]
    mask = pair_train_mask(*handle.split())  # [|G|, |G|]: the pairs the run trained on
    return dict(tokens=tokens, n_heads=int(model.get("n_heads", 4)),
                act_fn=str(model.get("act_fn", "relu")), train_mask=mask)


def _metrics_by_step(handle) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for name, rows in handle.metrics().items():
        for step, value in rows:
            out.setdefault(int(step), {})[name] = value
    return out


def analyze_task_run(handle, which: str | int = "final") -> dict:
    """The JSON payload for a parity or group run (one checkpoint or ``"all"``)."""
    task = handle.config.get("task")
    if task not in TASKS:
        raise UserError(f"run {handle.id} is {task!r}, not one of {', '.join(TASKS)}")
    steps = _steps(handle, which)
    first_state, meta = handle.state_dict(steps[-1])
    ctx = (_parity_context if task == "sparse-parity" else _group_context)(handle, meta)
    progress = Progress(len(steps), lambda key, payload: handle.store.put_result(
        handle.id, "fourier", key, payload)) if which == "all" else None

    def one(step: int) -> dict:
        state = first_state if step == steps[-1] else handle.state_dict(step)[0]
        if task == "sparse-parity":
            model = ctx["model"]
            model.load_state_dict(state, strict=False)
            model.eval()
            report = analyze_parity_model(model, state, step=step,
                                          **{k: v for k, v in ctx.items() if k != "model"})
        else:
            report = analyze_group_model(state, step=step, **ctx)
        if progress is not None:
            progress.tick()
        return report.to_json()

    reports = [one(s) for s in steps]
    if which != "all":
        payload = {"run": handle.id, "task": task, **reports[0]}
        handle.store.put_result(handle.id, "fourier", f"step={steps[0]}", payload)
        return payload
    metrics = _metrics_by_step(handle)
    for r in reports:
        for name in ("train_acc", "test_acc", "train_loss", "test_loss"):
            if name in metrics.get(r["step"], {}):
                r[f"metric_{name}"] = metrics[r["step"]][name]
    payload = {"run": handle.id, "task": task, "checkpoints": reports}
    if task == "sparse-parity":
        payload["hidden_progress"] = [[r["step"], r["hidden_progress"]] for r in reports]
        payload["true_support"] = reports[-1]["true_support"]
        payload["detected_support"] = reports[-1]["detected_support"]
        recovered = [r["step"] for r in reports if r["support_recovered"]]
        payload["first_step_recovered"] = recovered[0] if recovered else None
    else:
        payload["key_irreps"] = reports[-1]["key_irreps"]
    handle.store.put_result(handle.id, "fourier", "series", payload)
    return payload


def _line(r: dict) -> str:
    if "hidden_progress" in r:
        return (f"step {r['step']}: parity set {r['detected_support']} (true "
                f"{r['true_support']}, margin {r['detection_margin']:.2f}), hidden progress "
                f"{r['hidden_progress']:.3f}, output share on the set "
                f"{r['output_parity_share']:.3f}, neurons on the set "
                f"{r['neurons_on_parity_set']:.3f}")
    shares = ", ".join(f"{i['name']} {i['share']:.3f}" for i in r["embedding_irreps"]["irreps"]
                       if i["share"] >= 0.01)
    return (f"step {r['step']}: {r['group']} key irreps {r['key_irreps']} (W_E shares: "
            f"{shares}), character fit r2 {r['character_fit_r2']:.3f}, accuracy "
            f"train/test {r['train_accuracy']:.3f}/{r['test_accuracy']:.3f}")


def format_text(payload: dict) -> str:
    if "checkpoints" in payload:
        return "\n".join([f"run {payload['run']} ({payload['task']})"]
                         + [_line(r) for r in payload["checkpoints"]])
    return f"run {payload['run']} " + _line(payload)


__all__ = ["TASKS", "analyze_task_run", "format_text"]
