"""Public Python API of circuit discovery: ``discover`` (one search, stored as a run) and
``evaluate_saved`` (re-evaluate a circuit file). The CLI and sweeps call these.

Methods: ``edge-pruning`` (:mod:`circuits.prune`), ``eap`` and ``acdc``
(:mod:`circuits.baselines`), all on the same graph and extracted to the same target sparsity
by :func:`circuits.extract.threshold_for_sparsity`. Everything is validated before the store is
touched; the all-ones masked forward is checked against the bridge before a search starts.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from circuits.datasets import PairDataset, check_task, make_pairs
from circuits.dist_context import SINGLE, DistContext
from circuits.evaluate import evaluate_circuit
from circuits.extract import extract, extract_nodes, threshold_for_sparsity
from circuits.io import from_mask, load_circuit, write_circuit
from circuits.masked_forward import MaskedModel
from circuits.prune import PruneConfig, prune
from circuits.target import Target, load_target
from workbench.errors import UserError, check_choice
from workbench.store import RunStore

KIND = "circuits"
METHODS = ("edge-pruning", "eap", "acdc")
PRECISIONS = ("fp32", "bf16")


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


@dataclass(frozen=True, kw_only=True)
class DiscoverConfig:
    """One circuit search: what to explain and how (saved with the ``circuits`` run).

    ``lambda_lr`` (default: ``lr``) is the Lagrange multipliers' ascent rate; small graphs such
    as compiled programs need it far below ``lr``. ``precision="bf16"`` runs the masked forward
    under bf16 autocast and ``grad_checkpoint`` recomputes each attention layer in the backward
    pass: both for large models on a GPU. ``acdc_threshold`` (ACDC only; default: rank by the
    greedy pass and cut at the target sparsity).
    """

    model: str  # run id/name or Hugging Face model directory
    task: str  # a built-in pair task or a .jsonl pair file
    method: str = "edge-pruning"
    target_sparsity: float = 0.95
    ablation: str = "corrupted"
    objective: str = "kl"
    steps: int = 3000
    seed: int = 0
    n_examples: int = 256
    batch_size: int = 32
    lr: float = 0.8
    lambda_lr: float | None = None
    acdc_threshold: float | None = None
    device: str | None = None
    precision: str = "fp32"
    grad_checkpoint: bool = False
    node_masks: bool = False  # also gate whole writers (Edge Pruning's optional node masks)
    node_target_sparsity: float = 0.0  # target fraction of writers off, with node_masks
    migration: str | None = None  # set on runs whose config a store migration resolved

    def __post_init__(self):
        check_choice(self.method, "method", METHODS)
        check_choice(self.precision, "precision", PRECISIONS)
        if self.node_masks and self.method != "edge-pruning":
            raise UserError(f"node masks are part of edge-pruning, not {self.method!r}")
        if not isinstance(self.n_examples, int) or self.n_examples < 1:
            raise UserError(f"--examples must be positive, got {self.n_examples}")
        self.prune_config()  # validates the search settings

    def prune_config(self) -> PruneConfig:
        """The Edge Pruning settings of this search (the baselines read ablation/objective)."""
        return PruneConfig(target_sparsity=self.target_sparsity, steps=self.steps,
                           seed=self.seed, ablation=self.ablation, objective=self.objective,
                           batch_size=self.batch_size, lr=self.lr,
                           lambda_lr=self.lr if self.lambda_lr is None else self.lambda_lr,
                           lr_warmup=min(200, max(1, self.steps // 15)),
                           precision=self.precision, checkpoint=self.grad_checkpoint,
                           node_masks=self.node_masks,
                           node_target_sparsity=self.node_target_sparsity)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if self.migration is None:
            out.pop("migration")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "DiscoverConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})

    @classmethod
    def from_settings(cls, model: str, task: str, **settings) -> "DiscoverConfig":
        """A config from keyword settings; an unknown one is a UserError naming it."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - fields)
        if unknown:
            raise UserError(f"unknown discover setting {unknown[0]!r}; settings: "
                            f"{', '.join(sorted(fields - {'model', 'task', 'migration'}))}")
        return cls(model=model, task=str(task), **settings)


