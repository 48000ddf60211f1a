"""Real WhatsApp through neonize (whatsmeow): not wired yet, this stub refuses to start.

The coming implementation keeps the `Transport`/`Connection` shape: one `NewAClient` per session
(its own SQLite store file, seeded from and saved back to the AuthStore as auth_data), event handlers
registered before `connect()` and mapped onto `ConnectionEvents`, `send` returning the WhatsApp id.
"""

from uuid import UUID

from zaphub_session_host.transport.base import Connection, ConnectionEvents, Transport, TransportUnavailable


class NeonizeTransport(Transport):
    name = "neonize"

    async def start(self) -> None:
        raise TransportUnavailable(
            "the neonize transport is not implemented yet; run with ZAPHUB_TRANSPORT=sim for the simulator"
        )

    def open(
        self, tenant_id: UUID, session_id: UUID, auth_data: bytes | None, events: ConnectionEvents
    ) -> Connection:
        raise TransportUnavailable("the neonize transport is not implemented yet; use ZAPHUB_TRANSPORT=sim")
