"""The `zaphub` command line against a real stack on the simulator: what a user types and sees."""

import asyncio
import json
import os
import stat
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from typer.testing import CliRunner, Result

from zaphub_cli.app import app
from zaphub_devstack.ports import free_port
from zaphub_devstack.testing import Stack

ZAPHUB = Path(sys.executable).with_name("zaphub")
TO = "+5511988887777"
SENT = {"sent", "delivered", "read"}
# Long enough for `sessions qr` to see the QR code before the simulator pairs the session by itself.
PAIR_DELAY = "1.5"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One stack for the whole module: starting one costs several seconds."""
    data_dir = tmp_path_factory.mktemp("cli-stack")
    async with Stack(data_dir, env={"ZAPHUB_TRANSPORT": "sim", "ZAPHUB_SIM_PAIR_DELAY": PAIR_DELAY}) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tenant_key(stack: Stack) -> str:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
        response = await http.post(
            "/api/v1/tenants",
            json={"name": "cli-tests"},
            headers={"Authorization": f"Bearer {stack.admin_key}"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])


@dataclass
class Cli:
    """Runs `zaphub` in-process with its own config dir; `env` is what the user's shell exports."""

    url: str
    config_home: Path

    def env(self, **extra: str | None) -> dict[str, str | None]:
        clean: dict[str, str | None] = {"ZAPHUB_URL": None, "ZAPHUB_KEY": None, "ZAPHUB_ADMIN_KEY": None}
        return clean | {"XDG_CONFIG_HOME": str(self.config_home), "COLUMNS": "200"} | extra

    async def __call__(self, *args: str, **env: str | None) -> Result:
        runner = CliRunner()
        # In a thread: the command runs its own event loop (`events tail`) and blocks while it polls.
        return await asyncio.to_thread(runner.invoke, app, list(args), env=self.env(**env))

    async def json(self, *args: str, **env: str | None) -> Any:
        result = await self(*args, "--json", **env)
        assert result.exit_code == 0, result.stdout + result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def cli(stack: Stack, tmp_path: Path) -> Cli:
    return Cli(stack.api_url, tmp_path / "config")


