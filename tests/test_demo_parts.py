"""The demo's parts: fake platform + deployer over real HTTP, traffic generator, reviewers."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from agentops.demo.fake_services import FakeServices
from agentops.demo.reviewers import SimulatedReviewer, judge_conversation
from agentops.demo.traffic import (
    DEMO_PROFILES,
    LabelledConversation,
    VersionProfile,
    generate_conversations,
    labelled_conversations,
)
from factories import calls_transfer

AGENT = "airline-assistant"
START = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)
RUBRIC_FILE = Path(__file__).resolve().parents[1] / "deployments" / "rubric.example.yaml"
BRIEF_CRITERIA = [
    ("explicit-confirmation", "explicit yes before changes"),
    ("identify-user-first", "user id before reservation changes"),
    ("one-tool-call-at-a-time", "one tool call per turn, no talking while calling"),
    ("transfer-only-when-needed", "transfer only when needed"),
    ("polite-tone", "no heuristic: always passes"),
]
MINOR_SLIP = "one-action-per-turn"


def rubric_criteria() -> list[tuple[str, str]]:
    """The example rubric's (key, description) criteria."""
    document = yaml.safe_load(RUBRIC_FILE.read_text())
    return [(item["key"], item["description"]) for item in document["criteria"]]


def records(count: int, *, start: datetime = START, agent: str = AGENT) -> list[dict]:
    return generate_conversations(
        agent=agent,
        version="v1",
        profile=DEMO_PROFILES["v1"],
        start=start,
        count=count,
        spacing=timedelta(minutes=1),
        seed=1,
    )


def labelled(version: str, count: int, seed: int = 11) -> list[LabelledConversation]:
    return labelled_conversations(
        agent=AGENT,
        version=version,
        profile=DEMO_PROFILES[version],
        start=START,
        count=count,
        spacing=timedelta(seconds=30),
        seed=seed,
    )


@pytest.fixture
def services() -> Iterator[FakeServices]:
    with FakeServices(rollout_delay_s=0.3) as running:
        yield running


# --- fake agent platform --------------------------------------------------------------


def test_platform_pages_through_every_item_in_order_with_the_cursor(
    services: FakeServices,
) -> None:
    published = records(25)
    services.add_conversations(AGENT, list(reversed(published)))  # insertion order is irrelevant
    pages, cursor = [], None
    with httpx.Client(base_url=services.url) as client:
        while True:
            params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
            response = client.get(f"/api/agents/{AGENT}/conversations", params=params)
            assert response.status_code == 200
            body = response.json()
            pages.append([item["id"] for item in body["items"]])
            cursor = body["next_cursor"]
            if cursor is None:
                break
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [item_id for page in pages for item_id in page] == [r["id"] for r in published]


def test_platform_filters_on_started_at_half_open_window(services: FakeServices) -> None:
    published = records(10)  # one a minute from 12:00
    services.add_conversations(AGENT, published)
    params = {
        "since": (START + timedelta(minutes=3)).isoformat(),
        "until": (START + timedelta(minutes=7)).isoformat().replace("+00:00", "Z"),
    }
    response = httpx.get(f"{services.url}/api/agents/{AGENT}/conversations", params=params)
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [r["id"] for r in published[3:7]]
    assert response.json()["next_cursor"] is None


def test_platform_returns_404_json_for_an_unknown_agent(services: FakeServices) -> None:
    response = httpx.get(f"{services.url}/api/agents/nobody/conversations")
    assert response.status_code == 404
    assert "unknown agent" in response.json()["detail"]


