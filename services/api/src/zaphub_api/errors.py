"""The one mapping of errors to RFC 9457 problem+json responses (domain errors, Litestar's own), and
the OpenAPI documentation of those answers."""

import logging
import math
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from pydantic import BaseModel, Field

from zaphub_api.domain_errors import (
    CommandStreamFull,
    Conflict,
    DatabaseUnavailable,
    DomainError,
    Forbidden,
    Gone,
    InvalidField,
    MediaNotReady,
    NotFound,
    NotGroupAdmin,
    NotOnWhatsApp,
    PayloadTooLarge,
    RateLimited,
    SendQueueFull,
    SessionNotConnected,
    SessionQuotaExceeded,
    SimulatorOnly,
    Throttled,
    TooManyAuthFailures,
    TooManyStreams,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    WebhookLimitReached,
)
from zaphub_api.schemas.messages import MESSAGE_MODELS

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://zaphub.dev/problems/"
RETRY_AFTER = 5  # seconds a 503 asks the client to wait before trying again


# PostgreSQL (or PgBouncer before it) shutting down, out of connections or gone mid-statement; a
# refused connection or one slower than ZAPHUB_DB_TIMEOUT surfaces as an OSError (TimeoutError is one).
_DATABASE_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)
_RETRY = "retry later (with the same Idempotency-Key, a send that did get stored is not sent twice)"


class FieldProblem(BaseModel):
    field: str = Field(description="The request field, e.g. `to`, `media.url` or `file`")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = Field(description="Stable URI of the kind of problem", examples=[TYPE_BASE + "not-found"])
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request path")
    errors: list[FieldProblem] | None = Field(default=None, description="One entry per invalid field")


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, unknown or revoked API key",
    403: "The key may not use this route (admin routes need the admin key, tenant routes a tenant key)",
    404: "No such resource for this key's tenant",
    409: "Conflicts with the resource's current state",
    413: "A payload or upload is larger than allowed",
    410: "No longer kept (media past its retention)",
    415: "The media type is not allowed",
    422: "Invalid field; `errors` names each one",
    429: "Refused for now (a rate limit, queue or throttle is full); retry after `Retry-After` seconds",
    503: "A dependency (NATS, PostgreSQL, a session-host, the ratelimiter) is unavailable; retry after "
    "`Retry-After` seconds",
}
AUTHED = (400, 401, 403, 404, 422, 429)  # every authenticated route may answer these


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the problem+json answers of a route: `AUTHED` plus `statuses`."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in sorted({*AUTHED, *statuses})
    }


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    instance: str,
    retry_after: float | None = None,
    **extra: Any,
) -> Response[Any]:
    body = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# Each kind of domain error as a problem: (status, type, title). The most specific class listed wins.
PROBLEMS: dict[type, tuple[int, str, str]] = {
    DomainError: (400, "bad-request", "Bad request"),
    Unauthorized: (401, "unauthorized", "Missing or invalid API key"),
    Forbidden: (403, "forbidden", "This route needs the admin key"),
    NotFound: (404, "not-found", "Not found"),
    NotOnWhatsApp: (404, "not-on-whatsapp", "Not on WhatsApp"),
    SimulatorOnly: (404, "simulator-only", "Only on the simulator transport"),
    Conflict: (409, "conflict", "Conflict"),
    SessionNotConnected: (409, "session-not-connected", "Session not connected"),
    SessionQuotaExceeded: (409, "session-quota-exceeded", "The tenant's session quota is used up"),
    Throttled: (429, "too-many-requests", "Too many requests"),
    TooManyAuthFailures: (429, "too-many-auth-failures", "Too many failed authentications"),
    SendQueueFull: (429, "send-queue-full", "The tenant's send queue is full"),
    CommandStreamFull: (503, "command-stream-full", "The command stream is full"),
    MediaNotReady: (409, "media-not-ready", "Media not stored yet"),
    Gone: (410, "gone", "No longer kept"),
    WebhookLimitReached: (409, "webhook-limit-reached", "Too many webhooks"),
    InvalidField: (422, "validation-error", "Invalid request"),
    PayloadTooLarge: (413, "payload-too-large", "Payload too large"),
    UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    TooManyStreams: (429, "too-many-event-streams", "Too many event streams"),
    Unavailable: (503, "unavailable", "A dependency is unavailable"),
    DatabaseUnavailable: (503, "database-unavailable", "PostgreSQL is unavailable"),
    RateLimited: (429, "rate-limited", "Rate limit reached"),
}


def _domain_problem(exc: DomainError, path: str) -> Response[Any]:
    status, kind, title = next(PROBLEMS[c] for c in type(exc).__mro__ if c in PROBLEMS)
    if isinstance(exc, InvalidField):
        errors = [{"field": exc.field, "message": exc.message}]
        return problem(status, kind, title, exc.detail, path, errors=errors)
    if isinstance(exc, NotGroupAdmin):
        # The type names the permission, so a client can tell "edit info" from "remove participants".
        kind, title = f"group-admin-required/{exc.permission}", f"Group admin required: {exc.permission}"
        return problem(403, kind, title, exc.detail, path, permission=exc.permission)
    retry_after = getattr(exc, "retry_after", None)
    return problem(status, kind, title, exc.detail, path, retry_after=retry_after)


def _field_name(key: str) -> str:
    """`text.to` → `to`: pydantic puts the chosen member's tag of a tagged union before the field."""
    head, _, rest = key.partition(".")
    return rest if rest and head in MESSAGE_MODELS else key


def _field_errors(exc: ValidationException) -> list[dict[str, str]]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            field = _field_name(str(item.get("key") or item.get("source") or "body"))
            errors.append({"field": field, "message": str(item.get("message", ""))})
    return errors


def to_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The only place where exceptions become HTTP responses."""
    path = request.url.path
    if isinstance(exc, _DATABASE_DOWN):
        log.warning("database unavailable: %r", exc)
        exc = DatabaseUnavailable(f"PostgreSQL did not answer ({type(exc).__name__}); {_RETRY}")
    elif isinstance(exc, OSError):
        log.warning("dependency unavailable: %r", exc)
        exc = Unavailable(f"A dependency is unreachable or too slow ({type(exc).__name__}); {_RETRY}")
    if isinstance(exc, DomainError):
        return _domain_problem(exc, path)
    if isinstance(exc, ValidationException):
        errors = _field_errors(exc)
        fields = ", ".join(e["field"] for e in errors) or "body"
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or str(exc.detail)
        return problem(422, "validation-error", f"Invalid field: {fields}", detail, path, errors=errors)
    if isinstance(exc, NotFoundException):
        return problem(404, "not-found", "Not found", "No such route or resource", path)
    if isinstance(exc, HTTPException):
        kind = {405: "method-not-allowed", 413: "payload-too-large", 415: "unsupported-media-type"}.get(
            exc.status_code, "http-error"
        )
        return problem(exc.status_code, kind, str(exc.detail), str(exc.detail), path)
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal-error", "Internal error", "The error was logged", path)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {Exception: to_problem}
