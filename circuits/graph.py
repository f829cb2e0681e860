"""The computational graph Edge Pruning searches over: writer and reader nodes, and their edges.

Method (Bhaskar et al., "Finding Transformer Circuits with Edge Pruning", NeurIPS 2024; facts
in ``shared/reference/edge-pruning.md``): *writers* add to the residual stream (token embedding,
position embedding when the model has a learned table, every attention head's output, every
MLP's output); *readers* take an input from it (each head's Q, K and V inputs separately, each
MLP input, and the final read before the last norm and the unembedding). An edge is a
(writer, reader) pair with the writer upstream of the reader; an MLP reads the heads of its own
layer. With grouped-query attention the K and V readers are per key/value head (a K/V head is one
computation shared by its query heads).

Node names: ``tok_embed``, ``pos_embed``, ``a{L}.h{H}`` (head output), ``m{L}`` (MLP output);
readers ``a{L}.h{H}.q``, ``a{L}.g{G}.k``, ``a{L}.g{G}.v`` (G: key/value head), ``m{L}.in``,
``logits``. The edge ``(w, r)`` is written ``"w->r"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch


@dataclass(frozen=True, kw_only=True)
class GraphSpec:
    """Shape of the graph: enough to enumerate nodes and edges without the model."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    has_mlp: bool
    separate_pos: bool  # a learned position table -> its own writer node

    @classmethod
    def from_cfg(cls, cfg) -> "GraphSpec":
        """From a TransformerLens bridge config."""
        n_kv = getattr(cfg, "n_key_value_heads", None) or cfg.n_heads
        pos = getattr(cfg, "positional_embedding_type", "standard") == "standard"
        return cls(n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_kv_heads=n_kv,
                   has_mlp=not getattr(cfg, "attn_only", False), separate_pos=pos)


@dataclass(frozen=True)
class Graph:
    """Writers, readers and the (writer, reader) adjacency as index tensors.

    ``writer_upto[layer]`` is how many writers lie upstream of that layer's attention readers;
    the MLP of that layer also reads the layer's heads: ``writer_upto_mlp[layer]``. Writers are
    ordered so that each reader reads a prefix of the writer list.
    """

    spec: GraphSpec
    writers: tuple[str, ...] = field(init=False)
    readers: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        s = self.spec
        writers = ["tok_embed"] + (["pos_embed"] if s.separate_pos else [])
        readers: list[str] = []
        for layer in range(s.n_layers):
            readers += [f"a{layer}.h{h}.q" for h in range(s.n_heads)]
            readers += [f"a{layer}.g{g}.k" for g in range(s.n_kv_heads)]
            readers += [f"a{layer}.g{g}.v" for g in range(s.n_kv_heads)]
            writers += [f"a{layer}.h{h}" for h in range(s.n_heads)]
            if s.has_mlp:
                readers.append(f"m{layer}.in")
                writers.append(f"m{layer}")
        readers.append("logits")
        object.__setattr__(self, "writers", tuple(writers))
        object.__setattr__(self, "readers", tuple(readers))

    # -- layout -----------------------------------------------------------------------------
    @property
    def n_embed(self) -> int:
        return 2 if self.spec.separate_pos else 1

    @property
    def per_layer_writers(self) -> int:
        return self.spec.n_heads + (1 if self.spec.has_mlp else 0)

    def attn_upto(self, layer: int) -> int:
        """Number of writers upstream of layer ``layer``'s attention."""
        return self.n_embed + layer * self.per_layer_writers

    def mlp_upto(self, layer: int) -> int:
        return self.attn_upto(layer) + self.spec.n_heads

    def final_upto(self) -> int:
        return len(self.writers)

    def head_writer(self, layer: int, head: int) -> int:
        return self.attn_upto(layer) + head

    def mlp_writer(self, layer: int) -> int:
        return self.mlp_upto(layer)

    @property
    def attn_readers_per_layer(self) -> int:
        return self.spec.n_heads + 2 * self.spec.n_kv_heads

    def attn_reader_offset(self, layer: int) -> int:
        """Index of layer ``layer``'s first Q reader in :attr:`readers`."""
        return layer * (self.attn_readers_per_layer + (1 if self.spec.has_mlp else 0))

    def mlp_reader(self, layer: int) -> int:
        return self.attn_reader_offset(layer) + self.attn_readers_per_layer

    @property
    def final_reader(self) -> int:
        return len(self.readers) - 1

    def reader_upto(self, reader: int) -> int:
        """How many writers (a prefix) reader ``reader`` reads."""
        return int(self._reader_upto[reader])

    @cached_property
    def _reader_upto(self) -> torch.Tensor:
        out = torch.empty(len(self.readers), dtype=torch.long)
        for layer in range(self.spec.n_layers):
            a = self.attn_reader_offset(layer)
            out[a:a + self.attn_readers_per_layer] = self.attn_upto(layer)
            if self.spec.has_mlp:
                out[self.mlp_reader(layer)] = self.mlp_upto(layer)
        out[self.final_reader] = self.final_upto()
        return out

    # -- edges ------------------------------------------------------------------------------
    @cached_property
    def edge_mask(self) -> torch.Tensor:
        """``[n_readers, n_writers]`` bool: True where the edge exists."""
        cols = torch.arange(len(self.writers))
        return cols[None, :] < self._reader_upto[:, None]

    @cached_property
    def edge_index(self) -> torch.Tensor:
        """``[n_edges, 2]`` (reader, writer) pairs in row-major order of :attr:`edge_mask`."""
        return self.edge_mask.nonzero()

    @property
    def n_edges(self) -> int:
        return int(self.edge_mask.sum())

    def edge_names(self) -> list[str]:
        return [f"{self.writers[w]}->{self.readers[r]}" for r, w in self.edge_index.tolist()]

    def edge_id(self, name: str) -> int:
        return self._edge_ids[name]

    @cached_property
    def _edge_ids(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.edge_names())}

    @staticmethod
    def reader_node(reader: str) -> str:
        """The computation a reader feeds: ``a0.h1.q`` -> ``a0.h1``; ``a0.g0.k`` -> ``a0.g0``."""
        if reader == "logits":
            return "logits"
        if reader.endswith(".in"):
            return reader[:-3]
        return reader.rsplit(".", 1)[0]


def edge_count(spec: GraphSpec) -> int:
    """Closed-form number of edges (tested against the enumeration).

    Per layer ``l``, ``H + 2·H_kv`` attention readers each read ``E + l·(H + M)`` writers;
    the MLP reads ``E + l·(H + M) + H``; the final read sees all ``E + L·(H + M)`` writers
    (``E`` embedding writers, ``M`` = 1 with MLPs). GPT-2 small (E = 2): 32,936.
    """
    e, h, g, n = (2 if spec.separate_pos else 1), spec.n_heads, spec.n_kv_heads, spec.n_layers
    m = 1 if spec.has_mlp else 0
    per = h + m
    total = 0
    for layer in range(n):
        upstream = e + layer * per
        total += (h + 2 * g) * upstream + m * (upstream + h)
    return total + e + n * per
