"""The rollback trigger file: written before launch, versioned, validated with line numbers."""

import re
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
    model_validator,
)
from pydantic_core import PydanticCustomError

from agentops import safe_yaml
from agentops.errors import AgentOpsError, NotFoundError
from agentops.textfiles import read_text_file
from agentops.yaml_locations import dotted_path, duplicate_keys, mapping_entry, node_at

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


Unit = Literal["reviews", "conversations"]
# Each kind watches one yes/no outcome per review or conversation.
KIND_UNITS: dict[str, Unit] = {
    "policy_adherence": "reviews",
    "escalation_rate": "conversations",
    "latency": "conversations",
    "negative_sentiment": "conversations",
    "not_contained": "conversations",
}
DAYS_PER = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}
_INTERVAL = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")


@dataclass(frozen=True)
class Interval:
    """A false-alarm interval as written: an amount of days or of observations."""

    amount: float
    unit: str  # "days", "reviews" or "conversations"


def parse_interval(value: int | str, *, unit: Unit) -> Interval:
    """Read `false_alarm_every`: a count of the trigger's unit, or days/weeks/months/years."""
    if isinstance(value, int):
        return Interval(float(value), unit)
    match = _INTERVAL.match(value)
    if match is None:
        raise ValueError(
            f"expected an amount and a unit, like '5 years' or '50000 {unit}', got {value!r}"
        )
    amount = float(match.group(1).replace("_", "").replace(",", ""))
    word = match.group(2).lower().removesuffix("s")
    if amount <= 0:
        raise ValueError("must be a positive amount")
    if word in DAYS_PER:
        return Interval(amount * DAYS_PER[word], "days")
    if word + "s" == unit:
        return Interval(amount, unit)
    raise ValueError(
        f"unknown unit {match.group(2)!r}: use {unit}, days, weeks, months or years"
    )


