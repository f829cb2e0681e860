import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.group_irreps import (character, character_table, irrep_decomposition,
                                            isotypic_projectors, symmetric_group)
from workbench.permutations import compose, cycle_type, sign


@pytest.mark.parametrize("n,dims", [(3, [1, 2, 1]), (4, [1, 3, 2, 3, 1]),
                                    (5, [1, 4, 5, 6, 5, 4, 1])])
def test_character_tables_are_orthogonal_with_the_right_dimensions(n, dims):
    t = character_table(n)
    assert t.dims == dims
    order = sum(t.class_sizes)
    sizes = torch.tensor(t.class_sizes, dtype=torch.float64)
    gram = (t.table * sizes) @ t.table.T / order
    assert torch.allclose(gram, torch.eye(len(dims), dtype=torch.float64))
    # column orthogonality: sum over irreps chi(C) chi(C') = |G| / |C| delta
    assert torch.allclose(t.table.T @ t.table, torch.diag(order / sizes))


def test_known_characters_of_s5():
    assert character((4, 1), (1, 1, 1, 1, 1)) == 4
    assert character((4, 1), (2, 1, 1, 1)) == 2  # fixed points - 1
    assert character((1, 1, 1, 1, 1), (2, 1, 1, 1)) == -1
    assert character((3, 1, 1), (5,)) == 1
    assert character((3, 2), (5,)) == 0
    names = character_table(5).names
    assert {"trivial", "sign", "standard", "standard_sign", "5d", "5d_sign", "6d"} == set(names)


def test_projectors_are_orthogonal_idempotents_summing_to_identity():
    g = symmetric_group(4)
    proj = isotypic_projectors(g, character_table(4))
    assert torch.allclose(proj.sum(0), torch.eye(24, dtype=torch.float64), atol=1e-12)
    for i in range(len(proj)):
        assert torch.allclose(proj[i] @ proj[i], proj[i], atol=1e-12)
        for j in range(i):
            assert torch.allclose(proj[i] @ proj[j], torch.zeros(24, 24, dtype=torch.float64), atol=1e-12)


def test_sign_and_standard_recovered_from_a_constructed_s5_embedding():
    group = symmetric_group(5)
    # permutation matrices = trivial + standard; the sign column is the sign irrep
    perm = torch.stack([torch.eye(5, dtype=torch.float64)[list(g)].flatten() for g in group])
    sgn = torch.tensor([sign(g) for g in group], dtype=torch.float64)[:, None]
    mix = torch.randn(26, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    emb = torch.cat([perm, 2 * sgn], dim=1) @ mix  # [120, 64]
    dec = irrep_decomposition(emb, 5)
    shares = dict(zip(dec.names, dec.shares))
    assert shares["sign"] + shares["standard"] == pytest.approx(1.0, abs=1e-10)
    assert shares["sign"] > 0.05 and shares["standard"] > 0.05
    assert sorted(dec.key_irreps) == ["sign", "standard"]
    noise = torch.randn(120, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    dec_noise = irrep_decomposition(noise, 5)
    assert dec_noise.key_irreps == []
    assert sum(dec_noise.shares) == pytest.approx(1.0)


def test_logit_axis_decomposition_of_composition_logits():
    group = symmetric_group(3)
    index = {g: i for i, g in enumerate(group)}
    logits = torch.zeros(6, 6, 6, dtype=torch.float64)
    for a in group:
        for b in group:
            logits[index[a], index[b], index[compose(a, b)]] = 1.0
    dec = irrep_decomposition(logits, 3, dim=2)
    # a delta function on S3 spreads over irreps in proportion to d^2 (centred: 1, 4 of 5)
    assert dict(zip(dec.names, dec.shares)) == pytest.approx({"trivial": 0.0, "standard": 0.8, "sign": 0.2})


def test_cycle_types_and_bad_inputs():
    assert cycle_type((1, 2, 0, 4, 3)) == (3, 2)
    with pytest.raises(UserError):
        irrep_decomposition(torch.zeros(7, 2), 3)
    with pytest.raises(UserError):
        symmetric_group(9)
