"""The rollback trigger file: written before launch, versioned, validated with line numbers."""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from agentops.errors import AgentOpsError, NotFoundError
from agentops.textfiles import read_text_file
from agentops.yaml_locations import dotted_path, mapping_entry

TRIGGER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class TriggerConfigError(AgentOpsError):
    """The trigger file is not valid; the message names the file, line and column."""

    def __init__(self, problems: list["ConfigProblem"]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True)
class ConfigProblem:
    """One located mistake in a trigger file (line and column are 1-based)."""

    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class _Strict(BaseModel):
    # Strict: YAML's `yes`/`1.0` must not quietly become a bool-as-int or a float-as-int.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _TriggerBase(_Strict):
    name: str = Field(pattern=TRIGGER_NAME_PATTERN, max_length=100)
    description: str | None = None


class PolicyAdherenceTrigger(_TriggerBase):
    """Sequential test (SPRT) of the reviewed policy-violation rate."""

    kind: Literal["policy_adherence"]
    p0: float = Field(gt=0, lt=1)
    p1: float = Field(gt=0, lt=1)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    beta: float = Field(default=0.10, gt=0, lt=0.5)

    @field_validator("p1")
    @classmethod
    def _p1_above_p0(cls, p1: float, info: ValidationInfo) -> float:
        p0 = info.data.get("p0")
        if p0 is not None and p1 <= p0:
            raise ValueError(f"must be greater than p0 ({p0})")
        return p1


class EscalationRateTrigger(_TriggerBase):
    """Breach when the one-sided Wilson lower bound of the escalation rate exceeds max_rate."""

    kind: Literal["escalation_rate"]
    max_rate: float = Field(gt=0, lt=1)
    # Only the version's most recent hours of traffic count; None means all of it.
    window_hours: float | None = Field(default=None, gt=0)
    min_conversations: int = Field(default=50, gt=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)


class LatencyP95Trigger(_TriggerBase):
    """Breach when the one-sided lower confidence bound of p95 latency exceeds max_ms."""

    kind: Literal["latency_p95"]
    max_ms: float = Field(gt=0)
    # Only the version's most recent hours of traffic count; None means all of it.
    window_hours: float | None = Field(default=None, gt=0)
    min_conversations: int = Field(default=50, gt=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)


AnyTrigger = PolicyAdherenceTrigger | EscalationRateTrigger | LatencyP95Trigger
Trigger = Annotated[AnyTrigger, Field(discriminator="kind")]

TRIGGER_MODELS: dict[str, type[_TriggerBase]] = {
    "policy_adherence": PolicyAdherenceTrigger,
    "escalation_rate": EscalationRateTrigger,
    "latency_p95": LatencyP95Trigger,
}


class TriggerFile(_Strict):
    """A versioned set of rollback triggers for one agent."""

    version: int = Field(gt=0)
    agent: str = Field(min_length=1)
    triggers: list[Trigger] = Field(min_length=1)

    @field_validator("triggers")
    @classmethod
    def _unique_names(cls, triggers: list[Any]) -> list[Any]:
        first_index: dict[str, int] = {}
        for index, trigger in enumerate(triggers):
            if trigger.name in first_index:
                raise PydanticCustomError(
                    "duplicate_trigger_name",
                    "duplicate trigger name '{name}' (already used by triggers[{first}])",
                    {"name": trigger.name, "index": index, "first": first_index[trigger.name]},
                )
            first_index[trigger.name] = index
        return triggers

    def trigger(self, name: str) -> AnyTrigger:
        """The trigger with this name."""
        for trigger in self.triggers:
            if trigger.name == name:
                return trigger
        known = ", ".join(trigger.name for trigger in self.triggers)
        raise NotFoundError(f"no trigger named {name!r} in version {self.version} (known: {known})")


def load_trigger_file(path: Path) -> TriggerFile:
    """Read and validate a trigger file from disk."""
    return parse_trigger_text(read_text_file(path, what="trigger file"), source=str(path))


def parse_trigger_text(text: str, *, source: str) -> TriggerFile:
    """Validate trigger-file text; errors point to source:line:column."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise TriggerConfigError(
            [ConfigProblem(source, line, column, "", f"YAML syntax error: {problem}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise TriggerConfigError([ConfigProblem(source, 1, 1, "", f"YAML error: {exc}")]) from exc
    if root is None:
        raise TriggerConfigError([ConfigProblem(source, 1, 1, "", "the trigger file is empty")])
    duplicates = _duplicate_keys(root, source)
    if duplicates:
        raise TriggerConfigError(duplicates)
    try:
        return TriggerFile.model_validate(data)
    except ValidationError as exc:
        problems = [_locate(error, root, source) for error in exc.errors()]
        problems.sort(key=lambda problem: (problem.line, problem.column))
        raise TriggerConfigError(problems) from None


def _duplicate_keys(node: yaml.Node, source: str) -> list[ConfigProblem]:
    # PyYAML silently keeps the last of two equal keys; a trigger file must not.
    problems: list[ConfigProblem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                mark = key_node.start_mark
                problems.append(
                    ConfigProblem(
                        source, mark.line + 1, mark.column + 1, "", f"duplicate key {key!r}"
                    )
                )
            seen.add(key)
            problems.extend(_duplicate_keys(value_node, source))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems.extend(_duplicate_keys(item, source))
    return problems


def _locate(error: Any, root: yaml.Node, source: str) -> ConfigProblem:
    """Map a pydantic error location onto the YAML node it is about."""
    loc = list(error["loc"])
    if error["type"] == "duplicate_trigger_name":
        loc += [error["ctx"]["index"], "name"]
    elif error["type"] == "union_tag_invalid":
        loc.append("kind")
    node = root
    path: list[str | int] = []
    for position, part in enumerate(loc, start=1):
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode):
            if part >= len(node.value):
                break
            node = node.value[part]
            path.append(part)
            continue
        found = mapping_entry(node, str(part))
        if found is None:
            if part in TRIGGER_MODELS and _scalar_value(node, "kind") == part:
                continue  # the discriminated-union tag pydantic adds; not a YAML key
            path.append(part)
            break
        key_node, value_node = found
        path.append(part)
        # An unknown key is about the key itself; any other problem is about its value.
        is_last = position == len(loc)
        node = key_node if is_last and error["type"] == "extra_forbidden" else value_node
    mark = node.start_mark
    return ConfigProblem(
        source, mark.line + 1, mark.column + 1, dotted_path(path), _message(error, node)
    )


def _scalar_value(node: yaml.Node, key: str) -> str | None:
    found = mapping_entry(node, key)
    if found is None or not isinstance(found[1], yaml.ScalarNode):
        return None
    return str(found[1].value)


def _message(error: Any, node: yaml.Node) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return f"unknown key; allowed keys: {', '.join(_allowed_keys(error['loc']))}"
    if kind == "union_tag_invalid":
        return f"unknown kind {error['ctx']['tag']!r}; expected one of: {', '.join(TRIGGER_MODELS)}"
    if kind == "union_tag_not_found":
        return f"required key 'kind' is missing; expected one of: {', '.join(TRIGGER_MODELS)}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "expected a mapping of keys to values"
    if kind == "too_short" and isinstance(node, yaml.SequenceNode):
        return "must list at least one trigger"
    if kind == "string_pattern_mismatch":
        return "must start with a letter or digit and use only letters, digits, '.', '_', '-'"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = TriggerFile
    for part in loc:
        if part in TRIGGER_MODELS:
            model = TRIGGER_MODELS[part]
    return list(model.model_fields)
