"""Admin route: the live session-hosts and their capacity."""

from litestar import Controller, get
from litestar.di import NamedDependency

from zaphub_api.auth import admin_only
from zaphub_api.errors import problem_responses
from zaphub_api.placement import Placement
from zaphub_contracts.sessions import HostInfo


class HostController(Controller):
    path = "/api/v1/hosts"
    tags = ["system"]
    guards = [admin_only]

    @get("/", summary="Live session-hosts (admin)", responses=problem_responses())
    async def hosts(self, placement: NamedDependency[Placement]) -> list[HostInfo]:
        return await placement.live_hosts()
