"""VoIPBIN's error envelope: ``{"error": {"status", "reason", "message", "request_id", "details"?}}``.

Every failure the API can produce goes through here, including FastAPI's own validation and routing
errors and unexpected exceptions, so no client ever sees another shape.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
T = TypeVar("T")

STATUS_BY_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "PAYMENT_REQUIRED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    409: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    def __init__(
        self,
        http_status: int,
        reason: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.reason = reason
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def bad_request(message: str, *, field: str | None = None, reason: str = "INVALID_ARGUMENT") -> ApiError:
    details = [{"field": field}] if field else None
    return ApiError(400, reason, message, details=details)


def not_found(reason: str, what: str) -> ApiError:
    return ApiError(404, reason, f"The {what} was not found.")


def _request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = "req_" + uuid.uuid4().hex[:16].upper()
        request.state.request_id = rid
    return rid


def envelope(request: Request, err: ApiError) -> JSONResponse:
    body: dict[str, Any] = {
        "status": STATUS_BY_HTTP.get(err.http_status, "INTERNAL"),
        "reason": err.reason,
        "message": err.message,
        "request_id": _request_id(request),
    }
    if err.details:
        body["details"] = err.details
    headers = {"X-Request-ID": body["request_id"], **err.headers}
    return JSONResponse({"error": body}, status_code=err.http_status, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (("." if out else "") + p)
    return out or ".".join(str(p) for p in loc)


def _validation_to_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    for e in errors:
        if e.get("type") == "json_invalid":
            return ApiError(400, "INVALID_JSON_BODY", "The request body is not valid JSON.")
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = tuple(first.get("loc", ()))
    field = _field_path(loc)
    if (
        loc
        and loc[0] == "body"
        and len(loc) == 1
        and first.get("type") in ("missing", "model_attributes_type")
    ):
        return ApiError(400, "INVALID_JSON_BODY", "The request body must be a JSON object.")
    in_query = bool(loc) and loc[0] in ("query", "path")
    reason = "INVALID_REQUEST_PARAMETER" if in_query else "INVALID_ARGUMENT"
    if in_query and first.get("type") == "missing":
        reason = "MISSING_REQUEST_PARAMETER"
    msg = f"Invalid value for '{field}': {first.get('msg', 'invalid')}."
    details = [
        {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors[:20]
    ]
    return ApiError(400, reason, msg, details=details)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return envelope(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(request, _validation_to_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            err = ApiError(404, "ROUTE_NOT_FOUND", f"No route for {request.method} {request.url.path}.")
        elif exc.status_code == 405:
            err = ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{request.method} is not allowed on {request.url.path}.",
                headers=dict(exc.headers or {}),
            )
        else:
            err = ApiError(exc.status_code, "INVALID_ARGUMENT", str(exc.detail))
        return envelope(request, err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return envelope(request, ApiError(500, "INTERNAL", "Internal error."))


def check_owned(row: T | None, customer_id: uuid.UUID | None, reason: str) -> T:
    """``row`` if it exists, is not deleted and belongs to the customer; else 404 (never 403: no oracle)."""
    if (
        row is None
        or getattr(row, "tm_delete", None) is not None
        or (customer_id is not None and getattr(row, "customer_id", None) != customer_id)
    ):
        what = reason.removesuffix("_NOT_FOUND").lower().replace("_", " ")
        raise ApiError(404, reason, f"The {what} was not found.")
    return row
