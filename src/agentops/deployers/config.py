"""The deployers file: which deployer serves each agent, with its options (plain Python).

  agents:
    airline-assistant:
      kind: unleash              # http | unleash | launchdarkly | langfuse | kubernetes
      url: http://127.0.0.1:4242
      token_env: UNLEASH_ADMIN_TOKEN   # credentials are named by environment variable
      feature: airline-prompt
      environment: production
      versions: {v1: short-confirm}    # agent version -> variation (default: the same name)

Credentials never sit in the file: it names the environment variables that hold them.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentops.errors import AgentOpsError
from agentops.textfiles import read_text_file
from agentops.yaml_locations import dotted_path, mapping_entry

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class DeployersConfigError(AgentOpsError):
    """The deployers file is not valid; the message is one line naming file, line and field."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Agent version -> what the deployer calls it (variation, prompt version, image tag).
    versions: dict[str, str] = Field(default_factory=dict)


class HttpEntry(_Entry):
    """agentops' own HTTP contract (POST /deployments, GET /agents/{a}/live)."""

    kind: Literal["http"]
    url: str = Field(min_length=1)
    token_env: str | None = Field(default=None, pattern=ENV_NAME)
    hmac_secret_env: str | None = Field(default=None, pattern=ENV_NAME)


class UnleashEntry(_Entry):
    """A feature's strategy variant in one Unleash environment."""

    kind: Literal["unleash"]
    url: str = Field(min_length=1)
    token_env: str = Field(pattern=ENV_NAME)
    feature: str = Field(min_length=1)
    project: str = "default"
    environment: str = "production"


class LaunchDarklyEntry(_Entry):
    """A LaunchDarkly flag's fallthrough variation in one environment."""

    kind: Literal["launchdarkly"]
    url: str = "https://app.launchdarkly.com"
    token_env: str = Field(pattern=ENV_NAME)
    project: str = Field(min_length=1)
    flag: str = Field(min_length=1)
    environment: str = "production"


class LangfuseEntry(_Entry):
    """The Langfuse prompt version that holds a label."""

    kind: Literal["langfuse"]
    url: str = "https://cloud.langfuse.com"
    public_key_env: str = Field(pattern=ENV_NAME)
    secret_key_env: str = Field(pattern=ENV_NAME)
    prompt: str = Field(min_length=1)
    label: str = "production"


class GitOpsEntry(BaseModel):
    """Where the object's manifest lives, for Argo CD- or Flux-managed objects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo: str = Field(min_length=1)  # anything `git clone` takes
    path: str = Field(min_length=1)  # the manifest file inside it
    branch: str = "main"
    mode: Literal["pull_request", "direct"] = "pull_request"
    github_api: str = "https://api.github.com"
    github_repo: str | None = Field(default=None, pattern=r"^[^/\s]+/[^/\s]+$")
    token_env: str | None = Field(default=None, pattern=ENV_NAME)


class KubernetesEntry(_Entry):
    """A Deployment or an Argo Rollout; credentials from a kubeconfig or the pod's account."""

    kind: Literal["kubernetes"]
    object: Literal["Deployment", "Rollout"] = "Deployment"
    namespace: str = Field(default="default", min_length=1)
    name: str = Field(min_length=1)
    version_from: Literal["image", "label"] = "image"
    container: str | None = None
    label: str = "app.kubernetes.io/version"
    # Unset: the in-cluster service account (KUBERNETES_SERVICE_HOST and its token).
    kubeconfig: str | None = None
    context: str | None = None
    # A Rollout whose stable ReplicaSet runs the version is aborted rather than undone.
    rollout_abort: bool = True
    # Set when Argo CD or Flux owns the object: roll back by a git revert, never a patch.
    gitops: GitOpsEntry | None = None


DeployerEntry = Annotated[
    HttpEntry | UnleashEntry | LaunchDarklyEntry | LangfuseEntry | KubernetesEntry,
    Field(discriminator="kind"),
]
KINDS = ("http", "unleash", "launchdarkly", "langfuse", "kubernetes")


class DeployersFile(BaseModel):
    """Every agent's deployer entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: dict[str, DeployerEntry] = Field(default_factory=dict)


def load_deployers_file(path: Path) -> DeployersFile:
    """Read and validate a deployers file."""
    return parse_deployers_text(read_text_file(path, what="deployers file"), source=str(path))


def parse_deployers_text(text: str, *, source: str) -> DeployersFile:
    """Validate deployers-file text; the first problem is raised as one located line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise DeployersConfigError(
            f"{source}:{line}: YAML syntax error: {exc.problem or exc.context}"
        ) from None
    except yaml.YAMLError as exc:
        raise DeployersConfigError(f"{source}:1: YAML error: {exc}") from None
    if root is None:
        raise DeployersConfigError(f"{source}:1: the deployers file is empty")
    try:
        return DeployersFile.model_validate(data)
    except ValidationError as exc:
        raise DeployersConfigError(_first_problem(exc, root, source)) from None


def _first_problem(exc: ValidationError, root: yaml.Node, source: str) -> str:
    """The first validation error as 'file:line: path: message'."""
    error = exc.errors()[0]
    loc: list[Any] = list(error["loc"])
    if error["type"] == "union_tag_invalid":
        message = (
            f"unknown deployer kind {error['input'].get('kind')!r}; use one of {', '.join(KINDS)}"
        )
        loc.append("kind")
    elif error["type"] == "union_tag_not_found":
        message = f"needs a kind: one of {', '.join(KINDS)}"
    elif error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = "is not a known option"
    elif error["type"] == "string_pattern_mismatch":
        message = "must name an environment variable (letters, digits, underscores)"
    else:
        message = error["msg"]
    node: yaml.Node = root
    path: list[str | int] = []
    line = root.start_mark.line + 1
    for part in loc:
        if part in KINDS and len(path) == 2:
            continue  # the discriminated-union tag pydantic adds; not a YAML key
        path.append(part)
        found = mapping_entry(node, str(part))
        if found is None:
            break
        key_node, node = found
        line = key_node.start_mark.line + 1
    return f"{source}:{line}: {dotted_path(path)}: {message}"
