"""The docs hold together: every nav page exists, every relative link and anchor resolves,
and the settings page is what the Settings class says."""

import re
from pathlib import Path

import pytest
import yaml

from agentops.settings_doc import PAGE, render

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)


def nav_pages(nav: list[object]) -> list[str]:
    """Every page path in mkdocs.yml's nav, nested sections included."""
    pages: list[str] = []
    for entry in nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            pages.extend(nav_pages(value) if isinstance(value, list) else [str(value)])
    return pages


def slug(heading: str) -> str:
    """The anchor GitHub and mkdocs' toc give a heading (lower case, punctuation dropped)."""
    text = CODE.sub(lambda m: m.group(0).strip("`"), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = re.sub(r"[^\w\s-]", "", text.lower())
    return re.sub(r"\s", "-", text.strip())


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings."""
    return {slug(h) for h in HEADING.findall(FENCE.sub("", page.read_text()))}


def links(page: Path) -> list[str]:
    """Relative link targets in a Markdown page, outside code."""
    prose = CODE.sub("", FENCE.sub("", page.read_text()))
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


MARKDOWN = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_every_nav_page_exists_and_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = nav_pages(config["nav"])
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert missing == [], f"mkdocs.yml names pages that do not exist: {missing}"
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert sorted(on_disk - set(pages)) == [], "pages missing from mkdocs.yml's nav"


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_slug_matches_the_anchor_rules() -> None:
    assert slug("Appending without a global lock: the sequencer") == (
        "appending-without-a-global-lock-the-sequencer"
    )
    assert slug("High availability (not tested here)") == "high-availability-not-tested-here"
    assert slug("How long would it take to notice?") == "how-long-would-it-take-to-notice"


def test_the_settings_page_is_generated_from_the_settings_class() -> None:
    assert (ROOT / PAGE).read_text() == render(), (
        "docs/operators/settings.md is stale: run `make settings-doc`"
    )
