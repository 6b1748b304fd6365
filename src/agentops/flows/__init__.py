"""The Prefect flows, importable as `agentops.flows.<name>` from a checkout or the wheel.

The flow definitions live in the repository's top-level `flows/` folder. The wheel maps
that folder into this package (see `[tool.hatch.build.targets.wheel]` in pyproject.toml),
so an installed agentops has a single top-level package. In a checkout (an editable
install), this package extends its search path to the same folder instead, so both run
the very same files.
"""

from pathlib import Path

_CHECKOUT_FLOWS = Path(__file__).resolve().parents[3] / "flows"

# Only a source checkout has src/agentops/flows beside a top-level flows/ folder.
_IN_CHECKOUT = Path(__file__).resolve().parents[2].name == "src"
if _IN_CHECKOUT and (_CHECKOUT_FLOWS / "approval_gate.py").is_file():
    __path__.append(str(_CHECKOUT_FLOWS))
