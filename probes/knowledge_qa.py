"""QA on bioS: exact-match accuracy per attribute, and the QA finetune of a pretrained model
(all weights, loss on the answer tokens only) on the training half of the people.

Exact match is read in one teacher-forced forward: greedy decoding writes the answer exactly
when the model's argmax at every answer position is the answer's next token, so the two agree
and no generation loop is needed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from probes.knowledge_data import QAEncoded


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0


def _device(model) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


def _answer_logits(model, ids: torch.Tensor, mask: torch.Tensor):
    """Logits predicting each answer token, and those tokens: [M, V], [M]."""
    logits = model(input_ids=ids).logits[:, :-1]  # [B, T-1, V]
    target_mask = mask[:, 1:]
    return logits[target_mask], ids[:, 1:][target_mask]


def qa_accuracy(model, data: QAEncoded, *, batch_size: int = 64) -> dict[str, float]:
    """Exact-match accuracy per attribute (and ``all``)."""
    model.eval()
    hits = []
    with torch.no_grad():
        for start in range(0, len(data.ids), batch_size):
            ids = data.ids[start:start + batch_size].to(_device(model))
            mask = data.answer_mask[start:start + batch_size].to(ids.device)
            pred = model(input_ids=ids).logits[:, :-1].argmax(-1)  # [B, T-1]
            wrong = (pred != ids[:, 1:]) & mask[:, 1:]
            hits += (~wrong.any(1)).tolist()  # on the CPU from here
    hits = torch.tensor(hits, dtype=torch.float)
    out = {}
    for attribute in dict.fromkeys(data.attributes):
        rows = torch.tensor([a == attribute for a in data.attributes])
        out[attribute] = round(float(hits[rows].mean()), 4)
    out["all"] = round(float(hits.mean()), 4)
    return out


def finetune_qa(model, data: QAEncoded, cfg: FinetuneConfig):
    """A finetuned copy of ``model`` (the original is left untouched, for the probes)."""
    tuned = copy.deepcopy(model).train().requires_grad_(True)
    opt = torch.optim.AdamW(tuned.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(data.ids)
    for step in range(cfg.steps):
        batch = torch.randint(n, (min(cfg.batch_size, n),), generator=gen)
        width = int(data.answer_mask[batch].nonzero()[:, 1].max()) + 1
        device = _device(tuned)
        logits, targets = _answer_logits(tuned, data.ids[batch, :width].to(device),
                                         data.answer_mask[batch, :width].to(device))
        loss = torch.nn.functional.cross_entropy(logits, targets)
        for group in opt.param_groups:  # linear decay to zero
            group["lr"] = cfg.lr * (1 - step / cfg.steps)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tuned.parameters(), 1.0)
        opt.step()
    return tuned.eval()


def value_memorisation(model, tok, bios, *, batch_size: int = 64) -> dict[str, float]:
    """How well the pretrained model memorised the biographies: per attribute, the share of
    ``bios`` whose value tokens it writes exactly (teacher-forced argmax, as in
    :func:`qa_accuracy`), and ``loss``, its mean cross-entropy on those tokens (nats)."""
    from probes.knowledge_data import _encode, _pad
    from training.corpora.bios_templates import ATTRIBUTES
    rows, masks = [], []  # masks[i][a]: positions of attribute a's value tokens
    for bio in bios:
        ids, offsets = _encode(tok, bio.text)
        rows.append(ids)
        masks.append({a: [i for i, (lo, hi) in enumerate(offsets) if i and hi > s.start
                          and lo < s.end] for a, s in bio.value_spans.items()})
    ids, _ = _pad(rows, rows[0][0])
    hits = {a: 0 for a in ATTRIBUTES}
    loss, n_tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            batch = ids[start:start + batch_size].to(_device(model))
            logp = model(input_ids=batch).logits[:, :-1].float().log_softmax(-1).cpu()
            for i, mask in enumerate(masks[start:start + batch_size]):
                for a, positions in mask.items():
                    at = torch.tensor(positions) - 1  # the logits predicting each value token
                    target = ids[start + i, at + 1]
                    hits[a] += int((logp[i, at].argmax(-1) == target).all())
                    loss -= float(logp[i, at, target].sum())
                    n_tokens += len(positions)
    out = {a: round(h / len(bios), 4) for a, h in hits.items()}
    out["all"] = round(sum(hits.values()) / (len(bios) * len(ATTRIBUTES)), 4)
    out["loss"] = round(loss / max(n_tokens, 1), 4)
    return out
