"""Export to (and import from) the Hugging Face format: a directory with ``config.json``,
``model.safetensors`` and the tokenizer files, which ``AutoModelForCausalLM.from_pretrained``
and ``TransformerBridge.boot_transformers`` load offline.

The mapping is a rename: GPT-2 style models become ``GPT2LMHeadModel`` (its ``Conv1D`` layers
store weights transposed, so those are transposed), Llama style ones ``LlamaForCausalLM`` (the
fused q/k/v rows are split). ``from_hf_state`` inverts it exactly (transposes and splits are
lossless), which is how a run resumes from a checkpoint directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from training.lm.config import LMModelConfig
from training.lm.tokenizer import eos_id, save_hf_tokenizer

WEIGHTS = "model.safetensors"
WORKBENCH_META = "workbench.json"


def hf_config(cfg: LMModelConfig, eos: int) -> dict:
    """The ``config.json`` of the equivalent Hugging Face model."""
    if cfg.family == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
                "vocab_size": cfg.vocab_size, "n_positions": cfg.n_ctx, "n_ctx": cfg.n_ctx,
                "n_embd": cfg.d_model, "n_layer": cfg.n_layers, "n_head": cfg.n_heads,
                "n_inner": cfg.d_mlp, "activation_function": "gelu_pytorch_tanh",
                "layer_norm_epsilon": cfg.norm_eps, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
                "attn_pdrop": 0.0, "initializer_range": cfg.init_std,
                "tie_word_embeddings": cfg.tie_embeddings, "bos_token_id": eos,
                "eos_token_id": eos, "torch_dtype": "float32"}
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": cfg.vocab_size, "max_position_embeddings": cfg.n_ctx,
            "hidden_size": cfg.d_model, "intermediate_size": cfg.d_mlp,
            "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
            "num_key_value_heads": cfg.n_heads, "head_dim": cfg.d_head, "hidden_act": "silu",
            "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
            "attention_bias": False, "mlp_bias": False, "attention_dropout": 0.0,
            "initializer_range": cfg.init_std, "tie_word_embeddings": cfg.tie_embeddings,
            "bos_token_id": eos, "eos_token_id": eos, "torch_dtype": "float32"}


def _gpt2_names(cfg: LMModelConfig) -> list[tuple[str, str, bool]]:
    """(native name, HF name, transposed) for every stored tensor."""
    pairs = [("embed.weight", "transformer.wte.weight", False),
             ("pos_embed.weight", "transformer.wpe.weight", False),
             ("norm_f.weight", "transformer.ln_f.weight", False),
             ("norm_f.bias", "transformer.ln_f.bias", False)]
    for i in range(cfg.n_layers):
        n, h = f"blocks.{i}.", f"transformer.h.{i}."
        for ours, theirs in (("norm1", "ln_1"), ("norm2", "ln_2")):
            pairs += [(n + ours + ".weight", h + theirs + ".weight", False),
                      (n + ours + ".bias", h + theirs + ".bias", False)]
        for ours, theirs in (("attn.qkv", "attn.c_attn"), ("attn.out", "attn.c_proj"),
                             ("mlp.up", "mlp.c_fc"), ("mlp.down", "mlp.c_proj")):
            pairs += [(n + ours + ".weight", h + theirs + ".weight", True),
                      (n + ours + ".bias", h + theirs + ".bias", False)]
    if not cfg.tie_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight", False))
    return pairs


def _llama_names(cfg: LMModelConfig) -> list[tuple[str, str]]:
    pairs = [("embed.weight", "model.embed_tokens.weight"), ("norm_f.weight", "model.norm.weight")]
    for i in range(cfg.n_layers):
        n, h = f"blocks.{i}.", f"model.layers.{i}."
        pairs += [(n + "norm1.weight", h + "input_layernorm.weight"),
                  (n + "norm2.weight", h + "post_attention_layernorm.weight"),
                  (n + "attn.out.weight", h + "self_attn.o_proj.weight"),
                  (n + "mlp.gate.weight", h + "mlp.gate_proj.weight"),
                  (n + "mlp.up.weight", h + "mlp.up_proj.weight"),
                  (n + "mlp.down.weight", h + "mlp.down_proj.weight")]
    if not cfg.tie_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight"))
    return pairs


def to_hf_state(cfg: LMModelConfig, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Native state dict -> Hugging Face names and layouts (contiguous CPU tensors)."""
    out: dict[str, torch.Tensor] = {}
    if cfg.family == "gpt2":
        for ours, theirs, transposed in _gpt2_names(cfg):
            t = state[ours]
            out[theirs] = t.t() if transposed else t
    else:
        for ours, theirs in _llama_names(cfg):
            out[theirs] = state[ours]
        for i in range(cfg.n_layers):
            q, k, v = state[f"blocks.{i}.attn.qkv.weight"].split(cfg.d_model, dim=0)
            h = f"model.layers.{i}.self_attn."
            out[h + "q_proj.weight"], out[h + "k_proj.weight"], out[h + "v_proj.weight"] = q, k, v
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def from_hf_state(cfg: LMModelConfig, hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_hf_state` (exact)."""
    out: dict[str, torch.Tensor] = {}
    if cfg.family == "gpt2":
        for ours, theirs, transposed in _gpt2_names(cfg):
            out[ours] = hf[theirs].t().contiguous() if transposed else hf[theirs]
    else:
        for ours, theirs in _llama_names(cfg):
            out[ours] = hf[theirs]
        for i in range(cfg.n_layers):
            h = f"model.layers.{i}.self_attn."
            out[f"blocks.{i}.attn.qkv.weight"] = torch.cat(
                [hf[h + "q_proj.weight"], hf[h + "k_proj.weight"], hf[h + "v_proj.weight"]])
    if cfg.tie_embeddings:
        out["lm_head.weight"] = out["embed.weight"]
    return out


def write_hf_dir(directory: str | Path, cfg: LMModelConfig, state: dict[str, torch.Tensor],
                 tokenizer, meta: dict) -> Path:
    """Write a complete HF model directory atomically: everything goes into a temporary
    sibling renamed into place, so ``directory`` is either absent or whole."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.",
                                suffix=".tmp"))
    try:
        tmp.chmod(0o755)
        config = hf_config(cfg, eos_id(tokenizer))
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        # "format": "pt" is what transformers requires of a safetensors header
        save_file(to_hf_state(cfg, state), str(tmp / WEIGHTS),
                  metadata={"format": "pt", "workbench": json.dumps(meta, sort_keys=True)})
        save_hf_tokenizer(tokenizer, tmp)
        (tmp / WORKBENCH_META).write_text(json.dumps(
            {**meta, "model": cfg.to_dict()}, indent=2, sort_keys=True) + "\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if directory.exists():  # a stale copy from a run killed after this step: replace it
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_hf_dir(directory: str | Path) -> tuple[LMModelConfig, dict[str, torch.Tensor], dict]:
    """(model config, native state dict, workbench metadata) of a directory we wrote."""
    directory = Path(directory)
    meta = json.loads((directory / WORKBENCH_META).read_text())
    cfg = LMModelConfig.from_dict(meta.pop("model"))
    return cfg, from_hf_state(cfg, load_file(str(directory / WEIGHTS))), meta
