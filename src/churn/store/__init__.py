"""Warehouse (DuckDB), online store (Redis), embedded Redis server."""
