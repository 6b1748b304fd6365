"""`agentops prefect setup` creates automations that alert the operators' Slack channel."""

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.prefect_alerts import BLOCK_NAME, alerts
from agentops.settings import get_settings

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def test_setup_creates_one_automation_per_alert_and_replaces_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = CliRunner().invoke(app, ["prefect", "setup"], env={"COLUMNS": "200"})
    assert bare.exit_code == 0 and "alerts: not set up" in bare.output

    monkeypatch.setenv("AGENTOPS_SLACK_BOT_TOKEN", "xoxb-alerts")
    monkeypatch.setenv("AGENTOPS_SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("AGENTOPS_SLACK_API_URL", "http://127.0.0.1:9/api/")
    monkeypatch.setenv("AGENTOPS_SLACK_OPERATORS_CHANNEL", "COPS")
    get_settings.cache_clear()
    for _ in range(2):  # the second run replaces, never duplicates
        result = CliRunner().invoke(app, ["prefect", "setup"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "automation 'agentops: flow run failed': alerts COPS" in result.output
    with get_client(sync_client=True) as client:
        for alert in alerts(work_pool="agentops"):
            [automation] = client.read_automations_by_name(alert.name)
            assert automation.enabled
            assert automation.trigger.expect == {alert.event}  # type: ignore[union-attr]
            [action] = automation.actions
            assert action.type == "send-notification"
    block = CustomWebhookNotificationBlock.load(BLOCK_NAME)
    assert block.url == "http://127.0.0.1:9/api/chat.postMessage"
    assert block.json_data == {"channel": "COPS", "text": "{{subject}}\n{{body}}"}
    assert block.secrets.get_secret_value() == {"token": "xoxb-alerts"}
    get_settings.cache_clear()
