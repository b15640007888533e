"""Robust outlier scores (median / MAD), pure functions over numpy arrays.

Runs both in the client and inside PostgreSQL (plpython3u shims in sql/analytics/), on
numpy 1.24 through 2.x: only long-stable numpy API is used here.
"""
import math

import numpy as np

# 0.6745 = the 0.75 quantile of the standard normal: makes MAD-based z comparable to a
# classic z-score for normal data (Iglewicz & Hoaglin, 1993).
MAD_SCALE = 0.6745
# When more than half of the baseline is identical, MAD is 0; the mean absolute deviation
# scaled by sqrt(pi/2) is then the consistent estimate of sigma instead.
MEANAD_SCALE = 0.7979


def robust_zscore(baseline, value):
    """How many robust standard deviations `value` lies above (+) or below (-) `baseline`.

    Returns None when there is nothing to compare against (empty baseline or value None).
    A value differing from a perfectly constant baseline scores +/-inf.
    """
    if value is None or baseline is None:
        return None
    data = np.asarray([b for b in baseline if b is not None], dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0 or not math.isfinite(value):
        return None
    median = float(np.median(data))
    deviations = np.abs(data - median)
    mad = float(np.median(deviations))
    if mad > 0:
        return MAD_SCALE * (value - median) / mad
    meanad = float(np.mean(deviations))
    if meanad > 0:
        return MEANAD_SCALE * (value - median) / meanad
    if value == median:
        return 0.0
    return math.copysign(math.inf, value - median)
