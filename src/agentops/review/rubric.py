"""Versioned policy rubrics written in YAML: parsing with located errors, and registration."""

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from agentops.audit.chain import canonical_sha256
from agentops.audit.service import add_and_record, record_event
from agentops.errors import AgentOpsError, NotFoundError, RuleViolation
from agentops.store.models import Agent, Rubric, RubricCriterion, Severity
from agentops.yaml_locations import dotted_path, mapping_entry

if TYPE_CHECKING:
    import yaml

KEY_PATTERN = r"[a-z0-9][a-z0-9-]*"


class RubricError(AgentOpsError):
    """A rubric file is not valid YAML or does not describe a valid rubric."""

    def __init__(self, source: str, problems: Sequence[tuple[int | None, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [
            f"{source}:{line}: {message}" if line is not None else f"{source}: {message}"
            for line, message in self.problems
        ]
        super().__init__("invalid rubric\n  " + "\n  ".join(lines))


class CriterionSpec(BaseModel):
    """One thing a reviewer judges as passed or failed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(max_length=80)
    severity: Severity
    description: str = Field(min_length=1)
    # The policy checks this criterion corresponds to: their certification is measured
    # against this criterion's findings instead of the whole verdict.
    checks: list[str] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _key_is_slug(cls, key: str) -> str:
        if not re.fullmatch(KEY_PATTERN, key):
            raise ValueError(f"{key!r} is not a valid key: use lowercase letters, digits and '-'")
        return key


class RubricSpec(BaseModel):
    """A named, versioned list of criteria, as written by the policy author."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    version: int = Field(ge=1)
    criteria: list[CriterionSpec] = Field(min_length=1)

    def content_sha256(self) -> str:
        """Hash of the meaning, not the text: comments and layout do not change it."""
        meaning = self.model_dump(mode="json")
        for criterion in meaning["criteria"]:
            if not criterion["checks"]:
                del criterion["checks"]  # rubrics written before checks keep their hash
        return canonical_sha256(meaning)


def parse_rubric(text: str, *, source: str) -> RubricSpec:
    """Parse and validate rubric YAML, reporting problems with file and line."""
    # Here, not at the top: `review next` and other readers never parse a rubric.
    import yaml

    from agentops import safe_yaml

    try:
        root = safe_yaml.compose(text)
        data = safe_yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise RubricError(source, [(line, f"not valid YAML: {reason}")]) from exc
    if not isinstance(data, dict):
        raise RubricError(source, [(1, "expected a mapping with name, version and criteria")])
    try:
        spec = RubricSpec.model_validate(data)
    except ValidationError as exc:
        problems = [
            (_line_of(root, error["loc"]), f"{_dotted(error['loc'])}: {error['msg']}")
            for error in exc.errors()
        ]
        raise RubricError(source, problems) from exc
    _check_unique_keys(spec, root=root, source=source)
    return spec


def _check_unique_keys(spec: RubricSpec, *, root: "yaml.Node | None", source: str) -> None:
    seen: set[str] = set()
    problems: list[tuple[int | None, str]] = []
    for index, criterion in enumerate(spec.criteria):
        if criterion.key in seen:
            loc = ("criteria", index, "key")
            problems.append(
                (_line_of(root, loc), f"{_dotted(loc)}: duplicate criterion key {criterion.key!r}")
            )
        seen.add(criterion.key)
    if problems:
        raise RubricError(source, problems)


def _dotted(loc: Sequence[str | int]) -> str:
    return dotted_path(loc) or "(top level)"


def _line_of(root: "yaml.Node | None", loc: Sequence[Any]) -> int | None:
    """The 1-based line of the deepest YAML node the error location reaches."""
    node = root
    if node is None:
        return None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _child(node: "yaml.Node", part: Any) -> "yaml.Node | None":
    import yaml

    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        return node.value[part] if part < len(node.value) else None
    entry = mapping_entry(node, str(part))
    return entry[1] if entry is not None else None


def register_rubric(session: Session, *, text: str, source: str, actor: str) -> Rubric:
    """Store a rubric version; re-registering identical content returns the existing one."""
    spec = parse_rubric(text, source=source)
    digest = spec.content_sha256()
    existing = session.exec(
        select(Rubric).where(Rubric.name == spec.name, Rubric.version == spec.version)
    ).first()
    if existing is not None:
        if existing.content_sha256 == digest:
            return existing
        raise RuleViolation(
            f"rubric {spec.name!r} version {spec.version} is already registered with different "
            f"content: bump `version` in {source} to register the change"
        )
    rubric = Rubric(name=spec.name, version=spec.version, content_sha256=digest)
    session.add(rubric)
    session.flush()
    for criterion in spec.criteria:
        session.add(
            RubricCriterion(
                rubric_id=rubric.id,  # type: ignore[arg-type]
                key=criterion.key,
                description=criterion.description,
                severity=criterion.severity,
                checks=criterion.checks or None,
            )
        )
    session.flush()
    record_event(
        session,
        actor=actor,
        kind="rubric.registered",
        entity_type="rubric",
        entity_id=rubric.id,
        payload={
            "name": spec.name,
            "version": spec.version,
            "sha256": digest,
            "source": source,
            "criteria": {c.key: c.severity.value for c in spec.criteria},
        },
    )
    return rubric


def latest_rubric(session: Session, *, name: str | None = None) -> Rubric | None:
    """The highest version of the named rubric, or the most recently registered rubric."""
    query = select(Rubric)
    if name is not None:
        query = query.where(Rubric.name == name).order_by(Rubric.version.desc())  # type: ignore[attr-defined]
    else:
        query = query.order_by(Rubric.id.desc())  # type: ignore[union-attr]
    return session.exec(query).first()


def require_rubric(session: Session, *, name: str | None = None) -> Rubric:
    """Like latest_rubric, but a missing rubric is an error that says how to add one."""
    rubric = latest_rubric(session, name=name)
    if rubric is None:
        wanted = f"rubric {name!r}" if name else "rubric"
        raise NotFoundError(f"no {wanted} stored: add one with `agentops rubric add FILE`")
    return rubric


def rubric_for_agent(session: Session, *, agent: Agent) -> Rubric:
    """The rubric the agent names (its highest version); else the newest one registered."""
    return require_rubric(session, name=agent.rubric_name)


def assign_rubric(session: Session, *, agent: Agent, name: str, actor: str) -> Rubric:
    """Make the agent's reviews use the named rubric from now on (audited)."""
    rubric = require_rubric(session, name=name)
    agent.rubric_name = rubric.name
    add_and_record(
        session,
        row=agent,
        actor=actor,
        kind="agent.rubric_assigned",
        entity_type="agent",
        payload={"agent": agent.name, "rubric": rubric.name, "version": rubric.version},
    )
    return rubric


def criteria_for(session: Session, *, rubric: Rubric) -> list[RubricCriterion]:
    """A rubric's criteria in the order the author wrote them."""
    return list(
        session.exec(
            select(RubricCriterion)
            .where(RubricCriterion.rubric_id == rubric.id)
            .order_by(RubricCriterion.id)  # type: ignore[arg-type]
        )
    )
