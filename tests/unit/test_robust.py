"""plpython/robust.py as a plain module (no database)."""
import math

from pganalytics.plpython.robust import robust_zscore


def test_outlier_scores_high_and_inlier_low():
    baseline = [10, 11, 9, 10, 12, 10, 9, 11]
    assert robust_zscore(baseline, 30) > 10
    assert abs(robust_zscore(baseline, 10.5)) < 1


def test_constant_baseline():
    assert robust_zscore([5, 5, 5], 5) == 0.0
    assert robust_zscore([5, 5, 5], 6) == math.inf
    assert robust_zscore([5, 5, 5], 4) == -math.inf


def test_mad_zero_falls_back_to_mean_absolute_deviation():
    z = robust_zscore([5, 5, 5, 5, 9], 9)
    assert math.isfinite(z) and z > 0


def test_nothing_to_compare():
    assert robust_zscore([], 1.0) is None
    assert robust_zscore([None, float("nan")], 1.0) is None
    assert robust_zscore([1.0, 2.0], None) is None
