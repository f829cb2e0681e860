"""Comparing two circuits on the same graph: shared edges, Jaccard index, chance overlap.

Chance overlap: if circuit B's ``|B|`` edges were drawn uniformly from the ``n`` edges of the
graph, the expected number shared with A is ``|A|·|B|/n`` (hypergeometric mean); the expected
Jaccard follows from it. Reporting both tells whether an overlap is more than what random
circuits of those sizes would share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from circuits.io import Circuit
from workbench.errors import UserError


@dataclass(frozen=True)
class Comparison:
    n_a: int
    n_b: int
    shared: int
    only_a: int
    only_b: int
    jaccard: float
    total_edges: int
    chance_shared: float
    chance_jaccard: float
    shared_edges: list[str]

    def to_json(self) -> dict:
        return asdict(self)


def compare(a: Circuit, b: Circuit) -> Comparison:
    if a.spec != b.spec:
        raise UserError("the circuits are on different graphs (different models); "
                        f"{a.spec} vs {b.spec}")
    sa, sb = set(a.edges), set(b.edges)
    n = a.graph.n_edges
    shared = sa & sb
    union = len(sa | sb)
    chance = len(sa) * len(sb) / n if n else 0.0
    chance_union = len(sa) + len(sb) - chance
    return Comparison(n_a=len(sa), n_b=len(sb), shared=len(shared), only_a=len(sa - sb),
                      only_b=len(sb - sa), jaccard=len(shared) / union if union else 1.0,
                      total_edges=n, chance_shared=chance,
                      chance_jaccard=chance / chance_union if chance_union else 1.0,
                      shared_edges=sorted(shared))
