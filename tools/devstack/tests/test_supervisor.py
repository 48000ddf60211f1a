"""The `zaphub-stack` supervisor as a real process, with stand-in services."""

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest
from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from zaphub_devstack.pytest_plugin import StackFactory, require_program
from zaphub_devstack.services import stack_services
from zaphub_devstack.settings import StackSettings
from zaphub_devstack.testing import Stack, alive

FAKE = [sys.executable, str(Path(__file__).with_name("fake_service.py"))]
SERVICES = {"api": [*FAKE, "api"], "worker-1": FAKE, "worker-2": FAKE}

pytestmark = pytest.mark.slow


async def test_a_service_killed_with_sigkill_is_started_again(run_stack: StackFactory) -> None:
    """kill -9 of a service: the supervisor starts a new process under the same name."""
    stack = await run_stack(services=SERVICES)
    old = stack.kill("worker-2")
    new = await stack.wait_restarted("worker-2", old)
    assert new != old
    assert stack.state().processes["worker-2"].restarts == 1


async def test_nats_killed_with_sigkill_comes_back_with_its_streams(run_stack: StackFactory) -> None:
    """kill -9 of nats-server: same URL, and JetStream still holds what was published."""
    stack = await run_stack(services=SERVICES)
    nc = await nats.connect(stack.nats_url)
    await nc.jetstream().add_stream(name="KEEP", subjects=["keep.>"])
    await nc.jetstream().publish("keep.it", b"x")
    await nc.close()

    old = stack.kill("nats")
    await stack.wait_restarted("nats", old)

    nc = await nats.connect(stack.nats_url)
    info = await nc.jetstream().stream_info("KEEP")
    await nc.close()
    assert info.state.messages == 1


async def test_services_get_the_stack_environment(run_stack: StackFactory) -> None:
    """Every instance is told its name and the transport; the API answers on the announced URL."""
    stack = await run_stack(services=SERVICES, ZAPHUB_TRANSPORT="sim")
    lines = [f"up as {name} transport=sim" for name in SERVICES]
    for _ in range(200):  # READY waits for the API only: a worker may print its line a moment later
        log = stack.log_path.read_text()
        if all(line in log for line in lines):
            break
        await asyncio.sleep(0.05)
    for line in lines:
        assert line in log
    assert f"ZAPHUB READY api={stack.api_url}" in log
    assert stack.state().ready
    assert stack.database_url.endswith("/zaphub")


async def test_sigterm_stops_everything_and_a_restart_keeps_the_admin_key(tmp_path: Path) -> None:
    """SIGTERM ends services and servers with exit 0; the next start reuses data dir and key."""
    stack = Stack(tmp_path / "data", services=SERVICES)
    await stack.start()
    key = stack.admin_key
    pids = stack.pids()
    assert await stack.stop() == 0
    assert not [name for name, pid in pids.items() if alive(pid)]

    again = Stack(tmp_path / "data", services=SERVICES)
    async with again:
        assert again.admin_key == key


async def test_a_second_stack_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """Two supervisors on one data dir would fight over the servers: the second one exits."""
    async with Stack(tmp_path / "data", services=SERVICES):
        second = Stack(tmp_path / "data", services=SERVICES)
        with pytest.raises(RuntimeError, match="another zaphub-stack is running"):
            await second.start()


async def test_two_stacks_with_their_own_data_dirs_run_side_by_side(run_stack: StackFactory) -> None:
    """Separate data dirs and API ports: both stacks come up, on separate NATS and PostgreSQL."""
    first = await run_stack(services=SERVICES)
    second = await run_stack(services=SERVICES)
    assert first.api_url != second.api_url
    assert first.nats_url != second.nats_url
    assert first.database_url != second.database_url


