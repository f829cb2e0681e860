"""Phase boundaries of grokking: memorisation -> circuit formation -> cleanup.

Reference: Nanda et al. (2023), "Progress measures for grokking via mechanistic
interpretability", section 5: memorisation (train loss falls, test loss rises; 0-1.4k epochs in
the reference run), circuit formation (excluded loss rises while test loss stays high;
1.4k-9.4k), cleanup (test loss falls sharply, the Gini coefficient of the Fourier norms jumps and
the sum of squared weights falls; 9.4k-14k). The paper places the lines by eye; our rule:

1. ``memorisation_end``: the first checkpoint with train accuracy >= 0.99 (without accuracies,
   the first with train loss <= 1% of the first checkpoint's).
2. ``circuit_formation_end`` and ``cleanup_end``: fit a continuous three-segment linear
   function (least squares over every pair of checkpoints as knots) to ``log10`` test loss
   against step, over the checkpoints from ``memorisation_end`` on (plateau, steep fall, tail).
   Cleanup is the steepest segment among those whose fall is at least half the largest: its start ends circuit
   formation and its end ends cleanup. Accepted when the test loss falls by at least
   ``min_drop_decades`` (one decade) from that start; otherwise the model has not grokked and
   both are None. When the segment after it still falls at least half as fast (or there is
   none), cleanup has not finished by the last checkpoint and ``cleanup_end`` is None. Without
   test losses, ``log10`` of the test error rate (``1 - accuracy``, floored at 1e-4) is fitted
   instead. Checkpoints or a finer metric history (see ``analyze_series``) may be used.

Supporting diagnostics (reported, not used for the boundaries): the step where the excluded
loss peaks, and the steps of the steepest Gini rise and the steepest fall of the sum of squared
weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from workbench.errors import UserError


@dataclass(frozen=True)
class PhaseBoundaries:
    """Steps at which each phase ends (None when it is not reached); ``grokked`` is whether the
    test loss left its plateau (cleanup started)."""

    memorisation_end: int | None
    circuit_formation_end: int | None
    cleanup_end: int | None
    grokked: bool
    rule: str
    excluded_loss_peak: int | None = None
    gini_steepest_rise: int | None = None
    weights_steepest_fall: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


RULE = ("memorisation ends at train accuracy >= 0.99; cleanup is the segment of a continuous "
        "3-segment linear fit to log10 test loss (after memorisation) that falls steepest (among "
        "segments with at least half the largest fall): "
        "circuit formation ends at its start, cleanup at its end")


def _arr(x: Sequence[float] | None, n: int, name: str) -> np.ndarray | None:
    if x is None:
        return None
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (n,):
        raise UserError(f"{name} must have one value per checkpoint ({n}), got shape {a.shape}")
    return a


def three_segment_knots(x: np.ndarray, y: np.ndarray) -> tuple[int, int, np.ndarray]:
    """Indices ``(i, j)``, ``i < j``, of the knots of the best continuous piecewise-linear fit with
    three segments (knots at data points), and the fitted slopes of the segments."""
    n = len(x)
    assert n >= 4
    best = (np.inf, 1, 2, np.zeros(3))
    xs = (x - x[0]) / max(x[-1] - x[0], 1e-12)  # well-conditioned design
    for i in range(1, n - 2):
        js = np.arange(i + 1, n - 1)
        # design [len(js), n, 4]: 1, x, (x - x_i)+, (x - x_j)+
        base = np.stack([np.ones(n), xs, np.maximum(xs - xs[i], 0)], axis=1)
        design = np.concatenate([np.broadcast_to(base, (len(js), n, 3)),
                                 np.maximum(xs[None, :] - xs[js][:, None], 0)[..., None]], axis=2)
        gram = design.transpose(0, 2, 1) @ design  # [J, 4, 4]
        rhs = design.transpose(0, 2, 1) @ y  # [J, 4]
        coef = np.linalg.solve(gram + 1e-12 * np.eye(4), rhs[..., None])[..., 0]
        resid = ((design @ coef[..., None])[..., 0] - y) ** 2
        sse = resid.sum(axis=1)
        k = int(np.argmin(sse))
        if sse[k] < best[0]:
            c = coef[k]
            best = (sse[k], i, int(js[k]), np.array([c[1], c[1] + c[2], c[1] + c[2] + c[3]]))
    return best[1], best[2], best[3]


def detect_phases(steps: Sequence[int], *, train_accuracy: Sequence[float] | None = None,
                  test_accuracy: Sequence[float] | None = None,
                  train_loss: Sequence[float] | None = None,
                  test_loss: Sequence[float] | None = None,
                  excluded_loss: Sequence[float] | None = None,
                  gini: Sequence[float] | None = None,
                  sum_squared_weights: Sequence[float] | None = None,
                  min_drop_decades: float = 1.0) -> PhaseBoundaries:
    """Phase boundaries from per-checkpoint series (see the module docstring for the rule)."""
    st = np.asarray(steps, dtype=np.float64)
    n = len(st)
    if n == 0 or np.any(np.diff(st) <= 0):
        raise UserError("phase detection needs checkpoints with strictly increasing steps")
    tr_acc, te_acc = _arr(train_accuracy, n, "train_accuracy"), _arr(test_accuracy, n,
                                                                     "test_accuracy")
    tr_loss, te_loss = _arr(train_loss, n, "train_loss"), _arr(test_loss, n, "test_loss")
    exc, gi, ssw = (_arr(excluded_loss, n, "excluded_loss"), _arr(gini, n, "gini"),
                    _arr(sum_squared_weights, n, "sum_squared_weights"))

    def step_at(i: int | None) -> int | None:
        return None if i is None else int(st[i])

    # 1. end of memorisation
    if tr_acc is not None:
        hits = np.nonzero(tr_acc >= 0.99)[0]
    elif tr_loss is not None:
        hits = np.nonzero(tr_loss <= 0.01 * tr_loss[0])[0]
    else:
        raise UserError("phase detection needs train_accuracy or train_loss")
    i1 = int(hits[0]) if len(hits) else None

    # 2. circuit formation and cleanup: knots of the 3-segment fit to log test loss
    if te_loss is not None:
        y = np.log10(np.maximum(te_loss, 1e-30))
    elif te_acc is not None:
        y = np.log10(np.maximum(1.0 - te_acc, 1e-4))
    else:
        raise UserError("phase detection needs test_loss or test_accuracy")
    i2 = i3 = None
    if i1 is not None and n - i1 >= 4:
        a, b, slopes = three_segment_knots(st[i1:], y[i1:])
        knots = [0, a, b, n - 1 - i1]
        span = st[i1:]
        lengths = np.diff(span[knots]) / max(span[-1] - span[0], 1e-12)
        # Cleanup is the steepest segment among those carrying at least half of the largest
        # fall: the largest fall alone can be a long, gentle formation segment.
        falls = -slopes * lengths
        candidates = (np.nonzero(falls >= 0.5 * falls.max())[0] if falls.max() > 0
                      else np.array([int(np.argmax(falls))]))
        steep = int(candidates[np.argmin(slopes[candidates])])
        start = knots[steep]
        if y[i1 + start] - y[i1 + start:].min() >= min_drop_decades and slopes[steep] < 0:
            i2 = i1 + start
            # a next segment falling at least half as fast means cleanup is still under way at
            # the last checkpoint (a run stopped early): no end yet
            if steep < 2 and slopes[steep + 1] > 0.5 * slopes[steep]:
                i3 = i1 + knots[steep + 1]

    def argext(x: np.ndarray | None, fn) -> int | None:
        if x is None or n < 2:
            return None
        return int(st[1:][fn(np.diff(x))])

    return PhaseBoundaries(
        memorisation_end=step_at(i1), circuit_formation_end=step_at(i2),
        cleanup_end=step_at(i3), grokked=i2 is not None, rule=RULE,
        excluded_loss_peak=None if exc is None else int(st[int(np.nanargmax(exc))]),
        gini_steepest_rise=argext(gi, np.argmax),
        weights_steepest_fall=argext(ssw, np.argmin))
