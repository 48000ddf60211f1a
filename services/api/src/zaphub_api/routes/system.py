"""Liveness and readiness, for load balancers and supervisors (no key needed)."""

import asyncio

import asyncpg
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from pydantic import BaseModel

from zaphub_runtime.bus import Bus
from zaphub_runtime.lifecycle import Lifecycle


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


class SystemController(Controller):
    tags = ["system"]

    @get("/health", summary="Liveness: the process answers", security=[])
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        summary="Readiness: NATS and PostgreSQL reachable, background tasks running",
        security=[],
        responses={503: ResponseSpec(Readiness, description="A dependency is down", generate_examples=False)},
    )
    async def ready(
        self, bus: NamedDependency[Bus], pool: NamedDependency[asyncpg.Pool], life: NamedDependency[Lifecycle]
    ) -> Response[Readiness]:
        checks: dict[str, str] = {}
        checks["nats"] = "ok" if bus.nc.is_connected else "down"
        try:
            await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=2)
            checks["postgres"] = "ok"
        except (OSError, asyncpg.PostgresError, TimeoutError):
            checks["postgres"] = "down"
        if not life.healthy:
            # Shown only once one died: the process is then stopping, for its supervisor to restart it.
            checks["tasks"] = f"down: {life.failure} ended"
        ok = all(v == "ok" for v in checks.values())
        return Response(
            Readiness(status="ok" if ok else "unavailable", checks=checks), status_code=200 if ok else 503
        )
