"""The declarative check shapes of a check file, each run on one conversation (pure)."""

import re
from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentops.checks.conversation import (
    NOT_APPLICABLE,
    PASS,
    CheckResult,
    Conversation,
    ToolCall,
    flag,
)

CHECK_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
# Words that count as an explicit yes; an owner may list their own.
DEFAULT_AFFIRMATIONS = (
    "yes", "yeah", "yep", "yup", "confirm", "confirmed", "i confirm", "proceed", "go ahead",
    "please do", "sure", "correct", "that's right", "do it", "sounds good", "ok", "okay",
)  # fmt: skip

PythonCheck = Callable[[Conversation, dict[str, Any]], CheckResult]


class Strict(BaseModel):
    # Strict: YAML's `yes` must not quietly become a number, nor a typo an ignored key.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Minimum(Strict):
    """The owner's minimum lower bounds for a check to be certified (and feed triggers)."""

    tpr: float = Field(default=0.7, ge=0, le=1)
    tnr: float = Field(default=0.9, ge=0, le=1)


class _Check(Strict):
    name: str = Field(pattern=CHECK_NAME_PATTERN, max_length=100)
    description: str | None = None
    minimum: Minimum | None = None

    def run(self, conversation: Conversation) -> CheckResult:  # pragma: no cover - abstract
        """Pass, flag (with evidence) or not applicable."""
        raise NotImplementedError


def _words_pattern(words: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(word.lower()) for word in words)
    return re.compile(rf"(?<![a-z])(?:{alternatives})(?![a-z])")


class AffirmationCheck(_Check):
    """The last user message before any of `tools` contains an explicit yes."""

    kind: Literal["affirmation"]
    tools: list[str] = Field(min_length=1)
    words: list[str] = Field(default_factory=lambda: list(DEFAULT_AFFIRMATIONS), min_length=1)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        return _words_pattern(self.words)

    def run(self, conversation: Conversation) -> CheckResult:
        """Flag the first watched call whose preceding user message says no clear yes."""
        watched = [call for call in conversation.calls if call.name in self.tools]
        if not watched:
            return NOT_APPLICABLE
        for call in watched:
            user = conversation.last_user_before(call.turn)
            if user is None:
                return flag(call.turn, call.name, "no user message before the call")
            if not self._pattern.search(user.text.lower()):
                return flag(user.turn, call.name, user.text)
        return PASS


class LookupRule(Strict):
    """Calls of `tools` need an earlier call of one of `lookups` (with the same `same` value)."""

    tools: list[str] = Field(min_length=1)
    lookups: list[str] = Field(min_length=1)
    same: str | None = None


class LookupBeforeCheck(_Check):
    """Each watched tool is preceded by a given lookup, optionally of the same record."""

    kind: Literal["lookup_before"]
    require: list[LookupRule] = Field(min_length=1)

    def run(self, conversation: Conversation) -> CheckResult:
        """Flag the first watched call with no matching earlier lookup."""
        applicable = False
        for call in conversation.calls:
            for rule in self.require:
                if call.name not in rule.tools:
                    continue
                applicable = True
                if not self._looked_up(conversation, call, rule):
                    wanted = " or ".join(rule.lookups)
                    key = f" of {rule.same}={call.arguments.get(rule.same)!r}" if rule.same else ""
                    return flag(call.turn, call.name, f"no {wanted}{key} before {call.name}")
        return PASS if applicable else NOT_APPLICABLE

    @staticmethod
    def _looked_up(conversation: Conversation, call: ToolCall, rule: LookupRule) -> bool:
        for name in rule.lookups:
            for lookup in conversation.calls_before(call.turn, name):
                if rule.same is None:
                    return True
                if lookup.arguments.get(rule.same) == call.arguments.get(rule.same):
                    return True
        return False


