"""Churn label rules (SPEC 8.1): who is in the population at a snapshot, and who churns.

``t`` is a snapshot, ``H`` the horizon, ``data_end`` the end of the observed data. Features use
rows strictly before ``t``; so does every population test here, and the label window is
``[t, t + H)``, so the instant ``t`` belongs to the future on both sides. A label is mature only
once everything it depends on has been observed (``label_mature``); immature rows are kept for
scoring, never for training or evaluation.

* ``cancellation``: population = signed up before ``t`` and not churned before ``t``;
  label = ``churned_at`` in ``[t, t + H)``. Mature when ``t + H <= data_end``.
* ``inactivity`` (lookback ``L``, optional event types ``E``): population = at least one event
  in ``[t - L, t)``; label = no event (of ``E``) in ``[t, t + H)``. A user who comes back is in
  the population again at a later snapshot. Mature when ``t + H <= data_end``.
* ``subscription`` (grace ``G``): population = a subscription active at ``t`` (started before
  ``t``, not ended before ``t``); label = one of them ends in ``[t, t + H)`` and no subscription
  of the user covers the time after that end within ``G`` days (none starts by ``end + G``
  and lasts beyond it). Mature when ``t + H + G <= data_end``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from churn.features.compile import literal, quote_table
from churn.store.warehouse import sql_timestamp

RULES = ("cancellation", "inactivity", "subscription")


@dataclass(frozen=True)
class LabelRule:
    """A validated label rule with its parameters."""

    rule: str = "cancellation"
    lookback_days: int | None = None
    event_types: tuple[str, ...] | None = None
    grace_days: int = 0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown churn rule {self.rule!r} (known: {', '.join(RULES)})")
        if self.rule == "inactivity" and (self.lookback_days is None or self.lookback_days < 1):
            raise ValueError("the inactivity rule needs lookback_days >= 1")
        if self.grace_days < 0:
            raise ValueError("grace_days must be >= 0")

    def maturity_days(self, horizon_days: int) -> int:
        """Days after a snapshot until its label is known."""
        return horizon_days + (self.grace_days if self.rule == "subscription" else 0)


def _values(snapshots: Sequence[datetime]) -> str:
    return ", ".join(f"({sql_timestamp(s)})" for s in snapshots)


def population_label_sql(
    rule: LabelRule,
    snapshots: Sequence[datetime],
    horizon_days: int,
    data_end: datetime,
    entity: str = "user_id",
    users_table: str = "raw_data.users",
) -> str:
    """SELECT of (entity, snapshot_at, label, label_mature) over the raw tables, one row per
    member of the population at each snapshot (``users_table``: the cancellation rule's users,
    validated by the caller)."""
    h = int(horizon_days)
    mature = f"s.snapshot_at + INTERVAL {rule.maturity_days(h)} DAY <= {sql_timestamp(data_end)}"

    def label_of(churned: str) -> str:
        return f"CASE WHEN {mature} THEN CAST({churned} AS TINYINT) END AS label"

    head = f'SELECT p.user_id AS "{entity}", s.snapshot_at, '
    spine = f"(VALUES {_values(snapshots)}) s(snapshot_at)"
    if rule.rule == "cancellation":
        return (
            f'SELECT u.user_id AS "{entity}", s.snapshot_at, '
            + label_of(f"coalesce(u.churned_at < s.snapshot_at + INTERVAL {h} DAY, FALSE)")
            + f", {mature} AS label_mature\nFROM {quote_table(users_table)} u CROSS JOIN {spine}\n"
            "WHERE u.signup_at < s.snapshot_at AND (u.churned_at IS NULL OR u.churned_at >= s.snapshot_at)"
        )
    if rule.rule == "inactivity":
        types = ""
        if rule.event_types:
            types = f" AND e.event_type IN ({', '.join(literal(t) for t in rule.event_types)})"
        lookback = int(rule.lookback_days or 0)
        return (
            "WITH p AS (SELECT DISTINCT e.user_id, s.snapshot_at FROM raw_data.events e JOIN "
            + spine
            + f" ON e.event_at < s.snapshot_at AND e.event_at >= s.snapshot_at - INTERVAL {lookback} DAY),\n"
            "a AS (SELECT DISTINCT e.user_id, s.snapshot_at FROM raw_data.events e JOIN "
            + spine
            + f" ON e.event_at >= s.snapshot_at AND e.event_at < s.snapshot_at + INTERVAL {h} DAY{types})\n"
            + head
            + label_of("a.user_id IS NULL")
            + f", {mature} AS label_mature\n"
            "FROM p JOIN " + spine + " ON s.snapshot_at = p.snapshot_at\n"
            "LEFT JOIN a ON a.user_id = p.user_id AND a.snapshot_at = p.snapshot_at"
        )
    grace = int(rule.grace_days)
    ended = (
        "NOT EXISTS (SELECT 1 FROM raw_data.subscriptions r WHERE r.user_id = c.user_id "
        f"AND r.started_at <= c.ended_at + INTERVAL {grace} DAY "
        "AND (r.ended_at IS NULL OR r.ended_at > c.ended_at))"
    )
    return (
        "WITH c AS (SELECT x.user_id, s.snapshot_at, x.ended_at FROM raw_data.subscriptions x JOIN "
        + spine
        + " ON x.started_at < s.snapshot_at AND (x.ended_at IS NULL OR x.ended_at >= s.snapshot_at)),\n"
        f"p AS (SELECT c.user_id, c.snapshot_at, bool_or(coalesce(c.ended_at < c.snapshot_at + INTERVAL {h} DAY, FALSE) "
        f"AND {ended}) AS churned FROM c GROUP BY 1, 2)\n"
        + head
        + label_of("p.churned")
        + f", {mature} AS label_mature\n"
        "FROM p JOIN " + spine + " ON s.snapshot_at = p.snapshot_at"
    )
