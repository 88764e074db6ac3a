"""The A/B figure draws what an early daily look has: an arm with no churner yet."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from churn.abtest.plots import arms_figure


def test_an_arm_without_churners_gets_an_error_bar_from_zero() -> None:
    # statsmodels' Wilson lower bound for 0 of 37 is 6.9e-18, not 0: the bar's lower error was
    # negative by rounding and matplotlib refused the figure (a real daily cycle failed on it)
    assert proportion_confint(0, 37, method="wilson")[0] > 0
    results = {
        "control": {"users": 37, "churn_rate": 0.0},
        "variant": {"users": 40, "churn_rate": 1 / 40},
        "probability_test": {"prob_variant_better": 0.3},
    }
    daily = pd.DataFrame({"day": [1, 2, 3]})
    fig = arms_figure(results, daily, np.array([1.0, 0.9, 0.8]))
    bars = fig.axes[0].patches
    assert [b.get_height() for b in bars] == [0.0, 1 / 40]
    # the whisker of the empty arm spans 0 .. Wilson's upper bound for 0 of 37
    top = proportion_confint(0, 37, method="wilson")[1]
    segments = [seg for coll in fig.axes[0].collections for seg in coll.get_segments()]
    assert any(np.isclose(seg[:, 1].min(), 0.0) and np.isclose(seg[:, 1].max(), top) for seg in segments), segments
