"""Churn prediction platform."""
