"""Signed payloads of devices that are not HTTP requests: a gate's scan, a
sensor's batch of readings, a report upload. One check for all of them: the
signature over bank.identity.signed_payload_message (low s, by an active key
of the holder), and replay protection by a nonce (one use per key and scope,
with a signed timestamp bounding how long it must be remembered) or by a
strictly increasing sequence number per key and scope (for a sensor that
cannot keep nonces). docs/SIGNING.md section 10 is the recipe for devices.

The nonce and the sequence are taken with one INSERT ... ON CONFLICT on a
unique constraint, so two uploads of the same payload racing each other
cannot both pass. Call verify_signed_payload inside the transaction that acts
on the payload: if that work fails and rolls back, the nonce or sequence
number is free again for a corrected retry.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from bank import errors, identity
from bank.models import DeviceKey, Party, PayloadNonce, PayloadSequence
from bank.services.identity import MAX_NONCE_LENGTH

MAX_SEQUENCE = 2**63 - 1


def check_signed_payload(
    *,
    payload: bytes | dict | list,
    signature,
    scope: str,
    device_key: DeviceKey | int | None = None,
    holder: Party | None = None,
    nonce: str | None = None,
    sequence: int | None = None,
    timestamp: int | None = None,
) -> DeviceKey:
    """The active device key that signed `payload` for `scope`, checking nothing
    about replays (verify_signed_payload does): for a payload that may be shown
    many times, such as a pass's QR ticket that every gate checks.

    `device_key` names the key (a DeviceKey or its id); with only `holder`, the
    signature must recover to one of the holder's active keys. Given both, the
    key must be the holder's. `payload` is signed as bytes as they are, or as
    the canonical JSON (identity.canonical_json) of a dict or list.
    """
    if device_key is None and holder is None:
        raise errors.InvalidEntry("Name the device key or its holder.", field="device_key")
    _check_scope(scope)
    body = _payload_bytes(payload)
    raw = _signature_bytes(signature)
    digest = identity.payload_digest(
        identity.signed_payload_message(scope=scope, payload=body, nonce=nonce, sequence=sequence, timestamp=timestamp)
    )
    try:
        signer = identity.recover_signer(digest, raw)
    except identity.MalformedKey:
        raise errors.SignatureInvalid() from None
    keys = DeviceKey.objects.filter(status=DeviceKey.Status.ACTIVE)
    if holder is not None:
        keys = keys.filter(party=holder)
    if device_key is not None:
        wanted = device_key.pk if isinstance(device_key, DeviceKey) else device_key
        if type(wanted) is not int:
            raise errors.DeviceKeyUnknown(device=repr(device_key))
        device = keys.filter(pk=wanted).first()
        if device is None:
            raise errors.DeviceKeyUnknown(device=wanted)
        if device.public_key != signer.hex():
            raise errors.SignatureInvalid()
        return device
    device = keys.filter(public_key=signer.hex()).first()
    if device is None:  # no key of this holder made the signature: the same answer as a wrong one
        raise errors.SignatureInvalid()
    return device


def verify_signed_payload(
    *,
    payload: bytes | dict | list,
    signature,
    scope: str,
    device_key: DeviceKey | int | None = None,
    holder: Party | None = None,
    nonce: str | None = None,
    timestamp: int | None = None,
    sequence: int | None = None,
    window_seconds: int | None = None,
) -> DeviceKey:
    """check_signed_payload, then take the payload's nonce or sequence number, so
    the same signed payload is accepted once. Exactly one of them is given:

    - `nonce` (8-64 characters) with `timestamp` (Unix seconds, signed with it)
      within `window_seconds` (default SIGNED_REQUEST_WINDOW_SECONDS) of now; a
      second use by the key in the scope is signature_replayed;
    - `sequence` (an integer, 0 to 2**63 - 1) above the last one the key sent in
      the scope (gaps allowed: a lost batch is not waited for), else
      sequence_not_increasing.
    """
    if (nonce is None) == (sequence is None):
        raise errors.InvalidEntry("A signed payload carries a nonce or a sequence number, not both.", field="nonce")
    now = timezone.now()
    if nonce is not None:
        if not isinstance(nonce, str) or not 8 <= len(nonce) <= MAX_NONCE_LENGTH:
            raise errors.SignatureInvalid("The nonce must be 8 to 64 characters.", field="nonce")
        window = settings.SIGNED_REQUEST_WINDOW_SECONDS if window_seconds is None else window_seconds
        if type(timestamp) is not int or abs(now.timestamp() - timestamp) > window:
            raise errors.TimestampOutOfWindow(window_seconds=window)
    elif type(sequence) is not int or not 0 <= sequence <= MAX_SEQUENCE:
        raise errors.InvalidEntry(f"A sequence number is an integer from 0 to {MAX_SEQUENCE}.", field="sequence")
    device = check_signed_payload(
        payload=payload,
        signature=signature,
        scope=scope,
        device_key=device_key,
        holder=holder,
        nonce=nonce,
        sequence=sequence,
        timestamp=timestamp,
    )
    if nonce is not None:
        # Kept until the timestamp check alone refuses the payload, plus the window again for clock skew.
        forget_after = datetime.fromtimestamp(timestamp, tz=UTC) + timedelta(seconds=2 * window)
        if not _fetch(_TAKE_NONCE_SQL, [device.pk, scope, nonce, now, forget_after]):
            raise errors.SignatureReplayed(device=device.pk, scope=scope)
    elif not _fetch(_ADVANCE_SEQUENCE_SQL, [device.pk, scope, sequence, now]):
        last = PayloadSequence.objects.filter(device=device, scope=scope).values_list("last_sequence", flat=True)
        raise errors.SequenceNotIncreasing(device=device.pk, scope=scope, last=last.first(), sequence=sequence)
    return device


def forget_old_payload_nonces(*, now: datetime | None = None) -> int:
    """Nonces whose payloads' timestamps are out of any window can never be replayed: drop them."""
    deleted, _ = PayloadNonce.objects.filter(forget_after__lt=now or timezone.now()).delete()
    return deleted


