"""Position specs: indices, ranges, span anchors, and positions outside the sequence."""

from __future__ import annotations

import pytest

from probes.positions import parse_positions, resolve
from workbench.errors import UserError


def test_indices_and_ranges():
    items = parse_positions("0,-1,2:4")
    assert [i.label for i in items] == ["0", "-1", "2", "3"]
    assert resolve(items, 6, example=0) == [0, 5, 2, 3]
    assert resolve(parse_positions("all", seq_len=3), 3, example=0) == [0, 1, 2]


def test_outside_the_sequence_is_a_user_error():
    with pytest.raises(UserError, match="position '5' is outside the sequence of example 3"):
        resolve(parse_positions("5"), 4, example=3)
    with pytest.raises(UserError, match="outside"):
        resolve(parse_positions("-5"), 4, example=0)
    for bad in ("x", "3:1", "0,0", "around:name", ""):
        with pytest.raises(UserError):
            parse_positions(bad)
    with pytest.raises(UserError, match="one length"):
        parse_positions("all")


def test_span_anchors():
    # tokens: "Ada" " was" " born" " in" " Rome" "."
    offsets = [(0, 3), (3, 7), (7, 12), (12, 15), (15, 20), (20, 21)]
    spans = {"birth_city": (16, 20), "name": (0, 3)}
    items = parse_positions("before:birth_city,start:birth_city,end:name,after:name")
    assert resolve(items, 6, example=0, spans=spans, offsets=offsets) == [3, 4, 0, 1]
    with pytest.raises(UserError, match="no span 'major'"):
        resolve(parse_positions("before:major"), 6, example=0, spans=spans, offsets=offsets)
    with pytest.raises(UserError, match="outside"):
        resolve(parse_positions("before:name"), 6, example=0, spans=spans, offsets=offsets)
    with pytest.raises(UserError, match="needs data records"):
        resolve(parse_positions("before:name"), 6, example=0)
