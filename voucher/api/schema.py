"""OpenAPI pieces the wallet API's views share: the headers of a signed,
idempotent POST, and the error responses of each kind of endpoint."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from bank.api.errors import error_responses


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


# Revoking a device key: signed like a money-moving request, without an Idempotency-Key.
DEVICE_REVOKE_HEADERS = [p for p in SIGNED_POST_HEADERS if p.name != "Idempotency-Key"]
# Enrolling a device key: signed by an active key of the holder, unless it carries an enrollment code.
DEVICE_SIGNATURE_HEADERS = [
    OpenApiParameter(p.name, p.type, OpenApiParameter.HEADER, required=False, description=p.description)
    for p in SIGNED_POST_HEADERS
    if p.name != "Idempotency-Key"
]
