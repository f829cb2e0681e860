"""Training quality: a tiny task trains to >= 99% test accuracy for every seed tried, and the
discrete program the run produces agrees with the model (issue 5, "Done means")."""

from __future__ import annotations

import pytest

from programs.config import TINY, preset
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


def test_hist_learns_counting_with_padding_masked():
    """hist needs a numerical head counting equal tokens. Padded sequences used to let counts
    of PAD (the length) stand in for it, a local optimum the paper preset never left (~54%);
    with padding positions masked as keys the paper's 1-layer preset learns the count. Best of
    two seeds, as the paper reports the best of a few."""
    from training.tasks import make_task

    data = make_task("hist", vocab_size=4, max_len=6, n_samples=2000).generate()
    cfg = preset("paper", "hist").with_overrides({"epochs": 40, "batch_size": 128})
    best = 0.0
    for seed in (0, 1):
        result = train_program(data, cfg.with_overrides({"seed": seed}))
        print(f"seed {seed}: test {result.test_acc:.4f}, train {result.train_acc:.4f}")
        best = max(best, result.test_acc)
    assert best >= 0.98, best
    assert result.program.shape.pad == "PAD"


def test_induction_heads_are_found_together():
    """The paper's in-context task needs two heads that are useless alone (a previous-token
    head, then one matching the letter against it). Scoring keys by the predicate relative to
    its row maximum lets both form jointly; with the raw soft predicate every early query
    attends to BOS and training settles on "seen before?" (~78%)."""
    from programs.config import preset_task_params
    from training.tasks import make_task

    params = preset_task_params("paper", "induction", {"n_samples": 3000})
    data = make_task("induction", **params).generate()
    cfg = preset("paper", "induction").with_overrides({"epochs": 150, "batch_size": 128,
                                                       "seed": 0})
    result = train_program(data, cfg)
    print(f"test {result.test_acc:.4f}, train {result.train_acc:.4f}")
    assert result.test_acc == 1.0, result.test_acc
    heads = {h.layer: h for h in result.program.cat_heads}
    assert result.program.cat_vars[heads[1].key] == "attn_0_0"  # layer 1 reads layer 0's output
