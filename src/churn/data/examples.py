"""Generators for the two example data sets in ``examples/`` (and the tests' fixtures).

* :func:`purchase_log`: a non-contractual purchase log (customer, date, amount) from a
  Pareto/NBD process: each customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)`` while
  alive and drops out, never to return, after an exponential lifetime with rate
  ``mu ~ Gamma(s, beta)``. The returned truth holds every customer's dropout time.
* :func:`product_log`: a social app's log with nine event types of its own, users with
  attributes (country, platform), monthly subscriptions that lapse and, for some users, start
  again after a pause (returning users).

Both are deterministic for a seed. Column names are deliberately not the platform's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PRODUCT_EVENT_TYPES: dict[str, float] = {
    "app_open": 0.30, "feed_scroll": 0.22, "like": 0.15, "comment": 0.08, "post": 0.05,
    "share": 0.05, "message_sent": 0.10, "search": 0.04, "report_abuse": 0.01,
}  # fmt: skip


@dataclass(frozen=True)
class PurchaseLogParams:
    """Pareto/NBD parameters (rates per day) and the observation window."""

    n_customers: int = 3000
    seed: int = 7
    start: str = "2023-01-01"
    end: str = "2025-01-01"
    acquisition_days: int = 540  # customers arrive uniformly over the first part of the window
    r: float = 1.2
    alpha: float = 40.0  # mean purchase rate r / alpha = 0.03 per day (about one a month)
    s: float = 1.5
    beta: float = 450.0  # mean dropout rate s / beta = 1/300 per day


def purchase_log(params: PurchaseLogParams = PurchaseLogParams()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(purchases ``customer, date, amount``, truth ``customer, first_purchase, dropout_at``).

    Every customer's first purchase is at their arrival; repeat purchases follow while alive.
    """
    rng = np.random.default_rng(params.seed)
    start, end = pd.Timestamp(params.start), pd.Timestamp(params.end)
    horizon = (end - start).total_seconds() / 86_400
    n = params.n_customers
    arrival = rng.uniform(0, params.acquisition_days, n)
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    mu = rng.gamma(params.s, 1 / params.beta, n)
    lifetime = rng.exponential(1 / mu)
    spend = rng.gamma(3.0, 15.0, n)  # a customer's typical basket
    rows_c, rows_t, rows_a = [], [], []
    for c in range(n):
        alive_until = min(arrival[c] + lifetime[c], horizon)
        k = rng.poisson(lam[c] * max(alive_until - arrival[c], 0.0))
        times = np.sort(np.concatenate([[arrival[c]], rng.uniform(arrival[c], alive_until, k)]))
        rows_c.append(np.full(len(times), c + 1001))
        rows_t.append(times)
        rows_a.append(np.round(spend[c] * rng.gamma(4.0, 0.25, len(times)), 2))
    t = np.concatenate(rows_t)
    purchases = pd.DataFrame({
        "customer": np.concatenate(rows_c),
        "date": (start + pd.to_timedelta(np.round(t * 86_400), unit="s")).astype("datetime64[us]"),
        "amount": np.concatenate(rows_a),
    }).sort_values(["date", "customer"], ignore_index=True)  # fmt: skip
    died = arrival + lifetime < horizon
    dropout = start + pd.to_timedelta(np.where(died, arrival + lifetime, 0.0), unit="D")
    truth = pd.DataFrame(
        {
            "customer": np.arange(n) + 1001,
            "first_purchase": start + pd.to_timedelta(arrival, unit="D"),
            "dropout_at": pd.Series(dropout).where(died),
        }
    )
    return purchases, truth


@dataclass(frozen=True)
class ProductLogParams:
    n_users: int = 1200
    seed: int = 11
    start: str = "2024-01-01"
    end: str = "2025-01-01"
    monthly_lapse: float = 0.06  # chance a subscription is not renewed at a month's end
    return_share: float = 0.35  # lapsed users who come back later
    events_per_day: float = 1.4


def product_log(params: ProductLogParams = ProductLogParams()) -> dict[str, pd.DataFrame]:
    """``members`` (member_ref, joined, country, platform), ``activity`` (member_ref, ts,
    action) and ``plans`` (member_ref, period_start, period_end or empty while running)."""
    rng = np.random.default_rng(params.seed)
    start, end = pd.Timestamp(params.start), pd.Timestamp(params.end)
    days = (end - start).days
    types, shares = list(PRODUCT_EVENT_TYPES), np.array(list(PRODUCT_EVENT_TYPES.values()))
    members, subs, events = [], [], []
    for i in range(params.n_users):
        user = 500_000 + i
        joined = float(rng.uniform(0, days * 0.7))
        country = rng.choice(["US", "BR", "IN", "DE", "JP"], p=[0.3, 0.2, 0.25, 0.15, 0.1])
        platform = rng.choice(["ios", "android", "web"], p=[0.4, 0.45, 0.15])
        members.append((user, (start + pd.Timedelta(days=joined)).floor("s"), country, platform))
        engagement = rng.gamma(2.0, params.events_per_day / 2.0)
        lapse = params.monthly_lapse * (1.6 if platform == "web" else 1.0)
        t = joined
        while t < days:
            months = rng.geometric(lapse)
            stop = t + 30.0 * months
            open_end = stop >= days
            subs.append(
                (
                    user,
                    (start + pd.Timedelta(days=t)).floor("s"),
                    None if open_end else (start + pd.Timedelta(days=stop)).floor("s"),
                )
            )
            n_days = int(min(stop, days) - t)
            if n_days > 0:
                day = np.arange(n_days)
                fade = np.ones(n_days) if open_end else np.clip((n_days - day) / 45.0, 0.15, 1.0)  # disengage first
                counts = rng.poisson(engagement * fade)
                at = np.repeat(t + day, counts) + rng.uniform(0, 1, counts.sum())
                events.append(
                    pd.DataFrame(
                        {
                            "member_ref": user,
                            "ts": start + pd.to_timedelta(at, unit="D"),
                            "action": rng.choice(types, counts.sum(), p=shares),
                        }
                    )
                )
            if open_end or rng.uniform() > params.return_share:
                break
            t = stop + float(rng.uniform(20, 120))  # a pause, then the user returns
    activity = pd.concat(events, ignore_index=True)
    activity = activity[activity.ts < end].sort_values(["ts", "member_ref"], ignore_index=True)
    activity["ts"] = activity["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return {
        "members": pd.DataFrame(members, columns=["member_ref", "joined", "country", "platform"]),
        "activity": activity,
        "plans": pd.DataFrame(subs, columns=["member_ref", "period_start", "period_end"]),
    }
