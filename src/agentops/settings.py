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

    # Each field's docstring is its description: docs/operators/settings.md is built from them.
    model_config = SettingsConfigDict(
        env_prefix="AGENTOPS_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    """The store; `postgresql://user@host/db` for PostgreSQL."""
    # SQLite: how long a writer waits for the one write lock before giving up (seconds).
    sqlite_busy_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """SQLite: seconds a writer waits for the write lock before "the store is busy"."""
    slack_bot_token: SecretStr | None = None
    """Slack bot token (xoxb-…) for approvals in Slack; it also posts audit checkpoints."""
    slack_signing_secret: SecretStr | None = None
    """Slack signing secret: set together with the bot token, or neither."""
    # Socket Mode: an app-level token (xapp-…) instead of a public interactivity URL.
    slack_app_token: SecretStr | None = None
    """App-level token (xapp-…) for `agentops serve --socket-mode`."""
    slack_api_url: str = "https://slack.com/api/"
    """Slack Web API base (the tests and demo use a fake)."""
    # Agent name -> Slack channel id for the agent's approval requests, as JSON:
    # AGENTOPS_SLACK_AGENT_CHANNELS='{"airline-assistant": "C0123456"}'.
    slack_agent_channels: dict[str, str] = Field(default_factory=dict)
    """JSON: agent name → Slack channel id for its approval requests."""
    slack_outbox_interval_s: float = Field(default=2.0, gt=0, le=3600)
    """How often `agentops serve` sends the Slack outbox and sweeps deadlines (seconds)."""
    platform_url: str | None = None
    """The agent platform's conversations API."""
    platform_token: SecretStr | None = None
    """Bearer token for the agent platform's API."""
    deployer_url: str | None = None
    """The deployer adapter's base URL."""
    deployer_token: SecretStr | None = None
    """Bearer token sent to the deployer."""
    deployer_hmac_secret: SecretStr | None = None
    """Secret for HMAC-signed deployer requests."""
    deployers_file: Path | None = None
    """Per-agent deployers (docs/operators/deployers.md); agents not in it use deployer_url."""
    owner_approval_timeout_s: int = Field(default=3600, gt=0, le=WEEK_S)
    """The owner's window before the request escalates to the backup (seconds)."""
    backup_approval_timeout_s: int = Field(default=3600, gt=0, le=WEEK_S)
    """The backup's window before the request expires (seconds)."""
    approval_poll_interval_s: int = Field(default=5, gt=0, le=3600)
    """How often a gate run in-process (paused, not deployed) polls Prefect to resume (s)."""
    review_lease_minutes: int = Field(default=30, gt=0, le=DAY_S // 60)
    """How long a reviewer's claim on an item lasts."""
    health_timeout_s: float = Field(default=60, gt=0, le=3600)
    """How long a deployed version may take to serve healthily (seconds)."""
    deploy_timeout_s: int = Field(default=600, gt=0, le=DAY_S)
    """An execution older than this is reconciled with the deployer by the sweeper (seconds)."""
    max_future_skew_s: int = Field(default=300, ge=0, le=DAY_S)
    """Conversations dated further in the future are rejected on import (seconds)."""
    # How often triggers are evaluated (deployments/serve.py: every 15 minutes); a sampled
    # item is due for review within one such cadence.
    evaluation_interval_s: int = Field(default=900, gt=0, le=WEEK_S)
    """Trigger evaluation cadence; a sampled item is due for review within one (seconds)."""
    review_double_share: float = Field(default=0.1, ge=0, le=1)
    """Share of sampled items that get a blind second review (disagreements are adjudicated)."""
    review_seniors: str = ""
    """Comma-separated emails of adjudicators (admins always may)."""
    dispute_window_hours: int = Field(default=72, gt=0, le=24 * 90)
    """How long after a verdict is settled the agent's owner may dispute it."""
    # Web sign-in. The signing key for sessions and sign-in links: unset, a random key is
    # kept in the store so `agentops people login-link` and `agentops serve` agree.
    web_secret: SecretStr | None = None
    """Key that signs sessions and sign-in links (unset: a random key kept in the store)."""
    # Where people reach `agentops serve` (for sign-in links); unset, its --host and --port.
    web_base_url: str | None = None
    """Where people reach `agentops serve`, for sign-in links (unset: its --host and --port)."""
    login_link_minutes: int = Field(default=15, gt=0, le=DAY_S // 60)
    """How long a sign-in link works."""
    web_session_hours: int = Field(default=12, gt=0, le=24 * 30)
    """How long a web session lasts."""
    # Comma-separated addresses or networks of the single-sign-on proxy; only requests from
    # them may name the user in web_identity_header (e.g. oauth2-proxy's X-Forwarded-Email).
    web_trusted_proxies: str = ""
    """Addresses or networks of the single-sign-on proxy allowed to set the identity header."""
    web_identity_header: str = "X-Forwarded-Email"
    """The single-sign-on proxy's identity header."""
    # An approval whose gate never ran it is executed by the sweeper after this long.
    run_approved_after_s: int = Field(default=300, ge=0, le=DAY_S)
    """The sweeper executes an approval that no gate ran within this long (seconds)."""
    # The audit trail: Ed25519 key for checkpoints and export manifests (`agentops audit
    # keygen`), where checkpoints go, and the Slack channel that gets a copy of each.
    audit_signing_key: Path = Path(".agentops/audit-signing.key")
    """Ed25519 key for checkpoints and export manifests (`agentops audit keygen`), public key
    beside it as `.pub`."""
    audit_checkpoint_dir: Path = Path(".agentops/checkpoints")
    """Where `agentops audit checkpoint` and the daily flow write checkpoints."""
    audit_slack_channel: str | None = None
    """Slack channel that gets a copy of each checkpoint."""
    audit_seal_on_commit: bool = True
    """Seal writers' audit entries promptly, off their path (PostgreSQL: a background thread the
    commit wakes; SQLite: inside the writer's transaction); `false` when a dedicated sequencer
    (the `seal-audit-trail` flow) is the only one."""
    audit_checkpoint_after_seal: bool = True
    """Sign a checkpoint right after every seal (when the signing key exists), so a rewrite
    after the newest checkpoint is a window of seconds (docs/security.md)."""
    audit_purge_min_age_days: int = Field(default=365, ge=0, le=36500)
    """Audit events younger than this cannot be purged (PostgreSQL checks it too)."""
    pull_publication_delay_s: int = Field(default=300, ge=0, le=DAY_S)
    """Scheduled pulls end this long before their scheduled time, so conversations the platform
    publishes late (long ones, mostly) are there when their window is pulled."""
    pull_max_chunks: int = Field(default=24, ge=1, le=1000)
    """After an outage, one run catches up at most this many windows; the next continues."""
    store_retry_attempts: int = Field(default=9, ge=1, le=100)
    """Flows retry store work whose connection dropped: this many attempts, waits doubling from
    the first delay (capped at 30 s); the defaults span about 2.5 minutes."""
    store_retry_first_delay_s: float = Field(default=1.0, ge=0, le=60)
    """The first wait (seconds) before a flow retries store work; later waits double."""
    ready_max_sweep_age_s: int = Field(default=300, gt=0, le=DAY_S)
    """/readyz and `agentops status`: not ready when the last sweep-actions run is older than
    this (seconds)."""
    ready_max_outbox_lag_s: int = Field(default=120, gt=0, le=DAY_S)
    """/readyz and `agentops status`: not ready when a Slack message has waited longer than this
    (seconds) to go out."""
    expiry_backoff_s: int = Field(default=3600, ge=0, le=DAY_S)
    """After a rollback request expires unanswered, the next one for the same version and
    trigger waits this long (doubling with each further expiry, at most a day)."""
    slack_operators_channel: str | None = None
    """Slack channel id where operators hear of repeated unanswered requests."""
    otlp_tokens: SecretStr | None = None
    """OpenTelemetry (OTLP) intake: the receiver in `agentops serve` and `import --format
    otlp`. Comma-separated source=token pairs; each sender authenticates with its bearer token."""
    otlp_idle_close_s: float = Field(default=300.0, gt=0, le=WEEK_S)
    """A conversation with no new span for this long is closed and stored (seconds)."""
    otlp_agents: dict[str, str] = Field(default_factory=dict)
    """Service name -> agent name, as JSON, when they differ: '{"checkout-svc": "airline"}'."""
    otlp_conversation_key: str | None = None
    """An attribute of the app's own that names the conversation, tried after the standard
    ones."""
    otlp_escalation_tools: str = "transfer_to_human_agents"
    """Tools whose call means the agent handed over to a person (comma-separated)."""
    otlp_max_body_bytes: int = Field(default=4 * 2**20, gt=0, le=2**30)
    """The largest OTLP request body the receiver reads, as sent (bytes); larger gets 413."""
    otlp_max_decompressed_bytes: int = Field(default=32 * 2**20, gt=0, le=2**31)
    """The largest OTLP body after gzip decompression (bytes); a gzip bomb gets 413."""
    otlp_max_items: int = Field(default=20_000, gt=0, le=10**7)
    """The most spans or log records one OTLP request may carry."""
    otlp_max_attributes: int = Field(default=2_000, gt=0, le=10**6)
    """The most attributes one span or log record may carry."""
    langfuse_url: str | None = None
    """Langfuse, both ways (flows/langfuse_sync.py): its base URL and the project's API keys."""
    langfuse_public_key: str | None = None
    """The Langfuse project's public API key."""
    langfuse_secret_key: SecretStr | None = None
    """The Langfuse project's secret API key."""

    @field_validator("slack_agent_channels")
    @classmethod
    def _channel_ids(cls, channels: dict[str, str]) -> dict[str, str]:
        for agent, channel in channels.items():
            if not channel.strip() or any(c.isspace() for c in channel):
                raise ValueError(f"agent {agent!r} needs a Slack channel id such as C0123456")
        return channels

    @field_validator("web_trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        import ipaddress

        for entry in value.split(","):
            if entry.strip():
                try:
                    ipaddress.ip_network(entry.strip(), strict=False)
                except ValueError:
                    problem = f"{entry.strip()[:60]!r} is not an IP address or network"
                    raise ValueError(problem) from None
        return value

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
