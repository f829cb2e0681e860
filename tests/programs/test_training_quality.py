"""Training quality: a tiny task trains to >= 99% test accuracy for every seed tried, and the
discrete program the run produces agrees with the model (issue 5, "Done means")."""

from __future__ import annotations

import pytest

from programs.config import TINY
from programs.data import encode
from programs.train import train_program
from programs.verify import verify
from programs_helpers import fixed_reverse

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seed", [0, 1])
def test_tiny_reverse_reaches_99_percent_on_every_seed(seed):
    data = fixed_reverse(length=4, vocab="abcd", seed=seed)
    result = train_program(data, TINY.with_overrides({"epochs": 300, "seed": seed}))
    print(f"seed {seed}: test {result.test_acc:.4f}, train {result.train_acc:.4f}, "
          f"{result.seconds_per_epoch * 1000:.1f} ms/epoch")
    assert result.test_acc >= 0.99, (seed, result.test_acc)
    assert result.train_acc >= 0.99, (seed, result.train_acc)
    x = encode(data.test, result.program.shape, data.pad_token)[0]
    assert verify(result.program, x).agreement == 1.0
