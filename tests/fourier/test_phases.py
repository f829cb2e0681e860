import numpy as np
import pytest

from workbench.errors import UserError
from workbench.fourier.phases import detect_phases, three_segment_knots


def grokking_series(memorised=1400, formed=9400, cleaned=14000, end=40000, every=200):
    steps = np.arange(every, end + 1, every)
    train_acc = np.where(steps >= memorised, 1.0, steps / memorised * 0.9)
    log_test = np.where(steps < formed, 1.0 + 0.00001 * (steps - formed),
                        np.where(steps < cleaned, 1.0 - 6.0 * (steps - formed) / (cleaned - formed),
                                 -5.0 - 2.0 * (steps - cleaned) / (end - cleaned)))
    test_acc = np.where(steps < formed, 0.01, np.minimum(1.0, 0.01 + (steps - formed) / 2000))
    gini = np.where(steps < formed, 0.3, np.where(steps < cleaned, 0.3 + 0.6 * (steps - formed)
                                                   / (cleaned - formed), 0.9))
    excluded = np.where(steps < formed, 1 + steps / formed, 2.0)
    return dict(steps=steps.tolist(), train_accuracy=train_acc, test_accuracy=test_acc,
                test_loss=10 ** log_test, gini=gini, excluded_loss=excluded)


def test_constructed_series_recovers_the_known_boundaries():
    s = grokking_series()
    ph = detect_phases(s["steps"], train_accuracy=s["train_accuracy"],
                       test_accuracy=s["test_accuracy"], test_loss=s["test_loss"],
                       gini=s["gini"], excluded_loss=s["excluded_loss"])
    assert ph.memorisation_end == 1400
    assert ph.circuit_formation_end == 9400
    assert ph.cleanup_end == 14000
    assert ph.grokked
    assert 9400 < ph.gini_steepest_rise <= 14000
    assert ph.excluded_loss_peak >= 9400
    assert set(ph.to_json()) >= {"memorisation_end", "circuit_formation_end", "cleanup_end", "rule"}


def test_other_boundaries_and_accuracy_only_input():
    s = grokking_series(memorised=2000, formed=5000, cleaned=8000, end=20000, every=100)
    steps = np.asarray(s["steps"])
    log_err = np.interp(steps, [0, 5000, 8000, 20000], [-0.05, -0.05, -3.9, -4.0])
    ph = detect_phases(s["steps"], train_accuracy=s["train_accuracy"],
                       test_accuracy=1 - 10 ** log_err)
    assert ph.memorisation_end == 2000
    assert abs(ph.circuit_formation_end - 5000) <= 200  # a fit knot: within two checkpoints
    assert abs(ph.cleanup_end - 8000) <= 200


def test_no_grokking_gives_no_cleanup():
    steps = list(range(100, 10001, 100))
    ph = detect_phases(steps, train_accuracy=[1.0] * 100, test_loss=[5.0 + 0.001 * i for i in range(100)])
    assert ph.memorisation_end == 100 and ph.cleanup_end is None and not ph.grokked
    ph = detect_phases(steps, train_accuracy=[0.5] * 100, test_loss=[5.0] * 100)
    assert ph.memorisation_end is None


def test_knots_of_a_noiseless_three_segment_line():
    x = np.arange(50.0)
    y = np.piecewise(x, [x < 10, (x >= 10) & (x < 30), x >= 30],
                     [lambda t: 1.0, lambda t: 1.0 - (t - 10) * 0.5, lambda t: -9.0 - (t - 30) * 0.01])
    i, j, slopes = three_segment_knots(x, y)
    assert (i, j) == (10, 30)
    assert slopes == pytest.approx([0.0, -0.5 * 49, -0.01 * 49], abs=1e-6)


def test_bad_input():
    with pytest.raises(UserError):
        detect_phases([3, 2], train_accuracy=[1, 1], test_loss=[1, 1])
    with pytest.raises(UserError):
        detect_phases([1, 2], train_accuracy=[1], test_loss=[1, 1])


def test_second_margin_fall_after_generalising_is_still_cleanup():
    # the p = 59 demo run's shape: test accuracy climbs 1000-2000 as the loss falls three
    # decades; after a shelf, the loss falls again (margins grow) until 3300, then flattens
    steps = np.arange(100, 6001, 100)
    log_loss = np.interp(steps, [100, 200, 1000, 2000, 2600, 3300, 6000],
                         [0.8, 1.0, 0.8, -2.2, -2.5, -6.2, -6.8])
    error = np.interp(steps, [100, 200, 1000, 1400, 2000, 6000], [0.97, 0.8, 0.5, 0.2, 1e-3, 0])
    ph = detect_phases(steps.tolist(), train_accuracy=np.where(steps >= 200, 1.0, 0.5),
                       test_accuracy=1 - error, test_loss=10 ** log_loss)
    assert ph.memorisation_end == 200
    assert 900 <= ph.circuit_formation_end <= 1400
    assert ph.cleanup_end == 3300
