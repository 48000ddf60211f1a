"""KvMirror on a real NATS KV bucket: current values decoded, unreadable ones kept out, deletes removed."""

import asyncio
from collections.abc import Callable

import nats
from pydantic import BaseModel

from zaphub_runtime.kv_watch import KvMirror


class Host(BaseModel):
    name: str
    capacity: int


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not seen: {what}")


async def test_the_mirror_keeps_the_last_readable_value_and_drops_deleted_keys(nats_url: str) -> None:
    """A value that does not decode (a newer writer's) leaves the previous one in place; a delete
    removes the key and tells `on_change` with None; a later readable value replaces the old one."""
    nc = await nats.connect(nats_url)
    try:
        kv = await nc.jetstream().create_key_value(bucket="hosts", history=1)
        await kv.put("a", Host(name="a", capacity=10).model_dump_json().encode())
        await kv.put("b", Host(name="b", capacity=20).model_dump_json().encode())
        changes: list[tuple[str, Host | None]] = []
        mirror = KvMirror(kv, Host, on_change=lambda key, value: changes.append((key, value)))
        await mirror.start()
        assert mirror.get("a") == Host(name="a", capacity=10) and mirror.get("b") is not None

        await kv.put("a", b'{"name": "a", "capacity": "lots"}')
        await kv.put("b", b"not json")
        await kv.delete("b")
        await _until(lambda: mirror.get("b") is None, "b deleted")
        assert mirror.get("a") == Host(name="a", capacity=10)
        assert ("b", None) in changes and ("a", None) not in changes

        await kv.put("a", Host(name="a", capacity=11).model_dump_json().encode())
        await _until(lambda: mirror.get("a") == Host(name="a", capacity=11), "a's new value")
        assert set(mirror.entries) == {"a"}
        await mirror.stop()
    finally:
        await nc.close()
