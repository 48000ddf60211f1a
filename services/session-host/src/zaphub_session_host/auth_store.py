"""Where sessions' auth_data lives between connections and hosts, keyed `<tenant_id>/<session_id>/auth.bin`.

`AuthStore` is the interface. `LocalDirAuthStore` (a directory, the embedded stack's default) and
`S3AuthStore` (S3 or MinIO through the `minio` client) keep bytes; `EncryptedAuthStore` wraps either
and seals every object with the key ring (`zaphub_runtime.keyring`), binding it to its tenant and
session, so a tampered object, one copied over from another session or one whose key left the ring is
refused with `AuthDataRefused` instead of being loaded. `auth_key_ring` builds the ring from the
settings; `EncryptedAuthStore.reencrypt` rewrites every object under the current key after a rotation.
`AuthSaver` writes in the background so a transport callback never waits on storage: the latest
value of each session wins, and a value equal to the one last stored is not written again.
"""

import asyncio
import hashlib
import io
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from zaphub_runtime.keyring import (
    KeyRing,
    KeyRingConfigError,
    MalformedSecret,
    TamperedSecret,
    UnknownKeyId,
    ring_from_settings,
)
from zaphub_session_host.background import BackgroundWriter
from zaphub_session_host.settings import AuthStoreName, HostSettings

if TYPE_CHECKING:
    from minio import Minio

log = logging.getLogger(__name__)

AUTH_FILE = "auth.bin"


def auth_key(tenant_id: UUID, session_id: UUID) -> str:
    """The object key of a session's auth_data; tenants and sessions never share a prefix."""
    return f"{tenant_id}/{session_id}/{AUTH_FILE}"


def _parse_auth_key(key: str) -> tuple[UUID, UUID] | None:
    """The inverse of `auth_key`; None for anything else the backend holds."""
    parts = key.split("/")
    if len(parts) != 3 or parts[2] != AUTH_FILE:
        return None
    try:
        return UUID(parts[0]), UUID(parts[1])
    except ValueError:
        return None


class AuthStoreError(Exception):
    """The auth_data store could not be used."""


class AuthKeyError(AuthStoreError):
    """No key is configured where one is required, or `ZAPHUB_SECRET_KEYS`/`ZAPHUB_AUTH_KEY` is malformed."""


class AuthDataRefused(AuthStoreError):
    """A stored object failed authentication: tampered with, copied from another session, or sealed
    under a key not in the ring. It is never loaded; the session fails with this reason."""

    reason = "auth_data_refused"


