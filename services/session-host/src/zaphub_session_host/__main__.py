"""Entry point: `zaphub-session-host` runs one host until SIGTERM/SIGINT, then drains; it exits 2 when
the transport or the auth store cannot be used here, and 70 when its reconciler died."""

import logging
import sys

from zaphub_runtime.service import serve
from zaphub_session_host.app import run
from zaphub_session_host.auth_store import AuthStoreError
from zaphub_session_host.settings import HostSettings
from zaphub_session_host.transport.base import TransportUnavailable

log = logging.getLogger("zaphub_session_host")


def main() -> None:
    try:
        serve("session-host", HostSettings(), run)
    except (TransportUnavailable, AuthStoreError) as exc:  # a setup to fix, not a crash: no traceback
        log.error(str(exc))
        sys.exit(2)


if __name__ == "__main__":
    main()
