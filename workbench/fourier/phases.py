"""Phase boundaries of grokking: memorisation -> circuit formation -> cleanup.

Reference: Nanda et al. (2023), "Progress measures for grokking via mechanistic
interpretability", section 5: memorisation (train loss falls, test loss rises; 0-1.4k epochs in
the reference run), circuit formation (excluded loss rises while test loss stays high;
1.4k-9.4k), cleanup (test loss falls sharply, the Gini coefficient of the Fourier norms jumps and
the sum of squared weights falls; 9.4k-14k). The paper places the lines by eye; our rule:

1. ``memorisation_end``: the first checkpoint with train accuracy >= 0.99 (without accuracies,
   the first with train loss <= 1% of the first checkpoint's).
2. ``circuit_formation_end``: where test accuracy starts to climb. A continuous three-segment
   linear function (least squares over every pair of checkpoints as knots) is fitted to the test
   error rate ``1 - accuracy`` from ``memorisation_end`` on (plateau, steep fall, tail); the
   steepest segment among those carrying at least half the largest fall starts the climb. The
   model has grokked when the error then falls at least ``min_drop_decades`` (one decade);
   otherwise both later boundaries are None. Without accuracies, the same fit to ``log10`` test
   loss is used.
3. ``cleanup_end``: where the test loss stops falling. The same fit to ``log10`` test loss from
   ``circuit_formation_end`` on; cleanup ends at the end of the last segment that falls at least
   half as fast as the steepest, and is None while that segment runs to the last checkpoint
   (a run stopped mid-cleanup). The loss can keep falling long after accuracy saturates (a
   second fall as margins grow; the p = 59 demo run shows one), so accuracy alone would end
   cleanup too early. Without test losses, ``log10`` of the error rate (floored at 1e-4).
   Checkpoints or a finer metric history (see ``analyze_series``) may be used.

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


RULE = ("memorisation ends at train accuracy >= 0.99; circuit formation ends where the test "
        "error starts its steep fall (3-segment linear fit after memorisation); cleanup ends "
        "where log10 test loss stops falling (end of the last steep segment of a 3-segment fit)")


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


def _steep_fall(st: np.ndarray, y: np.ndarray, i0: int, min_drop: float,
                log_y: np.ndarray | None = None) -> tuple[int, int | None] | None:
    """(start, end) indices of the steep fall of ``y`` from index ``i0`` on, by the 3-segment
    fit; ``end`` is None while the fall is still under way at the last point; None if
    ``log_y`` (default ``y``, log10 units) never falls ``min_drop`` from that start."""
    log_y = y if log_y is None else log_y
    n = len(st)
    a, b, slopes = three_segment_knots(st[i0:], y[i0:])
    knots = [0, a, b, n - 1 - i0]
    span = st[i0:]
    lengths = np.diff(span[knots]) / max(span[-1] - span[0], 1e-12)
    # the steepest segment among those carrying at least half of the largest fall: the largest
    # fall alone can be a long, gentle plateau-to-fall segment
    falls = -slopes * lengths
    candidates = (np.nonzero(falls >= 0.5 * falls.max())[0] if falls.max() > 0
                  else np.array([int(np.argmax(falls))]))
    steep = int(candidates[np.argmin(slopes[candidates])])
    start = knots[steep]
    if slopes[steep] >= 0 or log_y[i0 + start] - log_y[i0 + start:].min() < min_drop:
        return None
    # a next segment still falling at least half as fast: the fall goes on past the data
    ended = steep < 2 and slopes[steep + 1] > 0.5 * slopes[steep]
    return i0 + start, (i0 + knots[steep + 1] if ended else None)


def _fall_end(st: np.ndarray, y: np.ndarray, i0: int) -> int | None:
    """Index where ``y`` (falling from ``i0``) stops falling: the end of the last segment of a
    3-segment fit that falls at least half as fast as the steepest; None if that segment runs
    to the last point (still falling)."""
    n = len(st)
    if n - i0 < 4:
        return None
    a, b, slopes = three_segment_knots(st[i0:], y[i0:])
    knots = [0, a, b, n - 1 - i0]
    steep = np.nonzero(slopes <= 0.5 * min(slopes.min(), 0.0))[0]
    if len(steep) == 0 or steep[-1] == 2 or slopes.min() >= 0:
        return None
    return i0 + knots[int(steep[-1]) + 1]


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

    # 2. circuit formation and cleanup
    loss_y = None if te_loss is None else np.log10(np.maximum(te_loss, 1e-30))
    err = None if te_acc is None else np.maximum(1.0 - te_acc, 1e-4)
    if loss_y is None and err is None:
        raise UserError("phase detection needs test_loss or test_accuracy")
    i2 = i3 = None
    if i1 is not None and n - i1 >= 4:
        # circuit formation ends where test accuracy starts to climb (the steep fall of the
        # error rate, fitted on a linear scale, grokked once it falls a decade); without
        # accuracies, where the log test loss starts its steep fall
        if err is not None:
            onset = _steep_fall(st, err, i1, min_drop_decades, np.log10(err))
        else:
            onset = _steep_fall(st, loss_y, i1, min_drop_decades)
        if onset is not None:
            i2, i3 = onset
            if err is not None:
                # cleanup ends when the test loss (else the log error) has finished falling,
                # which can be well after accuracy saturates: margins keep growing while the
                # weights are cleaned up
                i3 = _fall_end(st, loss_y if loss_y is not None else np.log10(err), i2)

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
