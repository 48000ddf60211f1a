"""A key ring for secrets at rest (sessions' auth_data, webhook signing secrets).

`KeyRing` holds named AES-256-GCM keys in order: `encrypt` always uses the first (the current key),
`decrypt` picks the key the blob names, so blobs written before a rotation keep opening while the old
key stays in the ring. Every blob is bound by associated data to where it lives (`<tenant>/<session>`
for auth_data, `<tenant>.<webhook>` for a webhook secret): copied anywhere else it does not open.

Envelope (version 2): `ZHA` + version (1 byte) + key id length (1 byte) + key id (ASCII) + nonce
(12 bytes) + ciphertext and tag; the associated data is that header followed by the caller's `aad`.
Version 1 is the single-key format the session-host wrote before the ring (a 4-byte key fingerprint
instead of an id); it is still read, never written.

Configuration (`ring_from_settings`): `ZAPHUB_SECRET_KEYS` = `id:base64,id:base64,...` (first =
current). A lone base64 key (`ZAPHUB_AUTH_KEY`) joins the ring under an id derived from the key itself,
`key_id_of`, so deployments configured with it alone need no change.
"""

import base64
import binascii
import hashlib
import os
import re
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zaphub_runtime.settings import CommonSettings

__all__ = [
    "DEV_KEY_FILE",
    "KeyRing",
    "KeyRingConfigError",
    "KeyRingError",
    "MalformedSecret",
    "SecretKey",
    "SecretRefused",
    "TamperedSecret",
    "UnknownKeyId",
    "key_id_of",
    "load_or_create_key",
    "parse_keys",
    "read_key_file",
    "ring_from_settings",
    "single_key",
]

MAGIC = b"ZHA"
VERSION = 2
LEGACY_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
HEADER = struct.Struct(">3sBB")  # magic, version, key id length; the id and the nonce follow
LEGACY_HEADER = struct.Struct(">3sB4s12s")  # magic, version, key fingerprint, nonce
KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Where a machine's generated key lives under the data dir (the name predates the ring).
DEV_KEY_FILE = "auth_key"


class KeyRingError(Exception):
    """The key ring could not be built or a blob could not be opened."""


class KeyRingConfigError(KeyRingError):
    """The configured keys are malformed: not `id:base64`, not 32 bytes, a repeated id, or none."""


class SecretRefused(KeyRingError):
    """A blob did not open; it is never returned, in part or whole."""


class MalformedSecret(SecretRefused):
    """Not an envelope this version of ZapHub writes or reads (truncated, plaintext, unknown version)."""


