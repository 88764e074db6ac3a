"""The platform's default churn features over the documented raw schema (``raw_data.*``).

Written as plain data, exactly what a YAML spec file would hold, so it doubles as the example
for other event logs.
"""

from __future__ import annotations

from typing import Any

from churn.features.spec import FeatureSpec, load_spec

DEFAULT_SPEC: dict[str, Any] = {
    "name": "churn_features",
    "version": "v1",
    "entity": "user_id",
    "description": "Activity, recency, trend, billing trouble, tenure and price per user.",
    "sources": {
        "events": {"table": "raw_data.events", "entity_column": "user_id", "timestamp_column": "event_at"},
        "billing": {"table": "raw_data.billing", "entity_column": "user_id", "timestamp_column": "billed_at"},
        "users": {"table": "raw_data.users", "entity_column": "user_id", "timestamp_column": "signup_at"},
    },
    "features": [
        {"name": "events_30d", "source": "events", "aggregation": "count", "window_days": 30,
         "description": "events in the last 30 days"},
        {"name": "events_90d", "source": "events", "aggregation": "count", "window_days": 90,
         "description": "events in the last 90 days"},
        {"name": "active_days_30d", "source": "events", "aggregation": "count_distinct_days",
         "window_days": 30, "description": "days with at least one event, last 30 days"},
        {"name": "active_days_90d", "source": "events", "aggregation": "count_distinct_days",
         "window_days": 90, "description": "days with at least one event, last 90 days"},
        {"name": "days_since_last_event", "source": "events", "aggregation": "days_since_last",
         "window_days": None, "default": "tenure_days",
         "description": "days since the latest event; tenure when the user never acted"},
        {"name": "activity_trend", "aggregation": "ratio", "numerator": "events_30d",
         "denominator": "events_90d", "scale": 3.0, "default": 0.0,
         "description": "last 30 days vs the 90-day monthly average (1 = steady; 0 if no events)"},
        {"name": "feature_use_30d", "source": "events", "aggregation": "count", "window_days": 30,
         "filter": {"event_type": "feature_use"}, "description": "feature_use events, last 30 days"},
        {"name": "support_tickets_90d", "source": "events", "aggregation": "count",
         "window_days": 90, "filter": {"event_type": "support_ticket"},
         "description": "support tickets opened in the last 90 days"},
        {"name": "payment_failures_90d", "source": "billing", "aggregation": "count",
         "window_days": 90, "filter": {"billing_type": "payment_failed"},
         "description": "declined charges in the last 90 days"},
        {"name": "tenure_days", "source": "users", "aggregation": "days_since_first",
         "window_days": None, "default": 0.0, "description": "days since signup"},
        # Billed amount, not users.monthly_price: that column holds the plan *now*, and a later
        # downgrade (common before churn) would leak into earlier snapshots.
        {"name": "monthly_price", "source": "billing", "aggregation": "latest", "column": "amount",
         "window_days": None, "filter": {"billing_type": ["charge", "payment_failed"]},
         "default": 0.0, "unit": "USD", "description": "price of the latest invoice before the snapshot"},
    ],
}  # fmt: skip


def default_feature_spec() -> FeatureSpec:
    """The validated default spec (``churn_features``, version ``v1``)."""
    return load_spec(DEFAULT_SPEC)
