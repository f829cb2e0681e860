"""Logits of a native in-house transformer at chosen positions only.

When the loss reads a few positions (the grokking task reads only the last of three), the last
block only needs queries, the attention output, the MLP and the unembedding at those positions;
keys and values still come from every position. This is the same function as the full forward
restricted to those positions (to float rounding), at a fraction of the cost, and it runs on the
very parameters that are checkpointed and re-loaded as a ``TransformerBridge``.

Configurations this path does not cover (rotary positions, gated MLPs, grouped-query attention,
soft caps) fall back to the module's own full forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supports_fast_path(model: torch.nn.Module) -> bool:
    cfg = model.cfg
    return (model.pos is not None and not cfg.gated_mlp and not cfg.n_key_value_heads
            and float(cfg.attn_scores_soft_cap) <= 0 and float(cfg.output_logits_soft_cap) <= 0
            and (cfg.act_fn or "relu") in ("relu", "gelu", "gelu_new", "silu"))


def _act(name: str):
    return {"relu": F.relu, "gelu": F.gelu, "silu": F.silu,
            "gelu_new": lambda x: F.gelu(x, approximate="tanh")}[name]


# Below this many query-key pairs per head, scores and mixing are broadcast products rather than
# batched matmuls: a [batch * heads] stack of 1x32 @ 32x3 products is dominated by per-matrix
# overhead on CPU (the grokking model spent a fifth of its step there).
_BROADCAST_PAIRS = 16


def _attention(attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               q_pos: torch.Tensor | None, causal: bool) -> torch.Tensor:
    """Attention output from projected queries ``q`` [batch, n_q, heads * d_head] over
    projected keys and values ``k``, ``v`` [batch, seq, heads * d_head]."""
    batch, n_q, _ = q.shape
    seq = k.shape[1]
    n_heads, d_head = attn.n_heads, attn.d_head
    q = q.view(batch, n_q, n_heads, d_head)
    k = k.view(batch, seq, n_heads, d_head)
    v = v.view(batch, seq, n_heads, d_head)
    if causal:
        rows = torch.arange(seq, device=q.device) if q_pos is None else q_pos
        mask = torch.arange(seq, device=q.device)[None, :] > rows[:, None]  # [n_q, seq]
    if n_q * seq <= _BROADCAST_PAIRS:
        scores = (q[:, :, None] * k[:, None]).sum(-1) / attn.scale  # [batch, n_q, seq, head]
        if causal:
            scores = scores.masked_fill(mask[:, :, None], float("-inf"))
        pattern = scores.softmax(dim=2)
        z = (pattern[..., None] * v[:, None]).sum(2)  # [batch, n_q, head, d_head]
    else:
        scores = torch.matmul(q.transpose(1, 2), k.permute(0, 2, 3, 1)) / attn.scale
        if causal:  # scores [batch, head, n_q, seq]
            scores = scores.masked_fill(mask, float("-inf"))
        pattern = scores.softmax(dim=-1)
        z = torch.matmul(pattern, v.transpose(1, 2)).transpose(1, 2)  # [batch, n_q, head, d]
    return F.linear(z.reshape(batch, n_q, n_heads * d_head), attn.o.weight, attn.o.bias)


def _embedding_projection(model, tokens: torch.Tensor, weight: torch.Tensor,
                          bias: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``(W_E[tokens] + W_pos) @ weight.T + bias`` at positions ``pos``, by table lookup.

    Without a norm before the first block, a projection of the embeddings is a projection of
    each vocabulary row and each position row: two small tables instead of a matmul over
    every token of the batch (the bulk of the grokking model's attention cost).
    """
    tok_table = F.linear(model.tok_embed.weight, weight)  # [vocab, out]
    pos_table = F.linear(model.pos.weight[pos], weight, bias)  # [n_pos, out]
    # F.embedding, not indexing: its backward sums rows into the table in one pass, where
    # index_put with accumulate took a fifth of the grokking step
    return F.embedding(tokens[:, pos], tok_table) + pos_table  # [batch, n_pos, out]


def logits_at(model: torch.nn.Module, tokens: torch.Tensor,
              positions: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[batch, len(positions), d_vocab_out]`` (all positions when ``positions`` is None).

    ``positions`` is a 1-D index tensor shared by the whole batch.
    """
    if not supports_fast_path(model):
        logits = model(tokens)
        return logits if positions is None else logits[:, positions]
    cfg = model.cfg
    causal = cfg.attention_dir == "causal"
    seq = tokens.shape[1]
    act = _act(cfg.act_fn or "relu")
    n_blocks = len(model.layers)
    all_pos = torch.arange(seq, device=tokens.device)
    x = None  # residual stream [batch, seq, d_model], built lazily: a one-block model with
    # chosen positions only needs it at those positions
    for i, block in enumerate(model.layers):
        last = i == n_blocks - 1 and positions is not None
        q_pos = positions if last else all_pos
        attn = block.attn
        if i == 0 and isinstance(block.ln1, torch.nn.Identity):
            q = _embedding_projection(model, tokens, attn.q.weight, attn.q.bias, q_pos)
            k = _embedding_projection(model, tokens, attn.k.weight, attn.k.bias, all_pos)
            v = _embedding_projection(model, tokens, attn.v.weight, attn.v.bias, all_pos)
        else:
            if x is None:
                x = model.tok_embed(tokens) + model.pos.weight[:seq]
            h = block.ln1(x)  # [batch, seq, d_model]
            q = F.linear(h[:, q_pos] if last else h, attn.q.weight, attn.q.bias)
            k = F.linear(h, attn.k.weight, attn.k.bias)
            v = F.linear(h, attn.v.weight, attn.v.bias)
        if x is None:
            resid = model.tok_embed(tokens[:, q_pos]) + model.pos.weight[q_pos]  # [b, n_q, d]
        else:
            resid = x[:, positions] if last else x
        x = resid + _attention(attn, q, k, v, positions if last else None, causal)
        if not cfg.attn_only:
            mlp = block.mlp
            hidden = act(F.linear(block.ln2(x), mlp.fc_in.weight, mlp.fc_in.bias))
            x = x + F.linear(hidden, mlp.fc_out.weight, mlp.fc_out.bias)
    if x is None:  # no blocks
        x = model.tok_embed(tokens) + model.pos.weight[:seq]
        x = x if positions is None else x[:, positions]
    return model.head(model.ln_out(x))
