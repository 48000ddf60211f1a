"""The dashboard at /ui: Jinja pages with htmx swaps, served by the API process and using only its public
REST API and event stream, with the signed-in key (see docs/dashboard.md).

`create_app` wires it with one hook, `install(settings, throttle)`, which adds the /ui router, the template
engine and the lifespan of the dashboard's HTTP client to the app.
"""

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from zaphub_api.auth import FailureThrottle
from zaphub_api.settings import ApiSettings
from zaphub_api.ui import render
from zaphub_api.ui.api import TIMEOUT, own_base_url
from zaphub_api.ui.auth import PUBLIC, Dashboard, UiSessions, provide_signed, signed_in_only
from zaphub_api.ui.routes.admin import AdminPages
from zaphub_api.ui.routes.conversations import ConversationPages
from zaphub_api.ui.routes.events import EventStream
from zaphub_api.ui.routes.messages import MessagePages
from zaphub_api.ui.routes.sessions import SessionPages
from zaphub_api.ui.routes.signin import SignInPages
from zaphub_api.ui.routes.usage import UsagePage
from zaphub_api.ui.routes.webhooks import WebhookPages

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def router() -> Router:
    return Router(
        path="/ui",
        route_handlers=[
            SignInPages,
            SessionPages,
            ConversationPages,
            MessagePages,
            WebhookPages,
            UsagePage,
            AdminPages,
            EventStream,
            create_static_files_router(
                path="/static", directories=[STATIC], name="ui-static", opt={PUBLIC: True}
            ),
        ],
        guards=[signed_in_only],
        dependencies={"signed": Provide(provide_signed)},
        exception_handlers=render.EXCEPTION_HANDLERS,
        after_request=render.after_request,
        include_in_schema=False,
    )


def _filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(when=render.when, phone=render.phone)
    engine.engine.globals.update(percent=render.percent, level=render.level, rank=render.rank)


def install(settings: ApiSettings, throttle: FailureThrottle) -> Callable[[AppConfig], AppConfig]:
    """The `on_app_init` hook that adds the dashboard to the API app; wrong keys at its sign-in form
    count in the API's own `throttle`, by the browser's address."""
    base_url = own_base_url(settings)
    # httpx logs each request at INFO: for the dashboard's calls to this very API, that is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # trust_env=False: calls to this very process never go through an HTTP(S)_PROXY.
        async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, trust_env=False) as http:
            app.state.dashboard = Dashboard(sessions=UiSessions(), http=http, throttle=throttle)
            yield

    def on_app_init(app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(router())
        app_config.template_config = TemplateConfig(
            directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_filters
        )
        app_config.lifespan.append(lifespan)
        return app_config

    return on_app_init
