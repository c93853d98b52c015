"""The web inbox's files: all shipped in the package, none reaching outside the inbox's origin."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

from sdk.inbox._web import WEB_DIR

REPO = Path(__file__).resolve().parents[2]


def test_every_web_file_is_package_data() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "sdk.inbox"
    ]
    files = [p.relative_to(WEB_DIR.parent).as_posix() for p in WEB_DIR.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not missing, f"not in package-data, so not installed: {missing}"


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for path in WEB_DIR.rglob("*"):
        if path.suffix not in (".html", ".js", ".css"):
            continue
        # The SVG namespace is a name, never fetched.
        text = path.read_text().replace('"http://www.w3.org/2000/svg"', '""')
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), path.name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, f"{path.name} parses markup"
    page = (WEB_DIR / "index.html").read_text()
    assert "<script>" not in page, "inline script: the Content-Security-Policy forbids it"
    for url in re.findall(r'(?:src|href)="([^"#{]+)"', page):
        assert url.startswith("assets/") and (WEB_DIR / url.removeprefix("assets/")).is_file(), url
