"""Simulated live traffic with known truth for an A/B test of two churn models.

Each arm's model scores its own users; the riskiest ``offer_share`` of each arm get a retention
offer. Outcomes come from the simulator's hidden truth: a user's weekly churn hazard becomes a
churn probability over the test window, and the offer cuts it by ``offer_effect`` (relative), so
it helps mainly users who are truly at risk. A model that targets better really lowers churn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def churn_probability(weekly_hazard: np.ndarray, window_days: int) -> np.ndarray:
    """P(churn within the window) from a constant weekly hazard."""
    probability: np.ndarray = 1.0 - (1.0 - np.clip(weekly_hazard, 0.0, 1.0)) ** (window_days / 7.0)
    return probability


def choose_offers(frame: pd.DataFrame, offer_share: float) -> np.ndarray:
    """True for the top ``offer_share`` of each arm by that arm's model score."""
    if not 0.0 <= offer_share <= 1.0:
        raise ValueError(f"offer_share must be in [0, 1], got {offer_share}")
    rank = frame.groupby("arm")["score"].rank(ascending=False, method="first")
    size = frame.groupby("arm")["score"].transform("size")
    offered: np.ndarray = (rank <= np.ceil(offer_share * size)).to_numpy()
    return offered


def simulate_outcomes(frame: pd.DataFrame, offer_share: float, offer_effect: float,
                      window_days: int, seed: int, arrival_days: int | None = None) -> pd.DataFrame:
    """Draw churn outcomes for ``frame`` (user_id, arm, score, weekly_hazard).

    Returns the frame plus offered, churn_probability, churned, observed_day and log_loss (of
    the arm model's score against the outcome). Users arrive over the test: ``observed_day``
    (uniform in 1..window) is the day their outcome is in, so a daily look sees a growing sample
    of complete, identically distributed outcomes (what the sequential analysis assumes).
    ``arrival_days`` spreads the arrivals over another span than the window (a test that must
    end within so many daily cycles).
    """
    if not 0.0 <= offer_effect <= 1.0:
        raise ValueError(f"offer_effect must be in [0, 1], got {offer_effect}")
    rng = np.random.default_rng(seed)
    offered = choose_offers(frame, offer_share)
    p = churn_probability(frame["weekly_hazard"].to_numpy(float), window_days) * np.where(offered, 1 - offer_effect, 1.0)
    churned = rng.random(len(frame)) < p
    day = rng.integers(1, (arrival_days or window_days) + 1, len(frame))
    score = np.clip(frame["score"].to_numpy(float), 1e-12, 1 - 1e-12)
    log_loss = -np.where(churned, np.log(score), np.log(1 - score))
    return frame.assign(offered=offered, churn_probability=p, churned=churned, observed_day=day, log_loss=log_loss)


def daily_counts(outcomes: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Cumulative users and churners per arm as seen at each daily look; the looks start on the
    first day both arms have a user (a comparison needs both: a small test's first day may not)."""
    rows: list[dict[str, int]] = []
    for day in range(1, window_days + 1):
        seen = outcomes[outcomes["observed_day"] <= day]
        users, churned = seen.groupby("arm").size(), seen[seen["churned"]].groupby("arm").size()
        if not rows and (users.get("control", 0) == 0 or users.get("variant", 0) == 0) and day < window_days:
            continue
        rows.append({"day": day, "n_control": int(users.get("control", 0)), "n_variant": int(users.get("variant", 0)),
                     "conv_control": int(churned.get("control", 0)), "conv_variant": int(churned.get("variant", 0))})
    return pd.DataFrame(rows)