@pytest.fixture
def as_tenant(cli: Cli, stack: Stack, tenant_key: str) -> Callable[..., Any]:
    """`zaphub ...` with the tenant's key in the environment."""

    async def run(*args: str) -> Result:
        return await cli(*args, ZAPHUB_URL=stack.api_url, ZAPHUB_KEY=tenant_key)

    return run


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def session_id(stack: Stack, tenant_key: str) -> str:
    """A connected session of the tenant, for the tests that send."""
    headers = {"Authorization": f"Bearer {tenant_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10, headers=headers) as http:
        created = (await http.post("/api/v1/sessions", json={"name": "sender"})).json()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            session = (await http.get(f"/api/v1/sessions/{created['id']}")).json()
            if session["status"] == "connected":
                return str(created["id"])
            await asyncio.sleep(0.2)
    raise AssertionError(f"session {created['id']} did not connect: {session}")


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.stdout


async def test_login_writes_a_private_config_file_that_the_environment_overrides(
    cli: Cli, stack: Stack, tenant_key: str
) -> None:
    """login checks the key and saves it 0600 in the XDG dir; ZAPHUB_KEY and ZAPHUB_URL win over it."""
    refused = await cli("login", "--url", stack.api_url, "--key", "zh_nope")
    assert refused.exit_code == 1
    assert "Missing or invalid API key" in refused.stderr
    path = cli.config_home / "zaphub" / "config.toml"
    assert not path.exists()

    ok(await cli("login", "--url", stack.api_url, "--key", tenant_key))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert tenant_key in path.read_text()
    assert isinstance(await cli.json("sessions", "list"), list)  # URL and key from the file alone
    ok(await cli("login", "--key", stack.admin_key))  # the saved URL; the admin key kept beside the other
    assert tenant_key in path.read_text()
    assert stack.admin_key in path.read_text()
    assert isinstance(await cli.json("tenants", "list"), list)

    bad_key = await cli("sessions", "list", ZAPHUB_KEY="zh_bogus")
    assert bad_key.exit_code == 1
    assert "Missing or invalid API key" in bad_key.stderr
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = await cli("sessions", "list", ZAPHUB_URL=closed)
    assert unreachable.exit_code == 1
    assert f"cannot reach the ZapHub API at {closed}" in unreachable.stderr

    assert "Logged out" in ok(await cli("logout"))
    assert not path.exists()
    logged_out = await cli("sessions", "list")
    assert logged_out.exit_code == 1
    assert "zaphub login" in logged_out.stderr


async def test_the_admin_creates_a_tenant_and_another_key_for_it(cli: Cli, stack: Stack) -> None:
    """tenants create and tenants keys create with the admin key give keys that work at once."""
    admin = {"ZAPHUB_URL": stack.api_url, "ZAPHUB_KEY": stack.admin_key}
    tenant = await cli.json("tenants", "create", "beta", **admin)
    assert tenant["name"] == "beta"
    assert tenant["api_key"].startswith("zh_")
    key = await cli.json("tenants", "keys", "create", tenant["id"], "--name", "ci", **admin)
    assert key["tenant_id"] == tenant["id"]
    assert key["api_key"] != tenant["api_key"]
    assert await cli.json("sessions", "list", ZAPHUB_URL=stack.api_url, ZAPHUB_KEY=key["api_key"]) == []
    listed = ok(await cli("tenants", "list", **admin))
    assert any(line.startswith(tenant["id"]) and "beta" in line for line in listed.splitlines())


async def test_sessions_create_wait_returns_the_connected_session(as_tenant: Callable[..., Any]) -> None:
    """sessions create --wait comes back once the session is connected, with its phone number."""
    result = await as_tenant("sessions", "create", "waited", "--wait", "--timeout", "30", "--json")
    session = json.loads(ok(result))
    assert session["status"] == "connected"
    assert session["jid"].endswith("@s.whatsapp.net")
    shown = ok(await as_tenant("sessions", "show", session["id"]))
    assert "connected" in shown
    assert "+" + session["jid"].split("@")[0] in shown


async def test_sessions_qr_draws_the_code_then_says_connected(as_tenant: Callable[..., Any]) -> None:
    """On a fresh session, sessions qr draws the QR code in the terminal and ends with 'Connected as'."""
    session = json.loads(ok(await as_tenant("sessions", "create", "scanned", "--json")))
    out = ok(await as_tenant("sessions", "qr", session["id"], "--timeout", "30"))
    qr_lines = [line for line in out.splitlines() if line.startswith("██")]
    assert len(qr_lines) > 20, out  # the code itself, in half blocks
    assert "Linked devices" in out
    assert out.rstrip().splitlines()[-1].startswith("Connected as +55")


async def test_a_sent_text_reaches_sent_in_messages_show(
    as_tenant: Callable[..., Any], session_id: str
) -> None:
    """send prints the new message's id, and messages show soon has it sent, with its history."""
    out = ok(await as_tenant("send", session_id, TO, "--text", "Olá from the CLI"))
    message_id = out.strip()
    uuid.UUID(message_id)

    async def shown() -> dict[str, Any]:
        return dict(json.loads(ok(await as_tenant("messages", "show", message_id, "--json"))))

    deadline = time.monotonic() + 20
    message = await shown()
    while message["status"] not in SENT:
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.3)
        message = await shown()
    assert message["content"]["text"] == "Olá from the CLI"
    shown = ok(await as_tenant("messages", "show", message_id))
    assert "Olá from the CLI" in shown
    assert any(line.startswith("queued") for line in shown.splitlines())
    assert any(line.startswith("sent") for line in shown.splitlines())


