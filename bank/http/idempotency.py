"""Idempotency-Key for money-moving POSTs, as a view mixin.

The first response (a success, or a refusal the bank decided, such as
insufficient_funds) is stored and a retry with the same key and the same
request gets those bytes again; the same key with another request gets 409.
Request-shape errors (bad JSON, missing fields, bad signature, a pause) are
not stored, and roll back their request whole (its nonce too), so the client
can fix the request, or send it again, with the key. A retry sent while the
first attempt is still running waits for it and gets its answer (see
bank.services.identity.stored_response_or_consume_nonce).

The money itself moves at most once because the service below is given a
key derived from this one: two concurrent retries post one entry, and the
later writer of the stored response yields to the first.
"""

import hashlib

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.response import Response

from bank import errors
from bank.models import StoredResponse
from bank.prepared import fetch
from bank.services.unique_insert import insert_unique

HEADER = "Idempotency-Key"


class _Replay(Exception):
    def __init__(self, stored: StoredResponse):
        self.stored = stored


class IdempotentPostMixin:
    """For APIViews whose POST moves money. Use `self.idempotency_key` to key the service call."""

    idempotency_key: str | None = None

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        # One database transaction per money-moving request: the used nonce, the
        # money and the stored answer commit together or not at all, and the
        # request waits for one WAL flush instead of three. A refusal is an
        # answer (handled, not raised), so it commits too; a crash rolls back all.
        # So does an answer that is not kept for the key (a request-shape refusal
        # such as payments_paused): nothing was decided, so the nonce is freed too
        # and the same signed request may be sent again, by a retry that was
        # waiting for this one (see stored_response_or_consume_nonce) or later.
        self._answer_kept = False
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
            if not self._answer_kept:
                transaction.set_rollback(True)
            return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method != "POST":
            return
        key = request.headers.get(HEADER, "")
        if not (0 < len(key) <= 100 and key.isprintable()):
            raise errors.IdempotencyKeyRequired()
        self.authorize_request(request)
        self.idempotency_key = key
        self._fingerprint = _fingerprint(request)
        stored = self.stored_response_or_first_attempt(request)
        if stored is not None:
            if stored.fingerprint != self._fingerprint:
                raise errors.IdempotencyKeyReused()
            raise _Replay(stored)

    def authorize_request(self, request) -> None:
        """Runs before the replay check (e.g. checking a signature)."""

    def before_first_attempt(self, request) -> None:
        """Runs once per key, after the replay check (e.g. consuming a signed nonce)."""

    def stored_response_or_first_attempt(self, request) -> StoredResponse | None:
        """The answer stored under this request's key, or None after before_first_attempt ran."""
        stored = StoredResponse.objects.filter(user=request.user, key=self.idempotency_key).first()
        if stored is None:
            self.before_first_attempt(request)
        return stored

    def service_key(self) -> str:
        """The key handed to the service: scoped to the user, so users' keys never collide."""
        return f"api:{self.request.user.pk}:{self.idempotency_key}"

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            self._answer_kept = True
            stored = exc.stored
            response = HttpResponse(bytes(stored.body), status=stored.status_code, content_type=stored.content_type)
            response["Idempotent-Replay"] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        fresh = isinstance(response, Response)  # a replay is a plain HttpResponse of stored bytes
        if fresh and request.method == "POST" and self.idempotency_key and _is_decided(response):
            response.render()
            self._answer_kept = True
            first = _store_answer(request.user, self.idempotency_key, self._fingerprint, response)
            if first is not None:
                # A concurrent retry stored its answer first; answer with the same bytes.
                return HttpResponse(bytes(first.body), status=first.status_code, content_type=first.content_type)
        return response


_STORE_SQL = """
INSERT INTO bank_storedresponse (user_id, key, fingerprint, status_code, content_type, body, created_at)
VALUES (%(user)s, %(key)s, %(fingerprint)s, %(status_code)s, %(content_type)s, %(body)s, %(now)s)
ON CONFLICT (user_id, key) DO NOTHING
RETURNING id
"""


def _store_answer(user, key: str, fingerprint: str, response) -> StoredResponse | None:
    """Store the response as the key's answer; or, when another request stored
    one first, return that one."""
    fields = {"fingerprint": fingerprint, "status_code": response.status_code, "body": response.content}
    fields["content_type"] = response["Content-Type"]
    if connection.vendor == "postgresql":
        # ON CONFLICT instead of catching the duplicate: one round trip, no savepoint.
        if fetch(_STORE_SQL, {"user": user.pk, "key": key, "now": timezone.now(), **fields}):
            return None
    else:
        try:
            insert_unique(StoredResponse, user=user, key=key, **fields)
            return None
        except IntegrityError:
            pass
    return StoredResponse.objects.get(user=user, key=key)


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b"\n" + request.get_full_path().encode() + b"\n")
    digest.update(request._request.body)  # the raw bytes, read before DRF parses them
    return digest.hexdigest()


def _is_decided(response) -> bool:
    """A success, or a refusal by the bank's rules (a typed error), is the request's answer for good."""
    return 200 <= response.status_code < 300 or getattr(response, "decided_by_bank", False)