class MaxCallsCheck(_Check):
    """At most `max` tool calls per assistant turn, and optionally no text beside them."""

    kind: Literal["max_calls_per_turn"]
    max: int = Field(ge=1)
    text_with_calls: bool = True

    def run(self, conversation: Conversation) -> CheckResult:
        """Flag the first assistant turn over the limit (or speaking while calling)."""
        applicable = False
        for message in conversation.messages:
            if message.role != "assistant":
                continue
            applicable = True
            if len(message.calls) > self.max:
                names = ", ".join(call.name for call in message.calls)
                return flag(
                    message.turn, message.calls[0].name, f"{len(message.calls)} calls: {names}"
                )
            if message.calls and not self.text_with_calls and message.text.strip():
                return flag(message.turn, message.calls[0].name, message.text)
        return PASS if applicable else NOT_APPLICABLE


Source = Literal["tool", "user", "system", "arguments"]
_DEFAULT_SOURCES: list[Source] = ["tool", "user"]


class ProvenanceCheck(_Check):
    """Values matching `pattern` in assistant text appear earlier in the given sources."""

    kind: Literal["provenance"]
    pattern: str
    numeric: bool = False
    sources: list[Source] = Field(default_factory=lambda: _DEFAULT_SOURCES.copy(), min_length=1)
    ignore: list[str] = Field(default_factory=list)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if compiled.groups > 1:
            raise ValueError("use at most one capturing group (the value to look for)")
        return value

    @cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def run(self, conversation: Conversation) -> CheckResult:
        """Flag the first value in assistant text that no earlier source contains."""
        # Sources are searched only for the values actually stated: tool results are long
        # and stated values few, so this is far cheaper than indexing every source.
        sources: list[str] = []
        applicable = False
        ignored = set(self.ignore)
        for message in conversation.messages:
            if message.role == "assistant" and message.text:
                for match in self._compiled.finditer(message.text):
                    value = match.group(1 if match.re.groups else 0)
                    if value is None or value in ignored:
                        continue
                    applicable = True
                    if not self._known(value, sources):
                        start = max(0, match.start() - 60)
                        return flag(message.turn, None, message.text[start : match.end() + 60])
            sources.extend(self._source_texts(message))
        return PASS if applicable else NOT_APPLICABLE

    def _known(self, value: str, sources: list[str]) -> bool:
        if not self.numeric:
            return any(value in text for text in reversed(sources))
        forms = _number_forms(value)
        # Newest first: a stated amount mostly comes from the latest tool result.
        return bool(forms) and any(_contains_number(text, forms) for text in reversed(sources))

    def _source_texts(self, message: Any) -> list[str]:
        kinds = self.sources
        if message.role in ("user", "system", "tool") and message.role in kinds:
            return [message.text]
        if message.role == "assistant" and "arguments" in kinds:
            return [str(call.raw_arguments) for call in message.calls]
        return []


@lru_cache(maxsize=4096)
def _number_forms(value: str) -> tuple[str, ...]:
    """The ways a stated number may be written in a source (1234, 1,234, 1234.5)."""
    try:
        number = float(value.replace(",", ""))
    except ValueError:
        return ()
    whole = int(number)
    if number != whole:
        text = f"{number:.10f}".rstrip("0")
        integer, fraction = text.split(".")
        return tuple({f"{integer}.{fraction}", f"{int(integer):,}.{fraction}"})
    return tuple({str(whole), f"{whole:,}"})


def _contains_number(text: str, forms: tuple[str, ...]) -> bool:
    # str.find, then a look at the neighbours: several times faster than a regex with
    # look-arounds on long tool results.
    for form in forms:
        start = text.find(form)
        while start != -1:
            if _standalone(text, start, start + len(form), fractional="." in form):
                return True
            start = text.find(form, start + 1)
    return False


def _standalone(text: str, start: int, end: int, *, fractional: bool) -> bool:
    """Whether text[start:end] is a whole number token (255 in "255.0", not in "1255")."""
    if start and (text[start - 1].isdigit() or text[start - 1] in ".,"):
        return False
    if fractional:
        while end < len(text) and text[end] == "0":  # 12.50 is 12.5
            end += 1
    elif text.startswith(".", end):
        end += 1
        while end < len(text) and text[end] == "0":  # 255.0 is 255
            end += 1
    if end < len(text) and text[end].isdigit():  # 12.5 is not 12, 1234 is not 123
        return False
    return not (text.startswith(",", end) and end + 1 < len(text) and text[end + 1].isdigit())


