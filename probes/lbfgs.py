"""Batched L-BFGS: many independent smooth problems (one probe per layer and position) solved
in the same tensor operations, each with its own step size, history and stopping test.

Method: limited-memory BFGS (Nocedal & Wright, "Numerical Optimization", 2nd ed., Alg. 7.4
two-loop recursion, Alg. 7.5) with a backtracking Armijo line search per problem. One
``torch.optim.LBFGS`` over the summed objective would share one line search across problems
(the slowest one sets every step: ~3x more iterations than each needs alone) and pulls in
``torch._dynamo`` at its first step (seconds of import). A problem stops when all entries of
its gradient are below ``tol`` (scikit-learn's lbfgs criterion on a mean-scaled objective);
stopped problems take no further steps while the others go on, and are no longer evaluated:
the objective is asked for the rows still being solved only (probes on a trained model's
layers converge in 12 to 31 evaluations; evaluating all of them until the last one stops
costs 1.7x the work).
"""

from __future__ import annotations

from typing import Callable

import torch

# fun(theta_rows [k, P], rows [k] long) -> (loss [k], grad [k, P]): problems ``rows`` only
Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def minimize(fun: Objective, theta: torch.Tensor, *, max_iter: int = 200, tol: float = 1e-4,
             history: int = 10, armijo: float = 1e-4, max_backtracks: int = 20,
             first_step: float | None = None) -> torch.Tensor:
    """Minimise ``G`` separable problems; ``fun(theta[rows], rows)`` evaluates those in ``rows``.

    ``first_step``: the inverse Hessian's scale before any curvature pair, where the caller
    knows it (a preconditioned problem); by default a first step of length <= 1."""
    theta = theta.clone()
    g = theta.shape[0]
    loss, grad = fun(theta, torch.arange(g, device=theta.device))
    s_hist: list[torch.Tensor] = []  # each [G, P]
    y_hist: list[torch.Tensor] = []
    rho_hist: list[torch.Tensor] = []  # each [G]
    active = grad.abs().amax(1) > tol  # [G]
    # before any curvature pair: the caller's scale, else a first step of length <= 1 (as
    # torch.optim.LBFGS takes)
    gamma = ((1.0 / grad.abs().sum(1)).clamp_max(1.0) if first_step is None
             else torch.full((g,), first_step, dtype=theta.dtype, device=theta.device))  # [G]
    for _ in range(max_iter):
        if not active.any():
            break
        # two-loop recursion: direction = -H grad, per problem
        q = grad.clone()
        alphas = []
        for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
            a = rho * (s * q).sum(1)
            q -= a[:, None] * y
            alphas.append(a)
        q *= gamma[:, None]  # initial inverse Hessian: gamma * I (N&W eq. 7.20)
        for (s, y, rho), a in zip(zip(s_hist, y_hist, rho_hist), reversed(alphas)):
            b = rho * (y * q).sum(1)
            q += (a - b)[:, None] * s
        direction = -q * active[:, None]
        slope = (grad * direction).sum(1)  # [G], < 0 for a descent direction
        bad = slope >= 0  # a broken curvature history: restart with steepest descent
        if bad.any():
            direction[bad] = -grad[bad] * active[bad, None]
            slope = (grad * direction).sum(1)
        # backtracking Armijo line search, each problem its own step
        step = torch.ones(g, dtype=theta.dtype, device=theta.device)
        pending = active.clone()
        new_theta, new_loss, new_grad = theta.clone(), loss.clone(), grad.clone()
        for _ in range(max_backtracks):
            rows = pending.nonzero()[:, 0]  # [k]: the problems still searching
            trial = theta[rows] + step[rows, None] * direction[rows]
            t_loss, t_grad = fun(trial, rows)
            ok = t_loss <= loss[rows] + armijo * step[rows] * slope[rows]  # [k]
            done = rows[ok]
            new_theta[done], new_loss[done], new_grad[done] = trial[ok], t_loss[ok], t_grad[ok]
            pending[done] = False
            if not pending.any():
                break
            step = torch.where(pending, step * 0.5, step)
        moved = active & ~pending
        s_new, y_new = new_theta - theta, new_grad - grad
        sy = (s_new * y_new).sum(1)
        theta, loss, grad = new_theta, new_loss, new_grad
        keep = moved & (sy > 1e-10)  # curvature pairs only where they keep H positive
        if keep.any():
            s_hist.append(torch.where(keep[:, None], s_new, torch.zeros_like(s_new)))
            y_hist.append(torch.where(keep[:, None], y_new, torch.zeros_like(y_new)))
            rho_hist.append(torch.where(keep, 1.0 / sy.clamp_min(1e-10), torch.zeros_like(sy)))
            gamma = torch.where(keep, sy / (y_new * y_new).sum(1).clamp_min(1e-20), gamma)
            if len(s_hist) > history:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
        # a problem whose line search failed has converged as far as float precision allows
        active = active & ~pending & (grad.abs().amax(1) > tol)
    return theta
