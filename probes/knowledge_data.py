"""Token-level bioS data for the knowledge experiment: biographies with their attribute-anchor
positions, name-only inputs, QA examples with their answer tokens, and probe labels.

Everything is encoded with a ``tokenizers.Tokenizer`` (the pretraining data's) behind the
end-of-text token that separates documents in training, so position 0 is what the model saw
before every document. Anchors of a biography (Allen-Zhu & Li, Physics of LMs 3.1, P-probing):
``name`` = the last token of the first occurrence of the full name; ``before:A`` = the token
just before attribute A's value (the value's first token is predicted from there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from training.corpora.biographies import Biography, Person, QAPair, token_index
from training.corpora.bios_templates import ATTRIBUTES
from workbench.errors import UserError

ANCHORS = ("name",) + tuple(f"before:{a}" for a in ATTRIBUTES)


@dataclass(frozen=True)
class Encoded:
    """Right-padded token ids [N, T] with ``lengths`` [N] and ``anchors`` [N, P] (token
    indices), ``labels`` [N, A] (class index per attribute) and ``person_ids`` [N]."""

    ids: torch.Tensor
    lengths: torch.Tensor
    anchors: torch.Tensor
    anchor_names: tuple[str, ...]
    labels: torch.Tensor
    person_ids: torch.Tensor


def label_value(person: Person, attribute: str) -> str:
    """The class a probe predicts for ``attribute``: the value itself, except the birth date
    whose first token (the month) stands for it, as the paper predicts first tokens."""
    if attribute == "birth_date":
        return str(person.birth_month)
    return person.value(attribute)


def label_classes(people: Sequence[Person]) -> dict[str, list[str]]:
    """Sorted class names per attribute over ``people``."""
    return {a: sorted({label_value(p, a) for p in people}) for a in ATTRIBUTES}


def _encode(tok, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    from training.lm.tokenizer import eos_id
    enc = tok.encode(text)
    # position 0 is the end-of-text token the model saw before every training document
    return [eos_id(tok)] + list(enc.ids), [(-1, -1)] + [tuple(o) for o in enc.offsets]


def _pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return ids, torch.tensor([len(r) for r in rows])


def _labels(people: Sequence[Person], classes: dict[str, list[str]]) -> torch.Tensor:
    index = {a: {c: i for i, c in enumerate(cs)} for a, cs in classes.items()}
    return torch.tensor([[index[a][label_value(p, a)] for a in ATTRIBUTES] for p in people])


def bio_anchors(bio: Biography, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Token index of every anchor of :data:`ANCHORS` in ``bio`` (``offsets`` of its
    encoding with the leading end-of-text token)."""
    body = offsets[1:]
    name = 1 + token_index(body, bio.name_spans[0].end - 1)
    before = [token_index(body, bio.value_spans[a].start) for a in ATTRIBUTES]  # 1 + i - 1
    return [name] + before


def encode_biographies(tok, bios: Sequence[Biography], people: dict[int, Person],
                       classes: dict[str, list[str]], n_ctx: int) -> Encoded:
    rows, anchors = [], []
    for bio in bios:
        ids, offsets = _encode(tok, bio.text)
        anchor = bio_anchors(bio, offsets)
        if max(anchor) >= n_ctx:
            raise UserError(f"a biography of person {bio.person_id} is {len(ids)} tokens, longer"
                            f" than the model's context {n_ctx}; use a larger n_ctx")
        rows.append(ids[:n_ctx])
        anchors.append(anchor)
    ids, lengths = _pad(rows, rows[0][0])
    persons = [people[b.person_id] for b in bios]
    return Encoded(ids=ids, lengths=lengths, anchors=torch.tensor(anchors),
                   anchor_names=ANCHORS, labels=_labels(persons, classes),
                   person_ids=torch.tensor([b.person_id for b in bios]))


def encode_names(tok, persons: Sequence[Person], classes: dict[str, list[str]]) -> Encoded:
    """Q-probing inputs: the full name alone; the anchor is its last token."""
    rows = [_encode(tok, p.full_name)[0] for p in persons]
    ids, lengths = _pad(rows, rows[0][0])
    return Encoded(ids=ids, lengths=lengths, anchors=(lengths - 1)[:, None],
                   anchor_names=("name",), labels=_labels(persons, classes),
                   person_ids=torch.tensor([p.id for p in persons]))


@dataclass(frozen=True)
class QAEncoded:
    """QA texts [N, T] right-padded; ``answer_mask`` [N, T] marks the answer's tokens."""

    ids: torch.Tensor
    answer_mask: torch.Tensor
    attributes: tuple[str, ...]
    person_ids: torch.Tensor


def encode_qa(tok, pairs: Sequence[QAPair]) -> QAEncoded:
    rows, masks = [], []
    for q in pairs:
        ids, offsets = _encode(tok, q.text)
        start = q.answer_span.start
        # a byte-level token carries its leading space: " Paris" is (start - 1, end)
        mask = [end > start for _, end in offsets]
        assert any(mask) and not mask[1], q.text
        rows.append(ids)
        masks.append(mask)
    ids, _ = _pad(rows, rows[0][0])
    answer = torch.zeros_like(ids, dtype=torch.bool)
    for i, m in enumerate(masks):
        answer[i, :len(m)] = torch.tensor(m)
    return QAEncoded(ids=ids, answer_mask=answer, attributes=tuple(q.attribute for q in pairs),
                     person_ids=torch.tensor([q.person_id for q in pairs]))
