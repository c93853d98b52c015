"""The web inbox: the page and its assets, served by the inbox application beside its API.

One HTML page (``/``) and its scripts and styles (``/assets/...``), all shipped inside the
package (no network at run time, no CDN). The page talks only to the API under ``/api`` with
the session cookie and its CSRF header; it renders every value as text, never as markup, and
its Content-Security-Policy allows scripts, styles and requests from the inbox's own origin
alone.
"""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["WEB_DIR", "install_web_inbox"]

WEB_DIR = Path(str(files("sdk.inbox") / "web"))
"""Where the page and its assets live in the installed package."""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _page_template() -> str:
    return (WEB_DIR / "index.html").read_text(encoding="utf-8")


def install_web_inbox(app: FastAPI) -> None:
    """Serve the web inbox at ``/`` of ``app`` and its assets under ``/assets``.

    The page's links are relative to where the application is mounted (its ``root_path``), so
    ``app.mount("/inbox", create_inbox_app(...))`` serves it at ``/inbox/``.
    """

    @app.get("/", include_in_schema=False)
    async def web_inbox(request: Request) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        page = _page_template().replace("{{BASE}}", html.escape(base, quote=True))
        return HTMLResponse(page, headers=_SECURITY_HEADERS)

    app.mount("/assets", StaticFiles(directory=WEB_DIR), name="web-inbox-assets")
