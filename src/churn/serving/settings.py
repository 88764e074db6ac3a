"""The API's settings: the one place in ``src`` that reads environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Serving configuration, from ``CHURN_*`` environment variables (and ``REDIS_URL``).

    Empty variables count as unset, so ``CHURN_API_KEY=`` switches the key off.
    """

    model_config = SettingsConfigDict(env_prefix="CHURN_", env_ignore_empty=True, extra="ignore",
                                      populate_by_name=True)

    redis_url: str = Field("", validation_alias=AliasChoices("REDIS_URL", "redis_url"),
                           description="any Redis; empty: the embedded redis-server under the data dir")
    data_dir: Path = Field(Path("data"), description="the project's data folder")
    warehouse: Path | None = Field(None, description="DuckDB file (default <data_dir>/churn.duckdb)")
    models_dir: Path | None = Field(None, description="model artifacts (default <data_dir>/models)")
    model_name: str = "churn_model"
    api_key: SecretStr | None = Field(None, description="when set, every endpoint needs X-API-Key")
    admin_key: SecretStr | None = Field(None, description="admin endpoints (default: the API key)")
    rate_limit_per_minute: int = Field(6000, ge=0, description="per client and worker; 0 disables")
    rate_limit_shared: bool = Field(False, description="keep the rate limit's buckets in Redis: one budget per "
                                                       "client across every worker and replica")
    batch_limit: int = Field(10_000, ge=1, description="most user ids in one batch request")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest accepted request body")
    model_poll_seconds: float = Field(2.0, gt=0, description="how often production is re-checked")
    redis_timeout_seconds: float = Field(1.0, gt=0)
    redis_retry_seconds: float = Field(1.0, ge=0, description="skip Redis this long after a failure")
    forwarded_allow_ips: str = Field("", description="proxies whose X-Forwarded-For is trusted (IPs or "
                                     "networks, comma-separated; empty: none, the peer address is the client)")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    max_connections: int = Field(512, ge=1, description="open connections per worker; more are closed with 503")
    header_timeout_seconds: float = Field(10.0, gt=0, description="408 when a request's headers take longer")
    keep_alive_seconds: float = Field(5.0, gt=0, description="idle keep-alive connections are closed after this")
    max_header_bytes: int = Field(16_384, ge=1024, description="431 for larger request headers")

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse or self.data_dir / "churn.duckdb"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def admin_secret(self) -> SecretStr | None:
        """The key admin endpoints accept: the admin key, else the API key, else none at all."""
        return self.admin_key or self.api_key
