"""Signed money-moving requests, as a view mixin on top of Idempotency-Key.

Headers: X-Device-Key (the device key's id), X-Nonce, X-Timestamp (Unix
seconds) and X-Signature (hex of a 65-byte low-s recoverable secp256k1
signature over SHA-256 of bank.identity.request_payload). The order matters:
the signature is checked first, then a retry with the same Idempotency-Key is
answered from the stored response (it carries the same nonce), and only a
first attempt consumes the nonce, so a replayed signed request is refused.
"""

from bank import services
from bank.http.idempotency import IdempotentPostMixin
from bank.models import Party

DEVICE_HEADER = "X-Device-Key"
HEADERS = {
    "device_id": DEVICE_HEADER,
    "nonce": "X-Nonce",
    "timestamp": "X-Timestamp",
    "signature_hex": "X-Signature",
}


def signed_request(request) -> dict:
    """check_signature's arguments (all but the party) for a request signed outside
    SignedPostMixin: device enrollment and revocation."""
    return {
        "method": request.method,
        "path": request.get_full_path(),
        "body": request._request.body,
        **{name: request.headers.get(header, "") for name, header in HEADERS.items()},
    }


class SignedPostMixin(IdempotentPostMixin):
    """Views implement signing_party(request): whose device keys may sign this request."""

    device = None

    def signing_party(self, request) -> Party:
        raise NotImplementedError

    def signing_device(self, request):
        """The device key X-Device-Key names, if the view read it already with the
        signing party (check_signature uses it only if it is that party's active key)."""
        return None

    def authorize_request(self, request) -> None:
        values = {name: request.headers.get(header, "") for name, header in HEADERS.items()}
        self.device = services.check_signature(
            device=self.signing_device(request),
            party=self.signing_party(request),
            method=request.method,
            path=request.get_full_path(),
            body=request._request.body,
            **values,
        )

    def before_first_attempt(self, request) -> None:
        services.consume_nonce(device=self.device, nonce=request.headers[HEADERS["nonce"]])

    def stored_response_or_first_attempt(self, request):
        # The replay lookup and before_first_attempt's consuming of the nonce, in
        # one round trip on PostgreSQL.
        return services.stored_response_or_consume_nonce(
            user=request.user, key=self.idempotency_key, device=self.device, nonce=request.headers[HEADERS["nonce"]]
        )
