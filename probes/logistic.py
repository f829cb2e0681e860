"""Batched multiclass logistic (softmax) regression: one L2-penalised probe per group of
activations, all solved together by :func:`probes.lbfgs.minimize` in preconditioned
coordinates (the objective of scikit-learn's ``LogisticRegression(C=1/(l2 n))`` on standardised
features; Nocedal & Wright ch. 7 for L-BFGS, preconditioning as a change of variables).
"""

from __future__ import annotations

import torch

from probes.lbfgs import minimize


WHITEN_MAX_DIM = 1024  # above this the d x d factorisations cost more than they save


def logistic(x: torch.Tensor, onehot: torch.Tensor, *, l2: float, max_iter: int,
             scale: torch.Tensor | None = None):
    """Softmax regression per group: ``x`` [G, n, d] centred, ``onehot`` [G, n, C]; the L2
    penalty ``l2/2 |scale * W|^2`` is on the weights of the standardised inputs ``x / scale``
    (``scale`` [G, d], per feature; None: ``x`` is standardised already), scikit-learn's
    objective on standardised features. Returns ``predict`` and ``(W [G, d, C], b [G, C])``
    in the space of ``x`` itself, so the standardised copy of ``x`` is never made.

    The problem is solved in preconditioned coordinates, an exact reparametrisation
    ``W_std = P V`` (the same optimum): ``P = L^-T`` from the Cholesky factor ``L L^T =
    Sigma_std + l2 C I`` whitens the whole objective's approximate Hessian (``Sigma_std``, the
    standardised inputs' covariance, over ``C``: the softmax curvature at the uniform start,
    plus the penalty ``l2 I``), data term and penalty together. Whitening the data term alone
    leaves the penalty's curvature ``l2 / lam`` huge in the near-null directions of a trained
    model's residual stream: 115 loss evaluations instead of 30 on a 6-layer LM's
    (benchmarks/probes_speed.py --model). ``P`` acts on the d x C weights at each evaluation
    (d^2 C), never on the n x d data: the data is read twice per evaluation (logits and
    gradient) and once for the covariance.
    """
    g, n, d = x.shape
    n_out = onehot.shape[-1]
    s = torch.ones(g, d, device=x.device) if scale is None else scale
    p = None  # [G, d, d]: L^-T, or the identity (None) above WHITEN_MAX_DIM or when d > n
    if d <= min(n, WHITEN_MAX_DIM):
        cov = x.transpose(1, 2) @ x / n / (s[:, :, None] * s[:, None, :])  # [G, d, d]
        eye = torch.eye(d, device=x.device)
        # a preconditioner only (the objective is unchanged): a relative 1e-6 floor keeps the
        # factorisation defined for constant features when l2 is 0
        floor = 1e-6 * cov.diagonal(dim1=1, dim2=2).mean(1).clamp_min(1e-12)[:, None, None]
        chol = torch.linalg.cholesky(cov + (l2 * n_out) * eye + floor * eye)  # [G, d, d] lower
        p = torch.linalg.solve_triangular(chol.transpose(1, 2), eye.expand(g, d, d), upper=True)
    onehot_t = onehot.transpose(1, 2).contiguous()  # [G, C, n]
    inv_s = (1.0 / s)[:, None, :]  # [G, 1, d]
    data = _RowCache(x, onehot_t, inv_s, p)

    def weights(vt, p_rows):  # vt [k, C, d] -> standardised-input weights W_std^T = V^T P^T
        return vt if p_rows is None else torch.bmm(vt, p_rows.transpose(1, 2))

    def loss_and_grad(theta, rows):  # theta [k, C * (d + 1)]: V^T and the bias, flattened
        # the softmax gradient by hand: two batched products over the data instead of
        # autograd's three
        xr, oh, inv, pr = data.rows(rows)
        k = len(rows)
        vt, b = theta[:, :n_out * d].view(k, n_out, d), theta[:, n_out * d:].view(k, n_out, 1)
        wst = weights(vt, pr)  # [k, C, d]
        # xr.transpose(1, 2): a view that BLAS reads transposed, no copy
        logp = torch.log_softmax(torch.baddbmm(b, wst * inv, xr.transpose(1, 2)), 1)  # [k, C, n]
        loss = -(logp * oh).sum((1, 2)) / n + 0.5 * l2 * (wst * wst).sum((1, 2))
        resid = (logp.exp() - oh) / n  # [k, C, n]
        grad_ws = torch.bmm(resid, xr) * inv + l2 * wst  # [k, C, d], w.r.t. W_std^T
        grad_v = grad_ws if pr is None else torch.bmm(grad_ws, pr)
        return loss, torch.cat([grad_v.reshape(k, -1), resid.sum(2)], 1)
    theta = minimize(loss_and_grad, torch.zeros(g, n_out * (d + 1), device=x.device),
                     max_iter=max_iter, first_step=float(n_out) if p is not None else None)
    vt = theta[:, :n_out * d].view(g, n_out, d)
    w = (weights(vt, p) * inv_s).transpose(1, 2).contiguous()  # [G, d, C], on x's own scale
    b = theta[:, n_out * d:]  # [G, C]
    return (lambda z: torch.baddbmm(b[:, None], z, w)), (w, b)


class _RowCache:
    """The per-problem tensors of the problems an optimiser still evaluates: all of them as
    they are (no copy), else a copy of those rows, kept while the same rows are asked for
    (the unfinished problems change only when one finishes, or for a backtracking step)."""

    def __init__(self, *tensors: torch.Tensor | None):
        self.full = tensors
        self.g = tensors[0].shape[0]
        self.key: tuple[int, ...] | None = None
        self.copy: tuple = ()

    def rows(self, rows: torch.Tensor) -> tuple:
        if len(rows) == self.g:
            return self.full
        key = tuple(rows.tolist())
        if key != self.key:
            self.key = key
            self.copy = tuple(None if t is None else t.index_select(0, rows) for t in self.full)
        return self.copy