def discover(config: DiscoverConfig | str | Target, task: str | None = None, /, *,
             data: PairDataset | None = None, out_dir: str | Path | None = None,
             name: str | None = None, store: RunStore | None = None, on_log=None,
             run_id: str | None = None, dist: DistContext = SINGLE,
             **settings) -> DiscoverResult | None:
    """Find a circuit and record it as a ``circuits`` run.

    ``discover(DiscoverConfig(...))``, or ``discover(model, task, steps=..., ...)`` with the
    config's fields as keywords (``model`` may be a loaded :class:`Target`). ``run_id`` fills a
    ``circuits`` run created beforehand (:func:`prepare_discover`; the browser app shows it at
    once, then starts this search as a job): with no ``config`` the stored one is used.
    Under torchrun (``dist`` from :func:`circuits.distributed.context`) every process searches
    its slice of each batch with all-reduced mask gradients; rank 0 alone records the run,
    evaluates and returns the result (the others return ``None``).
    """
    t0 = time.perf_counter()
    store = store or RunStore()
    target = config if isinstance(config, Target) else None
    if isinstance(config, DiscoverConfig):
        assert task is None and not settings, "give a DiscoverConfig or settings, not both"
    elif config is None and run_id is not None:
        config = DiscoverConfig.from_dict(_circuits_run(store, run_id).config)
    else:
        model = target.name if target is not None else config
        config = DiscoverConfig.from_settings(model, task, **settings)
    cfg = config.prune_config()
    if data is None:
        check_task(config.task)  # before the (slow) model load
    target = target or load_target(config.model, store, config.device or dist.device)
    if data is None:
        data = make_pairs(config.task, target, config.n_examples, config.seed)
    data = data.to(target.bridge.W_E.device)
    mm = MaskedModel(target.bridge)
    mm.verify(target.bridge, data.clean[:4])
    search, held_out = split(data, seed=config.seed)
    stored = {**config.to_dict(), "search": cfg.to_json(), "examples_used": len(data)}
    if not dist.is_main:
        run = None
    elif run_id is None:
        run = store.create_run(kind=KIND, task=Path(str(config.task)).name, config=stored,
                               name=name)
    else:
        run = store.claim_created_run(run_id, KIND, stored)
    with store.lifecycle(run.id if run else "", writer=dist.is_main) as life:
        result = _search(config, cfg, mm, search, held_out, target, store, run, on_log,
                         out_dir, dist, t0)
        life.summary = result.to_json() if result is not None else None
    return result


def prepare_discover(config: DiscoverConfig, *, name: str | None = None,
                     store: RunStore | None = None) -> str:
    """Create a ``circuits`` run for ``config`` (status ``created``) without searching; the
    job ``workbench circuits discover --run-id ID`` runs it from the stored config."""
    check_task(config.task)
    store = store or RunStore()
    return store.create_run(kind=KIND, task=Path(str(config.task)).name, name=name,
                            config={**config.to_dict(),
                                    "search": config.prune_config().to_json()}).id


def _circuits_run(store: RunStore, ref: str):
    run = store.get_run(ref)
    if run.kind != KIND:
        raise UserError(f"run {ref!r} is a {run.kind} run, not a circuits run")
    return run