def _check_scope(scope) -> None:
    if not isinstance(scope, str) or not identity.SCOPE_PATTERN.fullmatch(scope):
        raise errors.InvalidEntry("A scope is 1-40 characters of a-z, 0-9, '_', '.', '-'.", field="scope")


def _payload_bytes(payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, dict | list):
        raise errors.PayloadNotCanonical("The payload is bytes, or a JSON object or array.")
    try:
        return identity.canonical_json(payload)
    except identity.NotCanonical as error:
        raise errors.PayloadNotCanonical(str(error)) from None


def _signature_bytes(signature) -> bytes:
    if isinstance(signature, bytes):
        raw = signature
    else:
        try:
            raw = bytes.fromhex(signature)
        except (TypeError, ValueError):
            raise errors.SignatureInvalid("The signature is not hex.") from None
    if len(raw) == 65 and not identity.is_low_s(raw):
        raise errors.SignatureMalleable()
    return raw


def _fetch(sql: str, params: list) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# One statement each, on PostgreSQL and SQLite alike. A racing duplicate waits
# for the first one's transaction: if it committed, the conflict (or the WHERE
# on the row it wrote) refuses the second; if it rolled back, the second goes in.
_TAKE_NONCE_SQL = f"""
INSERT INTO {PayloadNonce._meta.db_table} (device_id, scope, nonce, used_at, forget_after)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (device_id, scope, nonce) DO NOTHING
RETURNING id
"""
_ADVANCE_SEQUENCE_SQL = f"""
INSERT INTO {PayloadSequence._meta.db_table} AS seq (device_id, scope, last_sequence, updated_at)
VALUES (%s, %s, %s, %s)
ON CONFLICT (device_id, scope) DO UPDATE
SET last_sequence = excluded.last_sequence, updated_at = excluded.updated_at
WHERE seq.last_sequence < excluded.last_sequence
RETURNING id
"""
