"""Public Python API of circuit discovery: ``discover`` (one search, stored as a run) and
``evaluate_saved`` (re-evaluate a circuit file). The CLI and sweeps call these.

Methods: ``edge-pruning`` (:mod:`circuits.prune`), ``eap`` and ``acdc``
(:mod:`circuits.baselines`), all on the same graph and extracted to the same target sparsity
by :func:`circuits.extract.threshold_for_sparsity`. Everything is validated before the store is
touched; the all-ones masked forward is checked against the bridge before a search starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from circuits.datasets import PairDataset, check_task, make_pairs
from circuits.evaluate import evaluate_circuit
from circuits.extract import extract, threshold_for_sparsity
from circuits.io import from_mask, load_circuit, write_circuit
from circuits.masked_forward import MaskedModel
from circuits.prune import PruneConfig, prune
from circuits.target import Target, load_target
from workbench.errors import UserError
from workbench.store import RunStore

METHODS = ("edge-pruning", "eap", "acdc")


@dataclass
class DiscoverResult:
    run_id: str | None
    method: str
    n_edges: int
    total_edges: int
    sparsity: float
    kl: float
    accuracy: float
    full_accuracy: float
    logit_diff: float | None
    full_logit_diff: float | None
    exact_match: float
    wall_seconds: float
    search_seconds: float
    paths: dict
    expected_sparsity: float | None = None
    ground_truth: dict | None = None  # precision/recall against a compiled program's circuit

    def to_json(self) -> dict:
        return dict(self.__dict__)


def split(data: PairDataset, eval_frac: float = 0.2, seed: int = 0):
    """Search / held-out evaluation split (the same set when there are under 10 examples)."""
    n = len(data)
    if n < 10:
        return data, data
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = max(1, int(n * eval_frac))
    return data.subset(perm[k:]), data.subset(perm[:k])


def discover(model: str | Target, task: str, *, target_sparsity: float = 0.95,
             method: str = "edge-pruning", ablation: str = "corrupted", objective: str = "kl",
             steps: int = 3000, seed: int = 0, n_examples: int = 256, batch_size: int = 32,
             lr: float = 0.8, lambda_lr: float | None = None, acdc_threshold: float | None = None,
             out_dir: str | Path | None = None, name: str | None = None,
             store: RunStore | None = None, data: PairDataset | None = None,
             on_log=None, device: str | None = None, precision: str = "fp32",
             grad_checkpoint: bool = False, run_id: str | None = None) -> DiscoverResult:
    """Find a circuit for ``task`` on ``model`` and record it as a ``circuits`` run.

    ``lambda_lr`` (default: ``lr``) is the Lagrange multipliers' ascent rate; small graphs such
    as compiled programs need it far below ``lr``. ``run_id`` fills a ``circuits`` run created beforehand (the browser app creates it so it can
    show the run at once, then starts this search as a job). ``precision="bf16"`` runs the masked
    forward under bf16 autocast and ``grad_checkpoint`` recomputes each attention layer in the
    backward pass: both for large models on a GPU."""
    t0 = time.perf_counter()
    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    cfg = PruneConfig(target_sparsity=target_sparsity, steps=steps, seed=seed,
                      ablation=ablation, objective=objective, batch_size=batch_size, lr=lr,
                      lambda_lr=lr if lambda_lr is None else lambda_lr,
                      lr_warmup=min(200, max(1, steps // 15)), precision=precision,
                      checkpoint=grad_checkpoint)
    if n_examples < 1:
        raise UserError(f"--examples must be positive, got {n_examples}")
    if data is None:
        check_task(task)  # before the (slow) model load
    target = model if isinstance(model, Target) else load_target(model, store, device)
    if data is None:
        data = make_pairs(task, target, n_examples, seed)
    data = data.to(target.bridge.W_E.device)
    mm = MaskedModel(target.bridge)
    mm.verify(target.bridge, data.clean[:4])
    search, held_out = split(data, seed=seed)
    store = store or RunStore()
    config = {"model": target.name, "task": task, "method": method,
              "search": cfg.to_json(), "n_examples": len(data)}
    if run_id is None:
        run = store.create_run(kind="circuits", task=Path(str(task)).name, config=config,
                               name=name)
    else:
        run = store.claim_created_run(run_id, "circuits", config)
    store.set_status(run.id, "running")
    try:
        t_search = time.perf_counter()
        expected = None
        log_alpha = None
        if method == "edge-pruning":
            def log(step, metrics):
                store.log_metrics(run.id, step, metrics)
                if on_log is not None:
                    on_log(step, metrics)
            res = prune(mm, search, cfg, on_log=log)
            log_alpha, expected = res.log_alpha, res.expected_sparsity
            keep = extract(mm.graph, log_alpha)  # at the masks' expected sparsity (reference)
            scores = torch.sigmoid(log_alpha)
        elif method == "eap":
            from circuits.baselines import eap_scores
            scores = eap_scores(mm, search, ablation=ablation, objective=objective)
            keep = threshold_for_sparsity(mm.graph, scores, min(target_sparsity, 1.0))[1]
        else:
            from circuits.baselines import acdc
            keep, scores = acdc(mm, search, ablation=ablation,
                                threshold=acdc_threshold if acdc_threshold is not None else 0.0)
            if acdc_threshold is None:  # rank by the greedy pass, cut at the target
                keep = threshold_for_sparsity(mm.graph, scores, min(target_sparsity, 1.0))[1]
        search_seconds = time.perf_counter() - t_search
        ev = evaluate_circuit(mm, held_out, keep, ablation=ablation)
        meta = {"model": target.name, "task": str(task), "method": method, "run_id": run.id,
                "ablation": ablation, "objective": objective, "seed": seed,
                "target_sparsity": target_sparsity}
        truth = None
        if target.run is not None:
            from circuits.ground_truth import load_ground_truth, score
            true_edges = load_ground_truth(target.run)
            if true_edges is not None:
                names = mm.graph.edge_names()
                truth = score({names[i] for i in keep.nonzero().flatten().tolist()}, true_edges)
        circuit = from_mask(mm.graph, keep, scores, ev.to_json(), meta)
        directory = Path(out_dir) if out_dir else store.run_dir(run.id)
        paths = write_circuit(circuit, directory, log_alpha=log_alpha)
        for kind, p in paths.items():
            if Path(p).resolve().is_relative_to(store.run_dir(run.id).resolve()):
                store.add_artifact(run.id, Path(p), f"circuit-{kind}")
        result = DiscoverResult(run_id=run.id, method=method, n_edges=ev.n_edges,
                                total_edges=ev.total_edges, sparsity=ev.sparsity, kl=ev.kl,
                                accuracy=ev.accuracy, full_accuracy=ev.full_accuracy,
                                logit_diff=ev.to_json()["logit_diff"],
                                full_logit_diff=ev.to_json()["full_logit_diff"],
                                exact_match=ev.exact_match,
                                wall_seconds=time.perf_counter() - t0,
                                search_seconds=search_seconds, paths=paths,
                                expected_sparsity=expected, ground_truth=truth)
        store.set_summary(run.id, result.to_json())
        store.set_status(run.id, "completed")
        return result
    except KeyboardInterrupt:
        store.set_status(run.id, "cancelled", "interrupted")
        raise
    except BaseException as exc:
        store.set_status(run.id, "failed", f"{type(exc).__name__}: {exc}")
        raise


def evaluate_saved(circuit_path: str | Path, model: str, task: str, *,
                   ablation: str | None = None, n_examples: int = 256, seed: int = 0,
                   store: RunStore | None = None) -> dict:
    """Re-evaluate a saved circuit on ``model`` / ``task``."""
    circuit = load_circuit(circuit_path)
    target = load_target(model, store)
    mm = MaskedModel(target.bridge)
    if mm.graph.spec != circuit.spec:
        raise UserError(f"circuit {str(circuit_path)!r} was found on a different architecture "
                        f"than model {model!r}")
    data = make_pairs(task, target, n_examples, seed)
    ev = evaluate_circuit(mm, data, circuit.keep_mask(),
                          ablation=ablation or circuit.meta.get("ablation", "corrupted"))
    return ev.to_json()
