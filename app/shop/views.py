"""The browser tracker (``GET /v1/tracker.js``, contract §4) and, with the ``demo`` setting,
the demo shop and its chat widget under ``/demo/``: static files shipped in this package,
read once at start-up."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faust.web import Request, Response, View

if TYPE_CHECKING:
    from app.runtime.faust_app import NudgeflowApp

__all__ = [
    "STATIC_DIR",
    "StaticFile",
    "attach_shop_views",
    "load_static",
    "not_modified",
    "static_files",
]

#: The tracker and, in ``demo/``, the demo shop.
STATIC_DIR = Path(__file__).resolve().parent / "static"
_TRACKER = STATIC_DIR / "tracker.js"
_DEMO_DIR = STATIC_DIR / "demo"

# Only these kinds of file are served; anything else in the folder stays private.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
# Sites embed the tracker on every page: browsers and CDNs may keep it five minutes, so a
# fix reaches every visitor within that long, and revalidate it with the ETag after.
_TRACKER_CACHE = "public, max-age=300"
# The demo is edited while it runs: always revalidated (a 304 costs nothing).
_DEMO_CACHE = "no-cache"
_NOT_FOUND = b'{"error": "not found"}'


@dataclass(slots=True, frozen=True)
class StaticFile:
    """One file served as it is: its bytes, media type and strong validator."""

    body: bytes
    content_type: str
    etag: str


def load_static(path: Path) -> StaticFile:
    """Read ``path`` and derive its media type (from the suffix) and its ETag (from the bytes).

    Examples
    --------
    >>> tracker = load_static(STATIC_DIR / "tracker.js")
    >>> tracker.content_type, tracker.etag.startswith('"') and tracker.etag.endswith('"')
    ('application/javascript; charset=utf-8', True)
    """
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:32]
    return StaticFile(body, _CONTENT_TYPES[path.suffix], f'"{digest}"')


def static_files(directory: Path) -> dict[str, StaticFile]:
    """The servable files directly in ``directory``, by file name.

    A request names a file by a key of this mapping, never by a path: nothing outside
    the folder, nothing in a sub-folder and no other kind of file can be asked for.

    Examples
    --------
    >>> files = static_files(STATIC_DIR / "demo")
    >>> "index.html" in files, any("/" in name for name in files)
    (True, False)
    """
    return {
        path.name: load_static(path)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.suffix in _CONTENT_TYPES and not path.name.startswith(".")
    }


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``etag`` (weak comparison, RFC 9110 §13.1.2).

    Examples
    --------
    >>> not_modified('"a1"', '"a1"'), not_modified('W/"a1", "b2"', '"a1"')
    (True, True)
    >>> not_modified("*", '"a1"')
    True
    >>> not_modified(None, '"a1"'), not_modified('"a2"', '"a1"')
    (False, False)
    """
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def attach_shop_views(app: NudgeflowApp) -> None:
    """Register ``GET /v1/tracker.js`` and, with ``settings.demo``, the demo shop under
    ``/demo/``. The files are read here: one missing from the package stops the worker at
    start-up, not at a visitor's first page."""
    tracker = load_static(_TRACKER)

    def serve(view: View, request: Request, file: StaticFile, cache_control: str) -> Response:
        headers = {
            "ETag": file.etag,
            "Cache-Control": cache_control,
            "X-Content-Type-Options": "nosniff",
        }
        if not_modified(request.headers.get("If-None-Match"), file.etag):
            return view.bytes(b"", status=304, headers=headers)
        # aiohttp refuses a charset in ``content_type``: the full header goes with the others.
        headers["Content-Type"] = file.content_type
        return view.bytes(file.body, headers=headers)

    @app.page("/v1/tracker.js")
    class TrackerScript(View):
        async def get(self, request: Request) -> Response:
            return serve(self, request, tracker, _TRACKER_CACHE)

    if not app.settings.demo:
        return
    demo = static_files(_DEMO_DIR)

    @app.page("/demo")
    class DemoRedirect(View):
        async def get(self, request: Request) -> Response:
            # Relative links in the pages resolve against /demo/, not against /.
            return self.bytes(b"", status=308, headers={"Location": "/demo/"})

    @app.page("/demo/")
    class DemoIndex(View):
        async def get(self, request: Request) -> Response:
            return serve(self, request, demo["index.html"], _DEMO_CACHE)

    @app.page("/demo/{file}")
    class DemoFile(View):
        async def get(self, request: Request, file: str) -> Response:
            found = demo.get(file)
            if found is None:
                return self.bytes(_NOT_FOUND, content_type="application/json", status=404)
            return serve(self, request, found, _DEMO_CACHE)
