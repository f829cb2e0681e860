"""Reference test: the orderings of Zhang et al. 2025 (prior localisation;
``shared/reference/knowledge-probes.md``, second half) on the in-house counting model of
benchmarks/prior_reference.py, pretrained once per module with the benchmark's settings
(``DEFAULTS``) and analysed and finetuned with the CLI's defaults, the finetune on ``FOLDS``
held-out splits (``--seed`` 0, 1, ...), whose mean gains are compared.

Checked: before finetuning the error correlates with the answer's log prior (95% bootstrap
interval below zero); the prior is decodable well above the shuffled control at an identifiable
block, not at the embeddings (the filler words keep the count from being the prompt length);
the finetune recipe (KL to the original, early stopping on validation values) does not lower
held-out accuracy, as the plain cross-entropy finetune did (0.40 -> 0.20 on the earlier
digit-split model); and the mechanism behind the failures: one output direction fitted from
the training values removes the prior for held-out values, a learned output shift does not
(benchmarks/prior_output_shift.py). Not reached, so expected to fail (strict: a pass is
reported): the localised blocks raising held-out accuracy more than the same budget on other
blocks, and removing the correlation.

About 3 min on one core. ``WORKBENCH_REFERENCE_HOME`` keeps the store (a run named
``prior-reference`` there is reused). Deselect with ``-m "not reference"``.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from tests.probes.helpers import load_benchmark

pytestmark = [pytest.mark.reference, pytest.mark.xdist_group("prior-reference")]


@pytest.fixture(scope="module")
def reference_home(tmp_path_factory):
    """The store holding the pretrained ``prior-reference`` run; WORKBENCH_HOME points at it
    while a ``with`` block of :func:`_in_home` runs."""
    from workbench.store import RunStore
    home = Path(os.environ.get("WORKBENCH_REFERENCE_HOME") or tmp_path_factory.mktemp("pref"))
    bench = load_benchmark("prior_reference.py")
    with _in_home(home):
        names = {r.name for r in RunStore(home).list_runs()}
        if "prior-reference" not in names:
            d = bench.DEFAULTS
            bench.pretrain_inhouse("prior-reference", d["docs"], d["pretrain_steps"],
                                   d["instructed_frac"], root=home / "pretrain-data",
                                   tokenizer=d["tokenizer"])
    return home


@contextlib.contextmanager
def _in_home(home: Path):
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the figures depend on the thread count (README)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WORKBENCH_HOME", str(home))
            yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def figures(reference_home):
    bench = load_benchmark("prior_reference.py")
    out = io.StringIO()
    with _in_home(reference_home), contextlib.redirect_stdout(out):
        before, finetune = bench.report("prior-reference", 450, [])
    print(out.getvalue())  # every figure, with -s
    return before, finetune


def test_error_correlates_with_the_prior_before_finetuning(figures):
    c = figures[0]["correlation"]
    assert c["rho"] < 0 and c["significant"] and c["ci_high"] < 0, c


def test_prior_is_decodable_at_an_identifiable_block_not_the_embeddings(figures):
    r = figures[0]
    margin = dict(zip(r["sites"], r["margin"]))
    best = max(margin, key=margin.get)
    assert best != "resid.0" and margin[best] > 0.1, margin
    assert margin[best] > margin["resid.0"] + 0.1, margin
    i = r["sites"].index(best)
    assert r["r2"][i][-1] > 0.1 and r["shuffled_r2"][i][-1] < 0.05, (r["r2"], r["shuffled_r2"])
    assert int(best.split(".")[1]) - 1 in r["localised_layers"]  # the rule picks that block


def _mean_gains(fts: list[dict]) -> dict:
    gains = load_benchmark("prior_reference.py").fold_gains(fts)
    return {arm: sum(g[arm] for g in gains) / len(gains) for arm in gains[0]}


def test_finetune_does_not_lower_held_out_accuracy(figures):
    assert len(figures[1]) > 1  # several held-out splits
    for arm, gain in _mean_gains(figures[1]).items():
        assert gain >= -0.03, (arm, gain)


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="not reached on the 4-block model: its errors are value-specific (a rare count "
                   "read as its more frequent neighbour: 7 -> 8, 9 -> 10, 11 -> 10, 13 -> 14) "
                   "and the prior is not decodable across answer values (R² < 0 on held-out "
                   "values), so finetuning fixes trained values but not held-out ones; "
                   "biases-only and low-rank updates, other held-out splits (8 seeds) and "
                   "digit-split answers do not change that (docs/prior-localisation.md)")
def test_localised_blocks_raise_held_out_accuracy_more_than_other_blocks(figures):
    mean = _mean_gains(figures[1])  # over the held-out splits
    assert mean["localised"] > 0 and mean["localised"] > mean["other_layers"], mean


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="not reached: see the held-out ordering above")
def test_finetune_removes_the_correlation(figures):
    assert figures[0]["correlation"]["significant"]
    after = [ft["localised"]["correlation"] for ft in figures[1]]
    removed = [not c["significant"] for c in after]
    assert sum(removed) > len(after) / 2, after  # in most held-out splits


def test_a_shared_prior_direction_fixes_held_out_values_that_cross_entropy_does_not(
        reference_home):
    """The mechanism behind the two xfails (benchmarks/prior_output_shift.py): subtracting one
    direction of the final state, fitted from the training values' unembeddings, lifts
    held-out accuracy where a shift of the same state learned by cross-entropy does not."""
    with _in_home(reference_home):
        splits = load_benchmark("prior_output_shift.py").measure("prior-reference", splits=3)
    lifted = 0
    for r in splits:
        before = r["prior_direction"][0.0][0]
        best_direction = max(h for h, _ in r["prior_direction"].values())
        best_learned = max(h for curve in r["learned"].values() for _, h, _ in curve)
        trained = max(curve[-1][2] for curve in r["learned"].values())
        assert trained > 0.9, r  # the learned shift does fit the training values
        lifted += best_direction >= before + 0.15 and best_learned < best_direction - 0.1
    assert lifted >= 2, splits
