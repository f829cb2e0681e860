"""Exact runtime semantics of a discrete Transformer Program, standard library only.

The exported program inlines this module's source (everything below the marker line), so the
discrete model (:mod:`programs.discrete`) and every exported program share one definition of
attention selection. Selection rule for a categorical head at query position ``i``: among the
key positions ``j`` whose key satisfies the predicate (``j <= i`` when causal), take the one with
the smallest :func:`rank` -- the closest position, the left one on a distance tie, the query's own
position last; when nothing matches, take position 0 (BOS). Padding positions (``live[j]`` false)
are never keys, as under the usual attention mask.
"""

# --- runtime: inlined into exported programs below this line ---


def rank(i, j, n):
    """Preference of key position j for query position i (lower wins); self is ranked last."""
    if i == j:
        return 2 * n
    distance = abs(i - j)
    return 2 * distance - 1 if j < i else 2 * distance


def select(keys, queries, predicate, causal, live=None):
    """For each query position, the key position it attends to (0 when nothing matches)."""
    n = len(keys)
    chosen = []
    for i, q in enumerate(queries):
        best, best_rank = 0, None
        for j in range(i + 1 if causal else n):
            if (live is None or live[j]) and predicate(q, keys[j]):
                r = rank(i, j, n)
                if best_rank is None or r < best_rank:
                    best, best_rank = j, r
        chosen.append(best)
    return chosen


def aggregate(chosen, values):
    """The value at each chosen key position (a categorical head's output)."""
    return [values[j] for j in chosen]


def numerical_aggregate(keys, queries, predicate, values, causal, live=None):
    """For each query position, the sum of ``values`` over every matching key position."""
    n = len(keys)
    return [sum(values[j] for j in range(i + 1 if causal else n)
                if (live is None or live[j]) and predicate(q, keys[j]))
            for i, q in enumerate(queries)]


def saturate(values, limit):
    """A numerical MLP's input: values above ``limit`` read as ``limit`` (its table's edge)."""
    return [min(v, limit) for v in values]


def lookup(table, default, first, second):
    """An MLP as a lookup table over pairs of input values."""
    return [table.get((a, b), default) for a, b in zip(first, second)]


def unembed(terms, bias, labels, n):
    """Per-position argmax of bias + the summed logit rows, in the model's summation order.

    ``terms`` is a list of ``(kind, values, table)``: kind "cat" adds ``table[value]``, kind
    "num" adds ``value * table``, kind "const" adds ``table`` (a variable pruned from the program
    whose row is the same for every value it can take).
    """
    out = []
    for i in range(n):
        total = list(bias)
        for kind, values, table in terms:
            if kind == "cat":
                row = table[values[i]]
                total = [t + r for t, r in zip(total, row)]
            elif kind == "num":
                v = values[i]
                total = [t + v * r for t, r in zip(total, table)]
            else:
                total = [t + r for t, r in zip(total, table)]
        out.append(labels[max(range(len(total)), key=total.__getitem__)])
    return out
