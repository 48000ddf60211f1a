"""The ASGI application factory the HTTP server loads: settings are read when it is called."""

import os
import signal

from litestar import Litestar

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings
from zaphub_runtime.process import start_process


def create() -> Litestar:
    """Runs in each server worker process, so logging and tracing are set up here."""
    settings = ApiSettings()
    provider = start_process("api", settings)
    app = create_app(settings, on_failure=stop_this_worker)
    app.on_shutdown.append(provider.shutdown)  # flush the last batch of spans
    return app


def stop_this_worker() -> None:
    """Stop as SIGTERM stops a granian worker: it stops serving and runs the lifespan's close. Its main
    process, seeing a worker exit that it did not stop, then stops the others and exits 1, for the
    supervisor to restart it."""
    os.kill(os.getpid(), signal.SIGTERM)
