"""Reading an activations directory written by :mod:`probes.collect` back into tensors.

A directory that is incomplete (collection killed and not resumed), from another format, or
from another model than the one given is refused with a one-line UserError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from probes.collect import FORMAT
from workbench.errors import UserError


@dataclass
class Activations:
    """Activations of every site at every position, plus the examples' columns and tokens."""

    directory: Path
    manifest: dict
    acts: dict[str, torch.Tensor]  # site -> [n, n_positions, d]
    tokens: torch.Tensor  # [n, n_positions] token id at each probed position
    columns: list[dict]  # per example

    @property
    def sites(self) -> list[str]:
        return list(self.acts)

    @property
    def positions(self) -> list[str]:
        return list(self.manifest["positions"])

    @property
    def n(self) -> int:
        return len(self.columns)

    @property
    def model(self) -> dict:
        return self.manifest["model"]

    def column(self, name: str) -> list:
        missing = next((i for i, c in enumerate(self.columns) if name not in c), None)
        if missing is not None:
            known = sorted(self.columns[missing]) if self.columns else []
            raise UserError(f"example {missing} has no column {name!r} (columns: "
                            f"{', '.join(known) or 'none'})")
        return [c[name] for c in self.columns]


def read_manifest(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / "manifest.json"
    if not path.is_file():
        raise UserError(f"{str(directory)!r} is not an activations directory (no manifest.json)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise UserError(f"{str(directory)!r} holds format {manifest.get('format')!r}, not "
                        f"{FORMAT}")
    if not manifest.get("complete"):
        raise UserError(f"{str(directory)!r} is incomplete: rerun the same `probes collect` "
                        "to finish it")
    return manifest


def check_same_model(manifest: dict, identity: dict, directory) -> None:
    """Refuse activations collected from another model than ``identity``."""
    ours = {k: manifest["model"].get(k) for k in ("run_id", "step", "config_hash")}
    theirs = {k: identity.get(k) for k in ("run_id", "step", "config_hash")}
    if ours != theirs:
        raise UserError(f"{str(directory)!r} holds activations of model "
                        f"{manifest['model'].get('name')} step {ours['step']}, not of "
                        f"{identity.get('name')} step {theirs['step']}")


def load_activations(directory: str | Path, sites: list[str] | None = None) -> Activations:
    """All chunks of ``directory`` (only ``sites`` when given) as float32 tensors."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    known = [s["name"] for s in manifest["sites"]]
    wanted = known if sites is None else sites
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise UserError(f"{str(directory)!r} has no site {unknown[0]!r} (sites: "
                        f"{', '.join(known)})")
    paths = [directory / f"chunk_{index:05d}.safetensors"
             for index in range(manifest["n_chunks"])]
    if not paths:
        raise UserError(f"{str(directory)!r} holds no examples")
    # each site's tensor is allocated once and filled chunk by chunk: no list of chunks
    # beside the concatenation (which would hold the activations twice); the chunks' row
    # counts come from their headers first
    rows = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"{str(directory)!r} is missing {path.name}")
        with safe_open(str(path), framework="pt") as fh:
            rows.append(fh.get_slice("tokens").get_shape()[0])
    acts: dict[str, torch.Tensor] = {}
    tokens, columns = [], []
    start = 0
    for path, count in zip(paths, rows):
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["workbench"])
            for s in wanted:
                part = fh.get_tensor(s)
                if s not in acts:
                    acts[s] = torch.empty(sum(rows), *part.shape[1:])
                acts[s][start:start + count] = part  # float32, whatever was stored
            tokens.append(fh.get_tensor("tokens"))
        columns += meta["columns"]
        start += count
    assert all(a.shape[0] == len(columns) for a in acts.values())
    return Activations(directory=directory, manifest=manifest, acts=acts,
                       tokens=torch.cat(tokens), columns=columns)
