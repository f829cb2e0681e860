"""Token shards on disk and the batches a run reads from them.

A shard is a 64-byte header (magic ``WBTOKENS``, version, item size, token count, vocabulary
size) followed by the tokens as little-endian uint16 or uint32, read through ``numpy.memmap``.
``manifest.json`` beside the shards lists them per split with their token counts and hashes.

Sampling is stateless: sequence ``j`` of update ``step`` starts at an offset drawn from a
generator seeded by ``(seed, step)``, so the data position of a run is its step number, a
resumed run reads exactly what an uninterrupted one would, and the global batch is the same
whatever the world size (rank ``r`` of ``w`` takes rows ``r*B/w .. (r+1)*B/w`` of it).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench.errors import UserError

MAGIC = b"WBTOKENS"
HEADER_BYTES = 64
VERSION = 1
MANIFEST = "manifest.json"
_HEADER = struct.Struct("<8sIIQQ")  # magic, version, itemsize, n_tokens, vocab_size
DTYPES = {"uint16": np.uint16, "uint32": np.uint32}


def pack_header(itemsize: int, n_tokens: int, vocab_size: int) -> bytes:
    head = _HEADER.pack(MAGIC, VERSION, itemsize, n_tokens, vocab_size)
    return head + b"\0" * (HEADER_BYTES - len(head))


def read_shard(path: Path) -> np.memmap:
    """The tokens of one shard, memory-mapped read-only."""
    with open(path, "rb") as fh:
        raw = fh.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise UserError(f"token shard {str(path)!r} is truncated")
    magic, version, itemsize, n_tokens, _ = _HEADER.unpack(raw[:_HEADER.size])
    if magic != MAGIC or version != VERSION or itemsize not in (2, 4):
        raise UserError(f"{str(path)!r} is not a workbench token shard")
    dtype = np.uint16 if itemsize == 2 else np.uint32
    if n_tokens == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(n_tokens,))


def manifest_sha256(data_dir: str | Path) -> str:
    return hashlib.sha256((Path(data_dir) / MANIFEST).read_bytes()).hexdigest()


def read_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"--data {str(data_dir)!r} is not a prepared data directory (no "
                        f"{MANIFEST}); make one with `workbench data prepare`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"malformed {str(path)!r}: {exc.msg}") from None


class TokenStream:
    """One split's shards as a single virtual token array."""

    def __init__(self, data_dir: str | Path, split: str):
        manifest = read_manifest(data_dir)
        entry = manifest["splits"].get(split, {"shards": []})
        self.shards = [read_shard(Path(data_dir) / s["file"]) for s in entry["shards"]]
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])  # [n_shards + 1]
        self.n_tokens = int(self.starts[-1])

    def window(self, start: int, length: int) -> np.ndarray:
        """Tokens ``start .. start+length`` (may span shards) as int64."""
        out = np.empty(length, dtype=np.int64)
        filled = 0
        i = int(np.searchsorted(self.starts, start, side="right")) - 1
        while filled < length:
            shard = self.shards[i]
            lo = start + filled - int(self.starts[i])
            take = min(length - filled, len(shard) - lo)
            out[filled:filled + take] = shard[lo:lo + take]
            filled += take
            i += 1
        return out


@dataclass(frozen=True)
class BatchPlan:
    """How the global batch of each update splits over ranks and micro-steps."""

    batch_size: int  # global sequences per update
    micro_batch_size: int  # sequences per rank per forward
    world_size: int
    rank: int

    @property
    def accum_steps(self) -> int:
        return self.batch_size // (self.micro_batch_size * self.world_size)


def plan_batches(batch_size: int, micro_batch_size: int, world_size: int,
                 rank: int) -> BatchPlan:
    """Validate that the global batch divides across ranks and micro-batches."""
    if batch_size % world_size:
        raise UserError(f"batch_size {batch_size} does not divide across {world_size} ranks")
    micro = micro_batch_size or batch_size // world_size
    if batch_size % (micro * world_size):
        raise UserError(f"batch_size {batch_size} is not a multiple of micro_batch_size "
                        f"{micro} x {world_size} ranks")
    return BatchPlan(batch_size, micro, world_size, rank)


class Sampler:
    """Training batches of ``seq_len + 1`` tokens at seeded random offsets."""

    def __init__(self, stream: TokenStream, seq_len: int, plan: BatchPlan, seed: int):
        if stream.n_tokens < seq_len + 1:
            raise UserError(f"the training split holds {stream.n_tokens} tokens, fewer than "
                            f"one sequence of {seq_len + 1}")
        self.stream, self.seq_len, self.plan, self.seed = stream, seq_len, plan, seed

    def offsets(self, step: int) -> torch.Tensor:
        """Start offsets of the whole global batch of update ``step`` [batch_size]."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        high = self.stream.n_tokens - self.seq_len
        return torch.randint(0, high, (self.plan.batch_size,), generator=g)

    def micro_batch(self, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) [micro_batch, seq_len] of this rank's micro-step ``micro``."""
        p = self.plan
        per_rank = p.batch_size // p.world_size
        lo = p.rank * per_rank + micro * p.micro_batch_size
        offsets = self.offsets(step)[lo:lo + p.micro_batch_size].tolist()
        rows = np.stack([self.stream.window(o, self.seq_len + 1) for o in offsets])
        rows = torch.from_numpy(rows)  # [micro_batch, seq_len + 1]
        return rows[:, :-1], rows[:, 1:]


def validation_batches(stream: TokenStream, seq_len: int, n_rows: int,
                       batch_size: int) -> list[torch.Tensor]:
    """Fixed validation rows [batch, seq_len + 1], evenly spaced through the split: the same
    rows whatever the world size (``batch_size`` only sets how many go through at once)."""
    n_rows = min(n_rows, (stream.n_tokens - 1) // seq_len)
    if n_rows <= 0:
        return []
    starts = np.linspace(0, stream.n_tokens - seq_len - 1, n_rows).astype(np.int64)
    rows = torch.from_numpy(np.stack([stream.window(int(s), seq_len + 1) for s in starts]))
    return list(rows.split(batch_size))
