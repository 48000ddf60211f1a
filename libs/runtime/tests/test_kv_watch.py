"""BucketWatch on a 3-node JetStream cluster: deletes its watch never saw are healed by the resync."""

import asyncio
from pathlib import Path

import nats
import pytest

from zaphub_devstack.nats import NatsCluster
from zaphub_runtime.kv_watch import BucketWatch

pytestmark = pytest.mark.slow


async def test_keys_that_expire_while_the_watchs_node_is_down_leave_the_mirror(tmp_path: Path) -> None:
    """The node holding the watch's consumer dies while keys expire (their TTL markers live a second):
    the watch never sees those deletes, and its next snapshot drops the keys all the same."""
    async with NatsCluster(tmp_path / "nats", size=3) as cluster:
        nc = await nats.connect(cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        try:
            js = nc.jetstream()
            kv = await js.create_key_value(bucket="leases", history=1, replicas=3, limit_marker_ttl=1.0)
            mirror: dict[str, bytes] = {}

            def apply(key: str, value: bytes | None, revision: int) -> None:
                if value is None:
                    mirror.pop(key, None)
                else:
                    mirror[key] = value

            watch = BucketWatch(kv, apply, "leases", resync=2.0)
            await watch.start()
            for i in range(10):
                await js.publish(f"$KV.leases.k{i}", b"held", msg_ttl=2)
            await asyncio.sleep(0.5)
            assert len(mirror) == 10
            [consumer] = await js.consumers_info("KV_leases")
            assert consumer.cluster is not None and consumer.cluster.leader
            await cluster.node(consumer.cluster.leader).kill()
            for _ in range(100):
                if not mirror:
                    break
                await asyncio.sleep(0.1)
            assert not mirror, f"{len(mirror)} expired keys still mirrored"
            await watch.stop()
        finally:
            await nc.close()
