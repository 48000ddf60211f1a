"""The ASGI application factory the HTTP server loads: settings are read when it is called."""

from litestar import Litestar

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings
from zaphub_runtime.process import start_process


def create() -> Litestar:
    """Runs in each server worker process, so logging and tracing are set up here."""
    settings = ApiSettings()
    provider = start_process("api", settings)
    app = create_app(settings)
    app.on_shutdown.append(provider.shutdown)  # flush the last batch of spans
    return app
