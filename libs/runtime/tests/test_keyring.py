"""The key ring: sealing with the current key, opening by key id after a rotation, refusing tampered,
misplaced or unknown-key blobs by name, reading the pre-ring single-key format, and its settings."""

import base64
import hashlib
import secrets
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zaphub_runtime.keyring import (
    KeyRing,
    KeyRingConfigError,
    MalformedSecret,
    SecretKey,
    SecretRefused,
    TamperedSecret,
    UnknownKeyId,
    key_id_of,
    parse_keys,
    ring_from_settings,
    single_key,
)
from zaphub_runtime.settings import CommonSettings

HERE = b"4f0c3e1a-0000-4000-8000-000000000001/9d2b7a55-0000-4000-8000-000000000002"
THERE = b"4f0c3e1a-0000-4000-8000-00000000000f/9d2b7a55-0000-4000-8000-000000000002"
SECRET = b"the identity of a WhatsApp device"


def new_key(key_id: str) -> SecretKey:
    return SecretKey(key_id, secrets.token_bytes(32))


def b64(key: SecretKey) -> str:
    return base64.b64encode(key.key).decode()


def legacy_seal(key: bytes, bound_to: bytes, data: bytes) -> bytes:
    """What the session-host's `AuthCipher.seal` wrote before the ring, step for step."""
    key_id = hashlib.sha256(b"zaphub-auth-key-id" + key).digest()[:4]
    nonce = secrets.token_bytes(12)
    header = struct.Struct(">3sB4s12s").pack(b"ZHA", 1, key_id, nonce)
    return header + AESGCM(key).encrypt(nonce, data, header + bound_to)


def test_round_trip_seals_with_the_first_key_and_names_it() -> None:
    """A blob opens back to its plaintext, names the current key, and never repeats (fresh nonce)."""
    ring = KeyRing([new_key("k2"), new_key("k1")])
    blob = ring.encrypt(SECRET, HERE)
    assert SECRET not in blob and blob.startswith(b"ZHA\x02\x02k2")
    assert ring.decrypt(blob, HERE) == SECRET
    assert ring.key_id(blob) == "k2" and ring.is_current(blob)
    assert ring.encrypt(SECRET, HERE) != blob


def test_blobs_of_the_old_key_still_open_after_a_rotation() -> None:
    """With a new key put first and the old one kept after it, old blobs open and new ones use the new key."""
    old, new = new_key("k1"), new_key("k2")
    before = KeyRing([old]).encrypt(SECRET, HERE)
    rotated = KeyRing([new, old])
    assert rotated.decrypt(before, HERE) == SECRET
    assert not rotated.is_current(before)
    assert rotated.key_id(rotated.encrypt(SECRET, HERE)) == "k2"


def test_a_blob_whose_key_was_dropped_is_refused_by_name() -> None:
    """Once its key leaves the ring, a blob fails with UnknownKeyId naming the key, not a crash."""
    old, new = new_key("k1"), new_key("k2")
    blob = KeyRing([old]).encrypt(SECRET, HERE)
    with pytest.raises(UnknownKeyId, match="'k1'") as refused:
        KeyRing([new]).decrypt(blob, HERE)
    assert refused.value.key_id == "k1" and isinstance(refused.value, SecretRefused)


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("magic", MalformedSecret),
        ("key id", UnknownKeyId),
        ("nonce", TamperedSecret),
        ("ciphertext", TamperedSecret),
        ("tag", TamperedSecret),
    ],
)
def test_a_tampered_blob_is_refused(where: str, error: type[SecretRefused]) -> None:
    """Flipping one bit anywhere in the envelope makes it fail by name, never open to something else."""
    ring = KeyRing([new_key("k1")])
    blob = bytearray(ring.encrypt(SECRET, HERE))
    blob[{"magic": 2, "key id": 5, "nonce": 8, "ciphertext": 20, "tag": -1}[where]] ^= 0x01
    with pytest.raises(error):
        ring.decrypt(bytes(blob), HERE)


def test_a_blob_copied_to_another_place_does_not_open() -> None:
    """A blob sealed for one tenant's path fails authentication under another tenant's path."""
    ring = KeyRing([new_key("k1")])
    with pytest.raises(TamperedSecret):
        ring.decrypt(ring.encrypt(SECRET, HERE), THERE)


@pytest.mark.parametrize("blob", [b"", b"ZHA", b"plain auth data", b"ZHA\x07" + bytes(40), b"ZHA\x02\x02k1"])
def test_what_is_not_an_envelope_is_refused_as_malformed(blob: bytes) -> None:
    """Plaintext, truncated envelopes and unknown versions fail with MalformedSecret."""
    with pytest.raises(MalformedSecret):
        KeyRing([new_key("k1")]).decrypt(blob, HERE)


