"""auth_data at rest: the S3 backend against a real S3-compatible server (moto), key-ring sealing that
refuses tampered, swapped or unknown-key objects, key rotation (legacy objects, re-encryption, hosts
moving to a new key), and the host ops that delete a session's auth_data."""

import base64
import hashlib
import io
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from minio import Minio
from moto.server import ThreadedMotoServer

from zaphub_contracts import subjects
from zaphub_contracts.host import HostOk, SessionControl
from zaphub_devstack.ports import free_port
from zaphub_runtime.keyring import KeyRing, SecretKey, key_id_of, single_key
from zaphub_session_host.auth_store import (
    AuthDataRefused,
    AuthKeyError,
    AuthSaver,
    EncryptedAuthStore,
    LocalDirAuthStore,
    S3AuthStore,
    auth_key,
    auth_key_ring,
)
from zaphub_session_host.settings import HostSettings

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
    store = EncryptedAuthStore(backend, KeyRing([single_key(key_b64)]))
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


def ring(*keys: tuple[str, str]) -> KeyRing:
    return KeyRing(SecretKey(key_id, base64.b64decode(b64)) for key_id, b64 in keys)


def new_b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def legacy_seal(key_b64: str, tenant_id: UUID, session_id: UUID, data: bytes) -> bytes:
    """What the pre-ring `AuthCipher.seal` wrote (format version 1), step for step."""
    key = base64.b64decode(key_b64)
    key_id = hashlib.sha256(b"zaphub-auth-key-id" + key).digest()[:4]
    nonce = secrets.token_bytes(12)
    header = struct.Struct(">3sB4s12s").pack(b"ZHA", 1, key_id, nonce)
    return header + AESGCM(key).encrypt(nonce, data, header + f"{tenant_id}/{session_id}".encode())


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
    assert stored.startswith(b"ZHA\x02")
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
    """The local directory holds ciphertext too, and an object sealed under a key the ring does not hold
    is refused by name, naming the key id."""
    tenant, session = uuid4(), uuid4()
    store = EncryptedAuthStore(LocalDirAuthStore(tmp_path), KeyRing([single_key(key_b64)]))
    await store.save(tenant, session, IDENTITY)
    assert IDENTITY not in (tmp_path / auth_key(tenant, session)).read_bytes()
    other = EncryptedAuthStore(LocalDirAuthStore(tmp_path), ring(("k9", new_b64())))
    with pytest.raises(
        AuthDataRefused, match=f"key id '{store.ring.current_id}', which is not in the key ring"
    ):
        await other.load(tenant, session)
    (tmp_path / auth_key(tenant, session)).write_bytes(IDENTITY)  # plaintext written behind our back
    with pytest.raises(AuthDataRefused, match="unknown format"):
        await store.load(tenant, session)


async def test_auth_data_of_the_pre_ring_format_loads_and_is_rewritten_by_the_next_save(
    tmp_path: Path, key_b64: str
) -> None:
    """An object the old single-key AuthCipher wrote opens with ZAPHUB_AUTH_KEY; the saver's next
    periodic save rewrites it under the current key although the identity did not change."""
    tenant, session = uuid4(), uuid4()
    (tmp_path / auth_key(tenant, session)).parent.mkdir(parents=True)
    (tmp_path / auth_key(tenant, session)).write_bytes(legacy_seal(key_b64, tenant, session, IDENTITY))
    new = new_b64()
    store = EncryptedAuthStore(LocalDirAuthStore(tmp_path), ring(("k2", new), ("k1", key_b64)))
    saver = AuthSaver(store)
    saver.start()
    try:
        assert await saver.load(tenant, session) == IDENTITY
        assert saver.put_if_changed(tenant, session, IDENTITY)  # outdated form: written anyway
        await saver.flush(5)
        assert not saver.put_if_changed(tenant, session, IDENTITY)  # now current: skipped again
    finally:
        await saver.close(5)
    assert (tmp_path / auth_key(tenant, session)).read_bytes().startswith(b"ZHA\x02\x02k2")
    assert (
        await EncryptedAuthStore(LocalDirAuthStore(tmp_path), ring(("k2", new))).load(tenant, session)
        == IDENTITY
    )


