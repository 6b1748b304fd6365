"""Prefect automations that tell the operators when flows fail, run late or lose their worker.

An edge over Prefect's automations API: a webhook notification block that posts to the
Slack Web API (chat.postMessage, with the bot token kept as a block secret), and one
automation per alert that sends through it. Re-running replaces them, so it is idempotent.
"""

from dataclasses import dataclass
from typing import cast
from uuid import UUID

from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

BLOCK_NAME = "agentops-slack-alerts"


@dataclass(frozen=True)
class Alert:
    """One automation: its name, the Prefect event that fires it and what resources match."""

    name: str
    event: str
    resource: str
    body: str


def alerts(*, work_pool: str) -> list[Alert]:
    """The alerts agentops sets up: a failed or late flow run, a work pool with no worker."""
    run = "{{ event.resource['prefect.resource.name'] }} ({{ event.resource.id }})"
    return [
        Alert("agentops: flow run failed", "prefect.flow-run.Failed", "prefect.flow-run.*",
              f"Flow run {run} failed. Check its logs in the Prefect UI."),
        Alert("agentops: flow run late", "prefect.flow-run.Late", "prefect.flow-run.*",
              f"Flow run {run} is late: is a worker polling the work pool?"),
        Alert("agentops: work pool has no worker", "prefect.work-pool.not-ready",
              "prefect.work-pool.*",
              f"Work pool {work_pool} is not ready: no worker is polling it, so no flow runs."),
    ]  # fmt: skip


def ensure_alerts(
    *, work_pool: str, channel: str, slack_api_url: str, bot_token: str
) -> list[UUID]:
    """Create (or replace) the notification block and the automations; their ids."""
    block = CustomWebhookNotificationBlock(
        name=BLOCK_NAME,
        url=f"{slack_api_url.rstrip('/')}/chat.postMessage",
        method="POST",
        json_data={"channel": channel, "text": "{{subject}}\n{{body}}"},
        headers={"Authorization": "Bearer {{token}}"},
        secrets={"token": bot_token},  # type: ignore[arg-type]
        cookies=None,
    )
    # Outside an event loop prefect's sync_compatible save() runs and returns the id.
    block_id = cast(UUID, block.save(BLOCK_NAME, overwrite=True))
    created = []
    with get_client(sync_client=True) as client:
        for alert in alerts(work_pool=work_pool):
            for old in client.read_automations_by_name(alert.name):
                client.delete_automation(old.id)
            created.append(
                client.create_automation(
                    AutomationCore(
                        name=alert.name,
                        description="Created by `agentops prefect setup`.",
                        trigger=EventTrigger(
                            expect={alert.event},
                            match={"prefect.resource.id": alert.resource},
                            posture=Posture.Reactive,
                            threshold=1,
                        ),
                        actions=[
                            SendNotification(
                                block_document_id=block_id, subject=alert.name, body=alert.body
                            )
                        ],
                    )
                )
            )
    return created
