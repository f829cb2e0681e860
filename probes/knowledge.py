"""The bioS knowledge-storage experiment end to end (Allen-Zhu & Li, "Physics of Language
Models 3.1: Knowledge Storage and Extraction"): generate people and biographies with an
augmentation, prepare and pretrain an in-house model with training/lm under one of the two
protocols, measure held-out QA exact match per attribute, and P-probe / Q-probe the model.

Protocols: ``pretrain-finetune``: pretrain on every person's biographies, QA-finetune on the
train half of the people (:mod:`probes.knowledge_qa`), test QA on the held-out half;
``mixed``: pretrain on biographies plus the train half's QA pairs (repeated so QA is about
``qa_fraction`` of the sequences), test QA on the held-out half with no finetune. P- and
Q-probes (:mod:`probes.knowledge_probe`) read the pretrained model and use the same split.
The result is stored as a ``knowledge`` result of the pretrain run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import UserError

PROTOCOLS = ("pretrain-finetune", "mixed")
SERIES_EVERY = 10
# The CPU-scale settings that memorise the biographies (benchmarks/knowledge_reference.py on
# 2 shared cores): 300 people, a 2-layer d_model 128 GPT-2 (the "tiny" preset widened), batch
# 16 x 256 tokens, lr 5e-3 with warm-up and cosine decay, 700 steps (~630 s of pretraining
# each, two runs side by side): about 115 passes over each person's biography text (multi5:
# ~23 over each of its 5 entries); the pretrained models write 93-99.6% of the values exactly.
KNOWLEDGE_MODEL = {"n_layers": 2, "d_model": 128, "n_heads": 4, "d_mlp": 512}
# People per attribute value by default: the paper's pools give each value hundreds of people
# (100k people, ~200 values); with the whole pools at CPU scale most values occur once or
# twice, so a probe trained on half the people never sees the class of a held-out person and
# every probe sits at chance. About 25 per value puts each on both sides of the split.
PEOPLE_PER_VALUE = 25


@dataclass(frozen=True, kw_only=True)
class KnowledgeConfig:
    people: int = 300
    augmentation: str = "multi5+permute+fullname"
    protocol: str = "pretrain-finetune"
    steps: int = 700  # pretraining steps
    finetune_steps: int = 300
    probe_steps: int = 150
    series_checkpoints: int = 6  # checkpoints of the pretraining series probed; 0: none
    p_rank: int = 2
    q_rank: int = 16
    qa_fraction: float = 0.8  # mixed training: QA share of the sequences
    vocab_size: int = 2048
    preset: str = "tiny"
    # overrides of the LM preset, e.g. {"d_model": 128}
    model: dict = dataclasses.field(default_factory=lambda: dict(KNOWLEDGE_MODEL))
    batch_size: int = 16
    lr: float = 5e-3
    seed: int = 0
    # values per attribute pool (0: whole pools; None: people // PEOPLE_PER_VALUE, at least
    # 2); see make_people. Stored resolved, so a run's config says what it used.
    pool_size: int | None = None

    def __post_init__(self):
        from training.corpora.biographies import Augmentation, check_pool_size
        if isinstance(self.people, bool) or not isinstance(self.people, int) or self.people < 8:
            raise UserError(f"--people must be an integer of at least 8, got {self.people!r}")
        Augmentation.parse(self.augmentation)  # UserError names a bad part
        if self.protocol not in PROTOCOLS:
            raise UserError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got "
                            f"{self.protocol!r}")
        for name in ("steps", "finetune_steps", "probe_steps", "p_rank", "q_rank",
                     "vocab_size", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got "
                                f"{value!r}")
        if self.pool_size is None:
            object.__setattr__(self, "pool_size", max(2, self.people // PEOPLE_PER_VALUE))
        check_pool_size(self.pool_size, "--pool-size")
        value = self.series_checkpoints
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"--series-checkpoints must be an integer >= 0, got {value!r}")
        if not 0 < self.qa_fraction < 1:
            raise UserError(f"--qa-fraction must be strictly between 0 and 1, got "
                            f"{self.qa_fraction!r}")

    def key(self, *, pretraining_only: bool = False) -> str:
        """A hash of the config (``pretraining_only``: of the fields the pretrained model
        depends on, so other probe or finetune settings reuse the same run)."""
        fields = dataclasses.asdict(self)
        if not fields["pool_size"]:  # keys of configs from before the field are unchanged
            fields.pop("pool_size")
        if pretraining_only:
            for name in ("finetune_steps", "probe_steps", "series_checkpoints", "p_rank",
                         "q_rank"):
                fields.pop(name)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class KnowledgeResult:
    run_id: str
    config: dict
    qa_accuracy: dict  # held-out people, per attribute (+ "all")
    qa_train_accuracy: dict  # the people QA was trained on (mixed: their QA was in training)
    qa_before_finetune: dict | None  # pretrain-finetune: held-out QA of the pretrained model
    memorisation: dict  # the pretrained model writing each value of the biographies (copy 0)
    p_probe: dict  # probes.knowledge_probe.ProbeTable.to_json()
    q_probe: dict
    pretrain: dict
    seconds: dict
    # probes.knowledge_series: {"steps": [int], "attributes": [str], "accuracy": [[float]]}
    q_probe_over_training: dict | None = None
    p_probe_name_over_training: dict | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _corpus(cfg: KnowledgeConfig, people, split):
    from training.corpora.biographies import biographies, qa_pairs, shuffled
    texts = [b.text for b in biographies(people, augmentation=cfg.augmentation, seed=cfg.seed)]
    if cfg.protocol == "mixed":
        qa = [q.text for q in qa_pairs(split.train)]
        repeats = max(1, math.ceil(cfg.qa_fraction * len(texts) / ((1 - cfg.qa_fraction)
                                                                   * len(qa))))
        texts += qa * repeats
    return shuffled(texts, seed=cfg.seed)


def _prepare_data(cfg: KnowledgeConfig, root: Path, people, split) -> Path:
    """The tokenizer (trained on biographies and every QA pair, so finetuning meets no unseen
    merges) and the token shards of this config's corpus, under ``root`` (reused if there)."""
    from training.corpora.biographies import biographies, qa_pairs, write_corpus
    from training.lm.prepare import prepare
    data = root / "data"
    if (data / "manifest.json").is_file():
        return data
    root.mkdir(parents=True, exist_ok=True)
    vocab_texts = [b.text for b in biographies(people, augmentation="single", seed=cfg.seed)]
    vocab_texts += [q.text for q in qa_pairs(people)]
    write_corpus(root / "vocab.jsonl", vocab_texts)
    if not (root / "tok" / "manifest.json").is_file():
        prepare([str(root / "vocab.jsonl")], tokenizer=f"train:{cfg.vocab_size}",
                output=str(root / "tok"))
    write_corpus(root / "corpus.jsonl", _corpus(cfg, people, split))
    prepare([str(root / "corpus.jsonl")], tokenizer=str(root / "tok" / "tokenizer"),
            output=str(data))
    return data


