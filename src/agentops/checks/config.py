"""The check file: an agent's versioned policy checks, validated with line numbers."""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Protocol

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from agentops import safe_yaml
from agentops.checks.conversation import CheckResult, Conversation, Outcome, normalise
from agentops.checks.judge import LLMJudgeCheck
from agentops.checks.rules import (
    DECLARATIVE,
    AffirmationCheck,
    ArgumentLimitsCheck,
    BoundPythonCheck,
    LookupBeforeCheck,
    MaxCallsCheck,
    Minimum,
    ProvenanceCheck,
    PythonCheck,
    PythonCheckRef,
    Strict,
)
from agentops.errors import AgentOpsError
from agentops.textfiles import read_text_file
from agentops.yaml_locations import dotted_path, duplicate_keys, node_at

ENTRY_POINT_GROUP = "agentops.checks"

AnyCheck = Annotated[
    AffirmationCheck
    | LookupBeforeCheck
    | MaxCallsCheck
    | ProvenanceCheck
    | ArgumentLimitsCheck
    | PythonCheckRef
    | LLMJudgeCheck,
    Field(discriminator="kind"),
]
KINDS = (*DECLARATIVE, "llm_judge")


class CheckConfigError(AgentOpsError):
    """The check file is not valid; the message names the file, line and column."""


class RunnableCheck(Protocol):
    """A named check that runs on a conversation."""

    name: str
    minimum: Minimum | None

    def run(self, conversation: Conversation) -> CheckResult:
        """Pass, flag or not applicable."""
        ...


class CheckFile(Strict):
    """A versioned set of policy checks for one agent."""

    version: int = Field(gt=0)
    agent: str = Field(min_length=1)
    minimum: Minimum = Field(default_factory=Minimum)
    checks: list[AnyCheck] = Field(min_length=1)

    @field_validator("checks")
    @classmethod
    def _unique_names(cls, checks: list[Any], info: ValidationInfo) -> list[Any]:
        seen: dict[str, int] = {}
        for index, check in enumerate(checks):
            if check.name in seen:
                raise PydanticCustomError(
                    "duplicate_check_name",
                    "duplicate check name '{name}' (already used by checks[{first}])",
                    {"name": check.name, "index": index, "first": seen[check.name]},
                )
            seen[check.name] = index
        return checks

    def minimum_for(self, name: str) -> Minimum:
        """The minimum bounds a check needs to be certified."""
        for check in self.checks:
            if check.name == name and check.minimum is not None:
                return check.minimum
        return self.minimum


@dataclass(frozen=True)
class CheckSuite:
    """A parsed check file with every Python check resolved: ready to run."""

    file: CheckFile
    checks: tuple[RunnableCheck, ...]

    @property
    def names(self) -> list[str]:
        """Check names in file order."""
        return [check.name for check in self.checks]

    def run(self, messages: list[dict[str, Any]]) -> dict[str, CheckResult]:
        """Every check's result on one conversation's messages."""
        conversation = normalise(messages)
        return {check.name: check.run(conversation) for check in self.checks}


def builtin_checks() -> dict[str, PythonCheck]:
    """The Python checks agentops ships (the airline example pack)."""
    from agentops.checks import airline

    return dict(airline.CHECKS)


def python_checks() -> dict[str, PythonCheck]:
    """Python checks by name: agentops's own, then any installed under `agentops.checks`."""
    found: dict[str, PythonCheck] = builtin_checks()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = _LazyEntryPoint(entry.name, entry.load)
    return found


class _LazyEntryPoint:
    """An installed check, loaded the first time it runs (a broken one is an error then)."""

    def __init__(self, name: str, load: Callable[[], Any]) -> None:
        self.name = name
        self._load = load
        self._function: PythonCheck | None = None

    def resolve(self) -> PythonCheck:
        """The loaded function, or a CheckConfigError saying why it cannot be used."""
        if self._function is None:
            try:
                loaded = self._load()
            except Exception as exc:
                raise CheckConfigError(
                    f"the Python check {self.name!r} cannot be loaded: {exc}"
                ) from None
            if not callable(loaded):
                raise CheckConfigError(f"the Python check {self.name!r} is not a function")
            self._function = loaded
        return self._function

    def __call__(self, conversation: Conversation, options: dict[str, Any]) -> CheckResult:
        return self.resolve()(conversation, options)


def load_check_file(path: Path) -> tuple[CheckSuite, str]:
    """Read, validate and resolve a check file from disk; also return its text."""
    text = read_text_file(path, what="check file")
    return parse_check_text(text, source=str(path)), text


