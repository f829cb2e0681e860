"""Reference test: the orderings of Allen-Zhu & Li (Physics of LMs 3.1;
``shared/reference/knowledge-probes.md``) on bioS, with the three cases of
benchmarks/knowledge_reference.py (single and multi5+permute+fullname pretrained then
QA-finetuned, and the augmented data under mixed training) trained once per module at the
benchmark's test scale (``TEST_SETTINGS``: fewer people and steps than its defaults, the same
model and recipe), checked by :func:`probes.knowledge_orderings.orderings` as the benchmark
checks them.

Reached at this scale: held-out QA far higher for the augmented data than for single, mixed
training high; for single an attribute is readable just before it, not right after the name.
Not reached, so expected to fail (strict: a pass is reported): the probes that read the name
alone. With 100 people, 50 are probe-training people, far fewer than the 128 dimensions the
linear head reads, so the P-probe at the name and the Q-probe fit their training people exactly
and stay at chance on held-out ones (at 150 people a logistic regression on the same states,
regularised by held-out choice of C, does no better); at 300 people (the benchmark's defaults)
they rise above single for the augmented data.

About 13 min on one core. ``WORKBENCH_REFERENCE_HOME`` keeps the store (runs there are reused).
Deselect with ``-m "not reference"``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probes.knowledge_orderings import CASES, ORDERINGS, figures_of, orderings
from tests.probes.helpers import load_benchmark

pytestmark = [pytest.mark.reference, pytest.mark.xdist_group("knowledge-reference")]

NAME_PROBES = {  # the orderings that need the name alone to carry the attributes
    "P augmented: after name near just before (within 0.1)",
    "P after name: augmented > single (by 0.1)",
    "Q tracks QA: augmented > single (by 0.1)",
    "Q over training: augmented rises (final > first + 0.1)",
}
# at chance the three Q-probe figures differ by a person or two, so their order is noise: it
# may come out either way (not strict)
NOISY = "Q tracks QA: the cases' Q-probe order is their QA order"


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    bench = load_benchmark("knowledge_reference.py")
    home = Path(os.environ.get("WORKBENCH_REFERENCE_HOME") or tmp_path_factory.mktemp("kref"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        figures = [figures_of(bench.run_case(case, bench.TEST_SETTINGS)) for case in CASES]
    for (aug, protocol), f in zip(CASES, figures):  # every figure, with -s
        print(aug, protocol, {k: v for k, v in f.items() if not isinstance(v, dict)})
    return orderings(*figures), figures


def test_every_ordering_is_checked():
    assert NAME_PROBES | {NOISY} <= set(ORDERINGS) and len(ORDERINGS) > len(NAME_PROBES) + 1


@pytest.mark.parametrize("name", sorted(set(ORDERINGS) - NAME_PROBES - {NOISY}))
def test_ordering_holds(checks, name):
    result, figures = checks
    assert result[name], figures


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="not reached at 100 people: the name-only probes fit their 50 "
                          "training people exactly and stay at chance on held-out ones")
@pytest.mark.parametrize("name", sorted(NAME_PROBES))
def test_name_probe_ordering_holds(checks, name):
    result, figures = checks
    assert result[name], figures


def test_the_models_memorised_their_biographies(checks):
    # the orderings are about extraction, so they only mean something once the biographies
    # are known: QA on the people the QA finetune (or mixed training) saw
    for f in checks[1]:
        assert f["qa_trained_people"] > 0.9, f


@pytest.mark.xfail(strict=False, reason="at 100 people the Q-probes are at chance, so the order "
                                        "of their three figures is noise")
def test_q_probe_order_follows_qa_order(checks):
    result, figures = checks
    assert result[NOISY], figures
