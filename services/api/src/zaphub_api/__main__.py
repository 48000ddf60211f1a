"""Entry point `zaphub-api`: settings from the environment, then the HTTP server."""

import secrets
import sys

import uvicorn

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings
from zaphub_runtime.logs import setup_logging
from zaphub_runtime.telemetry import setup_tracing


def main() -> None:
    settings = ApiSettings()
    setup_logging(settings.log_level, settings.log_format)
    setup_tracing("api")
    if not settings.admin_key:
        settings = settings.model_copy(update={"admin_key": "zh_admin_" + secrets.token_urlsafe(32)})
        # Printed once, to the console only: it is not stored anywhere.
        print(f"ZAPHUB_ADMIN_KEY was unset; admin key for this run: {settings.admin_key}", file=sys.stderr)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
