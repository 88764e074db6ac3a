"""Vectorised synthetic SaaS simulator: raw ``users``/``events``/``billing`` plus hidden truth.

Users are simulated in fixed-size chunks, each with its own RNG derived from ``(seed, chunk)``,
so output depends only on :class:`SimulationParams`. Time runs on a grid of whole weeks starting
on the Monday on/before ``start``; all instants are int64 microseconds from that Monday until
they are turned into naive (UTC-meaning) ``datetime64[us]`` columns.

Causal story: latent risk (low engagement, plan, channel, support load, noise) plus payment
failures, plan changes and tenure set a weekly churn hazard, calibrated per chunk so the
expected churn share in ``[start, end)`` is ``target_churn_rate``. Most churners disengage
for 3-8 weeks beforehand (and file more tickets); about a quarter leave suddenly.

Scenario "drift" changes the world from ``drift_start`` on (see ``DRIFT_TRUTH``): the "pro"
plan's price rises 30% (invoices and ``users.monthly_price``) and its users' hazard doubles;
engagement of US users ramps down to 0.4 over 4 weeks, their hazard up to 1.6x. It replays
the stable run's random draws and thins/adds events from a separate stream, so everything before
``drift_start`` is identical to "stable" with the same seed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from churn.data import schema

PLAN_HISTORY = "plan_history"
"""Frame of each user's plan before/after its (optional) change: what a cut at a date needs."""
CHUNK_USERS = 5000
"""Users per chunk; fixed so results never depend on anything but the params."""
SCENARIOS: tuple[str, ...] = ("stable", "drift")
DRIFT_DEFAULT_DAYS = 75  # default drift_start: this many days before ``end``
DRIFT_PLAN, DRIFT_PRICE, DRIFT_COUNTRY = "pro", 38.99, "US"  # +30% price; disengaging segment
DRIFT_TRUTH: dict[str, list[str]] = {
    # Default-spec features the drift moves, relative to the stable run at the same dates.
    "shifted": ["events_30d", "events_90d", "active_days_30d", "active_days_90d",
                "days_since_last_event", "activity_trend", "feature_use_30d", "monthly_price"],
    # Subset of "shifted" that moves little (a third of users; 90-day windows lag; recency of
    # daily users barely changes): whole-population tests on ~1000 users rarely flag these.
    "weakly_shifted": ["events_90d", "active_days_90d", "days_since_last_event"],
    # tenure_days is not moved by the drift but drifts with calendar time in every scenario.
    "unshifted": ["support_tickets_90d", "payment_failures_90d", "tenure_days"],
}

_DAY = 86_400_000_000  # microseconds
_HOUR = 3_600_000_000
_WEEK = 7 * _DAY
_NEVER = np.iinfo(np.int64).max

_PLANS = tuple(schema.PLANS)
_PRICES = np.array([schema.PLANS[p] for p in _PLANS])
_DRIFT_PLAN_IX, _DRIFT_COUNTRY_IX = _PLANS.index(DRIFT_PLAN), schema.COUNTRIES.index(DRIFT_COUNTRY)
_DRIFT_RAMP_WEEKS, _DRIFT_ENG_FLOOR = 4, 0.4  # a milder floor is invisible in population tests
_DRIFT_LOGHAZ_PRICE, _DRIFT_LOGHAZ_SEGMENT = np.log(2.0), np.log(1.6)
_PLAN_P = np.array([0.6, 0.3, 0.1])
_EXISTING_SHARE = 0.35  # users signed up in the year before ``start``
_PLAN_LOGHAZ = np.array([0.35, 0.0, -0.45])  # cheap plans are less committed
_COUNTRY_P = np.array([0.34, 0.10, 0.09, 0.07, 0.10, 0.14, 0.08, 0.08])
_COUNTRY_FAIL = np.array([0.0, 0.0, -0.3, 0.0, 0.8, 0.7, 0.0, 0.0])  # card-decline log-odds
_CHANNEL_P = np.array([0.35, 0.25, 0.15, 0.15, 0.10])
_CHANNEL_LOGHAZ = np.array([0.0, 0.3, -0.35, 0.2, -0.15])
_WEEKDAY = np.array([1.12, 1.15, 1.15, 1.12, 1.02, 0.6, 0.55])  # Mon..Sun, weekend ~50% lower
_WEEKDAY = _WEEKDAY / _WEEKDAY.mean()
_HOURLY = np.array([0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.5, 4.5, 6.0, 6.5, 6.2,
                    5.0, 5.5, 6.2, 6.3, 5.8, 5.0, 4.2, 3.8, 3.5, 3.0, 2.0, 1.0])
