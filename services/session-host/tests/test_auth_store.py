"""auth_data at rest: the S3 backend against a real S3-compatible server (moto), AES-GCM sealing that
refuses tampered or swapped objects, and the host ops that delete a session's auth_data."""

import base64
import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from minio import Minio
from moto.server import ThreadedMotoServer

from zaphub_contracts import subjects
from zaphub_contracts.host import HostOk, SessionControl
from zaphub_devstack.ports import free_port
from zaphub_session_host.auth_store import (
    AuthCipher,
    AuthDataRefused,
    EncryptedAuthStore,
    LocalDirAuthStore,
    S3AuthStore,
    auth_key,
)

from .conftest import Client_, HostFactory, eventually

ACCESS, SECRET = "testing", "testing-secret"
IDENTITY = b'{"transport":"sim","jid":"5511900000000@s.whatsapp.net"}'


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the session; each test uses its own bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket() -> str:
    return f"auth-{uuid4().hex[:12]}"


@pytest.fixture
def raw_s3(s3_endpoint: str) -> Minio:
    return Minio(s3_endpoint, ACCESS, SECRET, secure=False, region="us-east-1")


@pytest.fixture
def key_b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
async def s3_store(s3_endpoint: str, bucket: str, key_b64: str) -> EncryptedAuthStore:
    backend = S3AuthStore.connect(s3_endpoint, bucket, ACCESS, SECRET, secure=False, region="us-east-1")
    store = EncryptedAuthStore(backend, AuthCipher.from_base64(key_b64))
    await store.ping()  # creates the bucket
    return store


def s3_settings(s3_endpoint: str, bucket: str, key_b64: str) -> dict[str, Any]:
    return {
        "auth_store": "s3",
        "s3_endpoint": s3_endpoint,
        "s3_bucket": bucket,
        "s3_access_key": ACCESS,
        "s3_secret_key": SECRET,
        "s3_secure": False,
        "s3_region": "us-east-1",
        "auth_key": key_b64,
    }


