"""Signing in with an API key (tenant or admin), signing out, and the landing redirect."""

import secrets
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from zaphub_api.ui.auth import (
    COOKIE,
    CSRF_FIELD,
    PUBLIC,
    SIGN_IN_COOKIE,
    Signed,
    cookie,
    dashboard_of,
    expired,
    sign_in_principal,
    tokens_match,
)
from zaphub_api.ui.render import go, page

NOTICES = {
    "signed-out": "You are signed out.",
    "revoked": "Your session ended: the API no longer accepts its key. Sign in again.",
    "ended": "Your session ended. Sign in again.",
}


def home_of(is_admin: bool) -> str:
    return "/ui/admin" if is_admin else "/ui/sessions"


def _sign_in_page(
    request: Request[Any, Any, Any],
    error: str | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Template:
    token = secrets.token_urlsafe(32)
    response = page("sign_in.html", None, status_code, error=error, notice=notice, csrf=token)
    response.set_cookie(cookie(request, SIGN_IN_COOKIE, token))
    return response


class SignInPages(Controller):
    @get("/", opt={PUBLIC: True})
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        session = dashboard_of(request).sessions.get(request.cookies.get(COOKIE))
        return Redirect(path=home_of(session.is_admin) if session else "/ui/sign-in", status_code=303)

    @get("/sign-in", opt={PUBLIC: True})
    async def sign_in_form(
        self, request: Request[Any, Any, Any], notice: FromQuery[str | None] = None
    ) -> Template:
        return _sign_in_page(request, notice=NOTICES.get(notice or ""))

    @post("/sign-in", opt={PUBLIC: True})
    async def sign_in(self, request: Request[Any, Any, Any]) -> Response[Any]:
        form = await request.form()
        key = str(form.get("api_key") or "").strip()
        presented = form.get(CSRF_FIELD)
        if not tokens_match(
            request.cookies.get(SIGN_IN_COOKIE, ""), presented if isinstance(presented, str) else None
        ):
            return _sign_in_page(request, "This form expired; try again.", 403)
        if not key:
            return _sign_in_page(request, "Enter an API key.", 422)
        principal = await sign_in_principal(request, key)
        if principal is None:
            return _sign_in_page(request, "This API key is unknown or revoked.", 401)
        if isinstance(principal, int):
            throttled = _sign_in_page(
                request, f"Too many failed sign-ins from this address; try again in {principal} s.", 429
            )
            throttled.headers["Retry-After"] = str(principal)
            return throttled
        session = dashboard_of(request).sessions.create(key, principal.is_admin)
        response = go(request, home_of(principal.is_admin))
        response.set_cookie(cookie(request, COOKIE, session.id))
        response.set_cookie(expired(request, SIGN_IN_COOKIE))
        return response

    @post("/sign-out")
    async def sign_out(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed]
    ) -> Response[Any]:
        dashboard_of(request).sessions.end(signed.session.id)
        response = go(request, "/ui/sign-in?notice=signed-out")
        response.set_cookie(expired(request, COOKIE))
        return response