async def test_a_clustered_stack_runs_three_nats_nodes_and_api_replicas(run_stack: StackFactory) -> None:
    """ZAPHUB_NATS_CLUSTER=3: stack.json lists nodes n1..n3, services get all three URLs and R3, each
    API instance answers on its own port, and a killed node is started again on its URL."""
    services = {**SERVICES, "api-2": [*FAKE, "api"]}
    stack = await run_stack(services=services, ZAPHUB_NATS_CLUSTER="3")
    nodes = stack.nats_nodes()
    assert [node.name for node in nodes] == ["n1", "n2", "n3"]
    assert stack.nats_servers == [node.client_url for node in nodes]
    assert {f"nats-{node.name}" for node in nodes} <= set(stack.pids())
    assert len(stack.api_urls) == 2 and stack.api_urls[0] == stack.api_url
    async with httpx.AsyncClient(timeout=5) as http:
        for url in stack.api_urls:
            assert (await http.get(f"{url}/ready")).status_code == 200
    log = stack.log_path.read_text()
    assert f"api-2 nats={stack.nats_url}" in log and "worker-1 replicas=3" in log

    nc = await nats.connect(stack.nats_servers)
    js = nc.jetstream()
    await js.add_stream(name="KEEP", subjects=["keep.>"], num_replicas=3)
    await js.publish("keep.it", b"x")
    old = stack.kill("nats-n2")
    await stack.wait_restarted("nats-n2", old)
    info = await _stream_info_once_answered(js, "KEEP")
    await nc.close()
    assert info.state.messages == 1 and info.config.num_replicas == 3
    assert [node.client_url for node in stack.nats_nodes()] == stack.nats_servers


def test_api_replicas_are_named_and_counted_beside_the_workers() -> None:
    """ZAPHUB_API_REPLICAS=2 runs `api` and `api-2` beside the dispatchers, ratelimiters and hosts."""
    settings = StackSettings(api_replicas=2, dispatchers=2, ratelimiters=1, session_hosts=0)
    assert list(stack_services(settings)) == ["api", "api-2", "dispatcher-1", "dispatcher-2", "ratelimiter-1"]
    assert StackSettings(nats_cluster=3).replicas == 3 and StackSettings().replicas == 1


async def test_pgbouncer_fronts_postgres_and_a_held_server_stays_down(run_stack: StackFactory) -> None:
    """ZAPHUB_DB_POOLER=pgbouncer: services get PgBouncer's URL. `Stack.down` keeps PostgreSQL down
    for the block (queries fail meanwhile), then the supervisor starts it again."""
    require_program("pgbouncer", "pgbouncer")
    stack = await run_stack(services=SERVICES, ZAPHUB_DB_POOLER="pgbouncer")
    assert "pgbouncer" in stack.pids()
    url = stack.database_url
    assert url.endswith("/zaphub") and f":{stack.pids()['postgres']}" not in url
    async with stack.down("postgres", signal.SIGINT):
        await asyncio.sleep(1.5)  # longer than the supervisor's restart delay
        assert "held down" in stack.log_path.read_text()
        with pytest.raises((OSError, asyncpg.PostgresError)):
            await _select_one(url)
    for _ in range(50):  # PgBouncer retries a failed server login after a second (server_login_retry)
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            assert await _select_one(url) == 1
            return
        await asyncio.sleep(0.2)
    raise AssertionError("PostgreSQL not reachable through PgBouncer again")


async def _stream_info_once_answered(js: JetStreamContext, stream: str) -> StreamInfo:
    """A client whose node was killed reconnects to another, and a cluster that lost a node may hold
    a meta-leader election meanwhile: JetStream API requests time out until both are over."""
    for _ in range(20):
        with contextlib.suppress(
            nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError
        ):
            return await js.stream_info(stream)
        await asyncio.sleep(0.5)
    raise AssertionError(f"no answer to STREAM.INFO {stream} after the node came back")


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url, statement_cache_size=0, timeout=5)
    try:
        return int(await conn.fetchval("SELECT 1", timeout=5))
    finally:
        await conn.close()
