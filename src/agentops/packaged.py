"""Files agentops ships beside its code: the example rubric, triggers and prefect.yaml."""

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from agentops.errors import NotFoundError

EXAMPLES = (
    "rubric.example.yaml",
    "triggers.example.yaml",
    "prefect.yaml",
    "checks.example.yaml",
)
# In a checkout the same files are the ones under deployments/ (the wheel copies them).
_CHECKOUT_DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"


def example_file(name: str) -> Traversable:
    """One of the shipped example files, from the installed package or the checkout."""
    if name not in EXAMPLES:
        raise NotFoundError(f"no example file {name!r}; there are: {', '.join(EXAMPLES)}")
    packaged = files("agentops") / "examples" / name
    if packaged.is_file():
        return packaged
    return _CHECKOUT_DEPLOYMENTS / name


def example_text(name: str) -> str:
    """The text of a shipped example file."""
    return example_file(name).read_text(encoding="utf-8")
