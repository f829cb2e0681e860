"""Position specs: which token positions of each example a probe reads.

A spec is a comma-separated list of items, each naming one position per example:

- ``N`` / ``-N``: a token index (negative counts from the example's last real token, so ``-1``
  is the last token whatever the example's length); ``A:B`` expands to ``A, A+1, ..., B-1``;
  ``all``: every position (examples must then all have the same length);
- span anchors, for data records that carry character spans (bioS biographies and QA pairs
  written with ``training.corpora.write_corpus(..., meta=True)``): ``before:X`` the token just
  before span X starts (the P-probing position of attribute X), ``start:X`` its first token,
  ``end:X`` its last token, ``after:X`` the token after it. X is an attribute of
  ``value_spans``, ``name`` (the first occurrence of the full name) or ``answer``.

A position outside an example's sequence is a UserError naming the spec and the example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from workbench.errors import UserError

ANCHORS = ("before", "start", "end", "after")


@dataclass(frozen=True)
class PositionItem:
    """One position per example: an index, or an anchor on a named span."""

    label: str
    index: int | None = None
    anchor: str | None = None
    span: str | None = None


def parse_positions(spec: str, seq_len: int | None = None) -> list[PositionItem]:
    """The items of ``spec``; ``all`` needs ``seq_len`` (the common length of the examples)."""
    items: list[PositionItem] = []
    for part in (p.strip() for p in str(spec).split(",")):
        if not part:
            raise UserError(f"empty item in position spec {spec!r}")
        if part == "all":
            if seq_len is None:
                raise UserError("positions 'all' needs examples of one length; list positions "
                                "(e.g. 0:8 or -1) instead")
            items += [PositionItem(str(i), index=i) for i in range(seq_len)]
        elif re.fullmatch(r"-?\d+", part):
            items.append(PositionItem(part, index=int(part)))
        elif m := re.fullmatch(r"(-?\d+):(-?\d+)", part):
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi <= lo:
                raise UserError(f"empty position range {part!r} in {spec!r}")
            items += [PositionItem(str(i), index=i) for i in range(lo, hi)]
        elif m := re.fullmatch(r"(\w+):(\w+)", part):
            if m.group(1) not in ANCHORS:
                raise UserError(f"unknown position anchor {m.group(1)!r} in {spec!r}: use "
                                f"{', '.join(ANCHORS)} (e.g. before:birth_city)")
            items.append(PositionItem(part, anchor=m.group(1), span=m.group(2)))
        else:
            raise UserError(f"bad position {part!r} in {spec!r}: use N, -N, A:B, all or "
                            "before:SPAN / start: / end: / after:")
    labels = [i.label for i in items]
    if len(set(labels)) != len(labels):
        raise UserError(f"position spec {spec!r} names a position twice")
    return items


def needs_spans(items: Sequence[PositionItem]) -> bool:
    return any(i.anchor for i in items)


def _token_of(offsets: Sequence[tuple[int, int]], char: int) -> int | None:
    for i, (start, end) in enumerate(offsets):
        if start <= char < end or start >= char:
            return i
    return None


def resolve(items: Sequence[PositionItem], length: int, *, example: int,
            spans: dict[str, tuple[int, int]] | None = None,
            offsets: Sequence[tuple[int, int]] | None = None) -> list[int]:
    """Token index of every item for one example of ``length`` real tokens.

    ``spans`` maps span names to character ranges and ``offsets`` is the tokenizer's offset
    mapping; both are needed by anchors only.
    """
    out = []
    for item in items:
        if item.anchor is None:
            pos = item.index + length if item.index < 0 else item.index
        else:
            if spans is None or offsets is None:
                raise UserError(f"position {item.label!r} needs data records with character "
                                "spans and a model with a tokenizer")
            if item.span not in spans:
                raise UserError(f"position {item.label!r}: example {example} has no span "
                                f"{item.span!r} (spans: {', '.join(sorted(spans))})")
            start, end = spans[item.span]
            first, last = _token_of(offsets, start), _token_of(offsets, max(start, end - 1))
            if first is None or last is None:
                raise UserError(f"position {item.label!r} lies beyond the tokens of example "
                                f"{example}")
            pos = {"before": first - 1, "start": first, "end": last, "after": last + 1}[
                item.anchor]
        if not 0 <= pos < length:
            raise UserError(f"position {item.label!r} is outside the sequence of example "
                            f"{example} (length {length})")
        out.append(pos)
    return out