def test_platform_checks_the_bearer_token_when_one_is_configured() -> None:
    with FakeServices(token="s3cret") as secured:
        secured.add_conversations(AGENT, records(3))
        url = f"{secured.url}/api/agents/{AGENT}/conversations"
        assert httpx.get(url).status_code == 401
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = httpx.get(url, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert len(right.json()["items"]) == 3


def test_platform_rejects_a_bad_cursor_and_limit(services: FakeServices) -> None:
    services.add_conversations(AGENT, records(2))
    url = f"{services.url}/api/agents/{AGENT}/conversations"
    assert httpx.get(url, params={"cursor": "abc"}).status_code == 400
    assert httpx.get(url, params={"limit": 0}).status_code == 400


# --- fake deployer -------------------------------------------------------------------


def test_deployment_shows_in_health_only_after_the_rollout_delay(services: FakeServices) -> None:
    services.set_live_version(AGENT, "v2")
    with httpx.Client(base_url=services.url) as client:
        assert client.get(f"/agents/{AGENT}/health").json() == {
            "agent": AGENT,
            "version": "v2",
            "healthy": True,
        }
        response = client.post(
            "/deployments", json={"agent": AGENT, "version": "v1", "action_id": 7}
        )
        assert response.status_code == 202
        assert response.json()["status"] == "accepted"
        assert response.json()["deployment_id"]
        assert client.get(f"/agents/{AGENT}/health").json()["version"] == "v2"
        assert services.live_version(AGENT) == "v2"
        time.sleep(0.4)
        assert client.get(f"/agents/{AGENT}/health").json()["version"] == "v1"
    assert services.live_version(AGENT) == "v1"
    [deployment] = services.deployments
    assert (deployment.agent, deployment.version, deployment.action_id) == (AGENT, "v1", 7)
    assert deployment.deployment_id == response.json()["deployment_id"]


@pytest.mark.parametrize(
    "body",
    [
        {"agent": AGENT, "version": "v1"},
        {"version": "v1", "action_id": 1},
        {"agent": AGENT, "version": "", "action_id": 1},
        {"agent": AGENT, "version": "v1", "action_id": "one"},
        ["not", "an", "object"],
    ],
)
def test_deployer_answers_400_json_to_a_bad_body(services: FakeServices, body: object) -> None:
    response = httpx.post(f"{services.url}/deployments", json=body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert services.deployments == []


def test_health_of_an_unknown_agent_is_404(services: FakeServices) -> None:
    response = httpx.get(f"{services.url}/agents/nobody/health")
    assert response.status_code == 404
    assert "unknown agent" in response.json()["detail"]


def test_services_stop_and_free_the_port() -> None:
    services = FakeServices()
    services.start()
    url = services.url
    services.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/agents/{AGENT}/health", timeout=1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = services.url


# --- traffic -------------------------------------------------------------------------


def test_same_seed_gives_identical_traffic_and_another_seed_differs() -> None:
    def make(seed: int) -> list[dict]:
        return generate_conversations(
            agent=AGENT,
            version="v2",
            profile=DEMO_PROFILES["v2"],
            start=START,
            count=50,
            spacing=timedelta(minutes=2),
            seed=seed,
        )

    assert json.dumps(make(3)) == json.dumps(make(3))
    assert json.dumps(make(3)) != json.dumps(make(4))


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_rates_and_latency_follow_the_version_profile(version: str) -> None:
    profile = DEMO_PROFILES[version]
    items = labelled(version, 500)
    violation_rate = sum(bool(i.broken - {MINOR_SLIP}) for i in items) / len(items)
    escalations = [calls_transfer(i.record["messages"]) for i in items]
    latencies = sorted(i.record["latency_ms"] for i in items)
    assert escalations == [i.escalated for i in items]  # the label is visible in the transcript
    assert violation_rate == pytest.approx(profile.violation_rate, abs=0.05)
    assert sum(escalations) / len(items) == pytest.approx(profile.escalation_rate, abs=0.05)
    assert latencies[len(latencies) // 2] == pytest.approx(profile.latency_ms_median, rel=0.15)
    assert latencies[int(0.95 * len(latencies))] == pytest.approx(profile.latency_ms_p95, rel=0.2)


def test_degraded_v2_is_worse_than_v1_and_fixed_v3() -> None:
    def violations(version: str) -> int:
        return sum(bool(i.broken - {MINOR_SLIP}) for i in labelled(version, 400))

    assert violations("v2") > 3 * violations("v1")
    assert violations("v2") > 3 * violations("v3")


def test_records_have_the_generic_shape_and_vary() -> None:
    items = records(200)
    assert {tuple(sorted(r)) for r in items} == {
        ("agent_version", "channel", "id", "intent", "latency_ms", "messages", "started_at")
    }
    assert len({r["id"] for r in items}) == 200
    assert {r["channel"] for r in items} == {"chat", "voice", "email"}
    assert len({r["intent"] for r in items}) == 4
    started = [datetime.fromisoformat(r["started_at"]) for r in items]
    assert started[0] == START and started[-1] == START + timedelta(minutes=199)
    assert all(at.utcoffset() == timedelta(0) for at in started)


def test_every_transcript_is_a_valid_tool_using_chat() -> None:
    for item in labelled("v2", 300):
        messages = item.record["messages"]
        assert messages[0]["role"] == "system"
        assert messages[1]["role"] == "user"
        open_calls: set[str] = set()
        for message in messages:
            assert message["role"] in {"system", "user", "assistant", "tool"}
            if message["role"] == "tool":
                assert message["tool_call_id"] in open_calls
                open_calls.remove(message["tool_call_id"])
                continue
            assert not open_calls, "a tool call must be answered before the chat goes on"
            for call in message.get("tool_calls") or []:
                assert message["role"] == "assistant"
                assert call["type"] == "function" and call["function"]["name"]
                assert isinstance(call["function"]["arguments"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                open_calls.add(call["id"])
            if message["role"] != "assistant" or not message.get("tool_calls"):
                assert isinstance(message["content"], str) and message["content"].strip()
        assert not open_calls
        assert messages[-1]["role"] == "assistant"


def test_frustrated_users_show_up_in_bad_conversations() -> None:
    negative = ("frustrat", "terrible", "annoyed", "upset", "ridiculous", "useless", "disappoint")

    def frustrated_share(items: list[LabelledConversation]) -> float:
        hits = [
            any(
                word in message["content"].lower()
                for message in item.record["messages"]
                if message["role"] == "user"
                for word in negative
            )
            for item in items
        ]
        return sum(hits) / max(len(hits), 1)

    items = labelled("v2", 400)
    bad = [i for i in items if i.broken - {MINOR_SLIP} or i.escalated]
    good = [i for i in items if not i.broken and not i.escalated]
    assert frustrated_share(bad) > 0.6
    assert frustrated_share(good) < 0.2


def test_generator_rejects_naive_start_and_bad_profiles() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_conversations(
            agent=AGENT,
            version="v1",
            profile=DEMO_PROFILES["v1"],
            start=datetime(2024, 5, 15),
            count=1,
            spacing=timedelta(minutes=1),
            seed=1,
        )
    with pytest.raises(ValueError, match="violation_rate"):
        VersionProfile("vx", violation_rate=1.5, escalation_rate=0.1,
                       latency_ms_median=1000, latency_ms_p95=2000)  # fmt: skip


# --- reviewers -----------------------------------------------------------------------


def test_judge_agrees_with_the_injected_faults() -> None:
    criteria = rubric_criteria()
    items = labelled("v2", 600, seed=5)
    for key, _ in criteria:
        agreeing = 0
        for item in items:
            verdicts = judge_conversation(item.record["messages"], criteria)
            agreeing += verdicts[key] == (key not in item.broken)
        assert agreeing / len(items) >= 0.95, key
    any_fault = sum(bool(item.broken) for item in items)
    assert any_fault > 150  # the check above compared real faults, not only clean chats


def test_judge_accepts_the_brief_keys_and_passes_unknown_ones() -> None:
    items = labelled("v2", 300, seed=9)
    clean = next(i for i in items if not i.broken and i.escalated)
    verdicts = judge_conversation(clean.record["messages"], BRIEF_CRITERIA)
    assert verdicts == dict.fromkeys([key for key, _ in BRIEF_CRITERIA], True)
    unconfirmed = next(i for i in items if i.broken == {"explicit-confirmation"})
    assert not judge_conversation(unconfirmed.record["messages"], BRIEF_CRITERIA)[
        "explicit-confirmation"
    ]
    needless = next(i for i in items if "appropriate-transfer" in i.broken)
    assert not judge_conversation(needless.record["messages"], BRIEF_CRITERIA)[
        "transfer-only-when-needed"
    ]


def test_explicit_confirmation_must_follow_the_latest_proposal() -> None:
    def call(name: str) -> dict:
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}}
            ],
        }

    confirmed = [
        {"role": "assistant", "content": "I will cancel ABC123. Proceed?"},
        {"role": "user", "content": "Yes please."},
        call("cancel_reservation"),
    ]
    stale_yes = [
        {"role": "user", "content": "yes, my id is mia_li_3668"},
        {"role": "assistant", "content": "I will cancel ABC123. Proceed?"},
        {"role": "user", "content": "How much is the refund?"},
        call("cancel_reservation"),
    ]
    criteria = [("explicit-confirmation", "")]
    assert judge_conversation(confirmed, criteria) == {"explicit-confirmation": True}
    assert judge_conversation(stale_yes, criteria) == {"explicit-confirmation": False}


def test_simulated_reviewer_is_faithful_noisy_on_request_and_reproducible() -> None:
    criteria = rubric_criteria()
    items = labelled("v1", 200, seed=2)
    exact = SimulatedReviewer(email="ana@example.com")
    noisy = SimulatedReviewer(email="bo@example.com", error_rate=0.2, seed=4)
    flips = total = 0
    for item in items:
        truth = judge_conversation(item.record["messages"], criteria)
        assert exact.review(item.record["messages"], criteria) == truth
        judged = noisy.review(item.record["messages"], criteria)
        assert judged == noisy.review(item.record["messages"], criteria)
        flips += sum(judged[key] != truth[key] for key in truth)
        total += len(truth)
    assert flips / total == pytest.approx(0.2, abs=0.04)
    with pytest.raises(ValueError, match="error_rate"):
        SimulatedReviewer(email="x@example.com", error_rate=2)


def test_judge_reads_real_tau_airline_transcripts(tau_airline: Path) -> None:
    conversations = json.loads((tau_airline / "conversations.json").read_text())
    criteria = rubric_criteria() + BRIEF_CRITERIA
    keys = {key for key, _ in criteria}
    failures: dict[str, int] = dict.fromkeys(keys, 0)
    for conversation in conversations:
        verdicts = judge_conversation(conversation["traj"], criteria)
        assert set(verdicts) == keys
        assert all(isinstance(verdict, bool) for verdict in verdicts.values())
        for key, passed in verdicts.items():
            failures[key] += not passed
    # Real agents do break these rules sometimes, but far from always.
    assert 0 < failures["explicit-confirmation"] < len(conversations) / 2
    assert failures["polite-tone"] == 0
