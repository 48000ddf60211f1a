"""The dashboard's pure parts: capacity levels, the partials made from events, session expiry and the
chat list. Its pages are tested in a real browser in tests/browser/test_dashboard.py."""

import json
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings
from zaphub_api.ui import TEMPLATES, render
from zaphub_api.ui.api import own_base_url
from zaphub_api.ui.auth import PUBLIC, UiSessions, signed_in_only
from zaphub_api.ui.routes.admin import capacity
from zaphub_api.ui.routes.events import partials

SID = "7b0c6f9e-5d3a-4a57-9a55-0d6c1d1a0001"
MID = "7b0c6f9e-5d3a-4a57-9a55-0d6c1d1a0002"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(TEMPLATES)), autoescape=True)
    env.filters.update(when=render.when, phone=render.phone)
    env.globals.update(percent=render.percent, level=render.level, rank=render.rank)
    return env


def renderer(name: str, context: dict[str, Any]) -> str:
    return environment().get_template(name).render(**context).strip()


@pytest.mark.parametrize(
    ("percent", "level"),
    [(0, "ok"), (80, "ok"), (80.1, "warning"), (95, "warning"), (95.5, "critical"), (100, "blocked")],
)
def test_capacity_levels_follow_the_runbook(percent: float, level: str) -> None:
    """Amber (warning) above 80 %, red (critical) above 95 %, "blocked" at 100 %."""
    assert render.level(percent) == level
    html = renderer("partials/meter.html", {"pct": percent, "label": "Installation capacity", "text": "x"})
    assert f"gauge-{level}" in html and f">{level}</strong>" in html
    assert 'low="80" high="95"' in html


def stats(active: int, maximum: int, hosts: int, alerts: list[str]) -> dict[str, Any]:
    usage = round(100.0 * active / maximum, 2) if maximum else 0.0
    return {
        "capacity": {"active": active, "max": maximum, "available": maximum - active, "usage_percent": usage},
        "sessions_by_status": {},
        "limits": {"hosts": hosts},
        "alerts": alerts,
    }


def test_installation_capacity_is_the_apis_stats() -> None:
    """The meter shows the API's usage; its "blocked" alert (with no live host, 0 of 0) shows blocked."""
    assert capacity(stats(45, 50, 1, ["warning"])) == {"active": 45, "max": 50, "percent": 90.0, "hosts": 1}
    assert render.level(capacity(stats(0, 0, 0, ["blocked"]))["percent"]) == "blocked"


def test_a_qr_event_redraws_the_pairing_panel_and_the_status() -> None:
    """session.qr becomes the status text and a QR image that waits for that very code."""
    raw = json.dumps({"sessionid": SID, "data": {"qr": "2@x", "expires_at": "2030-01-01T00:00:20+00:00"}})
    out = dict(partials(renderer, "session.qr", raw))
    assert ">qr_pending<" in out[f"status-{SID}"]
    assert f"/ui/sessions/{SID}/qr.svg?after=2030-01-01T00%3A00%3A20%2B00%3A00" in out[f"pairing-{SID}"]


def test_a_connected_event_says_connected_as_the_number() -> None:
    """session.connected turns the pairing panel into "Connected as +55…" and removes the pair form."""
    data = {"jid": "5511912345678@s.whatsapp.net", "host_id": "session-host-1", "push_name": "Ana"}
    out = dict(partials(renderer, "session.connected", json.dumps({"sessionid": SID, "data": data})))
    assert "Connected as <strong>+5511912345678</strong>" in out[f"pairing-{SID}"]
    assert out[f"phone-{SID}"] == "+5511912345678"
    assert out[f"host-{SID}"] == "session-host-1"
    assert out[f"pairform-{SID}"] == ""


def test_receipts_become_the_message_status_with_its_rank() -> None:
    """message.read updates the message's status text; a receipt for no known message updates nothing."""
    raw = json.dumps(
        {"sessionid": SID, "data": {"message_id": MID, "whatsapp_id": "w", "chat": "c", "at": "t"}}
    )
    ((name, html),) = partials(renderer, "message.read", raw)
    assert name == f"msg-{MID}" and ">read<" in html and 'data-rank="5"' in html
    unknown = json.dumps({"sessionid": SID, "data": {"message_id": None}})
    assert partials(renderer, "message.delivered", unknown) == []


def test_event_text_is_escaped() -> None:
    """What a tenant's contacts control (a push name) is HTML-escaped in the partials."""
    data = {"jid": "5511912345678@s.whatsapp.net", "host_id": "h", "push_name": "<script>x</script>"}
    out = dict(partials(renderer, "session.connected", json.dumps({"sessionid": SID, "data": data})))
    assert "<script>" not in out[f"pairing-{SID}"] and "&lt;script&gt;" in out[f"pairing-{SID}"]


def test_sessions_idle_out_and_end_with_their_key() -> None:
    """A session unused for longer than the idle time is gone; a rejected key ends all its sessions."""
    now = [0.0]
    store = UiSessions(idle=60, clock=lambda: now[0])
    first, second, other = store.create("k1", False), store.create("k1", False), store.create("k2", False)
    now[0] = 59
    assert store.get(first.id) is first
    now[0] = 100
    assert store.get(second.id) is None  # idle since 0
    assert store.get(first.id) is first  # used at 59
    store.end_key("k1")
    assert store.get(first.id) is None
    assert store.get(other.id) is None  # idle since 0 as well
    assert first.csrf != second.csrf and len(first.id) >= 40


def test_the_chat_list_shows_the_apis_chats() -> None:
    """Each chat of `GET /sessions/{id}/chats`: its name (else its number), unread count and preview."""
    chats = [
        {
            "chat": "5511988887777@s.whatsapp.net",
            "name": None,
            "unread_count": 0,
            "last_message": {"preview": "hi"},
        },
        {"chat": "5511977776666@s.whatsapp.net", "name": "Ana", "unread_count": 2, "last_message": {}},
    ]
    html = renderer("partials/chat_list.html", {"session": {"id": SID}, "chats": chats, "chat": None})
    assert "<strong>+5511988887777</strong>" in html and "<small>hi</small>" in html
    assert 'Ana <span class="unread">2 unread</span>' in html


def test_the_dashboard_calls_its_own_api_on_loopback() -> None:
    """A wildcard bind is reached on loopback; a named address as it is."""
    assert own_base_url(ApiSettings(api_host="0.0.0.0", api_port=3000)) == "http://127.0.0.1:3000"
    assert own_base_url(ApiSettings(api_host="::", api_port=3000)) == "http://[::1]:3000"
    assert own_base_url(ApiSettings(api_host="10.1.2.3", api_port=80)) == "http://10.1.2.3:80"


def test_every_dashboard_route_needs_a_session_but_sign_in_and_static_files() -> None:
    """The API's middleware lets /ui through without a key: each /ui route is guarded by the dashboard
    session, and only the landing redirect, the sign-in form and the static files are marked open."""
    app = create_app(ApiSettings(admin_key="zh_admin_test_0123456789abcdef0123456789"))
    handlers = [
        (route.path, handler)
        for route in app.routes
        if route.path.startswith("/ui")
        for handler in getattr(route, "route_handlers", [])
        if handler.http_methods != {"OPTIONS"}  # Litestar's own answer to a preflight, for every path
    ]
    assert len(handlers) > 20
    for path, handler in handlers:
        assert signed_in_only in [getattr(g, "func", g) for g in handler.resolve_guards()], path
    open_paths = {path for path, handler in handlers if handler.opt.get(PUBLIC)}
    assert open_paths == {"/ui", "/ui/sign-in", "/ui/static/{file_path:path}"}
