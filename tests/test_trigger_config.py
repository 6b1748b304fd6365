from pathlib import Path
from textwrap import dedent

import pytest

from agentops.errors import AgentOpsError
from agentops.triggers.config import (
    EscalationRateTrigger,
    LatencyTrigger,
    NotContainedTrigger,
    PolicyAdherenceTrigger,
    TriggerConfigError,
    load_trigger_file,
    parse_interval,
    parse_trigger_text,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "deployments" / "triggers.example.yaml"

VALID = dedent(
    """\
    version: 3
    agent: airline-assistant
    expected_volume:
      reviews_per_day: 30
    triggers:
      - name: policy-adherence
        kind: policy_adherence
        healthy_rate: 0.03
        degraded_rates: [0.06, 0.30]
        false_alarm_every: 5 years
      - name: escalation-rate
        kind: escalation_rate
        healthy_rate: 0.10
        degraded_rates: [0.15, 0.40]
        false_alarm_every: 100000
      - name: slow-replies
        kind: latency
        limit_ms: 4000
        healthy_from: last_known_good
        degraded_rates: [0.10, 0.40]
        false_alarm_every: 200000 conversations
    """
)


def _problem(text: str) -> str:
    with pytest.raises(TriggerConfigError) as caught:
        parse_trigger_text(text, source="triggers.yaml")
    assert isinstance(caught.value, AgentOpsError)
    return str(caught.value)


def test_valid_text_loads_every_kind() -> None:
    parsed = parse_trigger_text(VALID, source="triggers.yaml")
    assert parsed.version == 3
    assert parsed.agent == "airline-assistant"
    policy, escalation, latency = parsed.triggers
    assert isinstance(policy, PolicyAdherenceTrigger)
    assert (policy.healthy_rate, policy.degraded_rates) == (0.03, [0.06, 0.30])
    assert policy.unit == "reviews"
    assert parsed.observations(policy) == 5 * 365.25 * 30
    assert isinstance(escalation, EscalationRateTrigger)
    assert parsed.observations(escalation) == 100_000
    assert isinstance(latency, LatencyTrigger)
    assert (latency.limit_ms, latency.healthy_from, latency.healthy_rate) == (
        4000.0,
        "last_known_good",
        None,
    )
    assert (latency.min_healthy_samples, latency.guarantee) == (1000, 0.90)
    assert parsed.observations(latency) == 200_000


def test_example_file_is_valid_for_the_demo_agent() -> None:
    parsed = load_trigger_file(EXAMPLE)
    assert parsed.agent == "airline-assistant"
    assert {t.kind for t in parsed.triggers} == {"policy_adherence", "escalation_rate", "latency"}


def test_intervals_in_time_or_observations() -> None:
    assert parse_interval("5 years", unit="reviews").amount == 5 * 365.25
    assert parse_interval("6 months", unit="reviews").amount == 182.625
    assert parse_interval("2 weeks", unit="reviews").unit == "days"
    assert parse_interval("50,000 reviews", unit="reviews").amount == 50_000
    assert parse_interval(1234, unit="conversations").unit == "conversations"
    message = _problem(VALID.replace("false_alarm_every: 5 years", "false_alarm_every: often"))
    assert message.startswith("triggers.yaml:10:24: triggers[0].false_alarm_every: ")
    assert "'5 years'" in message
    message = _problem(VALID.replace("200000 conversations", "200000 reviews"))
    assert "unknown unit 'reviews': use conversations, days" in message


def test_an_interval_in_days_needs_the_expected_volume() -> None:
    message = _problem(VALID.replace("false_alarm_every: 100000", "false_alarm_every: 1 year"))
    assert message == (
        "triggers.yaml:15:24: triggers[1].false_alarm_every: an interval in days needs "
        "expected_volume.conversations_per_day to turn it into conversations"
    )


def test_exactly_one_healthy_source_and_ordered_rates() -> None:
    both = VALID.replace(
        "    healthy_from: last_known_good\n",
        "    healthy_from: last_known_good\n    healthy_rate: 0.05\n",
    )
    assert "give exactly one of healthy_rate or healthy_from" in _problem(both)
    message = _problem(VALID.replace("[0.06, 0.30]", "[0.30, 0.06]"))
    assert message == (
        "triggers.yaml:9:21: triggers[0].degraded_rates: need 0 < low <= high < 1, got [0.3, 0.06]"
    )
    message = _problem(VALID.replace("healthy_rate: 0.03", "healthy_rate: 0.5"))
    assert "must be below the degraded rates" in message


def test_old_format_files_show_the_new_form() -> None:
    old = dedent(
        """\
        version: 1
        agent: airline
        triggers:
          - name: policy
            kind: policy_adherence
            p0: 0.05
            p1: 0.20
          - name: latency
            kind: latency_p95
            max_ms: 4000
        """
    )
    lines = _problem(old).splitlines()
    assert lines[0].startswith("triggers.yaml:6:5: triggers[0]: p0, p1 belong to the old")
    assert (
        "healthy_rate: 0.03, degraded_rates: [0.06, 0.30], false_alarm_every: 5 years" in (lines[0])
    )
    assert lines[1].startswith("triggers.yaml:10:5: triggers[1]: max_ms belong to the old")
    assert "kind: latency, limit_ms: 4000" in lines[1]


def test_not_contained_kind() -> None:
    text = VALID.replace("kind: escalation_rate", "kind: not_contained")
    assert isinstance(parse_trigger_text(text, source="t").triggers[1], NotContainedTrigger)


def test_unknown_top_level_key() -> None:
    message = _problem("owner: me\n" + VALID)
    assert message.startswith("triggers.yaml:1:1: owner: unknown key; allowed keys: version")


def test_unknown_kind_points_at_kind() -> None:
    message = _problem(VALID.replace("kind: escalation_rate", "kind: escalations"))
    assert message == (
        "triggers.yaml:12:11: triggers[1].kind: unknown kind 'escalations'; expected one of: "
        "policy_adherence, escalation_rate, latency, negative_sentiment, not_contained"
    )


def test_missing_required_key_points_at_its_trigger() -> None:
    message = _problem(VALID.replace("    limit_ms: 4000\n", ""))
    assert message == "triggers.yaml:16:5: triggers[2].limit_ms: required key is missing"
    message = _problem(VALID.replace("    kind: latency\n", ""))
    assert message.startswith("triggers.yaml:16:5: triggers[2]: required key 'kind' is missing")


def test_duplicate_trigger_name_points_at_the_second_name() -> None:
    message = _problem(VALID.replace("name: slow-replies", "name: policy-adherence"))
    assert message == (
        "triggers.yaml:16:11: triggers[2].name: duplicate trigger name 'policy-adherence' "
        "(already used by triggers[0])"
    )


def test_duplicate_yaml_key_is_refused() -> None:
    message = _problem(
        VALID.replace("    limit_ms: 4000\n", "    limit_ms: 4000\n    limit_ms: 5\n")
    )
    assert message == "triggers.yaml:19:5: duplicate key 'limit_ms'"


def test_wrong_types_are_not_coerced() -> None:
    lines = _problem(
        VALID.replace("version: 3", "version: '3'").replace(
            "false_alarm_every: 100000", "false_alarm_every: 1.5"
        )
    ).splitlines()
    assert lines[0] == "triggers.yaml:1:10: version: Input should be a valid integer"
    assert lines[1] == (
        "triggers.yaml:15:24: triggers[1].false_alarm_every: expected a whole number of "
        "observations or a text like '5 years'"
    )


def test_bad_trigger_name() -> None:
    message = _problem(VALID.replace("name: escalation-rate", "name: 'escalation rate!'"))
    assert message.startswith("triggers.yaml:11:11: triggers[1].name: must start with")


def test_no_triggers() -> None:
    assert _problem("version: 1\nagent: a\ntriggers: []\n") == (
        "triggers.yaml:3:11: triggers: must list at least one trigger"
    )


def test_yaml_syntax_error_reports_its_line() -> None:
    message = _problem(VALID.replace("    healthy_rate: 0.03\n", "    healthy_rate: [0.03\n"))
    assert message.startswith("triggers.yaml:9:")
    assert "YAML syntax error" in message


def test_empty_and_non_mapping_files() -> None:
    assert _problem("") == "triggers.yaml:1:1: the trigger file is empty"
    assert _problem("- one\n- two\n") == "triggers.yaml:1:1: expected a mapping of keys to values"


def test_unreadable_trigger_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(AgentOpsError, match="no such trigger file"):
        load_trigger_file(tmp_path / "absent.yaml")
    with pytest.raises(AgentOpsError, match="is a directory"):
        load_trigger_file(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\n\xff\xfe\x00")
    with pytest.raises(AgentOpsError, match="not UTF-8"):
        load_trigger_file(binary)


def test_load_uses_the_path_as_source(tmp_path: Path) -> None:
    path = tmp_path / "triggers.yaml"
    path.write_text(VALID.replace("version: 3", "version: 0"))
    with pytest.raises(TriggerConfigError) as caught:
        load_trigger_file(path)
    assert str(caught.value) == f"{path}:1:10: version: Input should be greater than 0"
    assert caught.value.problems[0].line == 1
