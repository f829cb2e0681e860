import pytest
import torch

from workbench.errors import UserError
from workbench.fourier.multiplicative import (cyclic_reindex, discrete_log_table, labels_table,
                                              primitive_root)


@pytest.mark.parametrize("p,g", [(7, 3), (11, 2), (113, 3)])
def test_primitive_root(p, g):
    assert primitive_root(p) == g
    powers, logs = discrete_log_table(p)
    assert sorted(powers.tolist()) == list(range(1, p))
    assert logs[0] == -1 and all(powers[logs[x]] == x for x in range(1, p))


@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_reindexing_turns_the_operation_into_addition(op):
    p = 13
    re = cyclic_reindex(op, p)
    table = labels_table(op, p)
    n = re.n
    i = torch.arange(n)
    expected = re.c_index[(i[:, None] + i[None, :]) % n]
    assert torch.equal(re.grid(table), expected)


def test_multiplication_is_log_addition():
    p = 11
    re = cyclic_reindex("mul", p)
    _, logs = discrete_log_table(p)
    assert re.n == p - 1
    for x in range(1, p):
        for y in range(1, p):
            assert logs[(x * y) % p] == (logs[x] + logs[y]) % (p - 1)
    # a multiplicative character x -> cos(2 pi k log x / (p - 1)) is a pure Fourier mode after reindexing
    from workbench.fourier.basis import frequency_norms, transform_1d
    k = 3
    f = torch.zeros(p, dtype=torch.float64)
    f[1:] = torch.cos(2 * torch.pi * k * logs[1:].double() / (p - 1))
    norms = frequency_norms(transform_1d(f[re.a_index][:, None]))
    assert float(norms[k] ** 2 / norms.pow(2).sum()) == pytest.approx(1.0)


def test_bad_inputs():
    with pytest.raises(UserError):
        cyclic_reindex("div", 7)
    with pytest.raises(UserError):
        cyclic_reindex("add", 9)
    with pytest.raises(UserError):
        primitive_root(12)
