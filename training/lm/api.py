"""Public Python API of pretraining: ``pretrain`` (a new or resumed run of kind ``pretrain``)
and ``build_pretrain_config`` (preset + config file + overrides, validated).

Everything is validated before the store is touched: a bad key, a sequence longer than the
context, a batch that does not divide across ranks, a changed data manifest or a model that
does not fit in memory leaves no run behind.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from training.distributed import SINGLE, DistContext, broadcast_object, context_from_env, \
    run_to_resume
from training.lm import flops
from training.lm.config import (LMModelConfig, PretrainConfig, apply_overrides,
                                preset_sections, read_config_file)
from training.lm.shards import (Sampler, TokenStream, manifest_sha256, plan_batches,
                                read_manifest, validation_batches)
from training.lm.tokenizer import load_tokenizer, tokenizer_sha256
from training.lm.trainer import PretrainResult, TrainingFailed, resolve_device, train_loop, \
    uses_bf16
from workbench.checkpoint import atomic_write_json
from workbench.errors import UserError
from workbench.store import RunStore, validate_name

KIND = "pretrain"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A validated run: configs plus everything the loop reads."""

    config: dict  # what the store and config.json hold
    model: LMModelConfig
    train: PretrainConfig
    sampler: Sampler
    val_batches: list
    tokenizer: object


def build_pretrain_config(data: str, *, preset: str = "tiny", overrides: dict | None = None,
                          config_file: str | None = None) -> dict:
    """The run config (JSON-able) for ``data`` and the given preset / file / overrides."""
    manifest = read_manifest(data)
    sections = preset_sections(preset)
    merged = dict(read_config_file(config_file)) if config_file else {}
    merged.update(overrides or {})
    apply_overrides(sections, merged)
    train = PretrainConfig(**sections["train"])
    multiple = train.vocab_multiple
    vocab = -(-int(manifest["vocab_size"]) // multiple) * multiple
    model = LMModelConfig(**{**sections["model"], "vocab_size": vocab})
    return {"data": str(Path(data).expanduser().resolve()),
            "data_manifest_sha256": manifest_sha256(data),
            "tokenizer_sha256": manifest["tokenizer_sha256"], "preset": preset,
            "model": model.to_dict(), "train": train.to_dict()}


def validate_pretrain(data: str, *, preset: str = "tiny", overrides: dict | None = None,
                      world_size: int = 1) -> dict:
    """The run config for these inputs, checked exactly as ``workbench pretrain`` checks them
    (keys, architecture, context, batch split over ``world_size`` ranks, memory, data);
    ``UserError`` naming the first problem. Nothing is written."""
    config = build_pretrain_config(data, preset=preset, overrides=overrides)
    _prepare(config, DistContext(rank=0, world_size=world_size, local_rank=0))
    return config


def _prepare(config: dict, ctx: DistContext) -> Prepared:
    data = config["data"]
    if not Path(data).is_dir():
        raise UserError(f"the run's data directory {data!r} no longer exists")
    if manifest_sha256(data) != config["data_manifest_sha256"]:
        raise UserError(f"the data manifest of {data!r} changed since the run started "
                        "(re-prepared data); a run resumes only on the data it began with")
    manifest = read_manifest(data)
    model = LMModelConfig.from_dict(config["model"])
    train = PretrainConfig.from_dict(config["train"])
    seq_len = train.seq_len or model.n_ctx
    if seq_len > model.n_ctx:
        raise UserError(f"seq_len {seq_len} is longer than the model's context n_ctx "
                        f"{model.n_ctx}")
    plan = plan_batches(train.batch_size, train.micro_batch_size, ctx.world_size, ctx.rank)
    try:
        device = resolve_device(train, ctx)
    except TrainingFailed as exc:
        raise UserError(str(exc)) from None
    flops.check_memory(model, train, seq_len, plan.micro_batch_size, ctx.world_size, device,
                       uses_bf16(train, device))
    tok = load_tokenizer(Path(data) / "tokenizer")
    if tokenizer_sha256(tok) != manifest["tokenizer_sha256"]:
        raise UserError(f"the tokenizer in {data!r} does not match its manifest")
    sampler = Sampler(TokenStream(data, "train"), seq_len, plan, train.seed)
    val = validation_batches(TokenStream(data, "val"), seq_len,
                             train.eval_batches * train.batch_size, plan.micro_batch_size)
    return Prepared(config=config, model=model, train=train, sampler=sampler,
                    val_batches=val, tokenizer=tok)


def pretrain(data: str | None = None, *, preset: str = "tiny", overrides: dict | None = None,
             config_file: str | None = None, name: str | None = None,
             resume: str | None = None, progress: bool = False, store: RunStore | None = None,
             run_id: str | None = None) -> PretrainResult:
    """Pretrain a language model on prepared ``data`` (or resume run ``resume``).

    ``overrides`` maps config keys (``lr``, ``d_model``, ``train.steps``) to values; ``run_id``
    trains into a run created beforehand (the job runner does so to return its id at once).
    """
    ctx = context_from_env()
    store = store or RunStore()
    if resume is not None:
        run = run_to_resume(store, resume, ctx, kind=KIND, noun="pretraining")
        prepared = _prepare(run.config, ctx)
        return _run(store, run.id, prepared, progress, resume=True, ctx=ctx)
    if data is None:
        raise UserError("--data DIR (made by `workbench data prepare`) is required")
    if name is not None:
        validate_name(name)
    prepared = _prepare(build_pretrain_config(data, preset=preset, overrides=overrides,
                                              config_file=config_file), ctx)
    if not ctx.is_main:  # rank 0 creates the run; the others follow it
        run_id = broadcast_object(None, ctx)
        return _run(store, run_id, prepared, progress=False, resume=False, ctx=ctx)
    if run_id is None:
        run_id = store.create_run(kind=KIND, task="lm", config=prepared.config, name=name).id
    else:
        store.claim_created_run(run_id, KIND, prepared.config)
    atomic_write_json(store.layout(run_id).config, prepared.config)
    broadcast_object(run_id, ctx)
    return _run(store, run_id, prepared, progress, resume=False, ctx=ctx)


def _run(store: RunStore, run_id: str, p: Prepared, progress: bool, resume: bool,
         ctx: DistContext = SINGLE) -> PretrainResult:
    meta = {"run_id": run_id, "data_manifest_sha256": p.config["data_manifest_sha256"],
            "tokenizer_sha256": p.config["tokenizer_sha256"]}

    # the run's status (running, then completed / failed / cancelled) is the lifecycle's;
    # ranks other than 0 run the same code without writing
    with store.lifecycle(run_id, resume=resume, writer=ctx.is_main) as life:
        result = train_loop(store, run_id, p.model, p.train, p.sampler, p.val_batches,
                            p.tokenizer, meta, resume=resume,
                            progress=progress and ctx.is_main, ctx=ctx)
        life.summary = result.to_json()
    return result
