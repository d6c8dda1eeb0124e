"""Device keys: registering and revoking them, and checking a signed request.

check_signed_request proves the device's owner authorized exactly this request
and consumes its nonce in the caller's transaction, so a replay is refused and
a request that failed for another reason can be retried with a new nonce.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from bank import errors, identity
from bank.models import DeviceKey, Party, StoredResponse, UsedNonce
from bank.prepared import fetch
from bank.services.audit import record_audit
from bank.services.unique_insert import insert_unique

MAX_NONCE_LENGTH = 64
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658; anything longer is out of any window


def register_device_key(*, party: Party, public_key: bytes, label: str = "", actor=None) -> DeviceKey:
    """Register a public key for a party as the bank's own setup step: the portal's
    derived key, the demo, the bench, tests. No holder reaches this with a token:
    the API enrolls through bank.services.enrollment.enroll_device_key. Registering
    the same key again returns it; a new key is audited."""
    device, _ = store_device_key(party=party, public_key=public_key, label=label, actor=actor, how="bank setup")
    return device


def store_device_key(
    *, party: Party, public_key: bytes, label: str, actor, how: str, after=None
) -> tuple[DeviceKey, bool]:
    """Write (or find) the key; the caller has authorized the enrollment. Returns (key, created)."""
    try:
        compressed = identity.compressed_public_key(public_key)
    except identity.MalformedKey:
        raise errors.InvalidPublicKey()
    with transaction.atomic():
        device, created = DeviceKey.objects.get_or_create(
            party=party,
            public_key=compressed.hex(),
            defaults={"did": identity.did_key(compressed), "label": label[:80]},
        )
        if device.status != DeviceKey.Status.ACTIVE:
            raise errors.DeviceKeyUnknown("This key was revoked; register a new one.", device=device.pk)
        if created:
            record_audit(
                actor=actor,
                action="device_key.enroll",
                target=device,
                after={"party": party.pk, "did": device.did, "label": device.label, "via": how, **(after or {})},
            )
    return device, created


def check_possession(*, public_key: bytes, message: bytes, proof_hex) -> None:
    """The new key itself signed `message` (identity.device_proof_message), low-s."""
    try:
        proof = bytes.fromhex(proof_hex) if isinstance(proof_hex, str) else b""
    except ValueError:
        proof = b""
    if len(proof) == 65 and not identity.is_low_s(proof):
        raise errors.SignatureMalleable()
    try:
        signer = identity.recover_signer(identity.payload_digest(message), proof)
    except identity.MalformedKey:
        raise errors.DeviceProofInvalid()
    if signer != identity.compressed_public_key(public_key):
        raise errors.DeviceProofInvalid()


def has_active_device(party: Party) -> bool:
    return DeviceKey.objects.filter(party=party, status=DeviceKey.Status.ACTIVE).exists()


def revoke_device_key(*, actor, device: DeviceKey, reason: str) -> DeviceKey:
    """Revoke a key (a lost phone). Audited; the key can never sign again."""
    with transaction.atomic():
        device = DeviceKey.objects.select_for_update().get(pk=device.pk)
        before = device.status
        device.status = DeviceKey.Status.REVOKED
        device.revoked_at = device.revoked_at or timezone.now()
        device.save(update_fields=["status", "revoked_at"])
        record_audit(
            actor=actor,
            action="device_key.revoke",
            target=device,
            before={"status": before},
            after={"status": device.status},
            reason=reason,
        )
    return device


def check_signature(
    *,
    party: Party,
    device_id,
    method: str,
    path: str,
    body: bytes,
    nonce: str,
    timestamp,
    signature_hex: str,
    device: DeviceKey | None = None,
    revoked_signer: DeviceKey | None = None,
) -> DeviceKey:
    """Check a request's signature without consuming its nonce (see consume_nonce).

    `device` is the key `device_id` names when the caller has read it already
    (with the party's other rows); it is used only if it is that party's active key.
    `revoked_signer` may sign even when revoked: the key a revocation names, so
    the retry of a phone's revocation of its own key is still answered."""
    if not all([device_id, nonce, timestamp, signature_hex]):
        raise errors.SignatureMissing()
    wanted = _as_int(device_id)
    if revoked_signer is not None and revoked_signer.pk == wanted and revoked_signer.party_id == party.pk:
        device = revoked_signer
    elif not (
        device is not None
        and device.pk == wanted
        and device.party_id == party.pk
        and device.status == DeviceKey.Status.ACTIVE
    ):
        device = DeviceKey.objects.filter(pk=wanted, party=party, status=DeviceKey.Status.ACTIVE).first()
    if device is None:
        raise errors.DeviceKeyUnknown(device=str(device_id))
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= MAX_NONCE_LENGTH:
        raise errors.SignatureInvalid("The nonce must be 8 to 64 characters.", field="nonce")
    signed_at = _as_timestamp(timestamp)
    window = settings.SIGNED_REQUEST_WINDOW_SECONDS
    if signed_at is None or abs(timezone.now().timestamp() - signed_at) > window:
        raise errors.TimestampOutOfWindow(window_seconds=window)
    try:
        signature = bytes.fromhex(signature_hex)
    except (ValueError, TypeError):
        raise errors.SignatureInvalid("The signature is not hex.")
    if len(signature) == 65 and not identity.is_low_s(signature):
        raise errors.SignatureMalleable()
    digest = identity.payload_digest(
        identity.request_payload(method=method, path=path, body=body, nonce=nonce, timestamp=signed_at)
    )
    try:
        signer = identity.recover_signer(digest, signature)
    except identity.MalformedKey:
        raise errors.SignatureInvalid()
    if signer.hex() != device.public_key:
        raise errors.SignatureInvalid()
    return device


def consume_nonce(*, device: DeviceKey, nonce: str) -> None:
    """Mark the nonce used; a second use raises NonceReplayed. Call inside the
    transaction that does the request's work, so a failed request frees it."""
    if connection.vendor == "postgresql":
        # ON CONFLICT instead of catching the duplicate: one round trip, no savepoint.
        if not fetch(_CONSUME_NONCE_SQL, {"device": device.pk, "nonce": nonce, "now": timezone.now()}):
            raise errors.NonceReplayed()
        return
    try:
        insert_unique(UsedNonce, device=device, nonce=nonce, used_at=timezone.now())
    except IntegrityError:
        raise errors.NonceReplayed()


def stored_response_or_consume_nonce(*, user, key: str, device: DeviceKey, nonce: str) -> StoredResponse | None:
    """The API's stored answer to `user`'s Idempotency-Key `key`, if there is one
    (a retry: its nonce was consumed by the first attempt); otherwise consume the
    nonce (consume_nonce) and return None. One statement on PostgreSQL.

    A retry sent while the first attempt is still running waits here: the
    first attempt's transaction holds the (device, nonce) row, so the insert
    waits for it to end. If it rolled back (it failed, or its answer was one
    that is not stored), the nonce is free and this is the first attempt. If it
    committed, its answer was committed with the nonce, after this statement's
    snapshot was taken: a second statement (READ COMMITTED) reads it."""
    if connection.vendor != "postgresql":
        stored = StoredResponse.objects.filter(user=user, key=key).first()
        if stored is None:
            try:
                consume_nonce(device=device, nonce=nonce)
            except errors.NonceReplayed:
                return _stored_answer_of_first_attempt(user, key)
        return stored
    rows = fetch(
        _STORED_OR_CONSUME_SQL,
        {"user": user.pk, "key": key, "device": device.pk, "nonce": nonce, "now": timezone.now()},
    )
    if not rows:
        return _stored_answer_of_first_attempt(user, key)
    stored_id, fingerprint, status_code, content_type, body, consumed = rows[0]
    if consumed:
        return None
    return StoredResponse(
        id=stored_id,
        user=user,
        key=key,
        fingerprint=fingerprint,
        status_code=status_code,
        content_type=content_type,
        body=bytes(body),
    )


def _stored_answer_of_first_attempt(user, key: str) -> StoredResponse:
    """The nonce is used: by this key's first attempt, which committed its answer
    while we waited (the caller compares the request's fingerprint with it), or
    by another request (a replay under a new key): nonce_replayed."""
    stored = StoredResponse.objects.filter(user=user, key=key).first()
    if stored is None:
        raise errors.NonceReplayed()
    return stored


_INSERT_NONCE = """
    INSERT INTO bank_usednonce (device_id, nonce, used_at) SELECT %(device)s, %(nonce)s, %(now)s {condition}
    ON CONFLICT (device_id, nonce) DO NOTHING
    RETURNING id
"""
_CONSUME_NONCE_SQL = _INSERT_NONCE.format(condition="")
# A data-modifying WITH runs once whatever the outer query reads; its NOT EXISTS
# keeps a retry (stored answer) from consuming anything. No row comes back when
# the key is new and the nonce was used before.
_STORED_OR_CONSUME_SQL = f"""
WITH stored AS (
    SELECT id, fingerprint, status_code, content_type, body FROM bank_storedresponse
    WHERE user_id = %(user)s AND key = %(key)s
), consumed AS ({_INSERT_NONCE.format(condition="WHERE NOT EXISTS (SELECT 1 FROM stored)")})
SELECT id, fingerprint, status_code, content_type, body, false FROM stored
UNION ALL
SELECT id, NULL, NULL, NULL, NULL, true FROM consumed
"""


def forget_old_nonces(*, now=None) -> int:
    """Nonces older than twice the timestamp window can never be replayed (the
    timestamp check refuses them first), so they need not be kept."""
    cutoff = (now or timezone.now()) - timedelta(seconds=2 * settings.SIGNED_REQUEST_WINDOW_SECONDS)
    deleted, _ = UsedNonce.objects.filter(used_at__lt=cutoff).delete()
    return deleted


def _as_timestamp(value) -> int | None:
    """Unix seconds as sent: ASCII digits only, at most MAX_TIMESTAMP_DIGITS, so
    that no header can overflow the arithmetic of the window check."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > MAX_TIMESTAMP_DIGITS:
        return None
    return int(value)


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