def _overrides(cfg: KnowledgeConfig) -> dict:
    return {"n_ctx": 256, "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "warmup_steps": min(100, max(1, cfg.steps // 10)),
            # the checkpoint series the over-training probes read: 4 log-spaced early steps
            # and SERIES_EVERY evenly spaced ones
            "eval_every": cfg.steps, "checkpoint_every": max(1, cfg.steps // SERIES_EVERY),
            "log_checkpoints": 4,
            "seed": cfg.seed, **cfg.model}


def check_pretraining(cfg: KnowledgeConfig) -> None:
    """Refuse model overrides the pretraining config would refuse, before anything is written
    (the CLI and the browser form both call it)."""
    from training.lm.config import LMModelConfig, PretrainConfig, apply_overrides, \
        preset_sections
    sections = preset_sections(cfg.preset)
    apply_overrides(sections, _overrides(cfg))
    LMModelConfig(**sections["model"])
    PretrainConfig(**sections["train"])


def knowledge_root(store, cfg: KnowledgeConfig) -> Path:
    """Where the experiment of ``cfg`` keeps its corpus; configs that differ only in probe or
    finetune settings share it (and so share the pretrain run)."""
    return Path(store.home) / "knowledge" / cfg.key(pretraining_only=True)


def pretrain_run_of(store, cfg: KnowledgeConfig):
    """The newest pretrain run on ``cfg``'s data directory, if one was started (any status)."""
    data = str((knowledge_root(store, cfg) / "data").resolve())
    runs = [r for r in store.list_runs(kind="pretrain")
            if isinstance(r.config, dict) and r.config.get("data") == data]
    return max(runs, key=lambda r: r.created) if runs else None


def _earlier_run(store, cfg: KnowledgeConfig):
    """The pretrain run of this config, unless another process is training it."""
    run = pretrain_run_of(store, cfg)
    if run is not None and run.status == "running":
        raise UserError(f"run {run.id} of this configuration is being trained by process "
                        f"{run.owner}; wait for it or stop it")
    return run


def run_knowledge(cfg: KnowledgeConfig, *, store=None, name: str | None = None,
                  progress: bool = False) -> KnowledgeResult:
    """Run the experiment of ``cfg``; the result is stored under the pretrain run."""
    import torch

    from probes.knowledge_data import (ANCHORS, encode_biographies, encode_names, encode_qa,
                                       label_classes)
    from probes.knowledge_probe import ProbeConfig, fit_knowledge_probe
    from probes.knowledge_qa import FinetuneConfig, finetune_qa, qa_accuracy, \
        value_memorisation
    from training.corpora.biographies import biographies, make_people, qa_pairs, split_people
    from training.corpora.bios_templates import ATTRIBUTES
    from training.lm.api import pretrain
    from training.lm.tokenizer import load_tokenizer
    from workbench.models import load_causal_lm
    from workbench.runs import RunHandle
    from workbench.store import RunStore, validate_name

    store = store or RunStore()
    if name is not None:
        validate_name(name)
    seconds = {}
    t0 = time.perf_counter()
    people = make_people(cfg.people, seed=cfg.seed, pool_size=cfg.pool_size)
    split = split_people(people, seed=cfg.seed)
    data = _prepare_data(cfg, knowledge_root(store, cfg), people, split)
    seconds["prepare"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    earlier = _earlier_run(store, cfg)
    if earlier is not None and earlier.status == "completed":
        run_id, summary = earlier.id, earlier.summary  # this config was pretrained already
    else:  # a new run, or the killed run of this config resumed from its last checkpoint
        run = pretrain(str(data), preset=cfg.preset, overrides=_overrides(cfg), name=name,
                       store=store, progress=progress,
                       resume=None if earlier is None else earlier.id)
        run_id, summary = run.run_id, run.to_json()
    seconds["pretrain"] = round(time.perf_counter() - t0, 2)
    handle = RunHandle(store, store.get_run(run_id))
    # the probes and the QA finetune run where the pretraining ran (CUDA when there is one)
    device = "cuda" if torch.cuda.is_available() and cfg.model.get("device") != "cpu" else "cpu"
    model = load_causal_lm(handle.checkpoint_path("final").parent, device=device)
    tok = load_tokenizer(data / "tokenizer")
    n_ctx = int(model.config.n_positions if hasattr(model.config, "n_positions")
                else model.config.max_position_embeddings)

    t0 = time.perf_counter()
    bios = [b for b in biographies(people, augmentation=cfg.augmentation, seed=cfg.seed)
            if b.copy == 0]
    memorised = value_memorisation(model, tok, bios)
    train_qa = encode_qa(tok, qa_pairs(split.train))
    test_qa = encode_qa(tok, qa_pairs(split.held_out))
    before = None
    qa_model = model
    if cfg.protocol == "pretrain-finetune":
        before = qa_accuracy(model, test_qa)
        qa_model = finetune_qa(model, train_qa, FinetuneConfig(
            steps=cfg.finetune_steps, batch_size=cfg.batch_size, seed=cfg.seed))
    qa_test, qa_train = qa_accuracy(qa_model, test_qa), qa_accuracy(qa_model, train_qa)
    del qa_model
    seconds["qa"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    classes = label_classes(people)
    n_classes = [len(classes[a]) for a in ATTRIBUTES]
    by_id = {p.id: p for p in people}
    p_data = encode_biographies(tok, bios, by_id, classes, n_ctx)
    train_ids = torch.tensor([p.id for p in split.train])
    p_train = torch.isin(p_data.person_ids, train_ids)
    p_cfg, q_cfg = (ProbeConfig(rank=rank, steps=cfg.probe_steps, batch_size=cfg.batch_size,
                                seed=cfg.seed) for rank in (cfg.p_rank, cfg.q_rank))
    p_table = fit_knowledge_probe(model, p_data, p_train, n_classes, ATTRIBUTES, p_cfg)
    q_data = encode_names(tok, people, classes)
    q_table = fit_knowledge_probe(model, q_data, torch.isin(q_data.person_ids, train_ids),
                                  n_classes, ATTRIBUTES, q_cfg)
    assert p_table.anchors == ANCHORS
    seconds["probes"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    series = {}
    if cfg.series_checkpoints:
        from probes.knowledge_series import probe_series
        series = probe_series(
            store, run_id, n=cfg.series_checkpoints, q_data=q_data, p_data=p_data,
            train_ids=train_ids, n_classes=n_classes, attributes=ATTRIBUTES,
            q_cfg=q_cfg, p_cfg=p_cfg, device=device)
    seconds["series"] = round(time.perf_counter() - t0, 2)

    result = KnowledgeResult(
        run_id=run_id, config=dataclasses.asdict(cfg), qa_accuracy=qa_test,
        qa_train_accuracy=qa_train, qa_before_finetune=before, memorisation=memorised,
        p_probe=p_table.to_json(),
        q_probe=q_table.to_json(), pretrain={k: summary.get(k) for k in (
            "steps", "tokens", "train_loss", "val_loss", "wall_seconds")}, seconds=seconds,
        **series)
    store.put_result(run_id, "knowledge", f"config={cfg.key()}", result.to_json())
    return result


def format_result(r: KnowledgeResult) -> str:
    """The tables for people: QA per attribute, then P-probe (anchor x attribute), Q-probe."""
    attrs = list(r.p_probe["attributes"])
    short = [a[:10] for a in attrs]
    lines = [f"run {r.run_id}: {r.config['people']} people, {r.config['augmentation']}, "
             f"{r.config['protocol']} (pretrain loss {r.pretrain['train_loss']:.3f})",
             "QA exact match   " + "  ".join(f"{s:>10}" for s in short + ["all"])]
    rows = [("held-out", r.qa_accuracy), ("trained people", r.qa_train_accuracy),
            ("bio memorised", r.memorisation)]
    if r.qa_before_finetune is not None:
        rows.append(("before finetune", r.qa_before_finetune))
    for label, acc in rows:
        lines.append(f"{label:<16} " + "  ".join(f"{acc[a]:10.3f}" for a in attrs + ["all"]))
    for title, table in (("P-probe", r.p_probe), ("Q-probe", r.q_probe)):
        lines.append(f"{title} (rank {table['rank']}, held-out accuracy; train "
                     f"{table['n_train']}, test {table['n_test']})")
        lines.append(f"{'':<22} " + "  ".join(f"{s:>10}" for s in short))
        for anchor, row in zip(table["anchors"], table["accuracy"]):
            lines.append(f"{anchor:<22} " + "  ".join(f"{v:10.3f}" for v in row))
        lines.append(f"{'chance':<22} " + "  ".join(f"{v:10.3f}" for v in table["chance"]))
    from probes.knowledge_series import format_series
    for title, series in (("Q-probe over training", r.q_probe_over_training),
                          ("P-probe at the name over training", r.p_probe_name_over_training)):
        if series is not None:
            lines += format_series(title, series)
    return "\n".join(lines)
