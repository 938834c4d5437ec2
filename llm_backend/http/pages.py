"""The service's own web pages: interactive API docs at ``/docs`` (Swagger UI), the
playground at ``/playground`` (``/`` leads there) and the admin page at ``/admin`` (the
control plane: docs/ADMIN.md). Everything they load is served from here - Swagger UI's
assets from the ``swagger-ui-bundle`` package (Connexion's ``swagger-ui`` extra), the
playground's from ``http/playground/``, the admin page's from ``http/admin_page/``, the script
both load from ``http/page_common/`` - so they work without internet access and no third party
learns who reads them.

The pages are public, like the documents they show; their calls to the API use the key
typed into them (the admin page's: an admin key, or every call answers 401/403).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from functools import cache
from pathlib import Path

from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .middleware import HttpMiddleware

PLAYGROUND_DIR = Path(__file__).parent / "playground"
ADMIN_PAGE_DIR = Path(__file__).parent / "admin_page"
# The script both pages load first (headers(), showError()...), under each page's own path.
COMMON_SCRIPT = Path(__file__).parent / "page_common" / "common.js"
# Swagger UI's files the docs page loads; nothing else of the bundle is served.
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png")

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>llm-backend API</title>
<link rel="icon" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<style>body {{ margin: 0 }} .topbar-wrapper .link {{ visibility: hidden }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  urls: {urls},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
}});
</script>
</body>
</html>
"""


class Pages(HttpMiddleware):
    """Answers GET for the pages and their files; anything else passes on.

    ``documents`` maps a file name under ``/docs/`` to a function building that document's
    JSON (built on the first visit, then kept) and its title in the docs' selector.
    """

    def __init__(self, app: ASGIApp, documents: dict[str, tuple[str, Callable[[], bytes]]], swagger_dir: Path) -> None:
        super().__init__(app)
        self.documents = {name: (title, cache(build)) for name, (title, build) in documents.items()}
        urls = [{"name": title, "url": f"/docs/{name}"} for name, (title, _) in documents.items()]
        self.docs_page = DOCS_PAGE.format(urls=json.dumps(urls))
        self.files = {f"/docs/assets/{name}": swagger_dir / name for name in SWAGGER_ASSETS}
        self.files |= {f"/playground/{path.name}": path for path in PLAYGROUND_DIR.iterdir() if path.is_file()}
        self.files |= {f"/admin/assets/{path.name}": path for path in ADMIN_PAGE_DIR.iterdir() if path.suffix == ".js"}
        self.files |= {"/playground/common.js": COMMON_SCRIPT, "/admin/assets/common.js": COMMON_SCRIPT}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self._page(scope["path"]) if scope["method"] in ("GET", "HEAD") else None
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _page(self, path: str) -> Response | None:
        if path == "/":
            return RedirectResponse("/playground", status_code=307)
        if path in ("/docs", "/docs/"):
            return HTMLResponse(self.docs_page)
        if path in ("/playground", "/playground/"):
            return FileResponse(PLAYGROUND_DIR / "index.html", media_type="text/html")
        if path in ("/admin", "/admin/"):
            return FileResponse(ADMIN_PAGE_DIR / "index.html", media_type="text/html")
        if path.startswith("/docs/") and path[len("/docs/") :] in self.documents:
            return Response(self.documents[path[len("/docs/") :]][1](), media_type="application/json")
        file = self.files.get(path)
        if file is not None:
            media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            return FileResponse(file, media_type=media_type, headers={"cache-control": "public, max-age=3600"})
        return None
