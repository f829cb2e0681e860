"""The decoder-only language model that pretraining optimises: GPT-2 style (learned
positions, LayerNorm, GELU, biases) or Llama style (rotary positions, RMSNorm, SwiGLU), causal
attention through ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU).

Each parameter corresponds one-to-one to a parameter of Hugging Face's ``GPT2LMHeadModel`` or
``LlamaForCausalLM`` (see :mod:`training.lm.hf_export`), and the computation is theirs: GELU is
the tanh approximation (``gelu_pytorch_tanh``), rotary embeddings rotate the two halves of each
head (HF's ``rotate_half``), so exported logits equal ours up to float rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from training.lm.config import LMModelConfig


def _norm(cfg: LMModelConfig) -> nn.Module:
    if cfg.norm == "layernorm":
        return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
    return nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)


def rope_tables(cfg: LMModelConfig, length: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables [length, d_head] (float32), the layout of HF's LlamaRotaryEmbedding."""
    half = torch.arange(0, cfg.d_head, 2, dtype=torch.int64, device=device).float()
    inv_freq = 1.0 / (cfg.rope_theta ** (half / cfg.d_head))  # [d_head / 2]
    t = torch.arange(length, dtype=torch.float32, device=device)
    freqs = torch.outer(t, inv_freq)  # [length, d_head / 2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [length, d_head]
    return emb.cos(), emb.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x [batch, heads, pos, d_head]; cos/sin [pos, d_head]
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: LMModelConfig):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)  # rows: q, k, v
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        b, t, d = x.shape  # [batch, pos, d_model]
        q, k, v = self.qkv(x).split(d, dim=-1)
        q = q.view(b, t, self.n_heads, self.d_head).transpose(1, 2)  # [batch, head, pos, d_head]
        k = k.view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        v = v.view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [batch, head, pos, d_head]
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, cfg: LMModelConfig):
        super().__init__()
        self.gated = cfg.mlp == "swiglu"
        if self.gated:
            self.gate = nn.Linear(cfg.d_model, cfg.d_mlp, bias=cfg.bias)
        self.up = nn.Linear(cfg.d_model, cfg.d_mlp, bias=cfg.bias)
        self.down = nn.Linear(cfg.d_mlp, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: LMModelConfig):
        super().__init__()
        self.norm1, self.attn = _norm(cfg), Attention(cfg)
        self.norm2, self.mlp = _norm(cfg), MLP(cfg)

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class DecoderLM(nn.Module):
    """tokens [batch, pos] -> logits [batch, pos, vocab]."""

    def __init__(self, cfg: LMModelConfig):
        super().__init__()
        self.cfg = cfg
        self.activation_checkpointing = False
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.positions == "learned":
            self.pos_embed = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm_f = _norm(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        if cfg.positions == "rotary":
            cos, sin = rope_tables(cfg, cfg.n_ctx)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        x = self.embed(tokens)  # [batch, pos, d_model]
        rope = None
        if self.cfg.positions == "learned":
            x = x + self.pos_embed(torch.arange(t, device=tokens.device))
        else:
            rope = (self.rope_cos[:t], self.rope_sin[:t])
        for block in self.blocks:
            if self.activation_checkpointing and self.training:
                x = checkpoint(block, x, rope, use_reentrant=False)
            else:
                x = block(x, rope)
        return self.lm_head(self.norm_f(x))  # [batch, pos, vocab]


def init_weights(model: DecoderLM) -> None:
    """GPT-2 initialisation: N(0, init_std), residual output projections scaled by
    1/sqrt(2 n_layers), zero biases, unit norms."""
    cfg = model.cfg
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif "norm" in name:
            nn.init.ones_(p)
        elif name.endswith(("attn.out.weight", "mlp.down.weight")):
            nn.init.normal_(p, 0.0, cfg.init_std / math.sqrt(2 * cfg.n_layers))
        else:
            nn.init.normal_(p, 0.0, cfg.init_std)


def build_model(cfg: LMModelConfig, *, device: torch.device | str | None = None) -> DecoderLM:
    """A freshly initialised model, seeded by ``cfg.init_seed`` in a forked RNG (deterministic,
    global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        model = DecoderLM(cfg)
        init_weights(model)
    return model.to(device) if device is not None else model


def state_dict_untied(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the tied ``lm_head.weight`` alias (the embedding holds it)."""
    state = model.state_dict()
    if getattr(model, "cfg", None) is not None and model.cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    return state
