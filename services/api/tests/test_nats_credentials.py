"""Tenant NATS credentials, proven on a real nats-server in operator (decentralized JWT) mode."""

import asyncio
import base64
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import nkeys
import pytest
from litestar.testing import AsyncTestClient

from zaphub_api.app import create_app
from zaphub_api.nats_credentials import (
    USER_MAX_PAYLOAD,
    USER_MAX_SUBS,
    account_jwt,
    creds_file,
    encode_jwt,
    new_keypair,
    operator_jwt,
    public_key,
)
from zaphub_api.settings import ApiSettings
from zaphub_devstack.nats import nats_server_binary
from zaphub_devstack.ports import LOOPBACK

ADMIN_KEY = "zh_admin_test_0123456789abcdef0123456789"


@pytest.fixture
def operator_nats(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A nats-server trusting one operator and one account; yields (url, account key, signing seed)."""
    operator = new_keypair(nkeys.PREFIX_BYTE_OPERATOR)
    account = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    signing = new_keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    acct = public_key(account)
    config = tmp_path / "auth.conf"
    config.write_text(
        f"operator: {operator_jwt(operator)}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{ {acct}: {account_jwt(operator, account, [public_key(signing)])} }}\n"
    )
    ports = tmp_path / "ports"
    ports.mkdir()
    argv = [
        str(nats_server_binary()),
        "-c",
        str(config),
        "-a",
        LOOPBACK,
        "-p",
        "-1",
        "--ports_file_dir",
        str(ports),
    ]
    with subprocess.Popen(argv, stderr=(tmp_path / "nats.log").open("w")) as proc:
        try:
            for _ in range(600):
                found = list(ports.glob("*.ports"))
                if found and found[0].read_text().strip():
                    break
                assert proc.poll() is None, (tmp_path / "nats.log").read_text()
                subprocess.run(["sleep", "0.05"], check=True)
            url = json.loads(found[0].read_text())["nats"][0]
            yield url, acct, signing.seed.decode()
        finally:
            proc.terminate()
            proc.wait(10)


def gateway_creds(path: Path, account: str, signing_seed: str) -> str:
    """An unrestricted user of the account, as the gateway's own services would hold."""
    user = new_keypair(nkeys.PREFIX_BYTE_USER)
    claims = {
        "sub": public_key(user),
        "nats": {
            "type": "user",
            "version": 2,
            "issuer_account": account,
            "subs": -1,
            "data": -1,
            "payload": -1,
        },
    }
    path.write_text(
        creds_file(encode_jwt(claims, nkeys.from_seed(signing_seed.encode())), user.seed.decode())
    )
    return str(path)


@pytest.fixture
async def cred_api(
    nats_url: str, database_url: str, operator_nats: tuple[str, str, str]
) -> AsyncIterator[Any]:
    url, account, seed = operator_nats
    settings = ApiSettings(
        nats_url=nats_url,
        database_url=database_url,
        admin_key=ADMIN_KEY,
        nats_account_public_key=account,
        nats_account_signing_seed=seed,
        nats_public_url=url,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def _tenant(client: Any, name: str) -> tuple[str, dict[str, str]]:
    response = await client.post("/api/v1/tenants", json={"name": name}, headers={"X-API-Key": ADMIN_KEY})
    body = response.json()
    return body["id"], {"X-API-Key": body["api_key"]}


async def test_issued_credentials_subscribe_only_to_the_own_tenant(
    cred_api: Any, operator_nats: tuple[str, str, str], tmp_path: Path
) -> None:
    """Issued credentials connect, receive the own tenant's events and get a permission violation for
    another tenant's."""
    alice_id, alice = await _tenant(cred_api, "alice")
    bob_id, _ = await _tenant(cred_api, "bob")
    response = await cred_api.post("/api/v1/nats-credentials", json={}, headers=alice)
    assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["subject"] == f"zaphub.v1.evt.{alice_id}.>"
    creds = tmp_path / "alice.creds"
    creds.write_text(issued["creds"])

    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(issued["servers"][0], user_credentials=str(creds), error_cb=on_error)
    try:
        own = await nc.subscribe(f"zaphub.v1.evt.{alice_id}.>")
        await nc.subscribe(f"zaphub.v1.evt.{bob_id}.>")
        await nc.flush()
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.05)
        assert any("permissions violation" in str(e).lower() for e in errors), errors
        assert bob_id in str(errors[0])
        await nc.publish(f"zaphub.v1.evt.{alice_id}.s1.message.received", b"forged")
        await nc.flush()
        # The gateway's own (unrestricted) user in the same account publishes an event of alice.
        url, account, seed = operator_nats
        gateway = await nats.connect(
            url, user_credentials=gateway_creds(tmp_path / "gw.creds", account, seed)
        )
        try:
            await gateway.publish(f"zaphub.v1.evt.{alice_id}.s1.message.received", b"real")
            await gateway.flush()
        finally:
            await gateway.close()
        received = await own.next_msg(timeout=10)
        assert received.data == b"real", "the tenant's own publish was refused, the gateway's delivered"
    finally:
        await nc.close()
    assert any("publish" in str(e).lower() for e in errors), "publishing is denied to tenant users"


async def test_credentials_unconfigured_is_503(api: Any) -> None:
    """Without an account signing key the route answers 503 problem+json."""
    _, auth = await api.tenant()
    response = await api.client.post("/api/v1/nats-credentials", headers=auth)
    assert response.status_code == 503
    assert "ZAPHUB_NATS_ACCOUNT_SIGNING_SEED" in response.json()["detail"]


def _claims(jwt: str) -> dict[str, Any]:
    body = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


async def test_issued_credentials_last_a_day_at_most_30_and_have_limits(
    cred_api: Any, tmp_path: Path
) -> None:
    """Credentials last 24 h unless asked; more than 30 days is a 422 naming `ttl_seconds`; the server
    enforces the user's subscription limit."""
    alice_id, alice = await _tenant(cred_api, "alice")
    too_long = await cred_api.post(
        "/api/v1/nats-credentials", json={"ttl_seconds": 30 * 86400 + 1}, headers=alice
    )
    assert too_long.status_code == 422, too_long.text
    assert [e["field"] for e in too_long.json()["errors"]] == ["ttl_seconds"]
    issued = (await cred_api.post("/api/v1/nats-credentials", json={}, headers=alice)).json()
    claims = _claims(issued["jwt"])
    assert claims["exp"] - claims["iat"] == 86400
    assert claims["nats"]["subs"] == USER_MAX_SUBS
    assert claims["nats"]["payload"] == USER_MAX_PAYLOAD
    creds = tmp_path / "alice.creds"
    creds.write_text(issued["creds"])
    nc = await nats.connect(issued["servers"][0], user_credentials=str(creds))
    try:
        for i in range(USER_MAX_SUBS + 1):
            await nc.subscribe(f"zaphub.v1.evt.{alice_id}.s{i}.>")
        with contextlib.suppress(Exception):  # the server may drop the connection
            await nc.flush()
        log = tmp_path / "nats.log"  # the operator_nats server's log: it refused the 101st
        for _ in range(100):
            if "maximum subscriptions exceeded" in log.read_text():
                break
            await asyncio.sleep(0.05)
        assert "maximum subscriptions exceeded" in log.read_text()
    finally:
        await nc.close()