def test_a_blob_of_the_pre_ring_single_key_format_opens() -> None:
    """A version-1 blob written by the old AuthCipher opens with that key, whatever id the key has
    in the ring now and wherever it stands, and is not current (a save rewrites it)."""
    old = secrets.token_bytes(32)
    blob = legacy_seal(old, HERE, SECRET)
    lone = KeyRing([single_key(base64.b64encode(old).decode())])
    assert lone.decrypt(blob, HERE) == SECRET
    assert lone.key_id(blob) == key_id_of(old) == lone.current_id
    renamed = KeyRing([new_key("k2"), SecretKey("k1", old)])
    assert renamed.decrypt(blob, HERE) == SECRET and not renamed.is_current(blob)
    with pytest.raises(TamperedSecret):
        renamed.decrypt(blob, THERE)
    with pytest.raises(UnknownKeyId, match=key_id_of(old)):
        KeyRing([new_key("k2")]).decrypt(blob, HERE)


def test_text_form_round_trips_and_refuses_garbage() -> None:
    """encrypt_text gives base64 for a JSON field; decrypt_text opens it, refuses what is not base64."""
    ring = KeyRing([new_key("k1")])
    token = ring.encrypt_text("whsec_abc", b"tenant.webhook")
    assert ring.decrypt_text(token, b"tenant.webhook") == "whsec_abc"
    with pytest.raises(TamperedSecret):
        ring.decrypt_text(token, b"other-tenant.webhook")
    with pytest.raises(MalformedSecret):
        ring.decrypt_text("whsec_abc", b"tenant.webhook")


def test_parsing_the_setting() -> None:
    """`id:base64,...` keeps its order; bad entries are refused with a message that names the problem."""
    k1, k2 = new_key("k1"), new_key("2024-06.b")
    assert parse_keys(f" {k2.id}:{b64(k2)} , {k1.id}:{b64(k1)},") == [k2, k1]
    assert parse_keys("") == []
    bad = {
        b64(k1): "without ':'",
        "k1:not base64!": "not valid base64",
        f"k1:{base64.b64encode(b'short').decode()}": "32 bytes",
        f"bad id:{b64(k1)}": "key id",
        f"k1:{b64(k1)},k1:{b64(k2)}": "two different keys",
    }
    for spec, problem in bad.items():
        with pytest.raises(KeyRingConfigError, match=problem):
            KeyRing(parse_keys(spec))
    with pytest.raises(KeyRingConfigError, match="no key"):
        KeyRing([])


def test_ring_from_settings_puts_the_secret_keys_first_then_the_lone_key(tmp_path: Path) -> None:
    """ZAPHUB_SECRET_KEYS come first in order, ZAPHUB_AUTH_KEY after under its derived id, so adding
    the ring setting to a single-key deployment keeps its blobs readable."""
    lone, k2 = new_key("x"), new_key("k2")
    settings = CommonSettings(secret_keys=f"k2:{b64(k2)}", data_dir=tmp_path)
    ring = ring_from_settings(settings, b64(lone))
    assert ring.ids == ("k2", key_id_of(lone.key))
    before = ring_from_settings(CommonSettings(data_dir=tmp_path), b64(lone)).encrypt(SECRET, HERE)
    assert ring.decrypt(before, HERE) == SECRET
    with pytest.raises(KeyRingConfigError, match="ZAPHUB_SECRET_KEYS must be set"):
        ring_from_settings(CommonSettings(data_dir=tmp_path), "")
    assert not (tmp_path / "auth_key").exists()


def test_the_machine_key_is_generated_once_and_stays_behind_configured_keys(tmp_path: Path) -> None:
    """With machine_key and nothing configured, a 0600 key file is made and reused; once keys are
    configured it stays last in the ring, so what it sealed still opens."""
    settings = CommonSettings(data_dir=tmp_path)
    first = ring_from_settings(settings, machine_key=True)
    blob = first.encrypt(SECRET, HERE)
    assert (tmp_path / "auth_key").stat().st_mode & 0o777 == 0o600
    assert ring_from_settings(settings, machine_key=True).ids == first.ids
    k2 = new_key("k2")
    configured = CommonSettings(secret_keys=f"k2:{b64(k2)}", data_dir=tmp_path)
    ring = ring_from_settings(configured, machine_key=True)
    assert ring.ids == ("k2", first.current_id) and ring.decrypt(blob, HERE) == SECRET


def test_the_ring_never_shows_its_keys() -> None:
    """repr of a key and of the ring names ids only."""
    key = new_key("k1")
    assert b64(key) not in repr(KeyRing([key])) + repr(key)
    assert repr(key.key) not in repr(KeyRing([key])) + repr(key)