class ArgumentLimit(Strict):
    """A limit on one argument; `argument` is a dotted path, `[]` stepping into each item."""

    argument: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    min_items: int | None = Field(default=None, ge=0)
    max_items: int | None = Field(default=None, ge=0)
    one_of: list[str | int | float] | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> "ArgumentLimit":
        limits = (self.min, self.max, self.min_items, self.max_items, self.one_of)
        if all(limit is None for limit in limits):
            raise ValueError("give at least one of min, max, min_items, max_items, one_of")
        return self

    def problem(self, arguments: dict[str, Any]) -> str | None:
        """What is wrong with the arguments, or None."""
        for value in _values_at(arguments, self.argument.split(".")):
            if self.min_items is not None or self.max_items is not None:
                size = len(value) if isinstance(value, list | dict | str) else None
                if size is None:
                    return f"{self.argument} is not a list"
                if self.min_items is not None and size < self.min_items:
                    return f"{self.argument} has {size} items, fewer than {self.min_items}"
                if self.max_items is not None and size > self.max_items:
                    return f"{self.argument} has {size} items, more than {self.max_items}"
            if self.min is not None or self.max is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return f"{self.argument} = {value!r} is not a number"
                if self.min is not None and value < self.min:
                    return f"{self.argument} = {value} is below {self.min:g}"
                if self.max is not None and value > self.max:
                    return f"{self.argument} = {value} is above {self.max:g}"
            if self.one_of is not None and value not in self.one_of:
                return f"{self.argument} = {value!r} is not one of {self.one_of}"
        return None


def _values_at(value: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [value]
    head, rest = parts[0], parts[1:]
    each = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(value, dict) or key not in value:
        return []
    found = value[key]
    if not each:
        return _values_at(found, rest)
    items = found if isinstance(found, list) else []
    return [inner for item in items for inner in _values_at(item, rest)]


class ArgumentLimitsCheck(_Check):
    """Arguments of the given tools keep within limits."""

    kind: Literal["argument_limits"]
    tools: list[str] = Field(min_length=1)
    limits: list[ArgumentLimit] = Field(min_length=1)

    def run(self, conversation: Conversation) -> CheckResult:
        """Flag the first watched call with an argument out of its limits."""
        watched = [call for call in conversation.calls if call.name in self.tools]
        if not watched:
            return NOT_APPLICABLE
        for call in watched:
            for limit in self.limits:
                problem = limit.problem(call.arguments)
                if problem is not None:
                    return flag(call.turn, call.name, problem)
        return PASS


class PythonCheckRef(_Check):
    """A check written in Python, found by name (entry point group `agentops.checks`)."""

    kind: Literal["python"]
    check: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    def bind(self, function: PythonCheck) -> "BoundPythonCheck":
        """This reference with its function."""
        return BoundPythonCheck(self, function)


class BoundPythonCheck:
    """A Python check reference together with the function it names."""

    def __init__(self, ref: PythonCheckRef, function: PythonCheck) -> None:
        self.ref = ref
        self.name = ref.name
        self.minimum = ref.minimum
        self.function = function

    def run(self, conversation: Conversation) -> CheckResult:
        """Run the function; a check that crashes says not applicable, never stops an import."""
        try:
            return self.function(conversation, self.ref.options)
        except Exception:
            return NOT_APPLICABLE


# The base of every check shape, for shapes defined in other modules (the LLM judge).
CheckBase = _Check

DECLARATIVE = {
    "affirmation": AffirmationCheck,
    "lookup_before": LookupBeforeCheck,
    "max_calls_per_turn": MaxCallsCheck,
    "provenance": ProvenanceCheck,
    "argument_limits": ArgumentLimitsCheck,
    "python": PythonCheckRef,
}
