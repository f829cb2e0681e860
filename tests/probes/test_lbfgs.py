"""Batched L-BFGS: every problem reaches its own optimum, whatever the others do."""

from __future__ import annotations

import torch

from probes.fit import fit_probes
from probes.lbfgs import minimize
from tests.probes.helpers import planted


def test_separate_quadratics_reach_their_minimisers():
    gen = torch.Generator().manual_seed(0)
    g, p = 5, 12
    q = torch.linalg.qr(torch.randn(g, p, p, generator=gen))[0]
    # condition numbers from 1 to 1e3: each problem stops on its own test
    spectra = torch.stack([torch.logspace(0, 0.75 * k, p) for k in range(g)])
    a = (q @ torch.diag_embed(spectra) @ q.transpose(1, 2)).double()  # float64: cond 1e4
    b = torch.randn(g, p, generator=gen).double()
    calls = []

    def fun(theta):
        calls.append(1)
        grad = (a @ theta[..., None])[..., 0] - b
        return 0.5 * (theta * (grad - b)).sum(1), grad
    theta = minimize(fun, torch.zeros(g, p, dtype=torch.float64), max_iter=500, tol=1e-9)
    want = torch.linalg.solve(a, b[..., None])[..., 0]
    assert torch.allclose(theta, want, atol=1e-5, rtol=1e-5)
    assert len(calls) < 1000  # stops on the gradient test, not on max_iter x backtracks


def test_logistic_probe_matches_scikit_learn():
    import sklearn.linear_model as sklearn  # a test dependency (pyproject [test])
    acts = planted(n=600, signal=1.0)
    r = fit_probes(acts, "label", kind="logistic")
    test = r.test_index
    train = torch.tensor(sorted(set(range(600)) - set(test.tolist())))
    y = torch.arange(600) % 4
    for si, site in enumerate(r.sites):
        for pi in range(2):
            x = acts.acts[site][:, pi]
            mu, sd = x[train].mean(0), x[train].std(0)
            xs = ((x - mu) / sd).double().numpy()
            clf = sklearn.LogisticRegression(C=1.0, max_iter=1000, tol=1e-6)
            clf.fit(xs[train.numpy()], y[train].numpy())
            acc = float((clf.predict(xs[test.numpy()]) == y[test].numpy()).mean())
            assert abs(acc - r.test_score[si][pi]) <= 1 / len(test) + 1e-5, (site, pi)  # one example
            # the same optimum: weights in activation space agree with scikit-learn's
            if si == 1 and pi == 1:
                ours = r.weights[si, pi]  # [d, C]
                theirs = torch.tensor(clf.coef_.T, dtype=torch.float32) / sd[:, None]
                cos = torch.nn.functional.cosine_similarity(
                    ours - ours.mean(1, keepdim=True), theirs - theirs.mean(1, keepdim=True),
                    dim=0)
                assert cos.min() > 0.99


def test_fitting_on_an_explicit_device_gives_the_same_result():
    acts = planted(n=300)
    a = fit_probes(acts, "label")
    b = fit_probes(acts, "label", device="cpu")
    assert a.test_score == b.test_score and b.weights.device.type == "cpu"