class AuthStore(ABC):
    @abstractmethod
    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None: ...

    @abstractmethod
    async def save(self, tenant_id: UUID, session_id: UUID, data: bytes) -> None: ...

    @abstractmethod
    async def delete(self, tenant_id: UUID, session_id: UUID) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise when the store is unreachable (for readiness)."""

    @abstractmethod
    async def sessions(self) -> list[tuple[UUID, UUID]]:
        """(tenant, session) of every stored object."""

    def is_current(self, tenant_id: UUID, session_id: UUID) -> bool:
        """False when what `load` last returned for the session is stored in an outdated form (an old
        key), so the next save must write it even if it did not change."""
        return True


class LocalDirAuthStore(AuthStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, tenant_id: UUID, session_id: UUID) -> Path:
        return self.root / auth_key(tenant_id, session_id)

    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None:
        path = self._path(tenant_id, session_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def save(self, tenant_id: UUID, session_id: UUID, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(tenant_id, session_id), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Write aside and rename, so a crash never leaves half an identity behind.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    async def delete(self, tenant_id: UUID, session_id: UUID) -> None:
        await asyncio.to_thread(self._path(tenant_id, session_id).unlink, True)

    async def ping(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    def _list(self) -> list[tuple[UUID, UUID]]:
        found = (
            _parse_auth_key(p.relative_to(self.root).as_posix()) for p in self.root.glob(f"*/*/{AUTH_FILE}")
        )
        return [ids for ids in found if ids is not None]

    async def sessions(self) -> list[tuple[UUID, UUID]]:
        return await asyncio.to_thread(self._list)


class S3AuthStore(AuthStore):
    """auth_data as objects in one S3/MinIO bucket. The `minio` client blocks, so every call runs in a
    worker thread; its connection pool is shared by those threads. `minio` is imported on first use
    (it takes ~0.4 s), so hosts on the local store never pay for it."""

    CONTENT_TYPE = "application/octet-stream"

    def __init__(self, client: "Minio", bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def connect(
        cls,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        secure: bool,
        region: str | None = None,
    ) -> "S3AuthStore":
        from minio import Minio

        return cls(Minio(endpoint, access_key, secret_key, secure=secure, region=region), bucket)

    def _get(self, key: str) -> bytes | None:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as err:
            if err.code in ("NoSuchKey", "NoSuchObject"):
                return None
            raise
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None:
        return await asyncio.to_thread(self._get, auth_key(tenant_id, session_id))

    async def save(self, tenant_id: UUID, session_id: UUID, data: bytes) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            auth_key(tenant_id, session_id),
            io.BytesIO(data),
            len(data),
            content_type=self.CONTENT_TYPE,
        )

    async def delete(self, tenant_id: UUID, session_id: UUID) -> None:
        await asyncio.to_thread(self.client.remove_object, self.bucket, auth_key(tenant_id, session_id))

    def _ensure_bucket(self) -> None:
        from minio.error import S3Error

        if self.client.bucket_exists(self.bucket):
            return
        try:
            self.client.make_bucket(self.bucket)
        except S3Error as err:  # another host made it in between
            if err.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def ping(self) -> None:
        """Reach the server, and create the bucket on first use (a dev MinIO starts empty)."""
        await asyncio.to_thread(self._ensure_bucket)

    def _list(self) -> list[tuple[UUID, UUID]]:
        found = (
            _parse_auth_key(o.object_name or "")
            for o in self.client.list_objects(self.bucket, recursive=True)
        )
        return [ids for ids in found if ids is not None]

    async def sessions(self) -> list[tuple[UUID, UUID]]:
        return await asyncio.to_thread(self._list)


def _bound_to(tenant_id: UUID, session_id: UUID) -> bytes:
    # The associated data of a session's object; the format the pre-ring AuthCipher used too.
    return f"{tenant_id}/{session_id}".encode()


@dataclass
class Reencrypted:
    """What `EncryptedAuthStore.reencrypt` did, object by object."""

    rewritten: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0  # written by someone else while we worked: left to them
    refused: list[str] = field(default_factory=list)  # object keys that did not open, left as they are


class EncryptedAuthStore(AuthStore):
    """Seals on the way in and opens on the way out; the backend only ever sees ciphertext."""

    def __init__(self, backend: AuthStore, ring: KeyRing) -> None:
        self.backend = backend
        self.ring = ring
        self._outdated: set[tuple[UUID, UUID]] = set()

    def _open(self, tenant_id: UUID, session_id: UUID, blob: bytes) -> bytes:
        where = f"auth_data of session {session_id} (tenant {tenant_id})"
        try:
            return self.ring.decrypt(blob, _bound_to(tenant_id, session_id))
        except UnknownKeyId as exc:
            raise AuthDataRefused(
                f"{where} was sealed under key id {exc.key_id!r}, which is not in the key ring "
                "(ZAPHUB_SECRET_KEYS, ZAPHUB_AUTH_KEY)"
            ) from None
        except MalformedSecret:
            raise AuthDataRefused(
                f"{where} has an unknown format (not sealed by this version of ZapHub)"
            ) from None
        except TamperedSecret:
            raise AuthDataRefused(
                f"{where} failed authentication: it was altered, or belongs to another session"
            ) from None

    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None:
        blob = await self.backend.load(tenant_id, session_id)
        if blob is None:
            return None
        data = self._open(tenant_id, session_id, blob)
        if self.ring.is_current(blob):
            self._outdated.discard((tenant_id, session_id))
        else:
            self._outdated.add((tenant_id, session_id))
        return data

    async def save(self, tenant_id: UUID, session_id: UUID, data: bytes) -> None:
        await self.backend.save(
            tenant_id, session_id, self.ring.encrypt(data, _bound_to(tenant_id, session_id))
        )
        self._outdated.discard((tenant_id, session_id))

    async def delete(self, tenant_id: UUID, session_id: UUID) -> None:
        await self.backend.delete(tenant_id, session_id)
        self._outdated.discard((tenant_id, session_id))

    async def ping(self) -> None:
        await self.backend.ping()

    async def sessions(self) -> list[tuple[UUID, UUID]]:
        return await self.backend.sessions()

    def is_current(self, tenant_id: UUID, session_id: UUID) -> bool:
        return (tenant_id, session_id) not in self._outdated

    async def reencrypt(self) -> Reencrypted:
        """Rewrite every object not sealed with the ring's current key (after a rotation, before the old
        key is dropped). An object that does not open is counted and left alone. Run it once the hosts
        have run with the new ring for `ZAPHUB_AUTH_SAVE_INTERVAL`: they have then rewritten the sessions
        they hold, and this only writes sessions nobody runs (a host's concurrent save would otherwise
        race with it; one seen changing while we work is skipped)."""
        done = Reencrypted()
        for tenant_id, session_id in await self.backend.sessions():
            blob = await self.backend.load(tenant_id, session_id)
            if blob is None:
                continue
            if self.ring.is_current(blob):
                done.already_current += 1
                continue
            try:
                data = self._open(tenant_id, session_id, blob)
            except AuthDataRefused:
                done.refused.append(auth_key(tenant_id, session_id))
                continue
            sealed = self.ring.encrypt(data, _bound_to(tenant_id, session_id))
            if await self.backend.load(tenant_id, session_id) != blob:
                done.changed_meanwhile += 1
                continue
            await self.backend.save(tenant_id, session_id, sealed)
            done.rewritten += 1
        return done


def auth_key_ring(settings: HostSettings) -> KeyRing:
    """The ring of auth_data: `ZAPHUB_SECRET_KEYS`, then `ZAPHUB_AUTH_KEY`; with the local store, the key
    generated into `<data_dir>/auth_key` last (made when nothing is set: one machine, one data dir, so
    every host of the embedded stack shares it). Blocking (the key file): call it in a thread."""
    local = settings.auth_store is AuthStoreName.LOCAL
    lone = settings.auth_key.get_secret_value()
    if not local and not (settings.secret_keys.get_secret_value().strip() or lone.strip()):
        raise AuthKeyError(
            "ZAPHUB_SECRET_KEYS (or ZAPHUB_AUTH_KEY) must be set with ZAPHUB_AUTH_STORE=s3: every host "
            "needs the same keys to open the auth_data the others saved "
            "(generate one: echo k1:$(openssl rand -base64 32))"
        )
    try:
        return ring_from_settings(settings, lone, machine_key=local)
    except KeyRingConfigError as exc:
        raise AuthKeyError(str(exc)) from None


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class AuthSaver(BackgroundWriter):
    """Background writer of auth_data: `put` never blocks, `flush` waits until everything is stored."""

    RETRY_AFTER = 1.0

    def __init__(self, store: AuthStore) -> None:
        super().__init__("auth-saver")
        self.store = store
        self._pending: dict[tuple[UUID, UUID], bytes | None] = {}
        self._stored: dict[tuple[UUID, UUID], bytes] = {}  # digest of what the store holds, as we wrote it
        self.saves = 0  # for metrics
        self.deletes = 0
        self.failures = 0

    def put(self, tenant_id: UUID, session_id: UUID, data: bytes | None) -> None:
        """Store `data` (None deletes) soon; a later put for the same session replaces it."""
        self._pending[(tenant_id, session_id)] = data
        self._kick()

    def put_if_changed(self, tenant_id: UUID, session_id: UUID, data: bytes) -> bool:
        """`put` unless the store already holds exactly `data` from us (periodic saves)."""
        key = (tenant_id, session_id)
        if key not in self._pending and self._stored.get(key) == _digest(data):
            return False
        self.put(tenant_id, session_id, data)
        return True

    def pending(self, tenant_id: UUID, session_id: UUID) -> tuple[bool, bytes | None]:
        """Whether a write for the session is still queued, and its value (fresher than the store)."""
        key = (tenant_id, session_id)
        return (key in self._pending, self._pending.get(key))

    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None:
        queued, data = self.pending(tenant_id, session_id)
        if queued:
            return data
        data = await self.store.load(tenant_id, session_id)
        if data is not None and self.store.is_current(tenant_id, session_id):
            self._stored[(tenant_id, session_id)] = _digest(data)
        else:  # stored under an old key: the next periodic save rewrites it under the current one
            self._stored.pop((tenant_id, session_id), None)
        return data

    def _left(self) -> int:
        return len(self._pending)

    async def _drain(self) -> None:
        while self._pending:
            key = next(iter(self._pending))
            data = self._pending.pop(key)
            try:
                if data is None:
                    await self.store.delete(*key)
                    self._stored.pop(key, None)
                    self.deletes += 1
                else:
                    await self.store.save(*key, data)
                    self._stored[key] = _digest(data)
                    self.saves += 1
            except Exception:
                self.failures += 1
                log.exception("auth_data write failed; retrying", extra={"fields": {"session": str(key[1])}})
                self._pending.setdefault(key, data)
                await asyncio.sleep(self.RETRY_AFTER)
