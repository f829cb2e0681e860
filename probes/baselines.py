"""Random-initialisation baseline: the same probes on a model of the same shape whose weights
were never trained.

Method: rebuild the model with fresh random weights (in-house runs: the native transformer
with another ``init_seed``; Hugging Face models: the architecture's own ``_init_weights``),
collect the same sites and positions on the same data (cached in ``ACTS/baseline-random``),
and fit the same probe. Accuracy a random network already gives comes from the input tokens
and the architecture, not from training (Zhang & Bowman 2018, "Language Modeling Teaches You
More than Translation Does"; Hewitt & Liang 2019). The embedding-layer baseline needs no
model: it is the probe on layer 0 (:attr:`probes.fit.ProbeResult.embedding_baseline`).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from probes.activations import check_same_model, read_manifest
from probes.collect import collect_activations
from probes.fit import fit_probes
from probes.sources import ModelSource, config_hash, load_data
from workbench.errors import UserError


@dataclass(frozen=True, kw_only=True)
class BaselineResult:
    name: str  # "random-init"
    directory: str
    test_score: list[list[float]]  # [site][position], like ProbeResult.test_score
    best: dict


def random_model(model: ModelSource, *, seed: int = 1) -> ModelSource:
    """``model``'s architecture with fresh random weights (deterministic per ``seed``)."""
    cfg = model.model_config
    if cfg is not None and "n_layers" in cfg:
        from workbench.models import ModelConfig, to_bridge
        shape = ModelConfig.from_dict({**cfg, "init_seed": int(cfg.get("init_seed", 0)) + seed})
        device = next(model.bridge.parameters()).device
        bridge = to_bridge(shape, device=device)
    else:
        bridge = copy.deepcopy(model.bridge)
        hf = getattr(bridge, "original_model", None)
        if hf is None or not hasattr(hf, "_init_weights"):
            raise UserError(f"cannot build a randomly initialised copy of model {model.name}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            hf.apply(hf._init_weights)
            if hasattr(hf, "tie_weights"):
                hf.tie_weights()
    return dataclasses.replace(model, bridge=bridge, name=f"{model.name} (random init)",
                               config_hash=config_hash({"random_init_of": model.config_hash,
                                                        "seed": seed}))


def random_init_baseline(acts_dir: str | Path, target, model: ModelSource, *,
                         seed: int = 1, **fit_options) -> BaselineResult:
    """Collect ``acts_dir``'s sites and positions on a random-init copy of ``model`` and fit
    the same probe (``fit_options`` as for :func:`probes.fit.fit_probes`)."""
    manifest = read_manifest(acts_dir)
    check_same_model(manifest, model.identity, acts_dir)
    spec = manifest["spec"]
    rand = random_model(model, seed=seed)
    out = Path(acts_dir) / "baseline-random"
    collect_activations(rand, load_data(rand, spec["data"]), out, layers=spec["layers"],
                        hooks=spec["hooks"], positions=spec["positions"],
                        chunk_size=manifest["chunk_size"], dtype=manifest["dtype"],
                        backend=spec["backend"])
    result = fit_probes(str(out), target, **fit_options)
    return BaselineResult(name="random-init", directory=str(out), test_score=result.test_score,
                          best=result.best)
