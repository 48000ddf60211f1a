"""`zaphub sessions`: WhatsApp sessions, pairing them by QR code or phone code, and their control."""

import time
from typing import Annotated, Any, cast
from uuid import UUID

import typer

from zaphub_cli import output
from zaphub_cli.client import Api, ApiProblem, CliError, connect
from zaphub_cli.output import JsonFlag
from zaphub_cli.waiting import POLL_SECONDS, TimeoutOption, WaitTimeout, poll

app = typer.Typer(no_args_is_help=True, help="WhatsApp sessions: create, pair, restart, log out, delete.")

SessionId = Annotated[UUID, typer.Argument(metavar="ID", help="The session's id.")]
COLUMNS = ("id", "name", "status", "phone", "host", "updated")


def status_of(session: dict[str, Any]) -> str:
    reason = session.get("status_reason")
    return f"{session['status']} ({reason})" if reason else str(session["status"])


def row(session: dict[str, Any]) -> tuple[object, ...]:
    return (
        session["id"],
        session["name"],
        status_of(session),
        output.phone(session.get("jid")),
        session.get("host"),
        session.get("updated_at"),
    )


def render(session: dict[str, Any]) -> None:
    output.details(
        [
            ("ID", session["id"]),
            ("Name", session["name"]),
            ("Status", status_of(session)),
            ("Phone", output.phone(session.get("jid"))),
            ("Push name", session.get("push_name")),
            ("LID", session.get("lid")),
            ("Host", session.get("host")),
            ("Created", session.get("created_at")),
            ("Updated", session.get("updated_at")),
        ]
    )


def failed(session: dict[str, Any]) -> None:
    if session["status"] == "failed":
        raise CliError(f"session {session['id']} failed: {session.get('status_reason') or 'no reason given'}")


@app.command("list")
def list_sessions(
    status: Annotated[str | None, typer.Option(help="Only sessions in this status, e.g. connected.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List the tenant's sessions."""
    with connect() as api:
        sessions = api.get("/sessions", status=status, limit=limit)
    output.emit(as_json, sessions, lambda s: output.table(COLUMNS, map(row, s), "No sessions."))


@app.command()
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name for the session, e.g. main.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the session is connected.")] = False,
    timeout: TimeoutOption = 120.0,
    as_json: JsonFlag = False,
) -> None:
    """Create a session; it starts on a session-host and shows a QR code to scan."""
    with connect() as api:
        session = api.post("/sessions", {"name": name})
        if wait:
            session = wait_connected(api, session["id"], timeout)
    output.emit(as_json, session, render)
    if not wait and not as_json:
        output.note(f"Pair it: zaphub sessions qr {session['id']}  (or: zaphub sessions pair ID PHONE)")


def wait_connected(api: Api, session_id: UUID | str, timeout: float) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        session: dict[str, Any] = api.get(f"/sessions/{session_id}")
        failed(session)
        return session

    def describe(session: dict[str, Any]) -> str:
        if session["status"] == "qr_pending":
            return f"it shows a QR code, scan it: zaphub sessions qr {session_id}"
        return status_of(session)

    return poll(fetch, lambda s: s["status"] == "connected", describe, timeout, "the session to connect")


@app.command()
def show(session_id: SessionId, as_json: JsonFlag = False) -> None:
    """A session, its status, its phone number and the host that holds it."""
    with connect() as api:
        session = api.get(f"/sessions/{session_id}")
    output.emit(as_json, session, render)


@app.command()
def qr(session_id: SessionId, timeout: TimeoutOption = 300.0, as_json: JsonFlag = False) -> None:
    """Draw the session's QR code, redrawn as each new code comes, until the session is connected.

    With --json, each QR code's JSON is a line, and the connected session's JSON the last line.
    """
    deadline = time.monotonic() + timeout
    shown: str | None = None
    with connect() as api, output.QrScreen(as_json) as screen:
        while True:
            session = api.get(f"/sessions/{session_id}")
            failed(session)
            if session["status"] == "connected":
                break
            code = api.get_or_none(f"/sessions/{session_id}/qr")
            if code is not None and code.get("qr") and code["qr"] != shown:
                shown = code["qr"]
                screen.show(code)
            screen.status(f"Waiting for the session to connect: {status_of(session)}")
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"gave up after {timeout:g} s: the session is {status_of(session)}")
            time.sleep(POLL_SECONDS)
    if as_json:
        output.print_json(session, compact=True)
    else:
        output.line(f"Connected as {output.phone(session.get('jid'))}")


@app.command()
def pair(
    session_id: SessionId,
    phone: Annotated[str, typer.Argument(metavar="PHONE", help="The number to pair, E.164: +5511999998888.")],
    timeout: TimeoutOption = 30.0,
    as_json: JsonFlag = False,
) -> None:
    """Pair by phone number instead of QR: prints the code to enter on the phone."""
    with connect() as api:
        answer = poll(
            lambda: pair_code(api, session_id, phone),
            lambda a: a is not None,
            lambda a: "no session-host holds the session yet",
            timeout,
            "a session-host to make the code",
        )
    output.emit(as_json, cast(dict[str, Any], answer), render_code)


def pair_code(api: Api, session_id: UUID, phone: str) -> dict[str, Any] | None:
    """The code; None while no host holds the session yet (503), which a fresh session may show."""
    try:
        code: dict[str, Any] = api.post(f"/sessions/{session_id}/pair-code", {"phone": phone})
    except ApiProblem as problem:
        if problem.status == 503:
            return None
        raise
    return code


def render_code(answer: dict[str, Any]) -> None:
    output.line(f"Pairing code for +{answer['phone']}: {answer['code']}")
    output.note("On the phone: WhatsApp > Linked devices > Link a device > Link with phone number instead")


@app.command()
def restart(session_id: SessionId, as_json: JsonFlag = False) -> None:
    """Restart the session's connection; it keeps its pairing."""
    command(session_id, "restart", as_json)


@app.command()
def logout(session_id: SessionId, as_json: JsonFlag = False) -> None:
    """Log the session out of WhatsApp (unpairs the device); it then shows a new QR code."""
    command(session_id, "logout", as_json)


def command(session_id: UUID, action: str, as_json: bool) -> None:
    with connect() as api:
        accepted = api.post(f"/sessions/{session_id}/{action}")
    output.emit(
        as_json, accepted, lambda a: output.line(f"{action.capitalize()} of session {session_id} accepted")
    )


@app.command()
def delete(session_id: SessionId, as_json: JsonFlag = False) -> None:
    """Delete a session: it stops and its pairing (auth_data) is deleted."""
    with connect() as api:
        api.delete(f"/sessions/{session_id}")
    result = {"id": session_id, "deleted": True}
    output.emit(as_json, result, lambda _: output.line(f"Deleted session {session_id}"))


@app.command()
def stats(as_json: JsonFlag = False) -> None:
    """Capacity, sessions by status and the tenant's limits."""
    with connect() as api:
        answer = api.get("/sessions/stats")
    output.emit(as_json, answer, render_stats)


def render_stats(answer: dict[str, Any]) -> None:
    cap = answer["capacity"]
    output.details(
        [("Capacity", f"{cap['active']} of {cap['max']} connected ({cap['usage_percent']} %)")]
        + [(f"Sessions {status}", str(n)) for status, n in answer["sessions_by_status"].items()]
        + [(name.replace("_", " ").capitalize(), str(v)) for name, v in answer["limits"].items()]
    )
