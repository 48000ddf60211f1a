"""Tenant-scoped NATS credentials: user JWTs (NATS decentralized auth) that may only subscribe to the
tenant's own events.

The gateway runs in one NATS account. An operator signs that account's JWT, which lists a signing key;
the API holds that signing key's seed (`ZAPHUB_NATS_ACCOUNT_SIGNING_SEED`) and signs user JWTs with it, so
issuing credentials needs no server reload. The helpers that build operator and account JWTs are here too,
for `zaphub-api nats-auth` style provisioning and for tests that start a server in operator mode.
"""

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import nkeys

from zaphub_contracts import subjects

UNLIMITED = -1
MAX_TTL = 30 * 24 * 3600  # seconds: the longest a tenant's credentials may live
# What one tenant user may do on the server: subscriptions it may hold, the largest message it may
# publish (it publishes nothing but requests to its own inbox, which the permissions already bound).
USER_MAX_SUBS = 100
USER_MAX_PAYLOAD = 64 * 1024
ACCOUNT_MAX_CONNECTIONS = 10_000  # connections of the whole account: NATS JWT v2 has no per-user one
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_keypair(prefix: int) -> Any:
    """A fresh nkey of a role (`nkeys.PREFIX_BYTE_USER`, `_ACCOUNT`, `_OPERATOR`)."""
    return nkeys.from_seed(nkeys.encode_seed(secrets.token_bytes(32), prefix))


def public_key(keypair: Any) -> str:
    return str(keypair.public_key.decode())


def encode_jwt(claims: dict[str, Any], signer: Any) -> str:
    """Sign `claims` as a NATS JWT; `iss`, `iat` and `jti` are filled in."""
    body = {"iat": int(time.time()), **claims, "iss": public_key(signer), "jti": ""}
    canonical = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    body["jti"] = base64.b32encode(hashlib.sha256(canonical).digest()).decode().rstrip("=")
    signing_input = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(body).encode())}"
    return f"{signing_input}.{_b64(signer.sign(signing_input.encode()))}"


def operator_jwt(operator: Any, name: str = "zaphub") -> str:
    return encode_jwt(
        {"sub": public_key(operator), "name": name, "nats": {"type": "operator", "version": 2}}, operator
    )


def account_jwt(
    operator: Any,
    account: Any,
    signing_keys: list[str],
    name: str = "ZAPHUB",
    max_connections: int = ACCOUNT_MAX_CONNECTIONS,
) -> str:
    limits = {
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "imports": UNLIMITED,
        "exports": UNLIMITED,
        "wildcards": True,
        "conn": max_connections,
        "leaf": UNLIMITED,
    }
    nats = {"type": "account", "version": 2, "limits": limits, "signing_keys": signing_keys}
    return encode_jwt({"sub": public_key(account), "name": name, "nats": nats}, operator)


def creds_file(jwt: str, seed: str) -> str:
    """The `.creds` text that NATS clients load (`nats.connect(user_credentials=path)`)."""
    return (
        f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def inbox_prefix(tenant_id: UUID) -> str:
    """The only inbox a tenant's user may subscribe to (clients set it as their inbox prefix)."""
    return f"_INBOX_{tenant_id.hex}"


@dataclass(frozen=True, slots=True)
class Issued:
    jwt: str
    seed: str
    user: str
    subject: str
    inbox_prefix: str
    expires_at: int


class CredentialIssuer:
    """Signs tenant user JWTs with the account signing key; disabled when no seed is configured."""

    def __init__(self, account_public_key: str, signing_seed: str, ttl_seconds: int) -> None:
        self._account = account_public_key
        self._signer = nkeys.from_seed(signing_seed.encode()) if signing_seed else None
        self._ttl = ttl_seconds

    @property
    def enabled(self) -> bool:
        return self._signer is not None

    def issue(self, tenant_id: UUID, ttl_seconds: int | None = None) -> Issued:
        assert self._signer is not None, "check `enabled` first"
        user = new_keypair(nkeys.PREFIX_BYTE_USER)
        ttl = ttl_seconds or self._ttl
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"a TTL of {ttl} s is outside 1 s to {MAX_TTL} s")
        expires_at = int(time.time()) + ttl
        events = subjects.tenant_events(tenant_id)
        inbox = inbox_prefix(tenant_id)
        nats: dict[str, Any] = {
            "type": "user",
            "version": 2,
            "pub": {"deny": [">"]},  # consumers only: a tenant never publishes into the gateway's account
            "sub": {"allow": [events, f"{inbox}.>"]},
            "subs": USER_MAX_SUBS,
            "data": UNLIMITED,  # bytes it may receive: its own events, however many they are
            "payload": USER_MAX_PAYLOAD,
        }
        if public_key(self._signer) != self._account:
            nats["issuer_account"] = self._account
        claims = {"sub": public_key(user), "name": f"tenant-{tenant_id}", "exp": expires_at, "nats": nats}
        return Issued(
            jwt=encode_jwt(claims, self._signer),
            seed=user.seed.decode(),
            user=public_key(user),
            subject=events,
            inbox_prefix=inbox,
            expires_at=expires_at,
        )