_HOURLY = _HOURLY / _HOURLY.sum()
# Mix of the non-ticket event types (order of schema.EVENT_TYPES minus support_ticket).
_TYPE_MIX = np.array([0.24, 0.42, 0.18, 0.10, 0.04, 0.02])
_TICKET = schema.EVENT_TYPES.index("support_ticket")
_BTYPE = {name: i for i, name in enumerate(schema.BILLING_TYPES)}


@dataclass(frozen=True, kw_only=True)
class SimulationParams:
    """Everything that determines a simulated dataset.

    ``scenario`` has no default: env.yaml's (``drift``) is the pipeline's, and a library default
    could only shadow it; every caller says which world it simulates.
    """

    n_users: int = 1000
    start: date = date(2025, 1, 1)
    end: date = date(2026, 1, 1)  # exclusive
    seed: int = 42
    target_churn_rate: float = 0.10  # expected share of users churning within [start, end)
    events_per_user_day: float = 5.8  # mean events per active user-day before modifiers
    scenario: str
    drift_start: date | None = None  # scenario "drift" only; None: DRIFT_DEFAULT_DAYS before end
    world_days: int = 0  # the world goes on this many days past ``end`` (daily cycles reveal it)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid parameter."""
        if not isinstance(self.n_users, (int, np.integer)) or self.n_users < 1:
            raise ValueError(f"n_users must be an integer >= 1, got {self.n_users!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, date) or isinstance(value, datetime):
                raise ValueError(f"{name} must be a datetime.date, got {value!r}")
        if self.end <= self.start + timedelta(days=30):
            raise ValueError(f"end ({self.end}) must be > 30 days after start ({self.start})")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not 0.0 <= self.target_churn_rate <= 0.9:
            raise ValueError(f"target_churn_rate must be in [0, 0.9], got {self.target_churn_rate}")
        if not 0.0 < self.events_per_user_day < float("inf"):
            raise ValueError(
                f"events_per_user_day must be finite and > 0, got {self.events_per_user_day}"
            )
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; expected one of {SCENARIOS}")
        if self.drift_start is not None and (not isinstance(self.drift_start, date)
                                             or isinstance(self.drift_start, datetime)):
            raise ValueError(f"drift_start must be a date or None, got {self.drift_start!r}")
        if not isinstance(self.world_days, (int, np.integer)) or not 0 <= self.world_days <= 3650:
            raise ValueError(f"world_days must be an integer in [0, 3650], got {self.world_days!r}")
        if self.scenario == "drift" and not self.start < self.drift_date < self.end:
            raise ValueError(f"drift_start ({self.drift_date}) must lie strictly inside "
                             f"({self.start}, {self.end})")

    @property
    def drift_date(self) -> date:
        """First day of the drift scenario's changes (``drift_start`` or its default)."""
        return self.drift_start or self.end - timedelta(days=DRIFT_DEFAULT_DAYS)

    @property
    def world_users(self) -> int:
        """Users of the whole world: ``n_users`` signed up before ``end`` plus the ones who sign up
        in the ``world_days`` after it, at the same rate as new signups during the year."""
        year = (self.end - self.start).days
        return int(self.n_users) + round(self.n_users * (1 - _EXISTING_SHARE) * int(self.world_days) / max(year, 1))

    @property
    def world_end(self) -> date:
        """End (exclusive) of the simulated world: ``end`` plus ``world_days``."""
        return self.end + timedelta(days=int(self.world_days))


@dataclass(frozen=True)
class _Grid:
    """Week-aligned time grid; instants are microseconds since ``day0`` (a Monday)."""

    day0: np.datetime64
    n_weeks: int
    start_us: int
    end_us: int  # end of the simulated world
    drift_us: int = _NEVER  # instant the drift scenario starts; never for "stable"
    calibrated_us: int = _NEVER  # ``end``: the churn rate is calibrated on [start, end)

    @classmethod
    def of(cls, p: SimulationParams) -> _Grid:
        monday = p.start - timedelta(days=p.start.weekday())
        n_weeks = -(-(p.world_end - monday).days // 7)
        drift_us = (p.drift_date - monday).days * _DAY if p.scenario == "drift" else _NEVER
        return cls(np.datetime64(monday, "us"), n_weeks, (p.start - monday).days * _DAY,
                   (p.world_end - monday).days * _DAY, drift_us, (p.end - monday).days * _DAY)

    @property
    def drift_week(self) -> int:
        """First week starting on/after the drift instant (weekly effects begin there)."""
        return -(-self.drift_us // _WEEK)

    def stamp(self, us: np.ndarray) -> np.ndarray:
        return self.day0 + us.astype("timedelta64[us]")


@dataclass
class _Users:
    """Per-user latent and observable attributes of one chunk (arrays of length n)."""

    signup: np.ndarray  # us
    active_from: np.ndarray  # max(signup, start), us
    country: np.ndarray
    channel: np.ndarray
    plan0: np.ndarray
    base_eng: np.ndarray  # lognormal, mean 1
    support: np.ndarray  # tickets per active day at normal engagement
    risk: np.ndarray  # latent log-hazard offset (without plan)
    p_fail: np.ndarray  # per-charge card-decline probability
    plan1: np.ndarray  # plan after the (optional) plan change
    change_at: np.ndarray  # us, _NEVER if no change


def _draw_users(rng: np.random.Generator, n: int, g: _Grid, late: np.ndarray) -> _Users:
    """Draw attributes; ~35% of users are an existing base signed up in the prior year. ``late``
    users are the world's signups after ``end`` (spread over ``[end, world end)``)."""
    existing = rng.random(n) < _EXISTING_SHARE
    year_end = min(g.end_us, g.calibrated_us)
    span = year_end - g.start_us  # signups never stop: every snapshot has its share of new users
    prior = g.start_us - (rng.random(n) * 365 * _DAY).astype(np.int64)
    fresh = rng.random(n)
    signup = np.where(existing, prior, g.start_us + (fresh * span).astype(np.int64))
    signup = np.where(late, year_end + (fresh * (g.end_us - year_end)).astype(np.int64), signup)
    base_eng = rng.lognormal(-0.245, 0.7, n)
    support = 0.012 * rng.lognormal(-0.18, 0.6, n)
    country = rng.choice(len(_COUNTRY_P), n, p=_COUNTRY_P)
    channel = rng.choice(len(_CHANNEL_P), n, p=_CHANNEL_P)
    risk = (-0.8 * np.log(base_eng) + 0.4 * np.log(support / 0.012)
            + _CHANNEL_LOGHAZ[channel] + rng.normal(0.0, 0.6, n))
    p_fail = 1 / (1 + np.exp(3.3 - 0.5 * risk - _COUNTRY_FAIL[country]))
    plan0 = rng.choice(len(_PLANS), n, p=_PLAN_P)
    active_from = np.maximum(signup, g.start_us)
    plan1, change_at = _draw_plan_changes(rng, plan0, base_eng, active_from, g)
    return _Users(signup, active_from, country, channel, plan0, base_eng, support, risk,
                  p_fail, plan1, change_at)


def _draw_plan_changes(rng: np.random.Generator, plan0: np.ndarray, base_eng: np.ndarray,
                       active_from: np.ndarray, g: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """~10% change plan once; engaged users tend to upgrade, others downgrade."""
    n = len(plan0)
    changes = rng.random(n) < 0.10
    up = rng.random(n) < 1 / (1 + np.exp(-1.5 * np.log(base_eng) - 0.4))
    step = np.where(plan0 == 0, 1, np.where(plan0 == len(_PLANS) - 1, -1, np.where(up, 1, -1)))
    plan1 = np.where(changes, plan0 + step, plan0)
    when = active_from + (rng.random(n) * (g.end_us - active_from)).astype(np.int64)
    return plan1, np.where(changes, when, _NEVER)


def _charge_schedule(u: _Users, p: SimulationParams, g: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Monthly charge instants (n, n_months) on the signup day-of-month, and which are in range."""
    signup_dt = g.stamp(u.signup)
    dom = (signup_dt.astype("datetime64[D]") - signup_dt.astype("datetime64[M]")).astype(int)
    months = np.arange(np.datetime64(p.start, "M"), np.datetime64(p.world_end, "M") + 1)
    month_len = ((months + 1).astype("datetime64[D]") - months.astype("datetime64[D]")).astype(int)
    day = months.astype("datetime64[D]")[None, :] + np.minimum(dom[:, None], month_len - 1)
    tod = u.signup % _DAY + 60_000_000  # a minute after the signup time of day
    t = (day - g.day0.astype("datetime64[D]")).astype(np.int64) * _DAY + tod[:, None]
    return t, (t >= u.signup[:, None]) & (t >= g.start_us) & (t < g.end_us)


def _draw_billing(rng: np.random.Generator, u: _Users, p: SimulationParams,
                  g: _Grid) -> dict[str, np.ndarray]:
    """Charges, failures (80% retried 1-5 days later), refunds and plan changes.

    Drawn for the whole horizon (churn unknown yet); records at/after churn are dropped later.
    """
    t, valid = _charge_schedule(u, p, g)
    fail = rng.random(t.shape) < u.p_fail[:, None]
    retry = fail & (rng.random(t.shape) < 0.8)
    retry_t = t + rng.integers(1, 6, t.shape) * _DAY + rng.integers(0, 4 * _HOUR, t.shape)
    ok_t = np.concatenate([t[valid & ~fail], retry_t[valid & retry]])
    ok_u = np.concatenate([np.nonzero(valid & ~fail)[0], np.nonzero(valid & retry)[0]])
    refund = rng.random(len(ok_t)) < 0.02
    fail_u, fail_t = np.nonzero(valid & fail)[0], t[valid & fail]
    chg_u = np.flatnonzero(u.change_at != _NEVER)
    parts = [(ok_u, ok_t, "charge"), (fail_u, fail_t, "payment_failed"),
             (ok_u[refund], ok_t[refund] + rng.integers(1, 15, refund.sum()) * _DAY, "refund"),
             (chg_u, u.change_at[chg_u], "plan_change")]
    uid = np.concatenate([x[0] for x in parts])
    at = np.concatenate([x[1] for x in parts])
    btype = np.concatenate([np.full(len(x[0]), _BTYPE[x[2]], np.int8) for x in parts])
    plan = np.where(at >= u.change_at[uid], u.plan1[uid], u.plan0[uid])
    frac = np.where(btype == _BTYPE["refund"], np.round(rng.uniform(0.3, 1.0, len(at)), 2), 1.0)
    amount = np.where(btype == _BTYPE["plan_change"], 0.0, np.round(_price(plan, at, g) * frac, 2))
    return {"user": uid, "at": at, "type": btype, "plan": plan, "amount": amount,
            "fail_user": fail_u, "fail_at": fail_t, "fail_unrecovered": (~retry)[valid & fail]}


def _price(plan: np.ndarray, at: np.ndarray, g: _Grid) -> np.ndarray:
    """Monthly price of ``plan`` at instants ``at`` (the drift scenario raises one plan's)."""
    return np.where((plan == _DRIFT_PLAN_IX) & (at >= g.drift_us), DRIFT_PRICE, _PRICES[plan])


def _plan_by_week(u: _Users, g: _Grid) -> np.ndarray:
    """Plan index (n, n_weeks) in force at the start of each week."""
    week_at = np.arange(g.n_weeks) * _WEEK
    return np.where(week_at[None, :] >= u.change_at[:, None], u.plan1[:, None], u.plan0[:, None])


def _recent(n: int, n_weeks: int, users: np.ndarray, at: np.ndarray, weeks: int) -> np.ndarray:
    """Boolean (n, n_weeks): an incident of ``users`` happened within the last ``weeks`` weeks."""
    diff = np.zeros((n, n_weeks + weeks + 1), np.int32)
    w = at // _WEEK
    np.add.at(diff, (users, w), 1)
    np.add.at(diff, (users, w + weeks), -1)
    return np.cumsum(diff, axis=1)[:, :n_weeks] > 0


def _relative_hazard(u: _Users, bill: dict[str, np.ndarray], g: _Grid) -> np.ndarray:
    """Uncalibrated weekly hazard (n, n_weeks): latent risk x plan x tenure x payment trouble."""
    n, week_at, plan = len(u.signup), np.arange(g.n_weeks) * _WEEK, _plan_by_week(u, g)
    downgraded = (u.plan1 < u.plan0)[:, None] & (week_at[None, :] >= u.change_at[:, None])
    tenure = np.maximum(week_at[None, :] - u.signup[:, None], 0) / _WEEK
    unrec = bill["fail_unrecovered"]
    recovered = _recent(n, g.n_weeks, bill["fail_user"][~unrec], bill["fail_at"][~unrec], 4)
    lapsed = _recent(n, g.n_weeks, bill["fail_user"][unrec], bill["fail_at"][unrec], 8)
    log_h = (u.risk[:, None] + _PLAN_LOGHAZ[plan] + 0.5 * downgraded
             + np.log1p(1.2 * np.exp(-tenure / 6)) + 0.8 * recovered + 1.8 * lapsed)
    return np.exp(log_h)


def _week_exposure(lo: np.ndarray, hi: np.ndarray, g: _Grid) -> np.ndarray:
    """Fraction (n, n_weeks) of each week inside the per-user interval [lo, hi)."""
    week_at = np.arange(g.n_weeks) * _WEEK
    overlap = np.minimum(hi[:, None], week_at + _WEEK) - np.maximum(lo[:, None], week_at)
    return np.clip(overlap, 0, _WEEK) / _WEEK


def _calibrate(rel: np.ndarray, expo: np.ndarray, target: float) -> float:
    """Scale c such that the mean churn probability over [start, end) equals ``target``."""
    if target == 0.0:
        return 0.0

    def churn_share(c: float) -> float:
        return float(np.mean(1 - np.exp((expo * np.log1p(-np.minimum(c * rel, 0.95))).sum(1))))

    lo, hi = -20.0, 5.0  # bisection on log c; the share is monotone in c
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if churn_share(np.exp(mid)) < target else (lo, mid)
    return float(np.exp((lo + hi) / 2))


def _scenario_effects(p: SimulationParams, g: _Grid, u: _Users) -> tuple[np.ndarray, np.ndarray]:
    """Per-week (engagement, hazard) multipliers of the scenario; applied after calibration.

    "stable" is all ones (n_weeks,). "drift" gives (n, n_weeks), != 1 only from ``drift_week``:
    the price-rise plan's hazard x2; the segment's engagement ramps to 0.4, its hazard to x1.6.
    """
    if p.scenario == "stable":
        ones = np.ones(g.n_weeks)
        return ones, ones
    weeks = np.arange(g.n_weeks)
    ramp = np.clip((weeks - g.drift_week + 1) / _DRIFT_RAMP_WEEKS, 0.0, 1.0)[None, :]
    segment = (u.country == _DRIFT_COUNTRY_IX)[:, None]
    eng = np.where(segment, 1.0 - (1.0 - _DRIFT_ENG_FLOOR) * ramp, 1.0)
    priced = (_plan_by_week(u, g) == _DRIFT_PLAN_IX) & (weeks >= g.drift_week)[None, :]
    return eng, np.exp(_DRIFT_LOGHAZ_PRICE * priced + _DRIFT_LOGHAZ_SEGMENT * segment * ramp)


def _draw_churn(rng: np.random.Generator, hazard: np.ndarray, expo: np.ndarray,
                u: _Users, g: _Grid) -> np.ndarray:
    """Churn instant (us) per user, ``_NEVER`` for survivors; first week whose draw fires."""
    fires = (rng.random(hazard.shape) < 1 - (1 - hazard) ** expo) & (expo > 0)
    week = np.argmax(fires, axis=1)
    lo = np.maximum(week * _WEEK, u.active_from + _HOUR)
    hi = np.minimum((week + 1) * _WEEK, g.end_us)
    at = lo + (rng.random(len(week)) * np.maximum(hi - lo, 1)).astype(np.int64)
    return np.where(fires.any(axis=1) & (at < g.end_us), at, _NEVER)


def _weekly_engagement(rng: np.random.Generator, churn_at: np.ndarray,
                       g: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Pre-churn decay (n, n_weeks) and in-decay flag; ~25% of churners leave suddenly."""
    n = len(churn_at)
    churn_week = np.where(churn_at == _NEVER, g.n_weeks + 99, churn_at // _WEEK)
    gradual = rng.random(n) >= 0.25
    length = rng.integers(3, 9, n)  # weeks of decline
    floor = rng.uniform(0.1, 0.5, n)  # engagement left in the churn week
    k = churn_week[:, None] - np.arange(g.n_weeks)[None, :]  # weeks before churn
    decaying = gradual[:, None] & (k >= 0) & (k < length[:, None])
    decay = np.where(decaying, floor[:, None] ** ((length[:, None] - k) / length[:, None]), 1.0)
    return decay, decaying


def _vacations(rng: np.random.Generator, n: int, n_days: int) -> np.ndarray:
    """Daily factor (n, n_days): quiet spells of 4-21 days (~1.5 per user-year) for everyone."""
    n_spells = rng.poisson(1.5 * n_days / 365, n)
    who = np.repeat(np.arange(n), n_spells)
    first = rng.integers(0, n_days, len(who))
    last = np.minimum(first + rng.integers(4, 22, len(who)), n_days)
    depth = rng.uniform(0.0, 0.25, len(who))
    log_f = np.zeros((n, n_days + 1))
    np.add.at(log_f, (who, first), np.log(depth + 1e-3))
    np.add.at(log_f, (who, last), -np.log(depth + 1e-3))
    return np.exp(np.cumsum(log_f, axis=1)[:, :n_days])


def _draw_events(rng: np.random.Generator, u: _Users, lam: np.ndarray, ticket_lam: np.ndarray,
                 stop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson counts per user-day -> (user, instant, type) sorted by user then time."""
    n, n_days = lam.shape
    counts = rng.poisson(np.concatenate([lam, ticket_lam], axis=1)).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    who, col = np.divmod(cell, 2 * n_days)
    del cell  # events dominate chunk memory: free big temporaries early
    is_ticket = col >= n_days
    at = (col % n_days) * _DAY
    del col
    at += rng.choice(24, len(at), p=_HOURLY) * _HOUR
    at += rng.integers(0, _HOUR, len(at))
    mix = rng.dirichlet(_TYPE_MIX * 40, n).cumsum(axis=1)  # user-specific type mix
    draw, etype = rng.random(len(at)), np.zeros(len(at), np.int8)
    for k in range(mix.shape[1] - 1):  # inverse CDF, one type at a time to bound memory
        etype += draw > mix[who, k]
    etype[is_ticket] = _TICKET
    keep = (at >= u.active_from[who]) & (at < stop[who])
    who, at, etype = who[keep], at[keep], etype[keep]
    order = np.argsort(who * (n_days * _DAY) + at, kind="stable")
    return who[order], at[order], etype[order]


def _labels(codes: np.ndarray, names: tuple[str, ...]) -> pd.Series:
    """Codes -> pandas ``str`` column, via Arrow (much faster than object arrays)."""
    arr = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names))
    return arr.cast(pa.string()).to_pandas()


def _churn_paths(rng: np.random.Generator, p: SimulationParams, u: _Users, g: _Grid,
                 rel: np.ndarray, expo: np.ndarray, expo_cal: np.ndarray,
                 late: np.ndarray) -> tuple[np.ndarray, ...]:
    """(hazard, churn_at, weekly0, weekly, decaying0, decaying) of the scenario; ``0`` = stable.

    The stable twins replay the same uniforms from a copy of ``rng``: with hazards only raised,
    scenario churn is never later, and every later draw stays aligned with the stable run.
    """
    eng_mult, haz_mult = _scenario_effects(p, g, u)
    year = ~late  # calibrated on the users of [start, end)
    base = _calibrate(rel[year], expo_cal[year], p.target_churn_rate) * rel if year.any() else 0.0 * rel
    hazard = np.minimum(base * haz_mult, 0.95)
    churn0 = _draw_churn(copy.deepcopy(rng), np.minimum(base, 0.95), expo, u, g)
    churn_at = _draw_churn(rng, hazard, expo, u, g)
    decay0, decaying0 = _weekly_engagement(copy.deepcopy(rng), churn0, g)
    decay, decaying = _weekly_engagement(rng, churn_at, g)
    before = np.arange(g.n_weeks) < g.drift_week  # no decline caused by a future drift
    decay, decaying = np.where(before, decay0, decay), np.where(before, decaying0, decaying)
    weekly0 = u.base_eng[:, None] * decay0
    return hazard, churn_at, weekly0, u.base_eng[:, None] * decay * eng_mult, decaying0, decaying


def _adjust_events(rng: np.random.Generator, u: _Users, events: tuple[np.ndarray, ...],
                   ratio: np.ndarray, extra_ticket_lam: np.ndarray,
                   stop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin non-ticket events to ``ratio`` (n, n_weeks) of their intensity; add extra tickets.

    Thinning a Poisson process gives a Poisson process at the lower rate, so this reaches the
    scenario's intensity while leaving every event where ``ratio`` is 1 untouched.
    """
    who, at, etype = events
    keep = (etype == _TICKET) | (rng.random(len(at)) < ratio[who, at // _WEEK])
    more = _draw_events(rng, u, np.zeros_like(extra_ticket_lam), extra_ticket_lam, stop)
    who, at, etype = (np.concatenate([a[keep], b]) for a, b in zip(events, more, strict=True))
    order = np.lexsort((at, who))
    return who[order], at[order], etype[order]


def _simulate_chunk(p: SimulationParams, chunk: int, g: _Grid) -> dict[str, Any]:
    """Simulate one chunk; returns raw arrays (local user index 0..n-1)."""
    rng = np.random.default_rng(np.random.SeedSequence([p.seed, chunk]))
    n = min(CHUNK_USERS, p.world_users - chunk * CHUNK_USERS)
    late = chunk * CHUNK_USERS + np.arange(n) >= p.n_users  # the world's signups after `end`
    u = _draw_users(rng, n, g, late)
    bill = _draw_billing(rng, u, p, g)
    rel = _relative_hazard(u, bill, g)
    expo = _week_exposure(u.active_from, np.full(n, g.end_us), g)
    # calibrated on [start, end) only, so a longer world keeps the observed year's churn share
    expo_cal = _week_exposure(u.active_from, np.full(n, min(g.end_us, g.calibrated_us)), g)
    hazard, churn_at, weekly0, weekly, decaying0, decaying = _churn_paths(rng, p, u, g, rel, expo, expo_cal, late)
    stop = np.minimum(churn_at, g.end_us)
    vac = _vacations(rng, n, 7 * g.n_weeks)
    noise = rng.gamma(2.5, 1 / 2.5, vac.shape)  # day-level over-dispersion
    # Drawn at the stable intensity: Poisson draws use a varying number of uniforms, so any other
    # intensity would shift every later draw. A scenario then thins and adds from its own stream.
    lam = p.events_per_user_day * np.repeat(weekly0, 7, axis=1) * np.tile(_WEEKDAY, g.n_weeks)
    lam *= vac * noise
    ticket_lam = np.repeat(u.support[:, None] * (1 + 3.0 * decaying0), 7, axis=1) * noise
    events = _draw_events(rng, u, lam, ticket_lam, stop)
    if p.scenario != "stable":
        extra = np.repeat(u.support[:, None] * 3.0 * (decaying & ~decaying0), 7, axis=1) * noise
        events = _adjust_events(np.random.default_rng(np.random.SeedSequence([p.seed, chunk, 1])),
                                u, events, weekly / weekly0, extra, stop)
    truth_mask = _week_exposure(u.active_from, stop, g) > 0
    truth_eng = weekly * vac.reshape(n, g.n_weeks, 7).mean(axis=2)
    return {"u": u, "bill": bill, "churn_at": churn_at, "stop": stop, "events": events,
            "truth": (truth_mask, truth_eng, hazard)}


def _table(table: schema.TableSchema, *columns: object) -> pd.DataFrame:
    """DataFrame with ``table``'s column names, in schema order."""
    return pd.DataFrame(dict(zip(table.column_names, columns, strict=True)))


def _frames(sim: dict[str, Any], g: _Grid, user0: int, event0: int,
            bill0: int) -> dict[str, pd.DataFrame]:
    """Turn one chunk's arrays into schema-ordered DataFrames with global ids."""
    u, bill, stop, churn_at = sim["u"], sim["bill"], sim["stop"], sim["churn_at"]
    final_plan = np.where(u.change_at < stop, u.plan1, u.plan0)
    churned = np.where(churn_at == _NEVER, np.datetime64("NaT", "us"), g.stamp(stop))
    users = _table(schema.USERS, np.arange(user0, user0 + len(stop), dtype=np.int64),
                   g.stamp(u.signup), _labels(final_plan, _PLANS), _price(final_plan, stop - 1, g),
                   _labels(u.country, schema.COUNTRIES), _labels(u.channel, schema.CHANNELS),
                   churned)
    who, at, etype = sim["events"]
    events = _table(schema.EVENTS, np.arange(event0, event0 + len(who), dtype=np.int64),
                    who + user0, _labels(etype, schema.EVENT_TYPES), g.stamp(at))
    keep = (bill["at"] >= u.active_from[bill["user"]]) & (bill["at"] < stop[bill["user"]])
    order = np.lexsort((bill["at"][keep], bill["user"][keep]))
    b = {k: bill[k][keep][order] for k in ("user", "at", "type", "plan", "amount")}
    billing = _table(schema.BILLING, np.arange(bill0, bill0 + len(order), dtype=np.int64),
                     b["user"] + user0, g.stamp(b["at"]), _labels(b["type"], schema.BILLING_TYPES),
                     _labels(b["plan"], _PLANS), b["amount"].astype(np.float64))
    mask, eng, hazard = sim["truth"]
    tu, tw = np.nonzero(mask)
    truth = _table(schema.USER_TRUTH, tu + user0, g.stamp(tw * _WEEK), eng[tu, tw],
                   hazard[tu, tw])
    changed = u.change_at < stop
    plans = pd.DataFrame({"user_id": users["user_id"], "plan_before": _labels(u.plan0, _PLANS),
                          "plan_after": _labels(u.plan1, _PLANS),
                          "plan_changed_at": np.where(changed, g.stamp(np.where(changed, u.change_at, 0)),
                                                      np.datetime64("NaT", "us"))})
    return {"users": users, "events": events, "billing": billing, "user_truth": truth,
            PLAN_HISTORY: plans}


def users_as_of(users: pd.DataFrame, plans: pd.DataFrame, params: SimulationParams,
                cut: datetime | pd.Timestamp) -> pd.DataFrame:
    """The ``users`` table as it looked at ``cut``: users signed up before it, a churn date only
    if it lies before it, and the plan and price *in force* at the cut (or at the churn), not the
    final ones (that would leak a later plan change or price rise into earlier snapshots).

    ``users`` and ``plans`` are a world's final tables (``iter_chunks(..., plan_history=True)``).
    """
    cut = pd.Timestamp(cut)
    known = users[users["signup_at"] < cut].merge(plans, on="user_id", how="left", validate="one_to_one")
    churned = known["churned_at"].where(known["churned_at"] < cut)
    until = churned.fillna(cut)  # the plan and price in force just before the churn or the cut
    plan = known["plan_after"].where(known["plan_changed_at"] < until, known["plan_before"])
    drift = pd.Timestamp(params.drift_date) if params.scenario == "drift" else pd.Timestamp.max
    last = until - pd.Timedelta(microseconds=1)
    price = np.where((plan == DRIFT_PLAN) & (last >= drift), DRIFT_PRICE, plan.map(schema.PLANS).astype(float))
    out = known[list(schema.USERS.column_names)].copy()
    out["plan"], out["monthly_price"], out["churned_at"] = plan.to_numpy(), price, churned.to_numpy()
    return out.reset_index(drop=True)


def n_chunks(params: SimulationParams) -> int:
    """Number of chunks ``iter_chunks`` yields for these params."""
    return -(-params.world_users // CHUNK_USERS)


def iter_chunks(params: SimulationParams, progress: bool = True,
                plan_history: bool = False) -> Iterator[dict[str, pd.DataFrame]]:
    """Yield ``{"users", "events", "billing", "user_truth"}`` frames chunk by chunk.

    User ids are 1..n_users; event and billing ids are running counters starting at 1.
    ``plan_history`` adds :data:`PLAN_HISTORY` (each user's plan before and after its change),
    which :func:`users_as_of` needs to cut the world at a date.
    """
    params.validate()
    g = _Grid.of(params)
    next_event, next_bill = 1, 1
    chunks = range(n_chunks(params))
    for chunk in tqdm(chunks, desc="simulating", unit="chunk", disable=not progress):
        # No local keeps the raw arrays alive while the consumer holds the yielded frames.
        frames = _frames(_simulate_chunk(params, chunk, g), g, chunk * CHUNK_USERS + 1,
                         next_event, next_bill)
        next_event += len(frames["events"])
        next_bill += len(frames["billing"])
        if not plan_history:
            del frames[PLAN_HISTORY]
        yield frames
        del frames


def generate(params: SimulationParams, progress: bool = False) -> dict[str, pd.DataFrame]:
    """All chunks concatenated in memory (meant for small runs and tests)."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for frames in iter_chunks(params, progress=progress):
        for name, df in frames.items():
            parts.setdefault(name, []).append(df)
    return {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}
