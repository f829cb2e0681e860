"""Logits of a transformer at chosen positions only, from its TransformerLens-format weights.

When the loss reads a few positions (the grokking task reads only the last of three), the last
block only needs queries, the attention output, the MLP and the unembedding at those positions;
keys and values still come from every position. This is the same function as the full forward
restricted to those positions (to float rounding), at a fraction of the cost. The weights come
from :func:`workbench.weights.model_weights`: for the native module the trainer optimises they
are views of its parameters in their own ``nn.Linear`` layout, so this runs the very kernels of
the module's forward, and gradients reach the parameters; a ``TransformerBridge`` (any model it
loads) works the same way.

Configurations this path does not cover (rotary positions, gated MLPs, grouped-query attention,
soft caps, parallel attention and MLP) fall back to the model's own full forward.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from workbench.activations import supported
from workbench.weights import BlockWeights, ModelWeights, linear_bias, linear_weight, model_weights


def supports_fast_path(model) -> bool:
    return _supports(model_weights(model))


def _supports(w: ModelWeights) -> bool:
    return (w.W_pos is not None and not w.gated_mlp and w.n_kv_heads == w.n_heads
            and w.attn_scores_soft_cap <= 0 and w.output_logits_soft_cap <= 0
            and not w.parallel_attn_mlp and (not w.has_mlp or supported(w.act_fn))
            and all(math.isclose(b.attn_scale * b.score_scale, 1.0) for b in w.blocks))


# Below this many query-key pairs per head, scores and mixing are broadcast products rather than
# batched matmuls: a [batch * heads] stack of 1x32 @ 32x3 products is dominated by per-matrix
# overhead on CPU (the grokking model spent a fifth of its step there).
_BROADCAST_PAIRS = 16


def _attention(block: BlockWeights, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               q_pos: torch.Tensor | None, causal: bool) -> torch.Tensor:
    """Attention output from projected queries ``q`` [batch, n_q, heads * d_head] over
    projected keys and values ``k``, ``v`` [batch, seq, heads * d_head]."""
    batch, n_q, _ = q.shape
    seq = k.shape[1]
    n_heads, _, d_head = block.W_Q.shape
    q = q.view(batch, n_q, n_heads, d_head)
    k = k.view(batch, seq, n_heads, d_head)
    v = v.view(batch, seq, n_heads, d_head)
    if causal:
        rows = torch.arange(seq, device=q.device) if q_pos is None else q_pos
        mask = torch.arange(seq, device=q.device)[None, :] > rows[:, None]  # [n_q, seq]
    if n_q * seq <= _BROADCAST_PAIRS:
        scores = (q[:, :, None] * k[:, None]).sum(-1) / block.attn_scale  # [b, n_q, seq, head]
        if causal:
            scores = scores.masked_fill(mask[:, :, None], float("-inf"))
        pattern = scores.softmax(dim=2)
        z = (pattern[..., None] * v[:, None]).sum(2)  # [batch, n_q, head, d_head]
    else:
        scores = torch.matmul(q.transpose(1, 2), k.permute(0, 2, 3, 1)) / block.attn_scale
        if causal:  # scores [batch, head, n_q, seq]
            scores = scores.masked_fill(mask, float("-inf"))
        pattern = scores.softmax(dim=-1)
        z = torch.matmul(pattern, v.transpose(1, 2)).transpose(1, 2)  # [batch, n_q, head, d]
    return F.linear(z.reshape(batch, n_q, n_heads * d_head), linear_weight(block.W_O, "o"),
                    block.b_O)


def _embedding_projection(w: ModelWeights, tokens: torch.Tensor, weight: torch.Tensor,
                          bias: torch.Tensor | None, pos: torch.Tensor) -> torch.Tensor:
    """``(W_E[tokens] + W_pos) @ weight.T + bias`` at positions ``pos``, by table lookup.

    Without a norm before the first block, a projection of the embeddings is a projection of
    each vocabulary row and each position row: two small tables instead of a matmul over
    every token of the batch (the bulk of the grokking model's attention cost).
    """
    tok_table = F.linear(w.W_E, weight)  # [vocab, out]
    pos_table = F.linear(w.W_pos[pos], weight, bias)  # [n_pos, out]
    # F.embedding, not indexing: its backward sums rows into the table in one pass, where
    # index_put with accumulate took a fifth of the grokking step
    return F.embedding(tokens[:, pos], tok_table) + pos_table  # [batch, n_pos, out]


def logits_at(model, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[batch, len(positions), d_vocab_out]`` (all positions when ``positions`` is None).

    ``model``: TransformerLens's native module or a ``TransformerBridge``; ``positions`` is a
    1-D index tensor shared by the whole batch.
    """
    w = model_weights(model)
    if not _supports(w):
        logits = model(tokens)
        return logits if positions is None else logits[:, positions]
    seq = tokens.shape[1]
    act = w.act if w.has_mlp else None
    n_blocks = w.n_layers
    all_pos = torch.arange(seq, device=tokens.device)
    x = None  # residual stream [batch, seq, d_model], built lazily: a one-block model with
    # chosen positions only needs it at those positions
    for i, block in enumerate(w.blocks):
        last = i == n_blocks - 1 and positions is not None
        q_pos = positions if last else all_pos
        wq, wk, wv = (linear_weight(m, "qkv") for m in (block.W_Q, block.W_K, block.W_V))
        bq, bk, bv = (linear_bias(b) for b in (block.b_Q, block.b_K, block.b_V))
        if i == 0 and block.ln1.kind is None:
            q = _embedding_projection(w, tokens, wq, bq, q_pos)
            k = _embedding_projection(w, tokens, wk, bk, all_pos)
            v = _embedding_projection(w, tokens, wv, bv, all_pos)
        else:
            if x is None:
                x = F.embedding(tokens, w.W_E) + w.W_pos[:seq]
            h = block.ln1.exact(x)  # [batch, seq, d_model]
            q = F.linear(h[:, q_pos] if last else h, wq, bq)
            k = F.linear(h, wk, bk)
            v = F.linear(h, wv, bv)
        if x is None:
            resid = F.embedding(tokens[:, q_pos], w.W_E) + w.W_pos[q_pos]  # [b, n_q, d]
        else:
            resid = x[:, positions] if last else x
        x = resid + _attention(block, q, k, v, positions if last else None, w.causal)
        if block.W_in is not None:
            hidden = act(F.linear(block.ln2.exact(x), linear_weight(block.W_in, "in"),
                                  block.b_in))
            x = x + F.linear(hidden, linear_weight(block.W_out, "in"), block.b_out)
    if x is None:  # no blocks
        x = F.embedding(tokens, w.W_E) + w.W_pos[:seq]
        x = x if positions is None else x[:, positions]
    logits = F.linear(w.ln_final.exact(x), linear_weight(w.W_U, "in"))
    return logits if w.b_U is None else logits + w.b_U
