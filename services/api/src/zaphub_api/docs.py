"""The interactive API docs, Scalar at /docs and Swagger UI at /docs/swagger, served without internet.

Litestar's render plugins load their scripts, styles and icon from public CDNs (Scalar an unpinned
`@latest`, on the page where users paste API keys). Here every asset is a pinned copy in
docs_assets/ (versions and licences in its README), served by the API itself under /docs/static.
"""

from pathlib import Path
from typing import Any

from litestar import Router
from litestar.openapi.plugins import OpenAPIRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/static"
ASSETS_DIR = Path(__file__).parent / "docs_assets"

# An empty icon: the default is an image on a CDN, and with no icon at all the browser asks for one.
NO_FAVICON = "<link rel='icon' href='data:,'>"

# Scalar's defaults reach its own services: fonts from its CDN (fonts.css serves them instead), a
# request proxy in some layouts (it would see the API keys users paste), telemetry, its AI agent and
# MCP offers, developer tools that share the document, and a sidebar link handing the document's URL
# to its hosted client. All off, so the page talks to this API only; "Test Request" stays.
SCALAR_OPTIONS: dict[str, Any] = {
    "withDefaultFonts": False,
    "proxyUrl": "",
    "telemetry": False,
    "agent": {"disabled": True},
    "mcp": {"disabled": True},
    "showDeveloperTools": "never",
    "hideClientButton": True,
}


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """Scalar at the docs root (and /scalar), Swagger UI at /swagger, on the assets of `assets_router()`."""
    return [
        ScalarRenderPlugin(
            js_url=f"{ASSETS_PATH}/scalar/standalone.js",
            css_url=f"{ASSETS_PATH}/scalar/fonts.css",
            options=SCALAR_OPTIONS,
            favicon=NO_FAVICON,
        ),
        SwaggerRenderPlugin(
            path="/swagger",
            js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
            css_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-standalone-preset.js",
            favicon=NO_FAVICON,
        ),
    ]


def assets_router() -> Router:
    """The files of docs_assets/ under /docs/static, outside the OpenAPI document."""
    return create_static_files_router(
        path=ASSETS_PATH, directories=[ASSETS_DIR], name="docs-assets", include_in_schema=False
    )
