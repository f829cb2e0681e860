"""What probes read: the model (a stored run at a checkpoint, or a Hugging Face-format directory)
with its identity, and the examples (token ids, per-example columns, character spans).

Examples come from a task run's own dataset (``train``, ``test`` or ``all``: columns
``output`` = the answer token and ``input_I`` = input token I), or from a file: ``.jsonl``
records with ``text`` (tokenised with the model's tokenizer, with offsets for span anchors) or
``tokens`` (ids, or a task run's token strings), ``.txt`` one text per line. A record's other
scalar fields become columns (probe targets, ``--split-by`` groups); ``value_spans``,
``name_spans`` and ``answer_span`` become named spans (see :mod:`probes.positions`). Files are
read line by line, so a dataset never has to fit in memory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from workbench.errors import UserError
from workbench.models import quiet_transformers

DATASETS = ("train", "test", "all")
MODEL_RUN_KINDS = ("train", "compiled", "pretrain", "prior-finetune")


@dataclass
class ModelSource:
    """A model ready for collection, and what identifies it in an activations manifest."""

    bridge: object
    name: str
    run_id: str | None
    step: int | None
    config_hash: str
    tokenizer: object | None = None
    run: object | None = None  # workbench.runs.RunHandle for a stored run
    model_config: dict | None = None  # a task run's ModelConfig (random-init baselines)

    @property
    def identity(self) -> dict:
        return {"name": self.name, "run_id": self.run_id, "step": self.step,
                "config_hash": self.config_hash}

    @property
    def n_layers(self) -> int:
        return int(self.bridge.cfg.n_layers)

    @property
    def n_ctx(self) -> int:
        return int(self.bridge.cfg.n_ctx)


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


def _dir_tokenizer(path: Path):
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return None
    quiet_transformers()
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(path))


def open_run(ref: str, store=None):
    from workbench.runs import RunHandle, resolve_model_ref
    handle = resolve_model_ref(ref, store)
    if not isinstance(handle, RunHandle):
        raise UserError(f"{ref!r} is a model directory; give a run")
    return _model_run(handle, ref)


def _model_run(handle, ref: str):
    if handle.run.kind not in MODEL_RUN_KINDS:
        raise UserError(f"run {ref!r} is a {handle.run.kind} run, not a model")
    return handle


def load_model(ref: str, *, step: int | str = "final", store=None,
               device: str | None = None) -> ModelSource:
    """``ref``: a Hugging Face-format directory or a run id / name (at checkpoint ``step``)."""
    from workbench.runs import resolve_model_ref
    found = resolve_model_ref(ref, store)  # a directory, or a run's handle
    if isinstance(found, Path):
        path = found
        from workbench.models import load_hf_bridge
        quiet_transformers()
        bridge = load_hf_bridge(path, device=device)
        cfg_text = (path / "config.json").read_text()
        return ModelSource(bridge=bridge, name=str(path.resolve()), run_id=None, step=None,
                           config_hash=config_hash(json.loads(cfg_text)),
                           tokenizer=getattr(bridge, "tokenizer", None))
    handle = _model_run(found, ref)
    steps = handle.checkpoints()
    if not steps:
        raise UserError(f"run {handle.id} has no checkpoints")
    step = steps[-1] if step in ("final", "latest", None) else step
    handle.checkpoint_path(step)  # a UserError names a missing step
    quiet_transformers()  # a pretrain run's checkpoint is a Hugging Face directory
    bridge = handle.model(step, device=device)
    tokenizer = getattr(bridge, "tokenizer", None) or _dir_tokenizer(handle.directory)
    model_cfg = handle.config.get("model")
    native_cfg = model_cfg if handle.run.kind in ("train", "compiled") else None
    return ModelSource(bridge=bridge, name=handle.id, run_id=handle.id, step=int(step),
                       config_hash=config_hash(model_cfg or handle.config), tokenizer=tokenizer,
                       run=handle, model_config=native_cfg)


@dataclass
class Example:
    """One sequence to run: token ids, columns for targets and groups, spans and offsets."""

    tokens: list[int]
    columns: dict = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] | None = None
    offsets: list[tuple[int, int]] | None = None


@dataclass
class DataSource:
    """Examples to stream, with a description and hash for the manifest."""

    description: str
    data_hash: str
    count: int
    ref: str  # what names the data again: a dataset name or a file's absolute path
    _iter: object = field(repr=False)

    def __iter__(self) -> Iterator[Example]:
        return self._iter()


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _task_dataset(model: ModelSource, which: str) -> DataSource:
    if model.run is None or model.run.run.kind != "train":
        raise UserError(f"--data {which!r} names a task run's dataset, but the model is not a "
                        "task run; give a .jsonl or .txt file")
    from training.api import load_data
    from training.config import RunConfig
    from training.datasets import IGNORE
    encoded = load_data(RunConfig.from_dict(model.run.config))
    parts = {"train": [(encoded.train_x, encoded.train_y)], "test": [(encoded.test_x,
             encoded.test_y)]}
    parts["all"] = parts["train"] + parts["test"]
    pairs = parts[which]
    count = sum(x.shape[0] for x, _ in pairs)
    vin, vout = encoded.input_vocab, encoded.output_vocab

    def examples():
        for x, y in pairs:
            for row, labels in zip(x.tolist(), y.tolist()):
                cols = {f"input_{i}": vin[t] for i, t in enumerate(row)}
                answer = next((vout[v] for v in labels if v != IGNORE), None)
                if answer is not None:
                    cols["output"] = answer
                yield Example(tokens=row, columns=cols)
    return DataSource(description=f"{model.run_id}:{which}", data_hash=config_hash(
        model.run.config), count=count, ref=which, _iter=examples)


def _spans(record: dict) -> dict[str, tuple[int, int]] | None:
    spans = {k: tuple(v) for k, v in (record.get("value_spans") or {}).items()}
    if record.get("name_spans"):
        spans["name"] = tuple(record["name_spans"][0])
    if record.get("answer_span"):
        spans["answer"] = tuple(record["answer_span"])
    return spans or None


def _encode_text(model: ModelSource, text: str, where: str):
    tok = model.tokenizer
    if tok is None:
        raise UserError(f"{where} has text but model {model.name} has no tokenizer; give "
                        "'tokens' instead")
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _encode_tokens(model: ModelSource, tokens, where: str) -> list[int]:
    vocab = None
    if any(isinstance(t, str) for t in tokens):
        names = (model.run.vocab().get("input_vocab") if model.run is not None else None)
        if not names:
            raise UserError(f"{where}: token strings need a task run's input vocabulary")
        vocab = {t: i for i, t in enumerate(names)}
    ids = []
    for t in tokens:
        if vocab is not None:
            if t not in vocab:
                raise UserError(f"{where}: token {t!r} is not in the model's vocabulary")
            ids.append(vocab[t])
        elif isinstance(t, int) and not isinstance(t, bool) and 0 <= t < model.bridge.cfg.d_vocab:
            ids.append(t)
        else:
            raise UserError(f"{where}: token {t!r} is not an id below d_vocab "
                            f"{model.bridge.cfg.d_vocab}")
    return ids


def _file_dataset(model: ModelSource, path: Path) -> DataSource:
    if path.suffix not in (".jsonl", ".txt"):
        raise UserError(f"--data {str(path)!r} must be a .jsonl or .txt file, or one of "
                        f"{', '.join(DATASETS)}")
    with path.open(encoding="utf-8") as fh:
        count = sum(1 for line in fh if line.strip())
    if count == 0:
        raise UserError(f"--data {str(path)!r} holds no examples")

    def examples():
        with path.open(encoding="utf-8") as fh:
            number = 0
            for line in fh:
                if not line.strip():
                    continue
                number += 1
                where = f"{path.name} line {number}"
                if path.suffix == ".txt":
                    ids, offsets = _encode_text(model, line.rstrip("\n"), where)
                    yield Example(tokens=ids, offsets=offsets)
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{where} is not JSON: {exc.msg}") from None
                if not isinstance(record, dict) or not ("text" in record or "tokens" in record):
                    raise UserError(f"{where} needs a 'text' or 'tokens' field")
                cols = {k: v for k, v in record.items() if k not in ("text", "tokens")
                        and (v is None or isinstance(v, (str, int, float, bool)))}
                if "tokens" in record:
                    yield Example(tokens=_encode_tokens(model, record["tokens"], where),
                                  columns=cols, spans=None)
                else:
                    ids, offsets = _encode_text(model, record["text"], where)
                    yield Example(tokens=ids, columns=cols, spans=_spans(record),
                                  offsets=offsets)
    return DataSource(description=str(path.resolve()), data_hash=_file_hash(path), count=count,
                      ref=str(path.resolve()), _iter=examples)


def load_data(model: ModelSource, data: str) -> DataSource:
    """The examples ``data`` names: a task run's dataset (train/test/all) or a file."""
    if data in DATASETS:
        return _task_dataset(model, data)
    path = Path(data).expanduser()
    if not path.is_file():
        raise UserError(f"--data {data!r} is neither a file nor one of {', '.join(DATASETS)}")
    return _file_dataset(model, path)
