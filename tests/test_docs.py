"""The README and docs/: short, linked, one home per figure, no development history.

Pure text parsing (no TensorFlow, no Snakemake), so it runs in well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
LINKED = [*PAGES, ROOT / "config" / "README.md"]  # pages whose relative links are checked
HEADLINE = "Headline figures"  # the README section whose table links every figure to its docs page
MAX_README_LINES = 200

LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
FENCE = re.compile(r"^(```|~~~)")
# Words a reader of the project cannot resolve: its development history and workplace tools.
BANNED = ("issue #", "first try", "device tool", "the issue's", "this session")
# A commit hash in prose: 7-40 hex digits (at least one digit) shortly after "commit", "revision" or "sha".
COMMIT = re.compile(r"\b(?:commit|revision|sha)s?\b[^\n]{0,30}?\b(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", re.IGNORECASE)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links and headings there are not markdown)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = LINK.sub(lambda m: m.group(1), heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[str]:
    return [m.group(2) for line in prose_lines(path.read_text(encoding="utf-8")) for m in LINK.finditer(line)]


def numbers(text: str) -> list[str]:
    return [n.rstrip(",") for n in NUMBER.findall(text)]


def contains_number(text: str, number: str) -> bool:
    return re.search(r"(?<![\w.,])" + re.escape(number) + r"(?![\d]|[.,]\d)", text) is not None


def split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def headline_rows() -> list[list[str]]:
    """The data rows of the first table under the README's headline heading."""
    lines = README.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^#{2,6}\s+" + re.escape(HEADLINE) + r"\s*$", line)]
    assert starts, f"README.md has no '## {HEADLINE}' section"
    table: list[str] = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("#"):
            break
        if line.lstrip().startswith("|"):
            table.append(line)
        elif table:
            break
    assert len(table) > 2, f"README.md's '{HEADLINE}' section has no table"
    return [split_row(line) for line in table[2:]]


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES}): move detail to docs/"


def test_headline_figures_appear_on_the_page_they_link_to():
    rows = headline_rows()
    assert rows
    for row in rows:
        targets = [t for cell in row for t in LINK.findall(cell)]
        pages = {t[1].split("#")[0] for t in targets if t[1].split("#")[0].startswith("docs/")}
        assert len(pages) == 1, f"headline row {row[0]!r} must link to exactly one docs page, links {targets}"
        page = ROOT / pages.pop()
        assert page.is_file(), f"headline row {row[0]!r} links to {rel(page)}, which does not exist"
        text = page.read_text(encoding="utf-8")
        figures = numbers(" ".join(LINK.sub(lambda m: m.group(1), cell) for cell in row))
        missing = [n for n in figures if not contains_number(text, n)]
        assert not missing, f"headline row {row[0]!r}: {missing} not found in {rel(page)}"


@pytest.mark.parametrize("page", LINKED, ids=rel)
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {rel(dest)})")
    assert not broken, f"{rel(page)}: broken links: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_no_development_history(page):
    text = page.read_text(encoding="utf-8")
    found = [phrase for phrase in BANNED if phrase in text.lower()]
    found += [m.group(0) for m in COMMIT.finditer(text)]
    assert not found, f"{rel(page)} speaks of the project's history or tools: {found}"


def test_the_checks_catch_what_they_should():
    assert COMMIT.search("one before folding (commit bbdfc3a) and one with it")
    assert not COMMIT.search("train/0cdf5b5d0ce1_03.jpg (expected train_masks/0cdf5b5d0ce1_03_mask.gif)")
    assert contains_number("at 1.03–1.27 ms", "1.27") and not contains_number("12.7 and 1.275", "1.27")
    assert contains_number("1,833 job-seconds", "1,833") and not contains_number("11,833", "1,833")
    assert numbers("2.92× (95.9 against 32.8 images/s), 1,833 s, 96×144") == ["2.92", "95.9", "32.8", "1,833", "96", "144"]
    assert slug("80 real cars: `config/real-80.yaml`, the recipe run by run") == "80-real-cars-configreal-80yaml-the-recipe-run-by-run"
