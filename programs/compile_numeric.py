"""Numerical heads and numerical MLPs of a Transformer Program as softmax attention + ReLU units.

Used by :mod:`programs.compile`; every unit is ``(reads, bias, writes)``: ``relu(sum w x[c] +
bias)`` added with weight ``w`` to each written column, exact on the values the program can take.

Numerical head (the number ``c`` of allowed keys matching the query, BOS included when it
matches): softmax attention cannot count, but it can average. The bridge head scores BOS and the
non-BOS matches 0 and everything else ``-MATCH``, and reads 1 at BOS only, so it outputs
``x = 1 / (c' + 1)`` with ``c'`` the non-BOS matches (:func:`share_head`). The layer's MLP
decodes ``c' = sum_m [x < t_m]``, ``t_m`` halfway between ``1/(m+1)`` and ``1/m``, each step two
ReLUs that are exact at those values (:func:`count_units`), and adds BOS's own match
(:func:`bos_match_units`): a function of the query value and the key's value at position 0,
fixed for ``tokens`` (BOS) and ``positions`` (0), else copied from position 0 by a helper head
(:func:`copy_from_bos_head`). The count lands as an exact integer in one residual column, which
the unembedding reads linearly.

Numerical MLP (a lookup table over two counts ``a, b``): ``z = W a + b`` (``W`` above every
``b``) is distinct for each pair, and the table's one-hot output is piecewise linear in ``z``
through those points: one ReLU unit per point, ``relu(z - z_i)``, exact at the points
(:func:`table_units`). It needs the decoded counts, so it runs one bridge layer after them.
"""

from __future__ import annotations

Unit = tuple[list[tuple[int, float]], float, list[tuple[int, float]]]


def count_units(share_col: int, count_col: int, n_ctx: int) -> list[Unit]:
    """Decode ``x = 1/(c'+1)`` in ``share_col`` into ``+c'`` in ``count_col`` (``c' < n_ctx``)."""
    steep = 4.0 * n_ctx * (n_ctx + 1)  # steps reach 0/1 within a quarter of the gap to 1/(m+1)
    units: list[Unit] = []
    for m in range(1, n_ctx + 1):
        t = 0.5 * (1.0 / m + 1.0 / (m + 1))
        # relu(u + 1) - relu(u), u = steep (t - x): 1 once x < t (c' >= m), 0 once x > t
        units.append(([(share_col, -steep)], steep * t + 1.0, [(count_col, 1.0)]))
        units.append(([(share_col, -steep)], steep * t, [(count_col, -1.0)]))
    return units


def bos_match_units(query_cols: dict[int, int], predicate, count_col: int, *,
                    bos_value: int | None = None,
                    bos_key_cols: dict[int, int] | None = None) -> list[Unit]:
    """``+1`` in ``count_col`` where BOS's key matches the query (``query_cols``: value -> column).

    ``bos_value``: the key's value at position 0 is fixed (tokens: BOS, positions: 0);
    ``bos_key_cols``: its one-hot at position 0, copied to every position (value -> column).
    """
    units: list[Unit] = []
    for value, col in query_cols.items():
        target = predicate[value]
        if bos_key_cols is None:
            if target == bos_value:
                units.append(([(col, 1.0)], 0.0, [(count_col, 1.0)]))
        elif target in bos_key_cols:
            units.append(([(col, 1.0), (bos_key_cols[target], 1.0)], -1.0, [(count_col, 1.0)]))
    return units


def table_units(cols: tuple[int, int], domains: tuple, table, out_cols: dict[int, int], *,
                gate_col: int | None = None) -> tuple[list[Unit], dict[int, float]]:
    """``(units, constant)`` realising ``out = onehot(table[a][b])`` from integer columns.

    ``constant`` (column -> value) is the output at the smallest ``z``, for the layer's output
    bias. With ``gate_col`` (1 at position 0, else 0) the units fire at position 0 only and the
    constant comes from one more unit instead (the ``@bos`` copy of the output).
    """
    da, db = domains
    width = max(db) + 1
    points = sorted({(width * a + b, table[a][b]) for a in da for b in db})
    zs = [z for z, _ in points]
    rows = [{out_cols[o]: 1.0} for _, o in points]
    units: list[Unit] = []
    span = zs[-1] - zs[0] + 1.0
    gate = [] if gate_col is None else [(gate_col, span)]
    shift = 0.0 if gate_col is None else -span  # closed unless the gate is 1
    slope_before: dict[int, float] = {}
    for i in range(1, len(zs)):
        dz = zs[i] - zs[i - 1]
        slope = {c: (rows[i].get(c, 0.0) - rows[i - 1].get(c, 0.0)) / dz
                 for c in set(rows[i]) | set(rows[i - 1])}
        change = {c: slope.get(c, 0.0) - slope_before.get(c, 0.0)
                  for c in set(slope) | set(slope_before)}
        writes = [(c, w) for c, w in sorted(change.items()) if w != 0.0]
        if writes:
            units.append(([(cols[0], float(width)), (cols[1], 1.0), *gate],
                          -float(zs[i - 1]) + shift, writes))
        slope_before = slope
    constant = dict(rows[0])
    if gate_col is not None:
        units.append(([(gate_col, 1.0)], 0.0, sorted(constant.items())))
        constant = {}
    return units, constant


def share_head(*, query_cols: dict[int, int], key_cols: dict[int, int],
               key_bos_cols: dict[int, int], predicate, position_cols: list[int],
               p0_col: int, share_col: int, match: float, scale: float, n_ctx: int,
               k: int, pad: tuple[int, int] | None):
    """Sparse ``(q, k, v, o)`` entries of the head computing ``1/(c'+1)``.

    Entries are ``(head dim, column, weight)`` (``o``: ``(column, head dim, weight)``). Match
    dims ``0..k-1``: ``q = match onehot(P[query])``, ``k = key - key@bos`` (no match score at
    BOS); position dims ``k..k+n-1``: ``-match`` for every key but position 0; ``pad``
    (``(ones column, pad column)``): ``-3 match`` at padding keys.
    """
    q, kk, v, o = [], [], [], []
    for value, col in query_cols.items():
        if predicate[value] in key_cols:
            q.append((predicate[value], col, match * scale))
    for value, col in key_cols.items():
        kk.append((value, col, 1.0))
        kk.append((value, key_bos_cols[value], -1.0))
    for i in range(n_ctx):
        q.append((k + i, position_cols[i], scale))
        for j in range(1, n_ctx):
            kk.append((k + i, position_cols[j], -match))
    if pad is not None:
        ones_col, pad_col = pad
        q.append((k + n_ctx, ones_col, match * scale))
        kk.append((k + n_ctx, pad_col, -3.0))
    v.append((0, p0_col, 1.0))
    o.append((share_col, 0, 1.0))
    return q, kk, v, o


def copy_from_bos_head(*, value_cols: dict[int, int], out_cols: dict[int, int], ones_col: int,
                       p0_col: int, match: float, scale: float):
    """Sparse ``(q, k, v, o)`` entries of a head that always reads position 0 (BOS)."""
    q = [(0, ones_col, match * scale)]
    kk = [(0, p0_col, 1.0)]
    v = [(value, col, 1.0) for value, col in value_cols.items()]
    o = [(out_cols[value], value, 1.0) for value in value_cols]
    return q, kk, v, o
