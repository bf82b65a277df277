"""GET /api/docs: Swagger UI over /api/openapi.json, from files served here (vendored from npm
by scripts/vendor-swagger-ui.sh), so that it works with no network and no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from convohook import __version__

ASSETS = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_URL = "/api/docs/assets"
OPENAPI_URL = "/api/openapi.json"


async def docs_page(request: Request) -> Response:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"convohook {__version__}: API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        # No validator badge: it would send the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )


routes: list[BaseRoute] = [
    Route("/api/docs", docs_page, methods=["GET"]),
    Mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="api-docs-assets"),
]
