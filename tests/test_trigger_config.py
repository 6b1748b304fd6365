from pathlib import Path
from textwrap import dedent

import pytest

from agentops.errors import AgentOpsError
from agentops.triggers.config import (
    EscalationRateTrigger,
    LatencyP95Trigger,
    PolicyAdherenceTrigger,
    TriggerConfigError,
    load_trigger_file,
    parse_trigger_text,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "deployments" / "triggers.example.yaml"

VALID = dedent(
    """\
    version: 3
    agent: airline-assistant
    triggers:
      - name: policy-adherence
        kind: policy_adherence
        p0: 0.05
        p1: 0.20
        alpha: 0.05
        beta: 0.10
      - name: escalation-rate
        kind: escalation_rate
        max_rate: 0.25
        min_conversations: 50
        confidence: 0.95
      - name: p95-latency
        kind: latency_p95
        max_ms: 4000
        min_conversations: 50
        confidence: 0.95
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
    assert (policy.p0, policy.p1, policy.alpha, policy.beta) == (0.05, 0.20, 0.05, 0.10)
    assert isinstance(escalation, EscalationRateTrigger)
    assert (escalation.max_rate, escalation.min_conversations) == (0.25, 50)
    assert isinstance(latency, LatencyP95Trigger)
    assert latency.max_ms == 4000.0
    assert parsed.trigger("p95-latency") is latency


def test_example_file_is_valid_for_the_demo_agent() -> None:
    parsed = load_trigger_file(EXAMPLE)
    assert parsed.agent == "airline-assistant"
    assert {t.kind for t in parsed.triggers} == {
        "policy_adherence",
        "escalation_rate",
        "latency_p95",
    }


def test_defaults_fill_optional_settings() -> None:
    parsed = parse_trigger_text(
        "version: 1\nagent: a\ntriggers:\n"
        "  - {name: p, kind: policy_adherence, p0: 0.1, p1: 0.3}\n",
        source="t.yaml",
    )
    trigger = parsed.triggers[0]
    assert isinstance(trigger, PolicyAdherenceTrigger)
    assert (trigger.alpha, trigger.beta) == (0.05, 0.10)


def test_p1_not_above_p0_points_at_p1() -> None:
    message = _problem(VALID.replace("p1: 0.20", "p1: 0.05"))
    assert message == "triggers.yaml:7:9: triggers[0].p1: must be greater than p0 (0.05)"


def test_out_of_range_values_point_at_their_lines() -> None:
    text = VALID.replace("alpha: 0.05", "alpha: 0.5").replace("max_rate: 0.25", "max_rate: 1.5")
    lines = _problem(text).splitlines()
    assert lines == [
        "triggers.yaml:8:12: triggers[0].alpha: Input should be less than 0.5",
        "triggers.yaml:12:15: triggers[1].max_rate: Input should be less than 1",
    ]


def test_unknown_key_points_at_the_key() -> None:
    message = _problem(VALID.replace("    max_ms: 4000\n", "    max_ms: 4000\n    max_msec: 1\n"))
    assert message.startswith("triggers.yaml:18:5: triggers[2].max_msec: unknown key;")
    assert "max_ms" in message


def test_unknown_top_level_key() -> None:
    message = _problem("owner: me\n" + VALID)
    assert message.startswith("triggers.yaml:1:1: owner: unknown key; allowed keys: version")


def test_unknown_kind_points_at_kind() -> None:
    message = _problem(VALID.replace("kind: escalation_rate", "kind: escalations"))
    assert message == (
        "triggers.yaml:11:11: triggers[1].kind: unknown kind 'escalations'; expected one of: "
        "policy_adherence, escalation_rate, latency_p95"
    )


def test_missing_required_key_points_at_its_trigger() -> None:
    message = _problem(VALID.replace("    max_ms: 4000\n", ""))
    assert message == "triggers.yaml:15:5: triggers[2].max_ms: required key is missing"
    message = _problem(VALID.replace("    kind: latency_p95\n", ""))
    assert message.startswith("triggers.yaml:15:5: triggers[2]: required key 'kind' is missing")


def test_duplicate_trigger_name_points_at_the_second_name() -> None:
    message = _problem(VALID.replace("name: p95-latency", "name: policy-adherence"))
    assert message == (
        "triggers.yaml:15:11: triggers[2].name: duplicate trigger name 'policy-adherence' "
        "(already used by triggers[0])"
    )


def test_duplicate_yaml_key_is_refused() -> None:
    message = _problem(VALID.replace("    p1: 0.20\n", "    p1: 0.20\n    p1: 0.50\n"))
    assert message == "triggers.yaml:8:5: duplicate key 'p1'"


def test_wrong_types_are_not_coerced() -> None:
    lines = _problem(
        VALID.replace("version: 3", "version: '3'").replace(
            "min_conversations: 50\n    confidence: 0.95\n  - name: p95",
            "min_conversations: 50.5\n    confidence: 0.95\n  - name: p95",
        )
    ).splitlines()
    assert lines == [
        "triggers.yaml:1:10: version: Input should be a valid integer",
        "triggers.yaml:13:24: triggers[1].min_conversations: Input should be a valid integer",
    ]


def test_bad_trigger_name() -> None:
    message = _problem(VALID.replace("name: escalation-rate", "name: 'escalation rate!'"))
    assert message.startswith("triggers.yaml:10:11: triggers[1].name: must start with")


def test_no_triggers() -> None:
    assert _problem("version: 1\nagent: a\ntriggers: []\n") == (
        "triggers.yaml:3:11: triggers: must list at least one trigger"
    )


def test_yaml_syntax_error_reports_its_line() -> None:
    message = _problem(VALID.replace("    p0: 0.05\n", "    p0: [0.05\n"))
    assert message.startswith("triggers.yaml:7:")
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
