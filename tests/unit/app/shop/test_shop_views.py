"""The shop's static files: what is served, by which name, and how caches revalidate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.shop.views import STATIC_DIR, load_static, not_modified, static_files

DEMO = static_files(STATIC_DIR / "demo")
PAGES = sorted(name for name in DEMO if name.endswith(".html"))
# The snippet of the README, as a shop would paste it (here the collector is the page's host).
SNIPPET = '<script src="/v1/tracker.js" async></script>'


def test_the_demo_has_every_page_of_a_shop() -> None:
    assert PAGES == ["cart.html", "checkout.html", "index.html", "product.html", "search.html"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_loads_the_tracker_by_the_snippet_and_the_widget(name: str) -> None:
    html = DEMO[name].body.decode()
    assert html.count(SNIPPET) == 1
    assert '<script src="widget.js"></script>' in html
    assert '<script src="shop.js"></script>' in html
    # Only files that are served: no page refers to one the worker would answer 404.
    for ref in re.findall(r'(?:src|href)="([\w-]+\.\w+)', html):
        assert ref in DEMO, f"{name} refers to {ref}"


def test_only_servable_files_by_their_own_name(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("<p>hi</p>")
    (tmp_path / "notes.txt").write_text("private")
    (tmp_path / ".hidden.js").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.js").write_text("")
    files = static_files(tmp_path)
    assert list(files) == ["page.html"]
    assert files["page.html"].content_type == "text/html; charset=utf-8"


def test_the_etag_follows_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.js"
    path.write_text("one")
    first = load_static(path)
    assert load_static(path).etag == first.etag
    path.write_text("two")
    assert load_static(path).etag != first.etag


@pytest.mark.parametrize(
    ("if_none_match", "expected"),
    [
        (None, False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
        ("", False),
    ],
)
def test_not_modified(if_none_match: str | None, expected: bool) -> None:
    assert not_modified(if_none_match, '"abc"') is expected