async def test_send_wait_returns_the_message_once_read(
    as_tenant: Callable[..., Any], session_id: str
) -> None:
    """send --wait --until read prints the message's JSON when it is read; a repeat is not sent again."""
    args = ("send", session_id, TO, "--location", "-23.55,-46.63", "--idempotency-key", "cli-loc")
    read = json.loads(ok(await as_tenant(*args, "--wait", "--until", "read", "--json")))
    assert read["status"] == "read"
    assert read["content"]["latitude"] == -23.55
    again = await as_tenant(*args)
    assert ok(again).strip() == read["id"]
    assert "nothing new was sent" in again.stderr


@pytest.mark.parametrize(
    "args",
    [("sessions", "list"), ("sessions", "stats"), ("messages", "list"), ("usage",), ("webhooks", "list")],
)
async def test_json_output_is_the_apis_json(as_tenant: Callable[..., Any], args: tuple[str, ...]) -> None:
    """--json prints JSON that parses, and nothing else, on stdout."""
    result = await as_tenant(*args, "--json")
    assert isinstance(json.loads(ok(result)), list | dict)


async def test_a_refused_request_exits_1_with_the_problem_on_stderr(
    as_tenant: Callable[..., Any], session_id: str
) -> None:
    """A bad phone number: exit code 1, the problem's title, detail and field on stderr, nothing on stdout."""
    result = await as_tenant("send", session_id, "123", "--text", "hi")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Invalid field: to" in result.stderr
    assert "E.164" in result.stderr
    assert "Field: to" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("send", str(uuid.uuid4()), TO),  # no content
        ("send", str(uuid.uuid4()), TO, "--text", "a", "--location", "1,2"),  # two contents
        ("send", str(uuid.uuid4()), TO, "--location", "north"),
        ("sessions", "show", "not-an-id"),
        ("sessions", "frobnicate"),
    ],
)
async def test_a_usage_error_exits_2(as_tenant: Callable[..., Any], args: tuple[str, ...]) -> None:
    """A command line the CLI cannot make sense of exits 2 before any request."""
    result = await as_tenant(*args)
    assert result.exit_code == 2, result.stdout + result.stderr


async def test_webhooks_are_created_listed_and_deleted(as_tenant: Callable[..., Any]) -> None:
    """webhooks create shows the secret once; list has the webhook, deliveries answers, delete removes it."""
    # An event this module never causes, so that nothing is POSTed to the address.
    args = ("webhooks", "create", "https://example.com/hook", "--events", "session.logged_out", "--json")
    hook = json.loads(ok(await as_tenant(*args)))
    assert hook["events"] == ["session.logged_out"]
    assert hook["secret"]
    assert hook["id"] in ok(await as_tenant("webhooks", "list"))
    assert json.loads(ok(await as_tenant("webhooks", "deliveries", hook["id"], "--json"))) == []
    ok(await as_tenant("webhooks", "delete", hook["id"]))
    assert hook["id"] not in ok(await as_tenant("webhooks", "list"))


async def test_events_tail_prints_a_line_for_a_sent_message(
    stack: Stack, tenant_key: str, session_id: str, as_tenant: Callable[..., Any], tmp_path: Path
) -> None:
    """The real `zaphub` executable follows the SSE stream and prints one line for message.sent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPHUB_")}
    env |= {"ZAPHUB_URL": stack.api_url, "ZAPHUB_KEY": tenant_key, "XDG_CONFIG_HOME": str(tmp_path)}
    argv = [
        "events",
        "tail",
        "--type",
        "message.sent",
        "--session",
        session_id,
        "--limit",
        "1",
        "--timeout",
        "30",
    ]
    tail = await asyncio.create_subprocess_exec(
        ZAPHUB, *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert tail.stderr is not None
    try:
        listening = await asyncio.wait_for(tail.stderr.readline(), timeout=15)
        assert b"Listening for events" in listening
        message_id = ok(await as_tenant("send", session_id, TO, "--text", "tailed")).strip()
        stdout, _ = await asyncio.wait_for(tail.communicate(), timeout=30)
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()
    assert tail.returncode == 0
    lines = stdout.decode().splitlines()
    assert len(lines) == 1, lines
    assert "message.sent" in lines[0]
    assert session_id[:8] in lines[0]
    assert message_id in lines[0]
    assert "+5511988887777" in lines[0]
