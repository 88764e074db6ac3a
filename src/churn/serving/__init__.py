"""The serving API (FastAPI): app factory, routers, schemas, settings."""

from churn.serving.app import create_app
from churn.serving.settings import Settings

__all__ = ["Settings", "create_app"]
