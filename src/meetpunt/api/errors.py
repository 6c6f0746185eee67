"""The API's one error shape (issue 17): ``{"error": {"rule", "message", "findings"}}``.

``rule`` is the first broken rule, ``findings`` every one (a gate refusal lists them
all, PRV-1), so a client can act on the rule IDs and show the messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from meetpunt.domain.findings import Finding
from meetpunt.jsonout import dumps_bytes


class ApiError(Exception):
    """A refusal with its HTTP status and every broken rule."""

    def __init__(
        self, status: int, findings: Sequence[Finding], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__("; ".join(f.message for f in findings))
        self.status = status
        self.findings = tuple(findings)
        self.headers = headers or {}


def refuse(status: int, rule: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    """An :class:`ApiError` for one broken rule."""
    return ApiError(status, [Finding(rule, message)], headers)


def error_body(findings: Sequence[Finding]) -> dict[str, Any]:
    """The error document: the first rule, all messages, every finding."""
    return {
        "error": {
            "rule": findings[0].rule,
            "message": "; ".join(f.message for f in findings),
            "findings": [{"rule": f.rule, "message": f.message} for f in findings],
        }
    }


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``value`` as JSON through the project's one writer (jsonout)."""
    return Response(dumps_bytes(value), status, headers, media_type="application/json")


async def api_error_handler(request: Request, exc: Exception) -> Response:
    """:class:`ApiError` as its status and the error document."""
    assert isinstance(exc, ApiError)
    return json_response(error_body(exc.findings), exc.status, exc.headers)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """A malformed request (a bad date, an unknown kind) in the same error shape, 422."""
    assert isinstance(exc, RequestValidationError)
    findings = [
        Finding(
            "API-request.invalid",
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', 'invalid')}",
        )
        for error in exc.errors()
    ] or [Finding("API-request.invalid", "the request is malformed")]
    return json_response(error_body(findings), 422)


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "rule": {"type": "string"},
                "message": {"type": "string"},
                "findings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "rule": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route answers with."""
    what = {
        401: "missing, unknown or revoked API key",
        403: "refused: the rules broken (the gate's refusals are audited, PRV-7)",
        404: "unknown connection, or not one of the caller's",
        409: "the state does not allow this change (PRV-4.transition)",
        422: "malformed request",
    }
    return {
        s: {"description": what[s], "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for s in statuses
    }
