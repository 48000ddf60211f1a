"""How the dashboard answers: pages and partials from templates, htmx-aware redirects, the error
pages of its exceptions, and the security headers of every response under /ui."""

import logging
from datetime import datetime
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap

from zaphub_api.domain_errors import DomainError
from zaphub_api.errors import to_problem
from zaphub_api.ui.api import ApiRefused, KeyRejected
from zaphub_api.ui.auth import COOKIE, CsrfRefused, NotSignedIn, Signed, dashboard_of, expired
from zaphub_contracts.statuses import MESSAGE_STATUS_RANK, MessageStatus

log = logging.getLogger(__name__)

# Everything from this origin, nothing inline: htmx runs without eval and its indicator styles are
# off (base.html), so no 'unsafe-*' source is needed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
SIGN_IN = "/ui/sign-in"


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def page(template: str, signed: Signed | None, status_code: int = 200, **context: Any) -> Template:
    """A full page or a partial; `ui` in the template is the signed-in session, when there is one."""
    return Template(
        template_name=template,
        context={"ui": signed.session if signed else None, **context},
        status_code=status_code,
    )


def go(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """Send the browser to `url`: `HX-Redirect` for an htmx request (a 3xx would be followed inside
    the swap), 303 otherwise."""
    if is_htmx(request):
        return Response(content=b"", status_code=200, headers={"HX-Redirect": url})
    return Redirect(path=url, status_code=303)


def form_error(target: str, message: str, status_code: int = 422) -> Response[Any]:
    """An htmx form's error, put into the element `target` (an id) next to what caused it."""
    return Template(
        template_name="partials/error.html",
        context={"message": message},
        status_code=status_code,
        headers={"HX-Retarget": f"#{target}", "HX-Reswap": "innerHTML"},
    )


def after_request(response: Response[Any]) -> Response[Any]:
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _signed_out(request: Request[Any, Any, Any], notice: str | None) -> Response[Any]:
    url = f"{SIGN_IN}?notice={notice}" if notice else SIGN_IN
    response = go(request, url)
    response.set_cookie(expired(request, COOKIE))
    return response


def on_not_signed_in(request: Request[Any, Any, Any], exc: NotSignedIn) -> Response[Any]:
    # From a page's own htmx request the session was there when the page loaded: it has ended.
    return _signed_out(request, "ended" if is_htmx(request) else None)


def on_key_rejected(request: Request[Any, Any, Any], exc: KeyRejected) -> Response[Any]:
    """The API answered 401 to the session's key: every session of that key ends now."""
    dashboard = dashboard_of(request)
    session = dashboard.sessions.get(request.cookies.get(COOKIE))
    if session is not None:
        dashboard.sessions.end_key(session.key)
    return _signed_out(request, "revoked")


def _error_page(request: Request[Any, Any, Any], status: int, title: str, detail: str) -> Response[Any]:
    session = dashboard_of(request).sessions.get(request.cookies.get(COOKIE))
    template = "partials/error.html" if is_htmx(request) else "error.html"
    return Template(
        template_name=template,
        context={"ui": session, "status": status, "title": title, "message": detail or title},
        status_code=status,
    )


def on_refused(request: Request[Any, Any, Any], exc: ApiRefused) -> Response[Any]:
    title = "not found" if exc.status == 404 else exc.title
    return _error_page(request, exc.status, title, exc.message)


def on_csrf(request: Request[Any, Any, Any], exc: CsrfRefused) -> Response[Any]:
    return _error_page(
        request, 403, "Form expired", "This form's security token is missing or stale: reload the page."
    )


def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, DomainError | HTTPException):
        # Refused by the API's own edge before a page ran (a body over its cap, a malformed id): its
        # problem+json, from its one mapper.
        return to_problem(request, exc)
    log.exception("dashboard error", exc_info=exc)
    return _error_page(request, 500, "Internal error", "The error was logged.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    NotSignedIn: on_not_signed_in,
    KeyRejected: on_key_rejected,
    ApiRefused: on_refused,
    CsrfRefused: on_csrf,
    Exception: on_error,
}


def when(value: Any) -> str:
    """An API timestamp as `2025-01-31 12:34:56` (UTC), for tables."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def phone(jid: Any) -> str:
    """`5511999998888@s.whatsapp.net` as `+5511999998888`; groups and LIDs as they are."""
    text = str(jid or "")
    user, _, server = text.partition("@")
    if server == "s.whatsapp.net" and user.isdigit():
        return f"+{user}"
    return text


def percent(used: Any, limit: Any) -> float:
    try:
        return round(100.0 * float(used) / float(limit), 1) if float(limit) > 0 else 0.0
    except (TypeError, ValueError):
        return 0.0


def level(value: float) -> str:
    """The capacity level of a percentage, as the runbook's alerts name them."""
    if value >= 100:
        return "blocked"
    if value > 95:
        return "critical"
    if value > 80:
        return "warning"
    return "ok"


def rank(status: Any) -> int:
    """Where a message status stands on its way (queued ... read), for keeping it from moving back."""
    try:
        return MESSAGE_STATUS_RANK[MessageStatus(status)]
    except ValueError:
        return 0
