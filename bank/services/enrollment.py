"""Enrolling and revoking device keys from a holder's app: what an API token alone must never do.

A new key is enrolled only when an active key of the same holder signs the
request, or with a one-time enrollment code a teller issued after checking the
holder's identity (a first phone, or after the last key was revoked). A key is
revoked from the app only by a request an active key of the holder signed (the
key itself may sign its own revocation). docs/SIGNING.md is the client's recipe.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bank import errors, identity
from bank.models import DeviceKey, EnrollmentCode, Party
from bank.services.audit import record_audit
from bank.services.controls import require_reason, require_role
from bank.services.identity import (
    check_possession,
    check_signature,
    consume_nonce,
    has_active_device,
    revoke_device_key,
    store_device_key,
)

ISSUE_PERMISSION = "bank.issue_enrollment_code"
# No 0/O, 1/I/L or U: a code is read out or typed from paper. 16 of 30 symbols are 78 bits,
# beyond guessing through a throttled API, so a plain SHA-256 digest is enough to store.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CODE_LENGTH = 16


def normalize_code(code: str) -> str:
    """The code as stored: upper case, without the dashes and spaces it is shown with."""
    return "".join(code.split()).replace("-", "").upper() if isinstance(code, str) else ""


def code_digest(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def issue_enrollment_code(*, actor, party: Party, reason: str) -> tuple[EnrollmentCode, str]:
    """A new one-time code for `party`, to be shown once to the teller and handed to the holder.

    The teller checked the holder's identity first (the reason records how). An
    older code of the holder still unused is voided: one live code per holder."""
    require_role(actor, ISSUE_PERMISSION)
    reason = require_reason(reason)
    plain = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    with transaction.atomic():
        live = EnrollmentCode.objects.select_for_update().filter(party=party, status=EnrollmentCode.Status.ISSUED)
        voided = sorted(live.values_list("pk", flat=True))
        EnrollmentCode.objects.filter(pk__in=voided).update(status=EnrollmentCode.Status.VOIDED)
        code = EnrollmentCode.objects.create(
            party=party,
            digest=code_digest(plain),
            issued_by=actor,
            reason=reason,
            expires_at=timezone.now() + timedelta(hours=settings.DEVICE_ENROLLMENT_CODE_HOURS),
        )
        record_audit(
            actor=actor,
            action="enrollment_code.issue",
            target=code,
            after={"party": party.pk, "expires_at": code.expires_at.isoformat(), "voided": voided},
            reason=reason,
        )
    shown = "-".join(plain[i : i + 4] for i in range(0, CODE_LENGTH, 4))
    return code, shown


def enroll_device_key(
    *,
    actor,
    party: Party,
    public_key: bytes,
    label: str,
    proof_message: bytes,
    proof_hex,
    enrollment_code: str = "",
    signed_request: dict,
) -> tuple[DeviceKey, bool]:
    """Enroll a key the caller proved it holds (check_possession). Returns (key, created).

    Authorized by `enrollment_code` when one is given (the holder's, unused,
    unexpired; then used up), else by `signed_request` (check_signature's
    arguments but the party) signed by an active key of the party, whose nonce
    is consumed. The same key enrolled again is returned, nothing written: a
    retry whose answer was lost, since the proof shows the caller holds it."""
    check_possession(public_key=public_key, message=proof_message, proof_hex=proof_hex)
    compressed = identity.compressed_public_key(public_key).hex()
    with transaction.atomic():
        code = _locked_code(party, enrollment_code) if enrollment_code else None
        existing = DeviceKey.objects.filter(party=party, public_key=compressed).first()
        if existing is not None:
            if existing.status != DeviceKey.Status.ACTIVE:
                raise errors.DeviceKeyUnknown("This key was revoked; register a new one.", device=existing.pk)
            return existing, False
        if code is not None:
            if code.status != EnrollmentCode.Status.ISSUED or code.expires_at <= timezone.now():
                raise errors.EnrollmentCodeInvalid()
            how = {"via": "enrollment code", "code": code.pk}
        elif not has_active_device(party):
            raise errors.EnrollmentCodeRequired()
        else:
            approver = check_signature(party=party, **signed_request)
            consume_nonce(device=approver, nonce=signed_request["nonce"])
            how = {"via": "signature", "signed_by": approver.pk}
        device, created = store_device_key(
            party=party, public_key=public_key, label=label, actor=actor, how=how.pop("via"), after=how
        )
        if code is not None:
            code.status, code.used_at, code.device = EnrollmentCode.Status.USED, timezone.now(), device
            code.save(update_fields=["status", "used_at", "device"])
            record_audit(
                actor=actor,
                action="enrollment_code.use",
                target=code,
                before={"status": EnrollmentCode.Status.ISSUED},
                after={"status": code.status, "device": device.pk},
            )
    return device, created


def _locked_code(party: Party, enrollment_code: str) -> EnrollmentCode:
    code = EnrollmentCode.objects.select_for_update().filter(party=party, digest=code_digest(enrollment_code)).first()
    if code is None:
        raise errors.EnrollmentCodeInvalid()
    return code


def revoke_own_device_key(*, actor, device: DeviceKey, signed_request: dict) -> DeviceKey:
    """Revoke `device` from the holder's app: signed by an active key of the same
    holder, or by `device` itself. Revoking a key already revoked writes nothing
    and consumes no nonce, so a retry of the same signed request gets the same answer."""
    with transaction.atomic():
        device = DeviceKey.objects.select_for_update().select_related("party").get(pk=device.pk)
        signer = check_signature(party=device.party, revoked_signer=device, **signed_request)
        if device.status != DeviceKey.Status.ACTIVE:
            return device
        consume_nonce(device=signer, nonce=signed_request["nonce"])
        return revoke_device_key(
            actor=actor, device=device, reason=f"revoked in the holder's app, signed by device key #{signer.pk}"
        )