class UnknownKeyId(SecretRefused):
    """The blob was sealed under a key that is not (or no longer) in the ring."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed under key id {key_id!r}, which is not in the key ring")
        self.key_id = key_id


class TamperedSecret(SecretRefused):
    """Authentication failed: the blob was altered, or it belongs somewhere else (another `aad`)."""


@dataclass(frozen=True)
class SecretKey:
    id: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not KEY_ID.fullmatch(self.id):
            raise KeyRingConfigError(f"key id {self.id!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        if len(self.key) != KEY_SIZE:
            raise KeyRingConfigError(f"key {self.id!r} must be {KEY_SIZE} bytes, got {len(self.key)}")


def _fingerprint(key: bytes) -> bytes:
    # The version-1 key id; kept as the derivation of ids so a lone key keeps one name everywhere.
    return hashlib.sha256(b"zaphub-auth-key-id" + key).digest()[:4]


def key_id_of(key: bytes) -> str:
    """The id a lone key (`ZAPHUB_AUTH_KEY`) gets in the ring: 8 hex digits of a hash of it."""
    return _fingerprint(key).hex()


def _decode_key(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingConfigError(f"{what} is not valid base64") from None


def single_key(value: str, what: str = "ZAPHUB_AUTH_KEY") -> SecretKey:
    """A lone base64 key under its derived id."""
    key = _decode_key(value, what)
    if len(key) != KEY_SIZE:
        raise KeyRingConfigError(f"{what} must be base64 of {KEY_SIZE} bytes, got {len(key)}")
    return SecretKey(key_id_of(key), key)


def parse_keys(spec: str, what: str = "ZAPHUB_SECRET_KEYS") -> list[SecretKey]:
    """`id:base64,id:base64,...` in ring order; blanks around entries are ignored, empty gives []."""
    keys = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        key_id, sep, value = entry.partition(":")
        if not sep:
            raise KeyRingConfigError(f"{what}: each entry is id:base64-key, got one without ':'")
        keys.append(SecretKey(key_id.strip(), _decode_key(value, f"{what}: the key of {key_id.strip()!r}")))
    return keys


class KeyRing:
    """Named AES-256-GCM keys; the first seals, any of them opens what it sealed."""

    def __init__(self, keys: Iterable[SecretKey]) -> None:
        self._keys: dict[str, AESGCM] = {}
        self._by_fingerprint: dict[bytes, AESGCM] = {}
        raw: dict[str, bytes] = {}
        for k in keys:
            if k.id in raw:
                if raw[k.id] == k.key:  # the same key given twice (both settings) is harmless
                    continue
                raise KeyRingConfigError(f"key id {k.id!r} names two different keys")
            raw[k.id] = k.key
            self._keys[k.id] = AESGCM(k.key)
            self._by_fingerprint.setdefault(_fingerprint(k.key), self._keys[k.id])
        if not self._keys:
            raise KeyRingConfigError("the key ring has no key")
        self.current_id = next(iter(self._keys))
        self._current_header = HEADER.pack(MAGIC, VERSION, len(self.current_id)) + self.current_id.encode()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self._keys)!r})"

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal with the current key; `aad` is where the blob lives (it must be given again to open)."""
        nonce = secrets.token_bytes(NONCE_SIZE)  # random per write: 2^-32 collision bound stays far away
        header = self._current_header + nonce
        return header + self._keys[self.current_id].encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """The plaintext, or `UnknownKeyId`, `TamperedSecret` or `MalformedSecret`."""
        aead, header_size = self._key_for(blob)
        nonce = blob[header_size - NONCE_SIZE : header_size]
        try:
            return aead.decrypt(nonce, blob[header_size:], blob[:header_size] + aad)
        except InvalidTag:
            raise TamperedSecret("failed authentication: altered, or it belongs somewhere else") from None

    def key_id(self, blob: bytes) -> str:
        """The id of the key that sealed `blob` (a version-1 blob: the id its key gets here)."""
        return self._parse(blob)[1]

    def is_current(self, blob: bytes) -> bool:
        """Whether `blob` is already sealed the way `encrypt` would seal it now (no rewrite needed)."""
        try:
            version, key_id, _ = self._parse(blob)
        except MalformedSecret:
            return False
        return version == VERSION and key_id == self.current_id

    def encrypt_text(self, plaintext: str, aad: bytes) -> str:
        """`encrypt` for a text field (JSON, a database column): base64 of the envelope."""
        return base64.b64encode(self.encrypt(plaintext.encode(), aad)).decode()

    def decrypt_text(self, token: str, aad: bytes) -> str:
        try:
            blob = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedSecret("not base64 of a sealed secret") from None
        try:
            return self.decrypt(blob, aad).decode()
        except UnicodeDecodeError:  # authenticated, so sealed by us from bytes, not from text
            raise MalformedSecret("the sealed value is not text") from None

    def _parse(self, blob: bytes) -> tuple[int, str, int]:
        """Version, key id and header size (nonce included) of an envelope."""
        if len(blob) < HEADER.size or blob[:3] != MAGIC:
            raise MalformedSecret("unknown format (not sealed by this version of ZapHub)")
        version = blob[3]
        if version == VERSION:
            size = HEADER.size + blob[4] + NONCE_SIZE
            if len(blob) < size + TAG_SIZE:
                raise MalformedSecret("too short to be a sealed secret")
            try:
                key_id = blob[HEADER.size : HEADER.size + blob[4]].decode("ascii")
            except UnicodeDecodeError:
                raise MalformedSecret("the key id is not ASCII") from None
            return version, key_id, size
        if version == LEGACY_VERSION:
            if len(blob) < LEGACY_HEADER.size + TAG_SIZE:
                raise MalformedSecret("too short to be a sealed secret")
            return version, blob[4:8].hex(), LEGACY_HEADER.size
        raise MalformedSecret(f"unknown format version {version} (not sealed by this version of ZapHub)")

    def _key_for(self, blob: bytes) -> tuple[AESGCM, int]:
        version, key_id, size = self._parse(blob)
        aead = self._keys.get(key_id) if version == VERSION else self._by_fingerprint.get(blob[4:8])
        if aead is None:
            raise UnknownKeyId(key_id)
        return aead, size


def ring_from_settings(settings: CommonSettings, *lone_keys: str, machine_key: bool = False) -> KeyRing:
    """`ZAPHUB_SECRET_KEYS` in order, then each non-empty lone base64 key (`ZAPHUB_AUTH_KEY`) under its
    derived id. With `machine_key` (one machine, one data dir: the embedded stack), the key generated
    into `<data_dir>/auth_key` comes last while that file exists, and is created when nothing else is
    configured. Blocking (the key file): call it in a thread from async code."""
    configured = [*parse_keys(settings.secret_keys.get_secret_value())]
    configured += [single_key(k) for k in lone_keys if k.strip()]
    if machine_key:
        path = settings.data_dir / DEV_KEY_FILE
        generated = read_key_file(path) if configured else load_or_create_key(path)
        if generated:
            configured.append(single_key(generated, str(path)))
    if not configured:
        raise KeyRingConfigError(
            "ZAPHUB_SECRET_KEYS must be set: every process needs the same keys to open what the others "
            "sealed (generate one: echo k1:$(openssl rand -base64 32))"
        )
    return KeyRing(configured)


def read_key_file(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def load_or_create_key(path: Path) -> str:
    """A machine's own key (the embedded stack's): read `path`, or create it (mode 0600) when absent.
    Created aside and hard-linked into place, so processes starting together all end up with the one
    key that won. Blocking: call it in a thread from async code."""
    existing = read_key_file(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(secrets.token_bytes(KEY_SIZE)) + b"\n")
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
