"""``workbench data prepare``: text sources -> a byte-level BPE tokenizer -> token shards
(see :mod:`training.lm.shards`) + ``manifest.json``.

Sources: plain text (documents are blank-line-separated paragraphs; a paragraph over 1 MiB is
cut at a line boundary), JSONL (``{"text": ...}`` per line), Parquet (a ``text`` column), a
local Hugging Face ``datasets`` directory (``datasets.load_from_disk``) or ``builtin:NAME``
(:mod:`training.lm.corpus`). Documents are read in chunks of ``chunk_bytes`` and tokenised in
parallel by ``tokenizers``' ``encode_batch`` (Rust threads); tokens go straight to the open
shard file, so memory is bounded by one chunk whatever the corpus size. Each document goes to
the validation split when a hash of its text falls below ``val_frac``, so the split depends on
nothing but the text. No timestamps and no absolute paths: the same inputs give byte-identical
output. Everything is written into a temporary directory renamed into place at the end, so a
bad input leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.lm import corpus, tokenizer as toks
from training.lm.shards import DTYPES, HEADER_BYTES, MANIFEST, pack_header
from workbench.checkpoint import atomic_write_json, file_sha256
from workbench.errors import UserError

MAX_DOC_BYTES = 1 << 20
DEFAULT_CHUNK_BYTES = 4 << 20
DEFAULT_SHARD_TOKENS = 1 << 26
_TEXT_SUFFIXES = (".txt", ".text", ".md")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class PrepareResult:
    output: str
    vocab_size: int
    dtype: str
    train_tokens: int
    val_tokens: int
    documents: int
    shards: int
    tokenizer_sha256: str
    seconds: float
    tokens_per_second: float
    peak_chunk_bytes: int  # largest amount of text held in memory at once

    def to_json(self) -> dict:
        return dict(self.__dict__)


def source_kind(source: str) -> str:
    if source.startswith("builtin:"):
        corpus.parse_builtin(source)
        return "builtin"
    path = Path(source).expanduser()
    if path.is_dir():
        if any((path / f).is_file() for f in ("dataset_info.json", "state.json",
                                               "dataset_dict.json")):
            return "hf"
        raise UserError(f"source {source!r} is a directory but not a saved Hugging Face "
                        "dataset (no dataset_info.json / dataset_dict.json)")
    if not path.is_file():
        raise UserError(f"source {source!r} does not exist")
    if path.stat().st_size == 0:
        raise UserError(f"source {source!r} is empty")
    suffix = path.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        return "text"
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    raise UserError(f"source {source!r}: unknown format {suffix or '(no suffix)'!r}; use "
                    ".txt, .jsonl, .parquet, a datasets directory or builtin:NAME")


def documents(source: str) -> Iterator[str]:
    """The documents of one source, in file order."""
    kind = source_kind(source)
    if kind == "builtin":
        yield from corpus.builtin_documents(source)
    elif kind == "text":
        yield from _text_documents(Path(source))
    elif kind == "jsonl":
        with open(source, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line)["text"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise UserError(f"{source}:{n}: expected a JSON object with a \"text\" "
                                    "string") from None
                if not isinstance(text, str):
                    raise UserError(f"{source}:{n}: \"text\" must be a string")
                yield text
    elif kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(source)
        if "text" not in pf.schema_arrow.names:
            raise UserError(f"parquet source {source!r} has no 'text' column "
                            f"(columns: {pf.schema_arrow.names})")
        for batch in pf.iter_batches(columns=["text"], batch_size=1024):
            yield from (t for t in batch.column(0).to_pylist() if t is not None)
    else:
        yield from _hf_documents(source)


def _text_documents(path: Path) -> Iterator[str]:
    buf: list[str] = []
    size = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                if buf:
                    yield "".join(buf).rstrip("\n")
                buf, size = [], 0
                continue
            buf.append(line)
            size += len(line)
            if size >= MAX_DOC_BYTES:
                yield "".join(buf).rstrip("\n")
                buf, size = [], 0
    if buf:
        yield "".join(buf).rstrip("\n")


def _hf_documents(source: str) -> Iterator[str]:
    import datasets

    ds = datasets.load_from_disk(source)
    parts = [ds] if isinstance(ds, datasets.Dataset) else (
        [ds["train"]] if "train" in ds else [ds[k] for k in sorted(ds)])
    for part in parts:
        if "text" not in part.column_names:
            raise UserError(f"dataset {source!r} has no 'text' column "
                            f"(columns: {part.column_names})")
        for batch in part.iter(batch_size=1024):
            yield from (t for t in batch["text"] if t is not None)


def source_sha256(source: str) -> str:
    if source.startswith("builtin:"):
        h = hashlib.sha256()
        for doc in corpus.builtin_documents(source):
            h.update(doc.encode())
            h.update(b"\0")
        return h.hexdigest()
    path = Path(source)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode())
            h.update(file_sha256(f).encode())
        return h.hexdigest()
    return file_sha256(path)


def _in_val(text: str, val_frac: float) -> bool:
    if val_frac <= 0:
        return False
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2 ** 64 < val_frac


class _ShardWriter:
    """Appends tokens of one split to numbered shard files of at most ``shard_tokens``."""

    def __init__(self, directory: Path, split: str, dtype: str, shard_tokens: int, vocab: int):
        self.directory, self.split, self.dtype = directory, split, dtype
        self.shard_tokens, self.vocab = shard_tokens, vocab
        self.shards: list[dict] = []
        self.total = 0
        self._fh = None
        self._count = 0

    def write(self, ids: np.ndarray) -> None:
        while ids.size:
            if self._fh is None:
                name = f"{self.split}_{len(self.shards):05d}.bin"
                self._fh = open(self.directory / name, "wb")
                self._fh.write(pack_header(np.dtype(self.dtype).itemsize, 0, self.vocab))
                self.shards.append({"file": name})
                self._count = 0
            take = min(ids.size, self.shard_tokens - self._count)
            ids[:take].astype(DTYPES[self.dtype]).tofile(self._fh)
            self._count += take
            self.total += take
            ids = ids[take:]
            if self._count == self.shard_tokens:
                self._close()

    def _close(self) -> None:
        fh, entry = self._fh, self.shards[-1]
        fh.seek(0)
        fh.write(pack_header(np.dtype(self.dtype).itemsize, self._count, self.vocab))
        fh.close()
        self._fh = None
        entry["tokens"] = self._count
        entry["sha256"] = file_sha256(self.directory / entry["file"])

    def finish(self) -> dict:
        if self._fh is not None:
            self._close()
        return {"tokens": self.total, "shards": self.shards}


def prepare(sources: list[str], *, tokenizer: str, output: str, val_frac: float = 0.0,
            dtype: str = "auto", shard_tokens: int = DEFAULT_SHARD_TOKENS,
            chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: bool = False) -> PrepareResult:
    """Tokenise ``sources`` into shards under ``output`` (see the module docstring)."""
    t0 = time.perf_counter()
    if not sources:
        raise UserError("give at least one source (text, JSONL, Parquet, a datasets "
                        "directory or builtin:default)")
    kinds = [source_kind(s) for s in sources]  # validates every source before any work
    mode, spec = toks.parse_spec(tokenizer)
    if not 0 <= val_frac < 1:
        raise UserError(f"--val-frac must be in [0, 1), got {val_frac}")
    if shard_tokens <= 0 or chunk_bytes <= 0:
        raise UserError("--shard-tokens and --chunk-bytes must be positive")
    out = Path(output).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"output {output!r} already exists; choose a new directory")
    if dtype not in ("auto", "uint16", "uint32"):
        raise UserError(f"--dtype must be auto, uint16 or uint32, got {dtype!r}")
    if mode == "train" and dtype == "uint16" and spec > 1 << 16:
        raise UserError(f"vocabulary of {spec} tokens does not fit uint16 shards "
                        "(at most 65536); use --dtype uint32")
    tok = (toks.train_tokenizer(_all_documents(sources), spec) if mode == "train"
           else toks.load_tokenizer(spec))
    vocab = tok.get_vocab_size()
    if dtype == "uint16" and vocab > 1 << 16:
        raise UserError(f"the tokenizer's vocabulary of {vocab} tokens does not fit uint16 "
                        "shards (at most 65536); use --dtype uint32")
    dtype = dtype if dtype != "auto" else ("uint16" if vocab <= 1 << 16 else "uint32")
    eos = toks.eos_id(tok)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the data from other users
        (tmp / "tokenizer").mkdir()
        (tmp / "tokenizer" / toks.TOKENIZER_FILE).write_text(toks.canonical_json(tok))
        writers = {s: _ShardWriter(tmp, s, dtype, shard_tokens, vocab) for s in ("train", "val")}
        n_docs, peak = _tokenize_all(sources, tok, eos, writers, val_frac, chunk_bytes,
                                     progress)
        splits = {s: w.finish() for s, w in writers.items()}
        if splits["train"]["tokens"] == 0:
            raise UserError("the corpus is empty: no text in " + ", ".join(sources)
                            + ("" if not splits["val"]["tokens"] else
                               " outside the validation split; lower --val-frac"))
        manifest = {
            "format": "workbench-tokens", "version": 1, "dtype": dtype, "vocab_size": vocab,
            "eos_id": eos, "tokenizer_sha256": toks.tokenizer_sha256(tok),
            "tokenizer": "tokenizer/" + toks.TOKENIZER_FILE, "header_bytes": HEADER_BYTES,
            "val_frac": val_frac, "documents": n_docs, "splits": splits,
            "sources": [{"name": Path(s).name if k != "builtin" else s, "kind": k,
                         "sha256": source_sha256(s)} for s, k in zip(sources, kinds)],
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    total = splits["train"]["tokens"] + splits["val"]["tokens"]
    return PrepareResult(output=str(out), vocab_size=vocab, dtype=dtype,
                         train_tokens=splits["train"]["tokens"],
                         val_tokens=splits["val"]["tokens"], documents=n_docs,
                         shards=len(splits["train"]["shards"]) + len(splits["val"]["shards"]),
                         tokenizer_sha256=manifest["tokenizer_sha256"], seconds=seconds,
                         tokens_per_second=total / max(seconds, 1e-9), peak_chunk_bytes=peak)


def _all_documents(sources: list[str]) -> Iterator[str]:
    for s in sources:
        yield from documents(s)


def _tokenize_all(sources, tok, eos, writers, val_frac, chunk_bytes, progress):
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(unit="doc", file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                   desc="tokenizing")
    n_docs, peak = 0, 0
    chunk: list[str] = []
    size = 0

    def flush():
        encoded = tok.encode_batch(chunk, add_special_tokens=False)  # parallel (Rust threads)
        for text, enc in zip(chunk, encoded):
            ids = np.asarray(enc.ids + [eos], dtype=np.int64)
            writers["val" if _in_val(text, val_frac) else "train"].write(ids)
        if bar is not None:
            bar.update(len(chunk))

    for doc in _all_documents(sources):
        if not doc:
            continue
        chunk.append(doc)
        size += len(doc.encode())
        n_docs += 1
        if size >= chunk_bytes:
            peak = max(peak, size)
            flush()
            chunk, size = [], 0
    if chunk:
        peak = max(peak, size)
        flush()
    if bar is not None:
        bar.close()
    return n_docs, peak
