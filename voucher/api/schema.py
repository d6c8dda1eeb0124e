"""OpenAPI pieces of the wallet API's device endpoints: the signature headers of
enrolling and revoking a device key (the shared ones are in bank.http.schema)."""

from drf_spectacular.utils import OpenApiParameter

from bank.http.schema import SIGNED_POST_HEADERS

# Revoking a device key: signed like a money-moving request, without an Idempotency-Key.
DEVICE_REVOKE_HEADERS = [p for p in SIGNED_POST_HEADERS if p.name != "Idempotency-Key"]
# Enrolling a device key: signed by an active key of the holder, unless it carries an enrollment code.
DEVICE_SIGNATURE_HEADERS = [
    OpenApiParameter(p.name, p.type, OpenApiParameter.HEADER, required=False, description=p.description)
    for p in SIGNED_POST_HEADERS
    if p.name != "Idempotency-Key"
]
