"""Domain errors of the API and their one mapping to RFC 9457 problem+json responses."""

import logging
from typing import Any

import asyncpg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap
from pydantic import BaseModel, Field

from zaphub_api.schemas.messages import MESSAGE_MODELS

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://zaphub.dev/problems/"
RETRY_AFTER = 5  # seconds a 503 asks the client to wait before trying again


class ApiError(Exception):
    """Base of every error the API answers deliberately; `kind` is the stable problem type."""

    status = 400
    kind = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class Unauthorized(ApiError):
    status, kind, title = 401, "unauthorized", "Missing or invalid API key"


class Forbidden(ApiError):
    status, kind, title = 403, "forbidden", "This route needs the admin key"


class NotFound(ApiError):
    status, kind, title = 404, "not-found", "Not found"


class Conflict(ApiError):
    status, kind, title = 409, "conflict", "Conflict"


class InvalidField(ApiError):
    status, kind, title = 422, "validation-error", "Invalid request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])


class PayloadTooLarge(InvalidField):
    status, kind, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(InvalidField):
    status, kind, title = 415, "unsupported-media-type", "Unsupported media type"


class Unavailable(ApiError):
    status, kind, title = 503, "unavailable", "A dependency is unavailable"


class DatabaseUnavailable(Unavailable):
    kind, title = "database-unavailable", "PostgreSQL is unavailable"


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


def problem(status: int, kind: str, title: str, detail: str, instance: str, **extra: Any) -> Response[Any]:
    body = {
        "type": TYPE_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER)}
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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
    if isinstance(exc, ApiError):
        return problem(exc.status, exc.kind, exc.title, exc.detail, path, **exc.extra)
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
MEDIA_TYPE = MediaType.JSON
