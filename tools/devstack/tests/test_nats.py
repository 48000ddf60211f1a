"""EmbeddedNats and the NATS fixtures."""

from pathlib import Path

import nats
import pytest

from zaphub_devstack.nats import EmbeddedNats


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
