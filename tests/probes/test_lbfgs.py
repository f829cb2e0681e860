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
    evaluated = torch.zeros(g, dtype=torch.long)  # evaluations of each problem

    def fun(theta, rows):
        evaluated[rows] += 1
        grad = (a[rows] @ theta[..., None])[..., 0] - b[rows]
        return 0.5 * (theta * (grad - b[rows])).sum(1), grad
    theta = minimize(fun, torch.zeros(g, p, dtype=torch.float64), max_iter=500, tol=1e-9)
    want = torch.linalg.solve(a, b[..., None])[..., 0]
    assert torch.allclose(theta, want, atol=1e-5, rtol=1e-5)
    assert evaluated.max() < 1000  # stops on the gradient test, not on max_iter x backtracks
    # a finished problem is no longer evaluated: the well-conditioned ones stop early
    assert evaluated[0] < evaluated[-1] / 2, evaluated.tolist()
    for k in (0, g - 1):  # and each reaches what it reaches alone
        alone = minimize(lambda t, r, k=k: fun(t, r + k), torch.zeros(1, p, dtype=torch.float64),
                         max_iter=500, tol=1e-9)
        assert torch.allclose(alone[0], theta[k], atol=1e-6, rtol=1e-6)


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


def test_the_preconditioner_whitens_penalty_and_data_together_on_anisotropic_features():
    """A trained model's residual stream has a few huge and many near-null directions;
    whitening the data term alone leaves the penalty's curvature ``l2 / lam`` huge there.
    The probe still reaches scikit-learn's optimum, in a few dozen evaluations."""
    import sklearn.linear_model as sklearn
    import torch.nn.functional as F

    from probes import logistic
    gen = torch.Generator().manual_seed(0)
    g, n, d, c = 2, 1500, 64, 5
    spectrum = torch.logspace(1, -3.5, d)  # variances from 100 down to 3e-4
    basis = torch.linalg.qr(torch.randn(d, d, generator=gen))[0]
    x = (torch.randn(g, n, d, generator=gen) * spectrum.sqrt()) @ basis.T
    x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # standardised, still skewed
    score = x[0, :, :3] @ torch.randn(3, generator=gen)  # classes: five equal score bins
    y = torch.empty(n, dtype=torch.long)
    y[score.argsort()] = torch.arange(n) * c // n
    onehot = F.one_hot(y, c).float()[None].expand(g, -1, -1)
    calls = []

    def counting(fun, theta, **kw):
        return minimize(lambda t, r: (calls.append(1), fun(t, r))[1], theta, **kw)
    original, logistic.minimize = logistic.minimize, counting
    try:
        predict, (w, _) = logistic.logistic(x, onehot, l2=1 / n, max_iter=300)
    finally:
        logistic.minimize = original
    assert len(calls) < 50  # 24 here; whitening the data term alone takes 82
    clf = sklearn.LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit(x[0].numpy(),
                                                                          y.numpy())
    ours = predict(x)[0].argmax(-1)
    assert (ours == torch.from_numpy(clf.predict(x[0].numpy()))).float().mean() > 0.99
    want = torch.from_numpy(clf.coef_).double()  # [C, d]
    assert torch.allclose(w[0].T.double(), want, atol=0.05 * float(want.abs().max()))
