"""The documented raw schema: the contract between data sources and everything downstream.

Synthetic data and your own files (CSV or Parquet) must both arrive in exactly this shape.
The simulator's hidden truth lives in the separate ``simulator`` schema, which feature and
training code must never read (a test enforces this).
"""

from __future__ import annotations

from dataclasses import dataclass

RAW_SCHEMA_NAME = "raw_data"
TRUTH_SCHEMA_NAME = "simulator"

PLANS: dict[str, float] = {"basic": 9.99, "pro": 29.99, "enterprise": 99.99}
"""Plan name -> monthly price in USD."""

EVENT_TYPES: tuple[str, ...] = (
    "login",
    "page_view",
    "feature_use",
    "search",
    "export",
    "invite_sent",
    "support_ticket",
)
BILLING_TYPES: tuple[str, ...] = ("charge", "payment_failed", "refund", "plan_change")
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "BR", "IN", "CA", "AU")
CHANNELS: tuple[str, ...] = ("organic", "paid_search", "referral", "social", "partner")


@dataclass(frozen=True)
class Column:
    """One column of a raw table: name, DuckDB type, nullable, meaning."""

    name: str
    dtype: str
    nullable: bool
    doc: str


@dataclass(frozen=True)
class TableSchema:
    """A raw table: its name, columns and primary key."""

    name: str
    columns: tuple[Column, ...]
    primary_key: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self, schema: str = RAW_SCHEMA_NAME) -> str:
        """``CREATE TABLE`` statement for this table in ``schema``."""
        cols = ",\n  ".join(
            f"{c.name} {c.dtype}{'' if c.nullable else ' NOT NULL'}" for c in self.columns
        )
        return f"CREATE TABLE {schema}.{self.name} (\n  {cols}\n)"


USERS = TableSchema(
    name="users",
    primary_key="user_id",
    columns=(
        Column("user_id", "BIGINT", False, "unique user id"),
        Column("signup_at", "TIMESTAMP", False, "when the account was created"),
        Column("plan", "VARCHAR", False, f"current plan, one of {sorted(PLANS)}"),
        Column("monthly_price", "DOUBLE", False, "price of the current plan, USD, >= 0"),
        Column("country", "VARCHAR", False, "ISO country code"),
        Column("acquisition_channel", "VARCHAR", False, "how the user arrived"),
        Column("churned_at", "TIMESTAMP", True, "cancellation time; NULL while active"),
    ),
)

EVENTS = TableSchema(
    name="events",
    primary_key="event_id",
    columns=(
        Column("event_id", "BIGINT", False, "unique event id"),
        Column("user_id", "BIGINT", False, "user who acted (must exist in users)"),
        Column("event_type", "VARCHAR", False, f"one of {list(EVENT_TYPES)}"),
        Column("event_at", "TIMESTAMP", False, "when it happened (never after churned_at)"),
    ),
)

BILLING = TableSchema(
    name="billing",
    primary_key="billing_id",
    columns=(
        Column("billing_id", "BIGINT", False, "unique billing record id"),
        Column("user_id", "BIGINT", False, "billed user (must exist in users)"),
        Column("billed_at", "TIMESTAMP", False, "when the record was created"),
        Column("billing_type", "VARCHAR", False, f"one of {list(BILLING_TYPES)}"),
        Column("plan", "VARCHAR", False, "plan in force after this record"),
        Column("amount", "DOUBLE", False, "USD, >= 0 (refunds are positive amounts returned)"),
    ),
)

RAW_TABLES: dict[str, TableSchema] = {t.name: t for t in (USERS, EVENTS, BILLING)}

USER_TRUTH = TableSchema(
    name="user_truth",
    primary_key="user_id",
    columns=(
        Column("user_id", "BIGINT", False, "user"),
        Column("week_start", "DATE", False, "Monday of the simulated week"),
        Column("engagement", "DOUBLE", False, "latent engagement multiplier that week"),
        Column("churn_hazard", "DOUBLE", False, "latent weekly probability of churning"),
    ),
)
"""Hidden simulator truth: OFF-LIMITS to features and training (used only by the A/B simulator
and by tests that validate detectors against known truth)."""
