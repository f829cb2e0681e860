"""Irreducible-representation analysis of a group-composition transformer over S_n.

Method: Chughtai et al. (2023), "A toy model of universality": a 1-layer model trained on
``(a, b) -> a∘b`` embeds elements through a few irreps (on S5: sign and the 4-d standard
representation, ~93% of the embedding variance) and its logits approximate
``sum_rho alpha_rho chi_rho(a b c^-1)``. The isotypic projections and key-irrep rule are in
:mod:`workbench.fourier.group_irreps`. We report the irrep variance shares of the embedding
``W_E`` (token axis), the unembedding ``W_U`` and ``W_L = W_out W_U`` (class axis) and of the
logits over the answer axis, plus the character fit: class-centred logits regressed on
``chi_rho(a∘b∘c^-1)`` for every non-trivial irrep (the regressors are orthogonal, so ``r^2``
splits per irrep) and its ``r^2`` over the key irreps of the embedding.

The model and its activations are those of :mod:`workbench.fourier.collect` (1-layer,
LayerNorm-free, inputs ``[a, b, =]`` with "=" right after the ``|G|`` element tokens);
elements come from the run's vocabulary in one-line notation (``"01234"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch

from workbench.errors import UserError
from workbench.fourier.collect import collect_modular, modular_weights
from workbench.fourier.group_irreps import character_table, irrep_decomposition
from workbench.permutations import compose, cycle_type, inverse


def parse_elements(tokens: Sequence[str]) -> tuple[int, list[tuple[int, ...]]]:
    """``(n, elements)`` from one-line-notation tokens; the group must be all of S_n."""
    elements = []
    for tok in tokens:
        perm = tuple(int(c) for c in tok) if tok.isdigit() else None
        if perm is None or sorted(perm) != list(range(len(perm))):
            raise UserError(f"not a permutation token: {tok!r}")
        elements.append(perm)
    n = len(elements[0]) if elements else 0
    size = 1
    for i in range(2, n + 1):
        size *= i
    if not elements or len(set(elements)) != size or any(len(e) != n for e in elements):
        raise UserError(f"irrep analysis needs all of S_n; got {len(elements)} elements of "
                        f"degree {n} (alternating groups are not supported)")
    return n, elements


def character_regressors(elements: Sequence[tuple[int, ...]], n: int) -> torch.Tensor:
    """``X[rho, a, b, c] = chi_rho(a∘b∘c^-1)`` as ``[n_irreps, |G|, |G|, |G|]`` (float64)."""
    table = character_table(n)
    class_index = {c: j for j, c in enumerate(table.classes)}
    index = {g: i for i, g in enumerate(elements)}
    size = len(elements)
    prod = torch.tensor([[index[compose(a, b)] for b in elements] for a in elements])  # [G, G]
    inv = [inverse(c) for c in elements]
    # class of g∘c^-1 for every (g, c)
    cls = torch.tensor([[class_index[cycle_type(compose(g, ci))] for ci in inv]
                        for g in elements])  # [G, G]
    per = cls[prod.reshape(-1)].reshape(size, size, size)  # [a, b, c] class of a∘b∘c^-1
    return table.table[:, per]


@dataclass(frozen=True)
class CharacterFit:
    r2: float  # over the given irreps
    r2_by_irrep: dict[str, float]
    alphas: dict[str, float]


def character_fit(logits: torch.Tensor, elements: Sequence[tuple[int, ...]], n: int,
                  irreps: Sequence[str] | None = None) -> CharacterFit:
    """Fit class-centred ``logits [|G|, |G|, |G|]`` with ``sum_rho alpha_rho chi_rho(a b c^-1)``
    (non-trivial irreps); ``r2`` sums the shares of ``irreps`` (default: all of them)."""
    size = len(elements)
    if logits.shape != (size, size, size):
        raise UserError(f"logits must be [{size}, {size}, {size}], got {tuple(logits.shape)}")
    table = character_table(n)
    x = logits.double()
    x = x - x.mean(dim=2, keepdim=True)  # softmax ignores a per-input offset
    total = float(x.pow(2).sum())
    reg = character_regressors(elements, n)  # [I, G, G, G]
    reg = reg - reg.mean(dim=3, keepdim=True)  # the trivial irrep centres to zero
    by, alphas = {}, {}
    for name, r in zip(table.names, reg):
        norm2 = float(r.pow(2).sum())
        if norm2 <= 1e-9:
            continue
        inner = float((r * x).sum())
        alphas[name] = inner / norm2
        by[name] = inner * inner / norm2 / total if total > 0 else 0.0
    chosen = list(by) if irreps is None else [i for i in irreps if i in by]
    return CharacterFit(r2=float(sum(by[i] for i in chosen)), r2_by_irrep=by, alphas=alphas)


@dataclass(frozen=True, kw_only=True)
class GroupReport:
    """Irrep measures of one group-composition checkpoint (JSON-ready via :meth:`to_json`)."""

    step: int | None
    group: str
    order: int
    key_irreps: list[str]  # of the embedding
    embedding_irreps: dict
    unembedding_irreps: dict
    w_l_irreps: dict
    logit_irreps: dict
    embedding_key_share: float
    character_fit_r2: float  # over the key irreps
    character_fit_r2_all: float  # over every non-trivial irrep
    character_fit_by_irrep: dict[str, float]
    train_accuracy: float
    test_accuracy: float
    accuracy: float

    def to_json(self) -> dict:
        return asdict(self)


def _share(decomp, names: Sequence[str]) -> float:
    return float(sum(s for name, s in zip(decomp.names, decomp.shares) if name in names))


def analyze_group_model(state: Mapping[str, torch.Tensor], tokens: Sequence[str], *,
                        n_heads: int, act_fn: str = "relu",
                        train_mask: torch.Tensor | None = None,
                        step: int | None = None) -> GroupReport:
    """All irrep measures of one checkpoint; ``tokens`` are the element tokens in model order."""
    n, elements = parse_elements(tokens)
    size = len(elements)
    weights = modular_weights(state)
    emb = irrep_decomposition(weights.w_e[:size], n, elements=elements)
    unemb = irrep_decomposition(weights.w_u.T, n, elements=elements)
    w_l = irrep_decomposition(weights.w_l.T, n, elements=elements)
    acts = collect_modular(state, size, n_heads=n_heads, act_fn=act_fn)
    logits = acts.logits.double()  # [G, G, G]
    logit_dec = irrep_decomposition(logits, n, dim=2, elements=elements)
    fit = character_fit(logits, elements, n, irreps=emb.key_irreps)
    index = {g: i for i, g in enumerate(elements)}
    labels = torch.tensor([[index[compose(a, b)] for b in elements] for a in elements])
    correct = logits.argmax(dim=-1) == labels  # [G, G]
    mask = torch.ones(size, size, dtype=torch.bool) if train_mask is None else train_mask.bool()

    def acc(m: torch.Tensor) -> float:
        return float(correct[m].double().mean()) if m.any() else float("nan")

    return GroupReport(
        step=step, group=f"S{n}", order=size, key_irreps=emb.key_irreps,
        embedding_irreps=emb.to_json(), unembedding_irreps=unemb.to_json(),
        w_l_irreps=w_l.to_json(), logit_irreps=logit_dec.to_json(),
        embedding_key_share=_share(emb, emb.key_irreps), character_fit_r2=fit.r2,
        character_fit_r2_all=float(sum(fit.r2_by_irrep.values())),
        character_fit_by_irrep=fit.r2_by_irrep, train_accuracy=acc(mask),
        test_accuracy=acc(~mask), accuracy=float(correct.double().mean()))


__all__ = ["CharacterFit", "GroupReport", "analyze_group_model", "character_fit",
           "character_regressors", "parse_elements"]
