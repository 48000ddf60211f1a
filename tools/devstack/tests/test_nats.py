"""EmbeddedNats, NatsCluster and the NATS fixtures."""

import asyncio
from pathlib import Path

import nats
import pytest

from zaphub_devstack.jetstream import local_streams, stream_leader
from zaphub_devstack.nats import EmbeddedNats, NatsCluster


async def test_jetstream_data_survives_kill_and_restart_on_the_same_port(tmp_path: Path) -> None:
    """A SIGKILLed server comes back on its URL with the stream and messages it had stored."""
    server = EmbeddedNats(tmp_path / "store")
    await server.start()
    try:
        url = server.url
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        await js.publish("keep.one", b"1")
        await nc.close()

        await server.kill()
        await server.start()

        assert server.url == url
        nc = await nats.connect(url)
        info = await nc.jetstream().stream_info("KEEP")
        await nc.close()
        assert info.state.messages == 1
    finally:
        await server.stop()


async def test_two_servers_run_side_by_side_on_their_own_ports(tmp_path: Path) -> None:
    """Free ports are picked per server, so stacks and tests never collide."""
    async with EmbeddedNats(tmp_path / "a") as a, EmbeddedNats(tmp_path / "b") as b:
        assert a.port != b.port


@pytest.mark.parametrize("round_", [1, 2])
async def test_nats_url_gives_each_test_an_empty_jetstream(nats_url: str, round_: int) -> None:
    """The same stream name can be created by every test: nothing is left from the one before."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    info = await js.account_info()
    await js.add_stream(name="SAME", subjects=["same.>"])
    await nc.close()
    assert info.streams == 0


async def test_session_nats_server_serves_jetstream(nats_server: EmbeddedNats) -> None:
    """The session-wide server is up with JetStream enabled."""
    nc = await nats.connect(nats_server.url)
    await nc.jetstream().account_info()
    await nc.close()


async def test_a_cluster_keeps_an_r3_stream_through_the_loss_of_its_leader(tmp_path: Path) -> None:
    """Three nodes form one JetStream cluster; with the stream's leader killed the others go on
    accepting, and the node started again catches up with what it missed."""
    async with NatsCluster(tmp_path / "nats", size=3) as cluster:
        assert [node.name for node in cluster.nodes] == ["n1", "n2", "n3"]
        nc = await nats.connect(cluster.urls)
        try:
            js = nc.jetstream()
            await js.add_stream(name="KEEP", subjects=["keep.>"], num_replicas=3)
            for i in range(10):
                await js.publish("keep.before", str(i).encode())
            leader = cluster.node(await stream_leader(nc, "KEEP"))
            await leader.kill()
            assert await stream_leader(nc, "KEEP") != leader.name
            for i in range(10):
                await js.publish("keep.after", str(i).encode(), timeout=10)
            await leader.start()
            await stream_leader(nc, "KEEP")  # the restarted node's return may hold a new election
            assert (await js.stream_info("KEEP")).state.messages == 20
        finally:
            await nc.close()

        held = 0
        for _ in range(100):
            local = await local_streams(leader.monitor_url)
            held = local["KEEP"].messages if "KEEP" in local else 0
            if held == 20:
                break
            await asyncio.sleep(0.1)
        assert held == 20, "the restarted node did not catch up"


async def test_a_single_node_cluster_is_a_plain_server(tmp_path: Path) -> None:
    """Size 1 runs one unclustered nats-server, as the stack always did."""
    async with NatsCluster(tmp_path / "nats") as cluster:
        assert not cluster.clustered and cluster.url == cluster.nodes[0].url
        nc = await nats.connect(cluster.urls)
        await nc.jetstream().account_info()
        await nc.close()
