"""Runtime settings, read from AGENTOPS_* environment variables."""

from functools import lru_cache
from pathlib import Path

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
    # The audit trail: Ed25519 key for checkpoints and export manifests (`agentops audit
    # keygen`), where checkpoints go, and the Slack channel that gets a copy of each.
    audit_signing_key: Path = Path(".agentops/audit-signing.key")
    audit_checkpoint_dir: Path = Path(".agentops/checkpoints")
    audit_slack_channel: str | None = None
    # Seal each writer's entries right after its commit; turn off when a dedicated
    # sequencer (the seal-audit-trail flow) runs, to keep sealing off the writers' path.
    audit_seal_on_commit: bool = True


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