class _TriggerBase(_Strict):
    name: str = Field(pattern=TRIGGER_NAME_PATTERN, max_length=100)
    description: str | None = None
    # The healthy rate: stated, or measured on the last known-good version's stored data.
    healthy_rate: float | None = Field(default=None, gt=0, lt=1)
    healthy_from: Literal["last_known_good"] | None = None
    # With a measured rate: how much data it needs, and how sure the promise must be.
    min_healthy_samples: int = Field(default=1000, gt=0)
    guarantee: float = Field(default=0.90, ge=0.5, lt=1)
    # Only for `triggers check` on a measured rate: the rate you expect it to come out at.
    expected_healthy_rate: float | None = Field(default=None, gt=0, lt=1)
    degraded_rates: list[float] = Field(min_length=2, max_length=2)
    false_alarm_every: int | str

    @property
    def unit(self) -> Unit:
        """What one observation is: a review or a conversation."""
        return KIND_UNITS[self.kind]  # type: ignore[attr-defined]

    @property
    def degraded_low(self) -> float:
        """The smallest degraded rate worth a rollback."""
        return self.degraded_rates[0]

    @property
    def degraded_high(self) -> float:
        """The largest degraded rate the bank is tuned to."""
        return self.degraded_rates[1]

    def interval(self) -> Interval:
        """The false-alarm interval as written."""
        return parse_interval(self.false_alarm_every, unit=self.unit)

    @field_validator("degraded_rates")
    @classmethod
    def _ordered_rates(cls, rates: list[float]) -> list[float]:
        low, high = rates
        if not 0.0 < low <= high < 1.0:
            raise ValueError(f"need 0 < low <= high < 1, got [{low}, {high}]")
        return rates

    @field_validator("false_alarm_every", mode="before")
    @classmethod
    def _whole_number_or_text(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("expected a whole number of observations or a text like '5 years'")
        return value

    @field_validator("false_alarm_every")
    @classmethod
    def _readable_interval(cls, value: int | str, info: ValidationInfo) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError("must be at least 2 observations")
        # The unit is checked against the kind once the model is complete.
        parse_interval(value, unit="reviews" if isinstance(value, int) else _unit_word(value))
        return value

    @model_validator(mode="after")
    def _one_healthy_source(self) -> "_TriggerBase":
        if (self.healthy_rate is None) == (self.healthy_from is None):
            raise ValueError("give exactly one of healthy_rate or healthy_from: last_known_good")
        if self.healthy_rate is not None and self.healthy_rate >= self.degraded_high:
            raise ValueError(
                f"healthy_rate {self.healthy_rate} must be below the degraded rates "
                f"{self.degraded_rates}"
            )
        parse_interval(self.false_alarm_every, unit=self.unit)
        return self


def _unit_word(value: str) -> Unit:
    # Accept either observation word while the kind is not known yet.
    return "conversations" if "conversation" in value.lower() else "reviews"


class PolicyAdherenceTrigger(_TriggerBase):
    """Reviewed policy violations (one review, one draw)."""

    kind: Literal["policy_adherence"]


class EscalationRateTrigger(_TriggerBase):
    """Conversations handed over to a human."""

    kind: Literal["escalation_rate"]


class LatencyTrigger(_TriggerBase):
    """Conversations slower than limit_ms: "p95 <= 4 s" is "at most 5% above 4 s"."""

    kind: Literal["latency"]
    limit_ms: float = Field(gt=0)


class NegativeSentimentTrigger(_TriggerBase):
    """Conversations whose mean user sentiment is below `below`."""

    kind: Literal["negative_sentiment"]
    below: float = Field(default=0.0, ge=-1, le=1)


class NotContainedTrigger(_TriggerBase):
    """Conversations the agent did not resolve on its own."""

    kind: Literal["not_contained"]


AnyTrigger = (
    PolicyAdherenceTrigger
    | EscalationRateTrigger
    | LatencyTrigger
    | NegativeSentimentTrigger
    | NotContainedTrigger
)
Trigger = Annotated[AnyTrigger, Field(discriminator="kind")]

TRIGGER_MODELS: dict[str, type[_TriggerBase]] = {
    "policy_adherence": PolicyAdherenceTrigger,
    "escalation_rate": EscalationRateTrigger,
    "latency": LatencyTrigger,
    "negative_sentiment": NegativeSentimentTrigger,
    "not_contained": NotContainedTrigger,
}


class ExpectedVolume(_Strict):
    """Expected reviews and conversations per day: turns days into observations."""

    reviews_per_day: float | None = Field(default=None, gt=0)
    conversations_per_day: float | None = Field(default=None, gt=0)

    def per_day(self, unit: Unit) -> float | None:
        """Observations of this unit per day, if stated."""
        return self.reviews_per_day if unit == "reviews" else self.conversations_per_day


class TriggerFile(_Strict):
    """A versioned set of rollback triggers for one agent."""

    version: int = Field(gt=0)
    agent: str = Field(min_length=1)
    expected_volume: ExpectedVolume = Field(default_factory=ExpectedVolume)
    triggers: list[Trigger] = Field(min_length=1)

    @field_validator("triggers")
    @classmethod
    def _unique_names(cls, triggers: list[Any], info: ValidationInfo) -> list[Any]:
        first_index: dict[str, int] = {}
        volume = info.data.get("expected_volume") or ExpectedVolume()
        for index, trigger in enumerate(triggers):
            if trigger.name in first_index:
                raise PydanticCustomError(
                    "duplicate_trigger_name",
                    "duplicate trigger name '{name}' (already used by triggers[{first}])",
                    {"name": trigger.name, "index": index, "first": first_index[trigger.name]},
                )
            first_index[trigger.name] = index
            if trigger.interval().unit == "days" and volume.per_day(trigger.unit) is None:
                raise PydanticCustomError(
                    "interval_needs_volume",
                    "an interval in days needs expected_volume.{key} to turn it into {unit}",
                    {"index": index, "key": f"{trigger.unit}_per_day", "unit": trigger.unit},
                )
        return triggers

    def trigger(self, name: str) -> AnyTrigger:
        """The trigger with this name."""
        for trigger in self.triggers:
            if trigger.name == name:
                return trigger
        known = ", ".join(trigger.name for trigger in self.triggers)
        raise NotFoundError(f"no trigger named {name!r} in version {self.version} (known: {known})")

    def observations(self, trigger: AnyTrigger) -> float:
        """The trigger's promised false-alarm interval in reviews or conversations."""
        interval = trigger.interval()
        if interval.unit != "days":
            return interval.amount
        per_day = self.expected_volume.per_day(trigger.unit)
        assert per_day is not None  # validated with the file
        return interval.amount * per_day

    def per_day(self, trigger: AnyTrigger) -> float | None:
        """The trigger's expected observations per day, if the file states it."""
        return self.expected_volume.per_day(trigger.unit)


# Keys of the first trigger-file format, and what replaced them.
OLD_KEYS = {"p0", "p1", "alpha", "beta", "max_rate", "max_ms", "window_hours",
            "min_conversations", "confidence"}  # fmt: skip
NEW_FORM = {
    "policy_adherence": "healthy_rate: 0.03, degraded_rates: [0.06, 0.30], "
    "false_alarm_every: 5 years",
    "escalation_rate": "healthy_rate: 0.10, degraded_rates: [0.15, 0.40], "
    "false_alarm_every: 5 years",
    "latency_p95": "kind: latency, limit_ms: 4000, healthy_rate: 0.05 (p95 <= 4 s means at "
    "most 5% above 4 s), degraded_rates: [0.10, 0.40], false_alarm_every: 5 years",
}


def _old_format(root: yaml.Node, source: str) -> list[ConfigProblem]:
    # The first format's keys would only say "unknown key": show the new form instead.
    found = mapping_entry(root, "triggers")
    if found is None or not isinstance(found[1], yaml.SequenceNode):
        return []
    problems: list[ConfigProblem] = []
    for index, node in enumerate(found[1].value):
        if not isinstance(node, yaml.MappingNode):
            continue
        kind = _scalar_value(node, "kind") or "policy_adherence"
        old = [key for key, _ in node.value if str(key.value) in OLD_KEYS]
        if not old and kind != "latency_p95":
            continue
        mark = (old[0] if old else node).start_mark
        keys = ", ".join(str(key.value) for key in old) or "kind: latency_p95"
        example = NEW_FORM.get(kind, NEW_FORM["escalation_rate"])
        problems.append(
            ConfigProblem(
                source, mark.line + 1, mark.column + 1, f"triggers[{index}]",
                f"{keys} belong to the old trigger format; write instead: {example} "
                "(see deployments/triggers.example.yaml)",
            )
        )
    return problems


def load_trigger_file(path: Path) -> TriggerFile:
    """Read and validate a trigger file from disk."""
    return parse_trigger_text(read_text_file(path, what="trigger file"), source=str(path))


def parse_trigger_text(text: str, *, source: str) -> TriggerFile:
    """Validate trigger-file text; errors point to source:line:column."""
    try:
        root = safe_yaml.compose(text)
        data = safe_yaml.safe_load(text)
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
    duplicates = _duplicate_keys(root, source) or _old_format(root, source)
    if duplicates:
        raise TriggerConfigError(duplicates)
    try:
        return TriggerFile.model_validate(data)
    except ValidationError as exc:
        problems = [_locate(error, root, source) for error in exc.errors()]
        problems.sort(key=lambda problem: (problem.line, problem.column))
        raise TriggerConfigError(problems) from None


def _duplicate_keys(node: yaml.Node, source: str) -> list[ConfigProblem]:
    return [
        ConfigProblem(
            source,
            key_node.start_mark.line + 1,
            key_node.start_mark.column + 1,
            "",
            f"duplicate key {str(key_node.value)!r}",
        )
        for key_node in duplicate_keys(node)
    ]


def _locate(error: Any, root: yaml.Node, source: str) -> ConfigProblem:
    """Map a pydantic error location onto the YAML node it is about."""
    loc = list(error["loc"])
    if error["type"] == "duplicate_trigger_name":
        loc += [error["ctx"]["index"], "name"]
    elif error["type"] == "interval_needs_volume":
        loc += [error["ctx"]["index"], "false_alarm_every"]
    elif error["type"] == "union_tag_invalid":
        loc.append("kind")
    node, path = node_at(
        root,
        loc,
        # An unknown key is about the key itself; any other problem is about its value.
        key_itself=error["type"] == "extra_forbidden",
        # The discriminated-union tag pydantic adds; not a YAML key.
        is_tag=lambda node, part: part in TRIGGER_MODELS and _scalar_value(node, "kind") == part,
    )
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
