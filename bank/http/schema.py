"""OpenAPI pieces every app's API shares: the headers and error responses of a
signed, idempotent POST (bank.http.signing), the error responses of reads, and
the post-processing hook that documents the error shape on every operation for
the statuses any view can answer with (authentication, throttling, and for
writes bad input and conflicts), so the schema tells clients the truth."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from bank.http.errors import error_responses


def _header(name: str, kind, description: str, required: bool = True) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.HEADER, required=required, description=description)


SIGNED_POST_HEADERS = [
    _header(
        "Idempotency-Key",
        OpenApiTypes.STR,
        "1-100 printable characters, unique per request. A retry with the same key and body gets the first "
        "response byte for byte (header Idempotent-Replay: true), also when sent while the first request is "
        "still running: the retry waits for it to finish. The same key with another body gets 409 "
        "idempotency_key_reused. Answers that depend on the request's shape or a passing state (400 "
        "invalid_request, 401, 503 payments_paused) are not kept: nothing of that request is kept either, "
        "its nonce included, so the same signed request may be sent again.",
    ),
    _header("X-Device-Key", OpenApiTypes.INT, "Id of the registered device key that signed (POST /devices/)."),
    _header(
        "X-Nonce",
        OpenApiTypes.STR,
        "8-64 characters, never used before by this device; a retry of the same request (same Idempotency-Key) "
        "sends the same nonce. A nonce reused by another request gets 409 nonce_replayed.",
    ),
    _header(
        "X-Timestamp",
        OpenApiTypes.INT,
        "Unix seconds when signed, as 1 to 12 ASCII digits; within the server's window (5 minutes), else 401 "
        "timestamp_out_of_window.",
    ),
    _header(
        "X-Signature",
        OpenApiTypes.STR,
        "Hex of a 65-byte low-s recoverable secp256k1 signature (r, s, recovery id) over SHA-256 of the lines "
        '"BKRW-REQUEST-1", method, path with query, hex SHA-256 of the body, nonce, timestamp, joined by "\\n".',
    ),
]

# 401: missing or bad signature; 403: frozen; 404: an id that is not yours; 409: refused by the rules.
SIGNED_POST_ERRORS = error_responses(400, 401, 403, 404, 409)
READ_ERRORS = error_responses(400, 401, 403)
READ_ERRORS_WITH_404 = error_responses(400, 401, 403, 404)  # a query parameter naming an object that does not exist


ERROR_REF = {"$ref": "#/components/schemas/Error"}
ALWAYS = {
    "401": "Not authenticated: not_authenticated, authentication_failed, or token_expired (log in again).",
    "403": "Not allowed.",
    "414": "The query string is longer than the server takes (query_too_long; details.max_length).",
    "429": "Too many requests; see details.wait_seconds.",
}
WRITES = {
    "400": "Invalid request.",
    "409": "Conflict with the current state or an earlier request.",
    "503": "Payments and transfers are paused by the bank (payments_paused); retry later with the same key.",
}


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", _error_schema())
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            wanted = dict(ALWAYS)
            if method in {"post", "put", "patch", "delete"}:
                wanted.update(WRITES)
            if "{" in path:
                wanted["404"] = "No such object (or not yours)."
            responses = operation.setdefault("responses", {})
            for status, description in wanted.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
                )
    return result


def _error_schema():
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object", "additionalProperties": {}},
                },
            }
        },
    }