def _search(config, cfg, mm, search, held_out, target, store, run, on_log, out_dir, dist, t0):
    """The search itself, the held-out evaluation and the circuit files (rank 0)."""
    method, ablation = config.method, config.ablation
    t_search = time.perf_counter()
    expected = None
    log_alpha = None
    nodes_removed = None
    if method == "edge-pruning":
        def log(step, metrics):
            if run is not None:
                store.log_metrics(run.id, step, metrics)
            if on_log is not None:
                on_log(step, metrics)
        res = prune(mm, search, cfg, on_log=log, **dist.prune_kwargs())
        dist.check_same(res.log_alpha.to(mm.W_E.device))
        log_alpha, expected = res.log_alpha, res.expected_sparsity
        # at the masks' expected sparsity (reference); writers whose node gate is off keep
        # no edges
        keep = extract(mm.graph, log_alpha, node_log_alpha=res.node_log_alpha)
        if res.node_log_alpha is not None:
            on = extract_nodes(res.node_log_alpha).tolist()
            nodes_removed = [w for w, o in zip(mm.graph.writers, on) if not o]
        scores = torch.sigmoid(log_alpha)
    elif method == "eap":
        from circuits.baselines import eap_scores
        scores = eap_scores(mm, search, ablation=ablation, objective=config.objective)
        keep = threshold_for_sparsity(mm.graph, scores, min(config.target_sparsity, 1.0))[1]
    else:
        from circuits.baselines import acdc
        threshold = config.acdc_threshold
        keep, scores = acdc(mm, search, ablation=ablation,
                            threshold=threshold if threshold is not None else 0.0)
        if threshold is None:  # rank by the greedy pass, cut at the target
            keep = threshold_for_sparsity(mm.graph, scores, min(config.target_sparsity, 1.0))[1]
    search_seconds = time.perf_counter() - t_search
    if run is None:
        return None
    ev = evaluate_circuit(mm, held_out, keep, ablation=ablation)
    meta = {"model": target.name, "task": str(config.task), "method": method, "run_id": run.id,
            "ablation": ablation, "objective": config.objective, "seed": config.seed,
            "target_sparsity": config.target_sparsity, "world_size": dist.world_size}
    if nodes_removed is not None:
        meta["nodes_removed"] = nodes_removed
    truth = None
    if target.run is not None:
        from circuits.ground_truth import load_ground_truth, score
        true_edges = load_ground_truth(target.run)
        if true_edges is not None:
            names = mm.graph.edge_names()
            truth = score({names[i] for i in keep.nonzero().flatten().tolist()}, true_edges)
    circuit = from_mask(mm.graph, keep, scores, ev.to_json(), meta)
    run_dir = store.layout(run.id).root
    paths = write_circuit(circuit, Path(out_dir) if out_dir else run_dir, log_alpha=log_alpha)
    for kind, p in paths.items():
        if Path(p).resolve().is_relative_to(run_dir.resolve()):
            store.add_artifact(run.id, Path(p), f"circuit-{kind}")
    return DiscoverResult(run_id=run.id, method=method, n_edges=ev.n_edges,
                          total_edges=ev.total_edges, sparsity=ev.sparsity, kl=ev.kl,
                          accuracy=ev.accuracy, full_accuracy=ev.full_accuracy,
                          logit_diff=ev.to_json()["logit_diff"],
                          full_logit_diff=ev.to_json()["full_logit_diff"],
                          exact_match=ev.exact_match, wall_seconds=time.perf_counter() - t0,
                          search_seconds=search_seconds, paths=paths,
                          expected_sparsity=expected, ground_truth=truth)


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


_SEARCH_FIELDS = {"target_sparsity": "target_sparsity", "steps": "steps", "seed": "seed",
                  "ablation": "ablation", "objective": "objective", "batch_size": "batch_size",
                  "lr": "lr", "lambda_lr": "lambda_lr", "precision": "precision",
                  "checkpoint": "grad_checkpoint"}


def upgrade_circuits_run(store, run) -> None:
    """Store migration 4 (:mod:`workbench.run_migrations`): an old circuits run's config (the
    search settings nested under ``search``) as a whole :class:`DiscoverConfig`."""
    from workbench.run_migrations import MIGRATION_NOTE

    stored = dict(run.config)
    if "model" not in stored or "task" not in stored or "steps" in stored:
        return  # not a circuits config, or one already resolved
    fields = {new: stored["search"][old] for old, new in _SEARCH_FIELDS.items()
              if old in (stored.get("search") or {})}
    try:
        config = DiscoverConfig.from_dict({**stored, **fields, "migration": MIGRATION_NOTE})
    except (TypeError, ValueError):
        return
    store.set_config(run.id, {**stored, **config.to_dict()})
