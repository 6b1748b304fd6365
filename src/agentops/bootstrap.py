"""The composition root: adapters built from settings, the same for every entry point."""

from agentops.actions.deployer import HttpDeployer
from agentops.settings import Settings, get_settings


def make_deployer(
    settings: Settings | None = None, *, url: str | None = None
) -> HttpDeployer | None:
    """The configured deployer client (None when no deployer URL is set)."""
    settings = settings or get_settings()
    base_url = url or settings.deployer_url
    if not base_url:
        return None
    return HttpDeployer(
        base_url,
        token=_secret(settings.deployer_token),
        hmac_secret=_secret(settings.deployer_hmac_secret),
    )


def _secret(value: object) -> str | None:
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if reveal else None
