"""Runtime settings, read from AGENTOPS_* environment variables."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./.agentops/agentops.db"
# Upper bounds keep a typo (or "1e30") from overflowing date arithmetic later on.
WEEK_S = 7 * 24 * 3600
DAY_S = 24 * 3600


class Settings(BaseSettings):
    """Every knob agentops reads from the environment (prefix AGENTOPS_)."""

    model_config = SettingsConfigDict(env_prefix="AGENTOPS_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # SQLite: how long a writer waits for the one write lock before giving up (seconds).
    sqlite_busy_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    # Socket Mode: an app-level token (xapp-…) instead of a public interactivity URL.
    slack_app_token: SecretStr | None = None
    # Slack Web API base URL; tests and the demo point it at a fake Slack on loopback.
    slack_api_url: str = "https://slack.com/api/"
    # Agent name -> Slack channel id for the agent's approval requests, as JSON:
    # AGENTOPS_SLACK_AGENT_CHANNELS='{"airline-assistant": "C0123456"}'.
    slack_agent_channels: dict[str, str] = Field(default_factory=dict)
    # How often `agentops serve` sends the Slack outbox and sweeps deadlines.
    slack_outbox_interval_s: float = Field(default=2.0, gt=0, le=3600)
    platform_url: str | None = None
    platform_token: SecretStr | None = None
    deployer_url: str | None = None
    deployer_token: SecretStr | None = None
    deployer_hmac_secret: SecretStr | None = None
    # Per-agent deployers (docs/operators/deployers.md); agents not in it use deployer_url.
    deployers_file: Path | None = None
    owner_approval_timeout_s: int = Field(default=3600, gt=0, le=WEEK_S)
    backup_approval_timeout_s: int = Field(default=3600, gt=0, le=WEEK_S)
    approval_poll_interval_s: int = Field(default=5, gt=0, le=3600)
    review_lease_minutes: int = Field(default=30, gt=0, le=DAY_S // 60)
    health_timeout_s: float = Field(default=60, gt=0, le=3600)
    # An execution older than this is reconciled with the deployer by the sweeper.
    deploy_timeout_s: int = Field(default=600, gt=0, le=DAY_S)
    max_future_skew_s: int = Field(default=300, ge=0, le=DAY_S)
    # How often triggers are evaluated (deployments/serve.py: every 15 minutes); a sampled
    # item is due for review within one such cadence.
    evaluation_interval_s: int = Field(default=900, gt=0, le=WEEK_S)
    # Share of sampled items that get a second, blind review (disagreements are adjudicated).
    review_double_share: float = Field(default=0.1, ge=0, le=1)
    # Senior reviewers who adjudicate (comma-separated emails); admins always may.
    review_seniors: str = ""
    # How long after a verdict is settled the agent's owner may dispute it.
    dispute_window_hours: int = Field(default=72, gt=0, le=24 * 90)
    # Web sign-in. The signing key for sessions and sign-in links: unset, a random key is
    # kept in the store so `agentops people login-link` and `agentops serve` agree.
    web_secret: SecretStr | None = None
    # Where people reach `agentops serve` (for sign-in links); unset, its --host and --port.
    web_base_url: str | None = None
    login_link_minutes: int = Field(default=15, gt=0, le=DAY_S // 60)
    web_session_hours: int = Field(default=12, gt=0, le=24 * 30)
    # Comma-separated addresses or networks of the single-sign-on proxy; only requests from
    # them may name the user in web_identity_header (e.g. oauth2-proxy's X-Forwarded-Email).
    web_trusted_proxies: str = ""
    web_identity_header: str = "X-Forwarded-Email"
    # An approval whose gate never ran it is executed by the sweeper after this long.
    run_approved_after_s: int = Field(default=300, ge=0, le=DAY_S)
    # The audit trail: Ed25519 key for checkpoints and export manifests (`agentops audit
    # keygen`), where checkpoints go, and the Slack channel that gets a copy of each.
    audit_signing_key: Path = Path(".agentops/audit-signing.key")
    audit_checkpoint_dir: Path = Path(".agentops/checkpoints")
    audit_slack_channel: str | None = None
    # Seal writers' entries promptly, off their path (PostgreSQL: a background thread the
    # commit wakes; SQLite: inside the writer's transaction); turn off when a dedicated
    # sequencer (the seal-audit-trail flow) is the only one.
    audit_seal_on_commit: bool = True

    @field_validator("slack_agent_channels")
    @classmethod
    def _channel_ids(cls, channels: dict[str, str]) -> dict[str, str]:
        for agent, channel in channels.items():
            if not channel.strip() or any(c.isspace() for c in channel):
                raise ValueError(f"agent {agent!r} needs a Slack channel id such as C0123456")
        return channels

    @model_validator(mode="after")
    def _slack_secrets_in_pairs(self) -> "Settings":
        # Half a Slack set-up would post requests nobody can answer, or accept clicks unsigned.
        bot, signing = self.slack_bot_token, self.slack_signing_secret
        if (bot is None) != (signing is None):
            missing = "SIGNING_SECRET" if signing is None else "BOT_TOKEN"
            raise ValueError(
                "Slack needs AGENTOPS_SLACK_BOT_TOKEN and AGENTOPS_SLACK_SIGNING_SECRET together; "
                f"AGENTOPS_SLACK_{missing} is not set"
            )
        if self.slack_app_token is not None and bot is None:
            raise ValueError(
                "AGENTOPS_SLACK_APP_TOKEN (Socket Mode) also needs AGENTOPS_SLACK_BOT_TOKEN and "
                "AGENTOPS_SLACK_SIGNING_SECRET"
            )
        return self

    @property
    def slack_enabled(self) -> bool:
        """True when a bot token and signing secret are configured."""
        return self.slack_bot_token is not None and self.slack_signing_secret is not None


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
