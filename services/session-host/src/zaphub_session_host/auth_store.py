"""Where sessions' auth_data lives between connections and hosts, keyed `<tenant_id>/<session_id>/auth.bin`.

`AuthStore` is the interface. `LocalDirAuthStore` (a directory, the embedded stack's default) and
`S3AuthStore` (S3 or MinIO through the `minio` client) keep bytes; `EncryptedAuthStore` wraps either
and seals every object with AES-GCM, binding it to its tenant and session, so a tampered object or
one copied over from another session is refused with `AuthDataRefused` instead of being loaded.
`AuthSaver` writes in the background so a transport callback never waits on storage: the latest
value of each session wins, and a value equal to the one last stored is not written again.
"""

import asyncio
import base64
import hashlib
import io
import logging
import os
import secrets
import struct
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zaphub_session_host.background import BackgroundWriter

if TYPE_CHECKING:
    from minio import Minio

log = logging.getLogger(__name__)

AUTH_FILE = "auth.bin"


def auth_key(tenant_id: UUID, session_id: UUID) -> str:
    """The object key of a session's auth_data; tenants and sessions never share a prefix."""
    return f"{tenant_id}/{session_id}/{AUTH_FILE}"


class AuthStoreError(Exception):
    """The auth_data store could not be used."""


class AuthKeyError(AuthStoreError):
    """`ZAPHUB_AUTH_KEY` is missing or is not base64 of 32 bytes."""


class AuthDataRefused(AuthStoreError):
    """A stored object failed authentication: tampered with, copied from another session, or sealed
    under another key. It is never loaded; the session fails with this reason."""

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


class AuthCipher:
    """AES-256-GCM sealing of auth_data. Layout: `ZHA` + version (1 byte) + key id (4 bytes) + nonce
    (12 bytes) + ciphertext and tag. The associated data is the header plus `<tenant_id>/<session_id>`,
    so an object only opens for the session it was written for."""

    MAGIC = b"ZHA"
    VERSION = 1
    HEADER = struct.Struct(">3sB4s12s")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise AuthKeyError("the auth_data key must be 32 bytes (base64 in ZAPHUB_AUTH_KEY)")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"zaphub-auth-key-id" + key).digest()[:4]

    @classmethod
    def from_base64(cls, value: str) -> "AuthCipher":
        try:
            key = base64.b64decode(value.strip(), validate=True)
        except ValueError:
            raise AuthKeyError("ZAPHUB_AUTH_KEY is not valid base64") from None
        return cls(key)

    @staticmethod
    def _bound_to(tenant_id: UUID, session_id: UUID) -> bytes:
        return f"{tenant_id}/{session_id}".encode()

    def seal(self, tenant_id: UUID, session_id: UUID, data: bytes) -> bytes:
        nonce = secrets.token_bytes(12)  # random per write: 2^-32 collision bound stays far away
        header = self.HEADER.pack(self.MAGIC, self.VERSION, self.key_id, nonce)
        return header + self._aead.encrypt(nonce, data, header + self._bound_to(tenant_id, session_id))

    def open(self, tenant_id: UUID, session_id: UUID, blob: bytes) -> bytes:
        where = f"auth_data of session {session_id} (tenant {tenant_id})"
        if len(blob) < self.HEADER.size + 16:
            raise AuthDataRefused(f"{where} is too short to be sealed auth_data")
        magic, version, key_id, nonce = self.HEADER.unpack_from(blob)
        if magic != self.MAGIC or version != self.VERSION:
            raise AuthDataRefused(f"{where} has an unknown format (not sealed by this version of ZapHub)")
        if key_id != self.key_id:
            raise AuthDataRefused(f"{where} was sealed under another ZAPHUB_AUTH_KEY")
        header = blob[: self.HEADER.size]
        try:
            return self._aead.decrypt(
                nonce, blob[self.HEADER.size :], header + self._bound_to(tenant_id, session_id)
            )
        except InvalidTag:
            raise AuthDataRefused(
                f"{where} failed authentication: it was altered, or belongs to another session"
            ) from None


class EncryptedAuthStore(AuthStore):
    """Seals on the way in and opens on the way out; the backend only ever sees ciphertext."""

    def __init__(self, backend: AuthStore, cipher: AuthCipher) -> None:
        self.backend = backend
        self.cipher = cipher

    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None:
        blob = await self.backend.load(tenant_id, session_id)
        return None if blob is None else self.cipher.open(tenant_id, session_id, blob)

    async def save(self, tenant_id: UUID, session_id: UUID, data: bytes) -> None:
        await self.backend.save(tenant_id, session_id, self.cipher.seal(tenant_id, session_id, data))

    async def delete(self, tenant_id: UUID, session_id: UUID) -> None:
        await self.backend.delete(tenant_id, session_id)

    async def ping(self) -> None:
        await self.backend.ping()


def load_or_create_key(path: Path) -> str:
    """The dev stack's auth_data key: read `path`, or create it (mode 0600) when absent. Created aside
    and hard-linked into place, so hosts starting together all end up with the one key that won."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(secrets.token_bytes(32)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


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
        if data is not None:
            self._stored[(tenant_id, session_id)] = _digest(data)
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
