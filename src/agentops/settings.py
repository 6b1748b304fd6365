"""Runtime settings, read from AGENTOPS_* environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./.agentops/agentops.db"
# Upper bounds keep a typo (or "1e30") from overflowing date arithmetic later on.
WEEK_S = 7 * 24 * 3600
DAY_S = 24 * 3600


class Settings(BaseSettings):
    """Every knob agentops reads from the environment (prefix AGENTOPS_)."""

    model_config = SettingsConfigDict(env_prefix="AGENTOPS_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    platform_url: str | None = None
    platform_token: SecretStr | None = None
    deployer_url: str | None = None
    deployer_token: SecretStr | None = None
    deployer_hmac_secret: SecretStr | None = None
    owner_approval_timeout_s: int = Field(default=3600, gt=0, le=WEEK_S)
    backup_approval_timeout_s: int = Field(default=3600, gt=0, le=WEEK_S)
    approval_poll_interval_s: int = Field(default=5, gt=0, le=3600)
    review_lease_minutes: int = Field(default=30, gt=0, le=DAY_S // 60)
    health_timeout_s: float = Field(default=60, gt=0, le=3600)
    # An execution older than this is reconciled with the deployer by the sweeper.
    deploy_timeout_s: int = Field(default=600, gt=0, le=DAY_S)
    max_future_skew_s: int = Field(default=300, ge=0, le=DAY_S)
    # An approval whose gate never ran it is executed by the sweeper after this long.
    run_approved_after_s: int = Field(default=300, ge=0, le=DAY_S)
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
