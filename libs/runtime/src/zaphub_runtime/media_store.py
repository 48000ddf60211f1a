"""The media store: bytes of received (and sent) media, kept under `<tenant>/<session>/<message>`, in
a local directory (the embedded stack: the hosts and the API share `<data_dir>/media`) or an S3/MinIO
bucket (`minio`, imported on first use). The session-host that owns a session writes; the API reads
the same backend to stream a tenant its media; `sweep` drops what is older than the retention.

Each object keeps its mimetype, filename and SHA-256 beside it: a `<key>.json` sidecar on disk,
object metadata on S3.
"""

import asyncio
import contextlib
import hashlib
import io
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

__all__ = [
    "LocalDirMediaStore",
    "MediaDownload",
    "MediaStore",
    "MediaStoreName",
    "S3MediaStore",
    "StoredMedia",
    "describe",
    "media_key",
    "open_media_store",
]

if TYPE_CHECKING:
    from minio import Minio


class MediaStoreName(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class MediaDownload(StrEnum):
    EAGER = "eager"  # the owning host stores received media as it arrives
    OFF = "off"  # received media stays a WhatsApp reference


def media_key(tenant_id: UUID, session_id: UUID, message_id: UUID) -> str:
    return f"{tenant_id}/{session_id}/{message_id}"


@dataclass(frozen=True, slots=True)
class StoredMedia:
    key: str
    mimetype: str
    size: int
    sha256: str  # hex
    filename: str | None
    stored_at: datetime

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "stored_at": self.stored_at.isoformat()}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "StoredMedia":
        raw: dict[str, Any] = json.loads(data)
        return cls(**{**raw, "stored_at": datetime.fromisoformat(raw["stored_at"])})


def describe(key: str, data: bytes, mimetype: str | None, filename: str | None) -> StoredMedia:
    return StoredMedia(
        key=key,
        mimetype=mimetype or "application/octet-stream",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=filename,
        stored_at=datetime.now(UTC),
    )


class MediaStore(ABC):
    @abstractmethod
    async def put(self, key: str, data: bytes, mimetype: str | None, filename: str | None) -> StoredMedia: ...

    @abstractmethod
    async def get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        """The object and its description; None when absent (never stored, or swept)."""

    @abstractmethod
    async def sweep(self, older_than: datetime) -> int:
        """Delete what was stored before `older_than`; how many objects went."""


class LocalDirMediaStore(MediaStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"media key {key!r} leaves the store")
        return path

    def _put(self, key: str, data: bytes, meta: StoredMedia) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, body in ((path, data), (path.with_name(path.name + ".json"), meta.to_json())):
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(body)
            os.replace(tmp, target)

    async def put(self, key: str, data: bytes, mimetype: str | None, filename: str | None) -> StoredMedia:
        meta = describe(key, data, mimetype, filename)
        await asyncio.to_thread(self._put, key, data, meta)
        return meta

    def _get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        path = self._path(key)
        try:
            meta = StoredMedia.from_json(path.with_name(path.name + ".json").read_bytes())
            return meta, path.read_bytes()
        except FileNotFoundError:
            return None

    async def get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        return await asyncio.to_thread(self._get, key)

    def _sweep(self, older_than: datetime) -> int:
        gone = 0
        if not self.root.exists():
            return 0
        for sidecar in self.root.rglob("*.json"):
            try:
                meta = StoredMedia.from_json(sidecar.read_bytes())
            except (OSError, ValueError, TypeError):
                continue
            if meta.stored_at < older_than:
                with contextlib.suppress(FileNotFoundError):
                    sidecar.with_name(sidecar.name.removesuffix(".json")).unlink()
                sidecar.unlink(missing_ok=True)
                gone += 1
        return gone

    async def sweep(self, older_than: datetime) -> int:
        return await asyncio.to_thread(self._sweep, older_than)


class S3MediaStore(MediaStore):
    """Objects in one S3/MinIO bucket; the description rides as object metadata."""

    def __init__(self, client: "Minio", bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def connect(
        cls, endpoint: str, bucket: str, access_key: str, secret_key: str, secure: bool, region: str | None
    ) -> "S3MediaStore":
        from minio import Minio

        client = Minio(endpoint, access_key, secret_key, secure=secure, region=region)
        if not client.bucket_exists(bucket):
            with contextlib.suppress(Exception):  # another replica may have made it meanwhile
                client.make_bucket(bucket)
        return cls(client, bucket)

    async def put(self, key: str, data: bytes, mimetype: str | None, filename: str | None) -> StoredMedia:
        meta = describe(key, data, mimetype, filename)
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=meta.mimetype,
            metadata={"zaphub-media": meta.to_json().decode()},
        )
        return meta

    def _get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as err:
            if err.code in ("NoSuchKey", "NoSuchObject"):
                return None
            raise
        try:
            data = bytes(response.read())
            raw = response.headers.get("x-amz-meta-zaphub-media")
        finally:
            response.close()
            response.release_conn()
        meta = StoredMedia.from_json(raw.encode()) if raw else describe(key, data, None, None)
        return meta, data

    async def get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        return await asyncio.to_thread(self._get, key)

    def _sweep(self, older_than: datetime) -> int:
        gone = 0
        for obj in self.client.list_objects(self.bucket, recursive=True):
            if obj.last_modified is not None and obj.last_modified < older_than and obj.object_name:
                self.client.remove_object(self.bucket, obj.object_name)
                gone += 1
        return gone

    async def sweep(self, older_than: datetime) -> int:
        return await asyncio.to_thread(self._sweep, older_than)


def open_media_store(settings: Any) -> MediaStore:
    """The configured backend (`CommonSettings`' media_* and s3_* fields). Blocking: run in a thread."""
    if settings.media_store is MediaStoreName.S3:
        return S3MediaStore.connect(
            settings.s3_endpoint,
            settings.media_bucket,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_secure,
            settings.s3_region,
        )
    return LocalDirMediaStore(settings.data_dir / "media")