def read_object(raw: Minio, bucket: str, key: str) -> bytes:
    response = raw.get_object(bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def write_object(raw: Minio, bucket: str, key: str, data: bytes) -> None:
    raw.put_object(bucket, key, io.BytesIO(data), len(data))


async def test_s3_store_keeps_only_ciphertext_and_deletes(
    s3_store: EncryptedAuthStore, raw_s3: Minio, bucket: str
) -> None:
    """auth_data saved to S3 sits under `<tenant>/<session>/auth.bin` encrypted, loads back, and is gone
    after delete."""
    tenant, session = uuid4(), uuid4()
    assert await s3_store.load(tenant, session) is None
    await s3_store.save(tenant, session, IDENTITY)
    stored = read_object(raw_s3, bucket, f"{tenant}/{session}/auth.bin")
    assert IDENTITY not in stored and b"whatsapp" not in stored
    assert stored.startswith(b"ZHA\x01")
    assert await s3_store.load(tenant, session) == IDENTITY
    await s3_store.save(tenant, session, IDENTITY)
    assert read_object(raw_s3, bucket, auth_key(tenant, session)) != stored  # a fresh nonce per write
    await s3_store.delete(tenant, session)
    assert await s3_store.load(tenant, session) is None


async def test_tampered_s3_object_is_refused(
    s3_store: EncryptedAuthStore, raw_s3: Minio, bucket: str
) -> None:
    """Flipping one byte of a stored object makes loading it fail with AuthDataRefused."""
    tenant, session = uuid4(), uuid4()
    await s3_store.save(tenant, session, IDENTITY)
    blob = bytearray(read_object(raw_s3, bucket, auth_key(tenant, session)))
    blob[-5] ^= 0x01
    write_object(raw_s3, bucket, auth_key(tenant, session), bytes(blob))
    with pytest.raises(AuthDataRefused, match="altered"):
        await s3_store.load(tenant, session)


async def test_object_copied_from_another_session_is_refused(
    s3_store: EncryptedAuthStore, raw_s3: Minio, bucket: str
) -> None:
    """Another session's (or tenant's) valid object copied over a session's key does not open for it."""
    tenant, victim, intruder = uuid4(), uuid4(), uuid4()
    await s3_store.save(tenant, victim, b"victim identity")
    await s3_store.save(tenant, intruder, b"intruder identity")
    write_object(
        raw_s3, bucket, auth_key(tenant, victim), read_object(raw_s3, bucket, auth_key(tenant, intruder))
    )
    with pytest.raises(AuthDataRefused):
        await s3_store.load(tenant, victim)
    other_tenant = uuid4()
    write_object(
        raw_s3,
        bucket,
        auth_key(other_tenant, intruder),
        read_object(raw_s3, bucket, auth_key(tenant, intruder)),
    )
    with pytest.raises(AuthDataRefused):
        await s3_store.load(other_tenant, intruder)


async def test_local_store_encrypts_and_refuses_another_key(tmp_path: Path, key_b64: str) -> None:
    """The local directory holds ciphertext too, and an object sealed under another key is refused by name."""
    tenant, session = uuid4(), uuid4()
    store = EncryptedAuthStore(LocalDirAuthStore(tmp_path), AuthCipher.from_base64(key_b64))
    await store.save(tenant, session, IDENTITY)
    assert IDENTITY not in (tmp_path / auth_key(tenant, session)).read_bytes()
    other = EncryptedAuthStore(LocalDirAuthStore(tmp_path), AuthCipher(secrets.token_bytes(32)))
    with pytest.raises(AuthDataRefused, match="another ZAPHUB_AUTH_KEY"):
        await other.load(tenant, session)
    (tmp_path / auth_key(tenant, session)).write_bytes(IDENTITY)  # plaintext written behind our back
    with pytest.raises(AuthDataRefused, match="unknown format"):
        await store.load(tenant, session)


async def connected_jid(client: Client_, session: UUID, count: int = 1) -> str:
    await eventually(lambda: len(client.events.of("session.connected", session)) >= count)
    return str(client.events.of("session.connected", session)[-1].data.jid)


async def test_session_moves_between_hosts_through_s3(
    client: Client_, start_host: HostFactory, s3_endpoint: str, bucket: str, key_b64: str
) -> None:
    """With the S3 store, a session paired on one host resumes on another with the same JID and no QR."""
    tenant, session = uuid4(), uuid4()
    first = await start_host("s3-a", **s3_settings(s3_endpoint, bucket, key_b64))
    await client.desire(tenant, session)
    jid = await connected_jid(client, session)
    await first.stop()
    await start_host("s3-b", **s3_settings(s3_endpoint, bucket, key_b64))
    assert await connected_jid(client, session, count=2) == jid
    assert client.events.of("session.connected", session)[-1].data.host_id == "s3-b"
    assert len(client.events.of("session.qr", session)) == 1


async def test_tampered_auth_data_fails_the_session_instead_of_re_pairing(
    client: Client_, start_host: HostFactory, s3_endpoint: str, bucket: str, key_b64: str, raw_s3: Minio
) -> None:
    """A session whose stored auth_data was altered fails with reason auth_data_refused: no QR, no new
    pairing, and the object is left as it was for an operator to look at."""
    tenant, session = uuid4(), uuid4()
    first = await start_host("t-a", **s3_settings(s3_endpoint, bucket, key_b64))
    await client.desire(tenant, session)
    await connected_jid(client, session)
    await first.stop()
    blob = bytearray(read_object(raw_s3, bucket, auth_key(tenant, session)))
    blob[-1] ^= 0x80
    write_object(raw_s3, bucket, auth_key(tenant, session), bytes(blob))

    await start_host("t-b", **s3_settings(s3_endpoint, bucket, key_b64))
    failed = await eventually(lambda: client.events.of("session.failed", session))
    assert failed[0].data.reason == "auth_data_refused" and "altered" in failed[0].data.detail
    assert len(client.events.of("session.qr", session)) == 1
    assert len(client.events.of("session.connected", session)) == 1
    assert read_object(raw_s3, bucket, auth_key(tenant, session)) == bytes(blob)


async def test_delete_op_stops_the_session_and_deletes_its_auth_data(
    client: Client_, start_host: HostFactory, tmp_path: Path
) -> None:
    """The owner's delete op answers only once the auth_data is gone, then disconnects the session."""
    tenant, session = uuid4(), uuid4()
    await start_host()
    await client.desire(tenant, session)
    await connected_jid(client, session)
    stored = tmp_path / "data" / "auth" / auth_key(tenant, session)
    await eventually(stored.exists)
    await client.undesire(tenant, session)  # what the dispatcher does first
    reply = await client.request(session, "delete", SessionControl(tenant_id=tenant, session_id=session))
    assert isinstance(reply, HostOk), reply
    assert not stored.exists()
    await eventually(lambda: client.events.of("session.disconnected", session))
    assert not stored.exists()  # the stop did not write it back


async def test_any_host_deletes_auth_data_of_a_session_nobody_runs(
    client: Client_, start_host: HostFactory, tmp_path: Path
) -> None:
    """`host.any.delete` deletes the auth_data of a session no host holds (it was stopped earlier)."""
    tenant, session = uuid4(), uuid4()
    await start_host()
    await client.desire(tenant, session)
    await connected_jid(client, session)
    stored = tmp_path / "data" / "auth" / auth_key(tenant, session)
    await eventually(stored.exists)  # saved in the background: connected can be seen first
    await client.undesire(tenant, session)
    await eventually(lambda: client.events.of("session.disconnected", session))
    assert stored.exists()  # a stop keeps the identity
    body = SessionControl(tenant_id=tenant, session_id=session)
    reply = await client.bus.request(subjects.host_any("delete"), body, timeout=5)
    assert b'"ok"' in reply.data
    assert not stored.exists()
