"""Batched probes: planted features recovered, controls at chance, selectivity, bad input."""

from __future__ import annotations

import pytest
import torch

from probes.fit import fit_batched, fit_probes, ProbeKind
from probes.targets import control_labels, make_target, split
from tests.probes.helpers import planted
from workbench.errors import UserError


@pytest.mark.parametrize("kind", ["logistic", "linear", "lowrank:3", "mlp:16"])
def test_planted_class_is_found_where_it_was_planted(kind):
    acts = planted()
    r = fit_probes(acts, "label", kind=kind, seed=1)
    assert r.sites == ("resid.0", "resid.1") and r.positions == ("p0", "p1")
    assert r.test_score[1][1] > 0.95  # planted
    for s, p in ((0, 0), (0, 1), (1, 0)):  # noise only: near chance (0.25)
        assert r.test_score[s][p] < 0.45, (kind, s, p, r.test_score)
    assert r.best == {"site": "resid.1", "position": "p1", "test_score": r.test_score[1][1]}
    assert r.embedding_baseline == r.test_score[0]
    assert abs(r.chance - 0.25) < 0.05 and r.n_train + r.n_test == 600


def test_planted_linear_direction_is_recovered_by_regression():
    gen = torch.Generator().manual_seed(3)
    n, d = 500, 12
    w_star = torch.randn(d, generator=gen)
    acts = planted(n=n, d=d)
    x = acts.acts["resid.0"][:, 0]
    value = x @ w_star + 0.05 * torch.randn(n, generator=gen)
    r = fit_probes(acts, value.tolist(), kind="linear", l2=1e-4)
    assert r.task == "regress" and r.metric == "r2"
    assert r.test_score[0][0] > 0.99 and r.test_score[1][1] < 0.2
    w = r.weights[0, 0, :, 0]  # back in activation space
    cos = torch.nn.functional.cosine_similarity(w, w_star, dim=0)
    assert cos > 0.99


def test_batched_logistic_matches_one_probe_at_a_time():
    acts = planted(n=300)
    x = torch.stack([acts.acts["resid.1"][:, 1], acts.acts["resid.0"][:, 0]])  # [2, n, d]
    y = torch.arange(300) % 4
    together, (w, _) = fit_batched(x, y.expand(2, -1), kind=ProbeKind("logistic"),
                                   task="classify", n_out=4, l2=1 / 300)
    alone, (w0, _) = fit_batched(x[:1], y[None], kind=ProbeKind("logistic"), task="classify",
                                 n_out=4, l2=1 / 300)
    # one L-BFGS over the summed (separable) objective: the same optimum, to tolerance
    assert torch.allclose(w[0], w0[0], atol=0.03)
    assert (together(x)[0].argmax(-1) == alone(x[:1])[0].argmax(-1)).float().mean() > 0.99


def test_fitting_in_blocks_of_groups_gives_the_same_probes(monkeypatch):
    from probes import fit
    acts = planted(n=400)
    whole = fit_probes(acts, "label", control=True)
    monkeypatch.setattr(fit, "MAX_BLOCK_BYTES", 1)  # one group per block
    blocks = list(fit._blocks(acts, acts.sites, None))
    assert [g for g, _ in blocks] == [[0], [1], [2], [3]]
    assert torch.equal(blocks[2][1][0], acts.acts["resid.1"][:, 0])  # g = site * P + position
    blocked = fit_probes(acts, "label", control=True)
    assert blocked.test_score == whole.test_score
    assert blocked.control_score == whole.control_score
    assert torch.allclose(blocked.weights, whole.weights, atol=1e-5)


def test_random_label_control_stays_at_chance_and_selectivity_is_the_difference():
    acts = planted(n=800)
    r = fit_probes(acts, "label", kind="logistic", control=True)
    for s in range(2):
        for p in range(2):
            assert abs(r.control_score[s][p] - 0.25) < 0.08, r.control_score
            assert r.selectivity[s][p] == pytest.approx(r.test_score[s][p]
                                                        - r.control_score[s][p], abs=2e-6)
    assert r.selectivity[1][1] > 0.6


def test_control_labels_are_a_function_of_the_type():
    target = make_target([f"c{i % 3}" for i in range(90)], 90)
    types = torch.tensor([[i % 5, 7] for i in range(90)])
    labels = control_labels(target, types, seed=2)  # [2, 90]
    for t in range(5):
        assert len(set(labels[0][types[:, 0] == t].tolist())) == 1
    assert len(set(labels[1].tolist())) == 1
    assert torch.equal(labels, control_labels(target, types, seed=2))


def test_entity_level_split_keeps_groups_on_one_side():
    acts = planted(n=600)
    target = make_target(acts.column("label"), 600)
    groups = acts.column("group")
    train, test = split(target, groups=groups, test_fraction=0.5, seed=0)
    tr, te = {groups[i] for i in train.tolist()}, {groups[i] for i in test.tolist()}
    assert not tr & te and len(train) + len(test) == 600
    r = fit_probes(acts, "label", split_by="group", test_fraction=0.5, control=True)
    assert r.split_by == "group" and r.n_test == len(test)
    # a random label per entity cannot transfer to held-out entities
    assert abs(r.control_score[1][1] - 0.25) < 0.1


def test_bad_targets_are_user_errors():
    acts = planted(n=200)
    with pytest.raises(UserError, match="199 labels but the activations hold 200"):
        fit_probes(acts, ["a", "b"] * 99 + ["a"])
    with pytest.raises(UserError, match="constant"):
        fit_probes(acts, ["same"] * 200)
    with pytest.raises(UserError, match="no column|neither a column"):
        fit_probes(acts, "nope")
    with pytest.raises(UserError, match="unknown probe kind"):
        fit_probes(acts, "label", kind="forest")
    with pytest.raises(UserError, match="logistic probe needs a categorical"):
        fit_probes(acts, [float(i) for i in range(200)], kind="logistic")
    # class "rare" lives in one group only; that group lands in train with this seed or not:
    labels = ["rare" if g == 0 else f"c{i % 2}" for i, g in enumerate(acts.column("group"))]
    with pytest.raises(UserError, match="no test example"):
        for seed in range(20):  # some seed puts group 0 on the training side
            fit_probes(acts, labels, split_by="group", seed=seed)
    # many classes and few entities (bioS cities): allowed when asked, and counted
    counts = [fit_probes(acts, labels, split_by="group", seed=seed,
                         allow_untested_classes=True).untested_classes for seed in range(20)]
    assert set(counts) == {0, 1}


def test_unpenalised_probe_with_a_constant_feature_and_a_negative_penalty():
    acts = planted(n=300)
    acts.acts["resid.1"][:, :, 0] = 3.0  # a constant feature: a singular covariance
    r = fit_probes(acts, "label", l2=0.0, max_iter=50)
    assert r.test_score[1][1] > 0.95 and r.weights.isfinite().all()
    with pytest.raises(UserError, match="--l2 must be >= 0, got -1"):
        fit_probes(acts, "label", l2=-1)


def test_regression_auto_detection():
    assert make_target(list(range(100)), 100).task == "regress"
    assert make_target([i % 5 for i in range(100)], 100).task == "classify"
    assert make_target(list(range(100)), 100, task="classify").task == "classify"
    with pytest.raises(UserError, match="not numeric"):
        make_target(["a", "b"] * 5, 10, task="regress")