def parse_check_text(text: str, *, source: str) -> CheckSuite:
    """Validate check-file text and resolve its Python checks; errors name source:line:column."""
    try:
        return _parse(text, source=source)
    except RecursionError:
        raise CheckConfigError(f"{source}:1:1: the check file is nested too deeply") from None


def _parse(text: str, *, source: str) -> CheckSuite:
    try:
        # No aliases, as for trigger and rubric files: a few hundred bytes can name billions.
        root = safe_yaml.compose(text)
        data = safe_yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else f"{source}:1:1"
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise CheckConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise CheckConfigError(f"{source}:1:1: YAML error: {type(exc).__name__}") from None
    if root is None:
        raise CheckConfigError(f"{source}:1:1: the check file is empty")
    duplicate = next(duplicate_keys(root), None)
    if duplicate is not None:
        mark = duplicate.start_mark
        raise CheckConfigError(
            f"{source}:{mark.line + 1}:{mark.column + 1}: duplicate key {duplicate.value!r}"
        )
    try:
        parsed = CheckFile.model_validate(data)
    except ValidationError as exc:
        # One line: the first problem in the file, which is what a person fixes first.
        problems = sorted((_locate(error, root) for error in exc.errors()), key=lambda p: p[:2])
        line, column, path, message = problems[0]
        where = f"{source}:{line}:{column}"
        located = f"{where}: {path}: {message}" if path else f"{where}: {message}"
        raise CheckConfigError(located) from None
    return CheckSuite(parsed, tuple(_resolve(parsed, root, source)))


def _resolve(parsed: CheckFile, root: yaml.Node, source: str) -> list[RunnableCheck]:
    known: dict[str, PythonCheck] | None = None
    out: list[RunnableCheck] = []
    for index, check in enumerate(parsed.checks):
        if not isinstance(check, PythonCheckRef):
            out.append(check)
            continue
        known = known if known is not None else python_checks()
        function = known.get(check.check)
        if function is None:
            line, column, path, _ = _locate({"loc": ("checks", index, "check"), "type": ""}, root)
            names = ", ".join(sorted(known)) or "none installed"
            raise CheckConfigError(
                f"{source}:{line}:{column}: {path}: no Python check named {check.check!r} "
                f"(known: {names})"
            )
        if isinstance(function, _LazyEntryPoint):
            function = function.resolve()
        out.append(BoundPythonCheck(check, function))
    return out


def _locate(error: Any, root: yaml.Node) -> tuple[int, int, str, str]:
    """(line, column, dotted path, message) of a pydantic error in the YAML."""
    loc = list(error["loc"])
    if error["type"] == "duplicate_check_name":
        loc += [error["ctx"]["index"], "name"]
    elif error["type"] == "union_tag_invalid":
        loc.append("kind")
    node, path = node_at(
        root,
        loc,
        key_itself=error["type"] == "extra_forbidden",
        # The union tag pydantic adds to the location; not a YAML key.
        is_tag=lambda _node, part: part in KINDS,
    )
    mark = node.start_mark
    return mark.line + 1, mark.column + 1, dotted_path(path), _message(error)


def _message(error: Any) -> str:
    kind = error["type"]
    kinds = ", ".join(KINDS)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "union_tag_invalid":
        return f"unknown kind {error['ctx']['tag']!r}; expected one of: {kinds}"
    if kind == "union_tag_not_found":
        return f"required key 'kind' is missing; expected one of: {kinds}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "expected a mapping of keys to values"
    if kind == "string_pattern_mismatch":
        return "must start with a letter and use only letters, digits, '.', '_', '-'"
    return " ".join(str(error.get("msg", "invalid value")).removeprefix("Value error, ").split())


@functools.lru_cache(maxsize=16)
def suite_from_text(content: str, source: str) -> CheckSuite:
    """Parse a stored check file once per process (stored versions never change)."""
    return parse_check_text(content, source=source)


def results_json(results: dict[str, CheckResult]) -> dict[str, Any]:
    """Stored form: check name -> "pass", "na" or the flag's {"turn", "tool", "quote"}."""
    out: dict[str, Any] = {}
    for name, found in results.items():
        if found.outcome is Outcome.flagged and found.evidence is not None:
            out[name] = found.evidence.to_json()
        else:
            out[name] = found.outcome.value
    return out


def flag_count(stored: dict[str, Any]) -> int:
    """How many checks flagged, from the stored form."""
    return sum(isinstance(value, dict) for value in stored.values())
