"""Runtime settings, read from AGENTOPS_* environment variables."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./.agentops/agentops.db"


class Settings(BaseSettings):
    """Every knob agentops reads from the environment (prefix AGENTOPS_)."""

    model_config = SettingsConfigDict(env_prefix="AGENTOPS_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    platform_url: str | None = None
    platform_token: SecretStr | None = None
    deployer_url: str | None = None
    owner_approval_timeout_s: int = Field(default=3600, gt=0)
    backup_approval_timeout_s: int = Field(default=3600, gt=0)
    approval_poll_interval_s: int = Field(default=5, gt=0)
    review_lease_minutes: int = Field(default=30, gt=0)


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