async def test_reencrypt_rewrites_every_object_under_the_current_key(
    s3_endpoint: str, bucket: str, raw_s3: Minio, key_b64: str
) -> None:
    """After a rotation, reencrypt rewrites the objects of the old key and of the legacy format, leaves
    current ones and ones that do not open as they are, and the old key can then be dropped."""
    backend = S3AuthStore.connect(s3_endpoint, bucket, ACCESS, SECRET, secure=False, region="us-east-1")
    await backend.ping()
    old, new = ("k1", key_b64), ("k2", new_b64())
    before = EncryptedAuthStore(backend, ring(old))
    tenant = uuid4()
    sessions = [uuid4() for _ in range(3)]
    for session in sessions[:2]:
        await before.save(tenant, session, IDENTITY + session.bytes)
    await backend.save(tenant, sessions[2], legacy_seal(key_b64, tenant, sessions[2], IDENTITY))
    current, broken = uuid4(), uuid4()
    rotated = EncryptedAuthStore(backend, ring(new, old))
    await rotated.save(tenant, current, IDENTITY)
    await backend.save(tenant, broken, b"not sealed")
    write_object(raw_s3, bucket, "stray/object.txt", b"ignored")

    done = await rotated.reencrypt()
    assert (done.rewritten, done.already_current, done.refused) == (3, 1, [auth_key(tenant, broken)])
    assert (await rotated.reencrypt()).rewritten == 0
    after = EncryptedAuthStore(backend, ring(new))
    for session in sessions[:2]:
        assert await after.load(tenant, session) == IDENTITY + session.bytes
    assert await after.load(tenant, sessions[2]) == IDENTITY
    assert read_object(raw_s3, bucket, auth_key(tenant, broken)) == b"not sealed"


def test_the_ring_comes_from_the_settings(tmp_path: Path, key_b64: str) -> None:
    """ZAPHUB_SECRET_KEYS first, ZAPHUB_AUTH_KEY after it; s3 needs one of them; a malformed one is an
    AuthKeyError (the host exits with its message); the local store falls back to its key file."""
    new = new_b64()
    both = auth_key_ring(
        HostSettings(data_dir=tmp_path, auth_store="s3", secret_keys=f"k2:{new}", auth_key=key_b64)
    )
    assert both.ids == ("k2", key_id_of(base64.b64decode(key_b64)))
    with pytest.raises(AuthKeyError, match="must be set with ZAPHUB_AUTH_STORE=s3"):
        auth_key_ring(HostSettings(data_dir=tmp_path, auth_store="s3"))
    with pytest.raises(AuthKeyError, match="ZAPHUB_SECRET_KEYS"):
        auth_key_ring(HostSettings(data_dir=tmp_path, auth_store="s3", secret_keys=new))
    local = auth_key_ring(HostSettings(data_dir=tmp_path))
    assert (tmp_path / "auth_key").exists()
    assert auth_key_ring(HostSettings(data_dir=tmp_path, secret_keys=f"k2:{new}")).ids == (
        "k2",
        local.current_id,
    )


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


async def test_hosts_move_to_a_new_key_and_drop_the_old_one(
    client: Client_, start_host: HostFactory, tmp_path: Path, key_b64: str
) -> None:
    """Rotation as the README tells it: a session paired under ZAPHUB_AUTH_KEY resumes on a host whose
    ring puts a new key first, which rewrites its auth_data under the new key; a host with only the new
    key then resumes it too, and one whose ring lost that key fails the session by name."""
    tenant, session = uuid4(), uuid4()
    new = new_b64()
    stored = tmp_path / "data" / "auth" / auth_key(tenant, session)
    first = await start_host("rot-a", auth_key=key_b64)
    await client.desire(tenant, session)
    jid = await connected_jid(client, session)
    await eventually(stored.exists)
    await first.stop()
    assert not stored.read_bytes().startswith(b"ZHA\x02\x02k2")

    second = await start_host("rot-b", secret_keys=f"k2:{new}", auth_key=key_b64, auth_save_interval=0.2)
    assert await connected_jid(client, session, count=2) == jid
    await eventually(lambda: stored.read_bytes().startswith(b"ZHA\x02\x02k2"))
    await second.stop()

    third = await start_host("rot-c", secret_keys=f"k2:{new}")
    assert await connected_jid(client, session, count=3) == jid
    await third.stop()
    assert len(client.events.of("session.qr", session)) == 1

    await start_host("rot-d", secret_keys=f"k3:{new_b64()}")
    failed = await eventually(lambda: client.events.of("session.failed", session))
    assert (
        failed[0].data.reason == "auth_data_refused"
        and "'k2', which is not in the key ring" in failed[0].data.detail
    )


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
