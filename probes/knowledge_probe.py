"""P-probing and Q-probing (Allen-Zhu & Li, Physics of LMs 3.1): with the language model
frozen, a trainable low-rank update of its token embedding (``E + U V``, rank 2 for P-probes,
16 for Q-probes) and a linear head on the last layer's (final-norm) state at one anchor
position predict every attribute; trained on one half of the people, accuracy measured on the
other half.

Each anchor position has its own update and heads (one head per attribute, sharing that
position's update); all anchors train together in one forward by stacking the batch once per
anchor, each copy with its own update. The model is causal, so only tokens up to the anchor
matter and the right padding is never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from probes.knowledge_data import Encoded


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    rank: int = 2
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0


@dataclass(frozen=True)
class ProbeTable:
    """Held-out accuracy ``accuracy[anchor][attribute]`` (and on the training people)."""

    anchors: tuple[str, ...]
    attributes: tuple[str, ...]
    accuracy: list[list[float]]
    train_accuracy: list[list[float]]
    chance: list[float]  # majority-class accuracy of the held-out people, per attribute
    n_train: int
    n_test: int
    rank: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _states(model, embed: torch.Tensor, ids: torch.Tensor, update_u, update_v) -> torch.Tensor:
    """Final-norm states [P, B, T, d] of ``ids`` [B, T] under each anchor's update."""
    base = embed[ids]  # [B, T, d]
    delta = torch.einsum("pbtr,prd->pbtd", update_u[:, ids], update_v)  # [P, B, T, d]
    p, b, t, d = delta.shape
    x = (base[None] + delta).reshape(p * b, t, d)
    out = model.base_model(inputs_embeds=x).last_hidden_state  # final norm applied
    return out.reshape(p, b, t, -1)


def fit_knowledge_probe(model, data: Encoded, train: torch.Tensor, n_classes: list[int],
                        attributes: tuple[str, ...], cfg: ProbeConfig) -> ProbeTable:
    """Train on rows ``train`` (bool [N]) of ``data``; held-out accuracy on the others."""
    if not train.any() or train.all():
        raise ValueError("the probe needs people on both sides of the split")
    gen = torch.Generator().manual_seed(cfg.seed)
    model.eval().requires_grad_(False)
    embed = model.get_input_embeddings().weight.detach()  # [V, d]
    vocab, d = embed.shape
    device = embed.device
    data = Encoded(ids=data.ids.to(device), lengths=data.lengths, anchors=data.anchors.to(device),
                   anchor_names=data.anchor_names, labels=data.labels.to(device),
                   person_ids=data.person_ids)
    train = train.to(device)
    n_anchor = data.anchors.shape[1]
    width = int(data.anchors.max()) + 1
    ids = data.ids[:, :width]
    # U starts at zero so training begins at the model's own embedding
    update_u = torch.zeros(n_anchor, vocab, cfg.rank, device=device, requires_grad=True)
    update_v = (torch.randn(n_anchor, cfg.rank, d, generator=gen) * d ** -0.5).to(device)
    update_v.requires_grad_()
    total = sum(n_classes)
    head_w = torch.zeros(n_anchor, d, total, device=device, requires_grad=True)
    head_b = torch.zeros(n_anchor, total, device=device, requires_grad=True)
    params = [update_u, update_v, head_w, head_b]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    bounds = torch.tensor([0] + n_classes).cumsum(0).tolist()
    rows = train.nonzero().squeeze(1)

    def logits(batch: torch.Tensor) -> torch.Tensor:  # [P, B, total]
        h = _states(model, embed, ids[batch], update_u, update_v)  # [P, B, T, d]
        at = data.anchors[batch].T  # [P, B]
        h = h[torch.arange(n_anchor, device=device)[:, None],
              torch.arange(len(batch), device=device)[None], at]
        return torch.einsum("pbd,pdc->pbc", h, head_w) + head_b[:, None]

    for _ in range(cfg.steps):
        pick = torch.randint(len(rows), (min(cfg.batch_size, len(rows)),), generator=gen)
        batch = rows[pick.to(device)]
        out = logits(batch)
        loss = sum(torch.nn.functional.cross_entropy(
            out[:, :, lo:hi].reshape(-1, hi - lo),
            data.labels[batch, a].repeat(n_anchor))
            for a, (lo, hi) in enumerate(zip(bounds, bounds[1:])))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def accuracy(mask: torch.Tensor) -> list[list[float]]:
        chosen = mask.nonzero().squeeze(1)
        correct = torch.zeros(n_anchor, len(n_classes), device=device)
        with torch.no_grad():
            for batch in chosen.split(max(cfg.batch_size, 64)):
                out = logits(batch)
                for a, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
                    pred = out[:, :, lo:hi].argmax(-1)  # [P, B]
                    correct[:, a] += (pred == data.labels[batch, a]).sum(1)
        return (correct / len(chosen)).round(decimals=4).tolist()

    test = ~train
    chance = [round(float(torch.bincount(data.labels[test, a]).max()) / int(test.sum()), 4)
              for a in range(len(n_classes))]
    return ProbeTable(anchors=tuple(data.anchor_names), attributes=tuple(attributes),
                      accuracy=accuracy(test), train_accuracy=accuracy(train), chance=chance,
                      n_train=int(train.sum()), n_test=int(test.sum()), rank=cfg.rank)
