"""The one mapping of errors to RFC 9457 problem+json responses (domain errors, Litestar's own), and
the OpenAPI documentation of those answers."""

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from pydantic import BaseModel, Field

from zaphub_api.domain_errors import (
    Conflict,
    DomainError,
    Forbidden,
    HostUnavailable,
    InvalidField,
    NotFound,
    NotOnWhatsApp,
    PayloadTooLarge,
    SessionNotConnected,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from zaphub_api.schemas.messages import MESSAGE_MODELS

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://zaphub.dev/problems/"


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
    415: "The media type is not allowed",
    422: "Invalid field; `errors` names each one",
    503: "A dependency (NATS, PostgreSQL, a session-host, the ratelimiter) is unavailable; retry",
}
AUTHED = (400, 401, 403, 404, 422)  # every authenticated route may answer these


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
    headers: dict[str, str] | None = None,
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
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# Each kind of domain error as a problem: (status, type, title). The most specific class listed wins.
PROBLEMS: dict[type, tuple[int, str, str]] = {
    DomainError: (400, "bad-request", "Bad request"),
    Unauthorized: (401, "unauthorized", "Missing or invalid API key"),
    Forbidden: (403, "forbidden", "This route needs the admin key"),
    NotFound: (404, "not-found", "Not found"),
    Conflict: (409, "conflict", "Conflict"),
    InvalidField: (422, "validation-error", "Invalid request"),
    PayloadTooLarge: (413, "payload-too-large", "Payload too large"),
    UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    Unavailable: (503, "unavailable", "A dependency is unavailable"),
    SessionNotConnected: (409, "session-not-connected", "Session not connected"),
    NotOnWhatsApp: (404, "not-on-whatsapp", "Not on WhatsApp"),
}


def _domain_problem(exc: DomainError, path: str) -> Response[Any]:
    status, kind, title = next(PROBLEMS[c] for c in type(exc).__mro__ if c in PROBLEMS)
    if isinstance(exc, InvalidField):
        errors = [{"field": exc.field, "message": exc.message}]
        return problem(status, kind, title, exc.detail, path, errors=errors)
    if isinstance(exc, HostUnavailable):
        return problem(status, kind, title, exc.detail, path, {"Retry-After": str(exc.retry_after)})
    return problem(status, kind, title, exc.detail, path)


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
