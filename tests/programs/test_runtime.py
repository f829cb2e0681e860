"""The attention tie-breaking rule on hand-built cases, in the runtime and the discrete model."""

from __future__ import annotations

import pytest
import torch

from programs import runtime
from programs.discrete import rank_matrix, select


def eq(q, k):
    return q == k


@pytest.mark.parametrize("keys, queries, causal, expected", [
    # closest match wins: query at 3 matches keys at 1 and 5 (distance 2 both) -> left one
    (["x", "a", "y", "a", "y", "a"], ["a"] * 6, False, [1, 3, 1, 1, 3, 3]),
    # the query's own position is ranked last: position 2 matches itself and position 5
    (["BOS", "b", "a", "c", "c", "a"], ["z", "z", "a", "z", "z", "z"], False, [0, 0, 5, 0, 0, 0]),
    # nothing matches -> BOS (position 0)
    (["BOS", "a", "b"], ["q", "q", "q"], False, [0, 0, 0]),
    # self is the only match -> self
    (["BOS", "a", "b"], ["q", "a", "q"], False, [0, 1, 0]),
    # BOS matching is an ordinary match ranked by distance (closer non-BOS match wins)
    (["BOS", "BOS", "x", "x"], ["BOS"] * 4, False, [1, 0, 1, 1]),
    # causal: keys after the query are invisible
    (["BOS", "x", "a", "x", "a"], ["a"] * 5, True, [0, 0, 2, 2, 2]),
])
def test_select_tie_breaking(keys, queries, causal, expected):
    assert runtime.select(keys, queries, eq, causal) == expected
    # the discrete model's vectorised selection follows the same rule
    vocab = sorted(set(keys) | set(queries))
    ids = {t: i for i, t in enumerate(vocab)}
    q = torch.tensor([[ids[t] for t in queries]])
    k = torch.tensor([[ids[t] for t in keys]])
    identity = torch.arange(len(vocab))
    chosen, _ = select(q, k, identity, causal, rank_matrix(len(keys)))
    assert chosen[0].tolist() == expected


def test_rank_orders_distance_left_then_self_last():
    n = 6
    ranks = [[runtime.rank(i, j, n) for j in range(n)] for i in range(n)]
    for i in range(n):
        assert ranks[i][i] == max(ranks[i])
        assert len(set(ranks[i])) == n  # no ties possible
        for j in range(n):
            for j2 in range(n):
                if i not in (j, j2) and abs(i - j) < abs(i - j2):
                    assert ranks[i][j] < ranks[i][j2]
        if 0 < i < n - 1:
            assert ranks[i][i - 1] < ranks[i][i + 1]


def test_numerical_aggregate_counts_matches():
    keys = ["BOS", "a", "b", "a", "a"]
    assert runtime.numerical_aggregate(keys, keys, eq, [1] * 5, False) == [1, 3, 1, 3, 3]
    assert runtime.numerical_aggregate(keys, keys, eq, [1] * 5, True) == [1, 1, 1, 2, 3]


def test_padding_keys_never_match():
    keys = ["BOS", "a", "PAD", "a", "PAD"]
    live = [k != "PAD" for k in keys]
    # query "a" at position 3: the closest match would be the PAD-free a at 1; a PAD query sees
    # no PAD key and falls back to BOS
    assert runtime.select(keys, keys, eq, False, live) == [0, 3, 0, 1, 0]
    assert runtime.select(keys, keys, eq, False) == [0, 3, 4, 1, 2]
    assert runtime.numerical_aggregate(keys, keys, eq, [1] * 5, False, live) == [1, 2, 0, 2, 0]
    assert runtime.numerical_aggregate(keys, keys, eq, [1] * 5, False) == [1, 2, 2, 2, 2]


def test_unembed_first_maximum_wins():
    terms = [("cat", ["u", "v"], {"u": [1.0, 1.0], "v": [0.0, 2.0]}), ("num", [2, 0], [0.5, 0.5])]
    assert runtime.unembed(terms, [0.0, 0.0], ["A", "B"], 2) == ["A", "B"]
