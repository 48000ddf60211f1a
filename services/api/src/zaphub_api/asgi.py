"""The ASGI application factory the HTTP server loads: settings are read when it is called."""

from litestar import Litestar

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings
from zaphub_runtime.logs import setup_logging
from zaphub_runtime.telemetry import setup_tracing


def create() -> Litestar:
    """Runs in each server worker process, so logging and tracing are set up here."""
    settings = ApiSettings()
    setup_logging(settings.log_level, settings.log_format)
    provider = setup_tracing("api")
    app = create_app(settings)
    app.on_shutdown.append(provider.shutdown)  # flush the last batch of spans
    return app
