"""Collect activations for probing: residual stream (and optionally attention / MLP outputs) at
chosen token positions, streamed to disk in safetensors chunks with a manifest.

Method: one forward per batch through the model's TransformerBridge with
``run_with_cache(names_filter=...)`` (only the requested hooks are kept; TransformerLens hook
names), or through nnsight (``.output.save()`` on the same hook points). Layer ``L`` is the
residual stream entering block ``L`` (``0`` = embeddings, ``n_layers`` = the final residual);
``attn.L`` / ``mlp.L`` are block ``L-1``'s attention and MLP outputs; a raw hook name
(``blocks.1.attn.hook_z``) is taken as is. Each example contributes ``[n_positions, d]`` per
site, gathered on the device right after the forward, so memory is bounded by one chunk.

Layout of an activations directory::

    manifest.json          model identity (run id, step, config hash), data, sites, positions,
                           counts, chunk plan, complete flag
    chunk_00000.safetensors  per site [count, n_positions, d]; tokens / positions [count, P];
                           the examples' columns as JSON in the header

Chunks are written atomically (temp file + rename) so a kill leaves whole chunks only; a rerun
with the same arguments skips them (resume). A directory holding another model's or another
dataset's activations is refused. Reference: standard probing practice (Belinkov 2022,
"Probing Classifiers: Promises, Shortcomings, and Advances").
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from probes.positions import needs_spans, parse_positions, resolve
from probes.sources import DataSource, ModelSource
from workbench.checkpoint import atomic_write_json, save_checkpoint
from workbench.errors import UserError, check_choice

FORMAT = "workbench-probe-activations/1"
KINDS = ("resid", "attn", "mlp")
_BLOCK_HOOKS = {"resid": "hook_resid_post", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}


@dataclass(frozen=True)
class Site:
    """One place activations are read: ``name`` (e.g. ``resid.3``), its hook and layer."""

    name: str
    hook: str
    layer: int | None
    kind: str


@dataclass(frozen=True, kw_only=True)
class CollectResult:
    directory: str
    n_examples: int
    sites: tuple[str, ...]
    positions: tuple[str, ...]
    chunks_written: int
    chunks_skipped: int
    tokens: int  # tokens run through the model in this call
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def parse_layers(spec: str, n_layers: int) -> list[int]:
    """``all``, ``last``, ``N``, ``A:B`` or a comma list of these; 0 = embeddings."""
    out: list[int] = []
    for part in (p.strip() for p in str(spec).split(",")):
        if part == "all":
            out += range(n_layers + 1)
        elif part == "last":
            out.append(n_layers)
        elif re.fullmatch(r"\d+", part):
            out.append(int(part))
        elif m := re.fullmatch(r"(\d+):(\d+)", part):
            out += range(int(m.group(1)), int(m.group(2)))
        else:
            raise UserError(f"bad layer {part!r} in {spec!r}: use all, last, N, A:B")
    bad = [layer for layer in out if layer > n_layers]
    if bad:
        raise UserError(f"layer {bad[0]} does not exist: the model has layers 0-{n_layers} "
                        "(0 = embeddings)")
    return list(dict.fromkeys(out))


def _order_key(site: Site) -> tuple:
    # nnsight reads hooks in execution order: embeddings, then per block attn, mlp, resid
    return (site.layer if site.layer is not None else 10**6,
            {"resid": 2, "attn": 0, "mlp": 1}.get(site.kind, 3))


def make_sites(model: ModelSource, layers: str, hooks: str | list[str]) -> list[Site]:
    """The sites for a layer spec and hook kinds / raw hook names; each hook must exist."""
    parts = hooks if isinstance(hooks, list) else [h.strip() for h in str(hooks).split(",")]
    layer_list = parse_layers(layers, model.n_layers)
    sites = []
    for part in parts:
        if part in KINDS:
            for layer in layer_list:
                if part != "resid" and layer == 0:
                    continue  # no attention / MLP output before the first block
                hook = ("blocks.0.hook_resid_pre" if layer == 0 else
                        f"blocks.{layer - 1}.{_BLOCK_HOOKS[part]}")
                sites.append(Site(f"{part}.{layer}", hook, layer, part))
        elif "hook" in part:
            m = re.match(r"blocks\.(\d+)\.", part)
            sites.append(Site(part, part, int(m.group(1)) + 1 if m else None, "raw"))
        else:
            raise UserError(f"unknown hook {part!r}: use resid, attn, mlp or a hook name "
                            "such as blocks.0.attn.hook_z")
    hook_names = set(model.bridge.hook_dict)
    for site in sites:
        if site.hook not in hook_names:
            raise UserError(f"model {model.name} has no hook {site.hook!r}")
    if not sites:
        raise UserError("no sites to collect: attn and mlp outputs start at layer 1")
    return sorted(sites, key=_order_key)


def _forward(model: ModelSource, sites: list[Site], tokens: torch.Tensor, backend: str):
    """Activations of every site for a batch: name -> [batch, seq, ...]."""
    if backend == "bridge":
        names = [s.hook for s in sites]
        _, cache = model.bridge.run_with_cache(tokens, names_filter=names)
        return {s.name: cache[s.hook] for s in sites}
    from workbench.models import wrap_nnsight
    traced = getattr(model, "_nnsight", None) or wrap_nnsight(model.bridge)
    model._nnsight = traced
    saved = {}
    with traced.trace(tokens):
        for site in sites:
            node = traced
            for part in site.hook.split("."):
                node = node[int(part)] if part.isdigit() else getattr(node, part)
            saved[site.name] = node.output.save()
    return {k: getattr(v, "value", v) for k, v in saved.items()}


def _plan(model: ModelSource, data: DataSource, sites, positions, chunk_size: int,
          dtype: str, backend: str, layers: str, hooks, positions_spec: str) -> dict:
    return {"format": FORMAT, "model": model.identity, "data": {
        "source": data.description, "hash": data.data_hash},
        "sites": [{"name": s.name, "hook": s.hook, "layer": s.layer, "kind": s.kind}
                  for s in sites],
        "positions": positions, "n_examples": data.count, "chunk_size": chunk_size,
        "n_chunks": -(-data.count // chunk_size), "dtype": dtype,
        "spec": {"data": data.ref, "layers": layers, "hooks": hooks,
                 "positions": positions_spec, "backend": backend}}


def _same_plan(old: dict, new: dict) -> str | None:
    """What differs between an existing manifest and this call (None: resumable)."""
    for key, what in (("model", "another model"), ("data", "other data"),
                      ("sites", "other sites"), ("positions", "other positions"),
                      ("chunk_size", "another chunk size"), ("dtype", "another dtype")):
        if old.get(key) != new.get(key):
            return f"{what} ({old.get(key)!r})"
    return None


def _validate(data: DataSource, items, n_ctx: int) -> None:
    """One pass over the data (no model): every position resolves, every example fits the
    context, so bad input is refused before anything is written."""
    for i, ex in enumerate(data):
        if not ex.tokens:
            raise UserError(f"example {i} has no tokens")
        if len(ex.tokens) > n_ctx:
            raise UserError(f"example {i} has {len(ex.tokens)} tokens, more than the model's "
                            f"context of {n_ctx}")
        resolve(items, len(ex.tokens), example=i, spans=ex.spans, offsets=ex.offsets)


def collect_activations(model: ModelSource, data: DataSource, out: str | Path, *,
                        layers: str = "all", positions: str = "-1", hooks: str = "resid",
                        batch_size: int = 64, chunk_size: int = 4096, dtype: str = "float32",
                        backend: str = "bridge", progress: bool = False) -> CollectResult:
    """Stream activations of ``model`` on ``data`` to ``out`` (resumable; see module doc)."""
    check_choice(backend, "backend", ("bridge", "nnsight"))
    check_choice(dtype, "dtype", ("float32", "float16", "bfloat16"))
    for label, value in (("batch size", batch_size), ("chunk size", chunk_size)):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{label} must be a positive integer, got {value!r}")
    sites = make_sites(model, layers, hooks)
    seq_len = None
    if "all" in (p.strip() for p in str(positions).split(",")):
        lengths = {len(ex.tokens) for ex in data}  # "all" needs the examples' common length
        seq_len = lengths.pop() if len(lengths) == 1 else None
    items = parse_positions(positions, seq_len=seq_len)
    if needs_spans(items) and model.tokenizer is None:
        raise UserError(f"positions {positions!r} use spans, which need a model with a tokenizer")
    _validate(data, items, model.n_ctx)
    out = Path(out)
    plan = _plan(model, data, sites, [i.label for i in items], chunk_size, dtype, backend,
                 layers, hooks, positions)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if (diff := _same_plan(old, plan)) is not None:
            raise UserError(f"{str(out)!r} holds activations of {diff}; choose another "
                            "output directory")
    elif out.exists() and any(out.iterdir()):
        raise UserError(f"output directory {str(out)!r} exists and is not an activations "
                        "directory")
    atomic_write_json(manifest_path, {**plan, "complete": False})
    torch_dtype = getattr(torch, dtype)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=data.count, unit="ex", file=sys.stderr, dynamic_ncols=True,
                   mininterval=0.5, desc="collect")
    written = skipped = tokens_run = 0
    start = time.perf_counter()
    chunk: list = []
    pad_id = getattr(model.tokenizer, "pad_token_id", None) or 0
    device = next(model.bridge.parameters()).device

    def flush(index: int, examples: list) -> None:
        nonlocal written, tokens_run
        acts = {s.name: [] for s in sites}
        pos_all = []
        for b in range(0, len(examples), batch_size):
            batch = examples[b:b + batch_size]
            width = max(len(ex.tokens) for ex, _ in batch)
            # right padding: with causal attention padding never changes earlier positions
            x = torch.full((len(batch), width), pad_id, dtype=torch.long)
            for r, (ex, _) in enumerate(batch):
                x[r, :len(ex.tokens)] = torch.tensor(ex.tokens)
            pos = torch.tensor([p for _, p in batch], device=device)  # [b, P]
            with torch.inference_mode():
                got = _forward(model, sites, x.to(device), backend)
                rows = torch.arange(len(batch), device=device)[:, None]
                for s in sites:
                    acts[s.name].append(got[s.name][rows, pos].to("cpu", torch_dtype))
            pos_all.append(pos.cpu())
            tokens_run += sum(len(ex.tokens) for ex, _ in batch)
        positions_t = torch.cat(pos_all)  # [count, P]
        token_ids = torch.stack([torch.tensor(ex.tokens)[p] for (ex, _), p in
                                 zip(examples, positions_t)])
        tensors = {s.name: torch.cat(acts[s.name]) for s in sites}
        tensors.update(positions=positions_t, tokens=token_ids)
        save_checkpoint(out / f"chunk_{index:05d}.safetensors", tensors,
                        {"start": index * chunk_size, "columns": [ex.columns for ex, _ in
                                                                  examples]})
        written += 1

    index = 0
    for i, ex in enumerate(data):
        chunk.append((ex, resolve(items, len(ex.tokens), example=i, spans=ex.spans,
                                  offsets=ex.offsets)))
        if len(chunk) == chunk_size or i == data.count - 1:
            if (out / f"chunk_{index:05d}.safetensors").is_file():
                skipped += 1
            else:
                flush(index, chunk)
            if bar is not None:
                bar.update(len(chunk))
            chunk, index = [], index + 1
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    atomic_write_json(manifest_path, {**plan, "complete": True})
    return CollectResult(directory=str(out), n_examples=data.count,
                         sites=tuple(s.name for s in sites), positions=tuple(plan["positions"]),
                         chunks_written=written, chunks_skipped=skipped, tokens=tokens_run,
                         seconds=seconds)
