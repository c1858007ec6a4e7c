"""The README and docs/ point at things that exist: every relative link and every repository path
they name in backticks."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE_PATH = re.compile(r"`((?:taxi_platform|tests|dbt_project|benchmarks|gx)/[\w./-]+\.(?:py|sql|yml|yaml|md|txt))`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_named_path_in_the_page_exists(page):
    text = page.read_text()
    missing = [target for target in LINK.findall(text)
               if "://" not in target and not (page.parent / target).exists()]
    missing += [path for path in CODE_PATH.findall(text) if not (ROOT / path).exists()]
    assert missing == []


def test_the_readme_is_a_five_minute_read():
    words = len((ROOT / "README.md").read_text().split())
    assert words < 900, f"README.md has {words} words: move details to docs/"
