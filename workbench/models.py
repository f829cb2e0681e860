"""The model layer: in-house transformers from a frozen config, as TransformerLens 4
``TransformerBridge`` models; Hugging Face-format directories loaded offline; nnsight wrapping.

An in-house model is TransformerLens's native module (``bridge.original_model``): a plain torch
module the trainer optimises directly. Its state dict is what checkpoints store, next to the
``ModelConfig`` JSON, so :func:`to_bridge` rebuilds exactly the trained model for analysis.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from workbench.errors import UserError

ActFn = Literal["relu", "gelu", "gelu_new", "silu"]
Norm = Literal["LN", "RMS", "LNPre", "RMSPre"] | None


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture of an in-house transformer (saved with every checkpoint)."""

    n_layers: int = 1
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    d_vocab: int = 114
    d_vocab_out: int = 113
    n_ctx: int = 3
    act_fn: ActFn = "relu"
    normalization_type: Norm = None
    attn_only: bool = False
    attention_dir: Literal["causal", "bidirectional"] = "causal"
    positional_embedding_type: Literal["standard", "rotary"] = "standard"
    init_seed: int = 0

    def __post_init__(self):
        for field in ("n_layers", "d_model", "n_heads", "d_head", "d_vocab", "d_vocab_out",
                      "n_ctx"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(f"model.{field} must be a positive integer, got {value!r}")
        if not self.attn_only and (not isinstance(self.d_mlp, int) or self.d_mlp <= 0):
            raise UserError(f"model.d_mlp must be a positive integer, got {self.d_mlp!r}")
        if self.act_fn not in ("relu", "gelu", "gelu_new", "silu"):
            raise UserError(f"model.act_fn must be relu, gelu, gelu_new or silu, "
                            f"got {self.act_fn!r}")
        if self.normalization_type not in (None, "LN", "RMS", "LNPre", "RMSPre"):
            raise UserError(f"model.normalization_type must be LN, RMS, LNPre, RMSPre or none, "
                            f"got {self.normalization_type!r}")
        if self.attention_dir not in ("causal", "bidirectional"):
            raise UserError(f"model.attention_dir must be causal or bidirectional, "
                            f"got {self.attention_dir!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UserError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)

    def n_params(self) -> int:
        per_layer = 4 * self.d_model * self.n_heads * self.d_head
        if not self.attn_only:
            per_layer += 2 * self.d_model * self.d_mlp
        return (self.d_vocab + self.n_ctx + self.d_vocab_out) * self.d_model + \
            self.n_layers * per_layer


def _bridge_config(cfg: ModelConfig):
    from transformer_lens.config import TransformerBridgeConfig

    return TransformerBridgeConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_head=cfg.d_head,
        d_mlp=cfg.d_mlp, d_vocab=cfg.d_vocab, d_vocab_out=cfg.d_vocab_out, n_ctx=cfg.n_ctx,
        act_fn=cfg.act_fn, normalization_type=cfg.normalization_type, attn_only=cfg.attn_only,
        attention_dir=cfg.attention_dir, positional_embedding_type=cfg.positional_embedding_type,
        seed=cfg.init_seed)


def build_native(cfg: ModelConfig) -> torch.nn.Module:
    """TransformerLens's native transformer as a plain torch module: what the trainer optimises.

    Initialisation is TransformerLens's (the same as ``boot_native``), seeded by
    ``cfg.init_seed`` inside a forked RNG, so it is deterministic and leaves global RNG alone.
    """
    from transformer_lens.model_bridge.sources.native import NativeModel, initialize_native_model

    tl_cfg = _bridge_config(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        model = NativeModel(tl_cfg)
        initialize_native_model(model, tl_cfg)
    return model


def to_bridge(cfg: ModelConfig, state_dict: dict[str, torch.Tensor] | None = None,
              *, device: str | torch.device | None = None):
    """A ``TransformerBridge`` for ``cfg``, with ``state_dict`` (native layout) loaded."""
    from transformer_lens.model_bridge.sources.native import build_bridge_from_module

    model = build_native(cfg)
    if state_dict is not None:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        if missing or unexpected:
            raise UserError(f"checkpoint does not match the model config: missing {missing}, "
                            f"unexpected {unexpected}")
    if device is not None:
        model = model.to(device)
    bridge = build_bridge_from_module(model, architecture="TransformerLensNative",
                                      tl_config=model.cfg, device=device, model_name="workbench")
    bridge.eval()
    return bridge


def as_bridge(model):
    """``model`` if it is a ``TransformerBridge``; TransformerLens's native module as a bridge
    around a copy of it (building a bridge replaces a module's submodules in place) whose
    forward equals the module's bit for bit."""
    import copy

    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.model_bridge.sources.native import NativeModel, build_bridge_from_module

    if isinstance(model, TransformerBridge):
        return model
    if not isinstance(model, NativeModel):
        raise UserError(f"expected a TransformerBridge or a native model, got "
                        f"{type(model).__name__}")
    from transformer_lens.model_bridge.generalized_components.normalization import \
        NormalizationBridge

    native = copy.deepcopy(model)
    bridge = build_bridge_from_module(native, architecture="TransformerLensNative",
                                      tl_config=native.cfg, model_name="workbench")
    for component in bridge.modules():
        # the module's own norm kernels (the bridge's default re-derives LayerNorm in Python,
        # a float rounding away), so the bridge computes exactly what the module computes
        if isinstance(component, NormalizationBridge):
            component.use_native_layernorm_autograd = True
    bridge.train(model.training)
    return bridge


def quiet_transformers() -> None:
    """No Hugging Face load bars or notices: a command's stderr is for its one-line errors and
    its stdout for JSON."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_causal_lm(directory: str | os.PathLike, device=None):
    """A Hugging Face-format directory as a plain ``transformers`` causal LM in float32, in
    eval mode, loaded offline (the probes finetune and probe it directly, without hooks)."""
    quiet_transformers()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(directory), torch_dtype=torch.float32)
    return model.to(device).eval() if device else model.eval()


def load_hf_bridge(path: str | os.PathLike, *, device: str | None = None,
                   dtype: torch.dtype | None = None):
    """Boot a Hugging Face-format model directory offline as a ``TransformerBridge``.

    The directory must hold ``config.json``, the weights and a tokenizer (the bridge builds its
    tokenizer at boot). Nothing is fetched from a hub.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{str(path)!r} is not a Hugging Face model directory "
                        "(no config.json)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformer_lens.model_bridge import TransformerBridge

    kwargs = {}
    if device is not None:
        kwargs["device"] = device
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        bridge = TransformerBridge.boot_transformers(str(path), **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot load model directory {str(path)!r}: {exc}") from None
    bridge.eval()
    return bridge


def wrap_nnsight(model: torch.nn.Module):
    """Wrap any torch module (a bridge included) for nnsight tracing."""
    from nnsight import NNsight

    return NNsight(model)
