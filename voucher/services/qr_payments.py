"""QR payments: merchant-presented payment requests (made here, paid once) and
citizen-presented one-time payment codes (charged by the merchant).

Both payloads are signed by a registered device key of the party they speak
for; a signature is checked with coincurve (low-s only), as signed requests
are. The payment itself is voucher.services.pay, in the same transaction.

Lock order: the PaymentRequest row first, then whatever pay() locks (the
wallet and on), so two citizens scanning one request queue on it.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bank import errors as bank_errors
from bank import identity
from bank.models import DeviceKey, Party
from bank.services import consume_nonce, record_audit
from voucher import errors, payment_codes
from voucher.models import Merchant, Payment, PaymentRequest, Wallet
from voucher.services.common import check_amount, check_key
from voucher.services.payments import pay

MAX_REQUEST_SECONDS = 24 * 3600  # a payment request shown at a till lives minutes; a printed one a day at most
# A payment code lives at most this long. Its nonce is remembered for twice the
# signed-request window (bank.services.identity.forget_old_nonces), which must
# stay longer than a code's life so that an old code is refused by its expiry.
MAX_CODE_SECONDS = 120


def check_reference(reference) -> str:
    if not isinstance(reference, str) or len(reference) > 100 or not reference.isprintable():
        raise errors.InvalidRequest("reference must be printable text of at most 100 characters.", field="reference")
    return reference


def check_nonce(nonce) -> str:
    if not isinstance(nonce, str) or not 8 <= len(nonce) <= 64 or not nonce.isascii() or not nonce.isprintable():
        raise errors.InvalidRequest("nonce must be 8 to 64 printable ASCII characters.", field="nonce")
    return nonce


def signing_device(*, party: Party, device_id, message: bytes, signature_hex) -> DeviceKey | None:
    """The party's active device key that signed `message`, or None."""
    if type(device_id) is not int or not isinstance(signature_hex, str):
        return None
    device = DeviceKey.objects.filter(pk=device_id, party=party, status=DeviceKey.Status.ACTIVE).first()
    if device is None:
        return None
    try:
        signature = bytes.fromhex(signature_hex)
        if not identity.is_low_s(signature):
            return None
        signer = identity.recover_signer(payment_codes.message_digest(message), signature)
    except (ValueError, identity.MalformedKey):
        return None
    return device if signer.hex() == device.public_key else None


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def create_payment_request(
    *,
    merchant: Merchant,
    device_id: int,
    amount: int,
    reference: str,
    expires_at: int,
    nonce: str,
    signature_hex: str,
    created_by=None,
) -> tuple[PaymentRequest, bool]:
    """Record a payment request the merchant's device signed. Returns (request, created).

    The nonce is the merchant's: sending the same signed request again returns
    the first; the same nonce with other content is a conflict."""
    check_amount(amount)
    check_reference(reference)
    check_nonce(nonce)
    now = timezone.now().timestamp()
    if type(expires_at) is not int or not now < expires_at <= now + MAX_REQUEST_SECONDS:
        raise errors.InvalidRequest(
            f"expires_at must be a Unix time in the next {MAX_REQUEST_SECONDS} seconds.", field="expires_at"
        )
    message = payment_codes.request_message(
        merchant_id=merchant.pk, amount=amount, reference=reference, expires_at=expires_at, nonce=nonce
    )
    device = signing_device(party=merchant.party, device_id=device_id, message=message, signature_hex=signature_hex)
    if device is None:
        raise errors.PaymentRequestInvalid("The signature is not by an active device key of this merchant.")
    with transaction.atomic():
        request, created = PaymentRequest.objects.get_or_create(
            merchant=merchant,
            nonce=nonce,
            defaults={
                "device": device,
                "amount": amount,
                "reference": reference,
                "expires_at": datetime.fromtimestamp(expires_at, tz=UTC),
                "signature": signature_hex.lower(),
                "created_by": created_by if getattr(created_by, "pk", None) else None,
            },
        )
    if not created and (request.amount, request.reference, _unix(request.expires_at)) != (
        amount,
        reference,
        expires_at,
    ):
        raise bank_errors.IdempotencyConflict("This nonce was used for another payment request.", nonce=nonce)
    return request, created


def request_payload(request: PaymentRequest) -> str:
    """The string the merchant shows as a QR code."""
    return payment_codes.encode_request(
        request_id=request.pk,
        merchant_id=request.merchant_id,
        amount=request.amount,
        reference=request.reference,
        expires_at=_unix(request.expires_at),
        nonce=request.nonce,
        device_id=request.device_id,
        signature_hex=request.signature,
    )


def read_payment_request(payload) -> PaymentRequest:
    """The stored request a payload stands for, checked: signed by the merchant's
    active device key, and not altered. Refuses with payment_request_invalid."""
    try:
        fields = payment_codes.decode_request(payload)
    except payment_codes.MalformedPayload as error:
        raise errors.PaymentRequestInvalid(reason=str(error))
    request = PaymentRequest.objects.select_related("merchant__party", "device").filter(pk=fields["id"]).first()
    if request is None or request.merchant_id != fields["m"]:
        raise errors.PaymentRequestInvalid(reason="unknown request")
    message = payment_codes.request_message(
        merchant_id=fields["m"], amount=fields["a"], reference=fields["r"], expires_at=fields["e"], nonce=fields["n"]
    )
    device = signing_device(
        party=request.merchant.party, device_id=fields["d"], message=message, signature_hex=fields["s"]
    )
    stored = (request.amount, request.reference, _unix(request.expires_at), request.nonce, request.device_id)
    if device is None or stored != (fields["a"], fields["r"], fields["e"], fields["n"], fields["d"]):
        raise errors.PaymentRequestInvalid(reason="signature or fields do not match")
    return request


def pay_payment_request(*, wallet: Wallet, payload: str, idempotency_key: str, acting_user=None) -> Payment:
    """Pay a merchant-presented request: its amount, to its merchant, with its reference, once.
    `acting_user` (the wallet's holder) is named in the payment's audit row, as in pay()."""
    check_key(idempotency_key)
    request = read_payment_request(payload)
    with transaction.atomic():
        request = (
            PaymentRequest.objects.select_for_update(of=("self",))
            .select_related("merchant", "payment")
            .get(pk=request.pk)
        )
        if request.payment is not None:
            earlier = request.payment
            if (earlier.wallet_id, earlier.idempotency_key) == (wallet.pk, idempotency_key):
                return earlier  # this wallet's retry
            raise errors.PaymentRequestUsed(payment_request=request.pk)
        if request.status == PaymentRequest.Status.CANCELLED:
            raise errors.PaymentRequestCancelled(payment_request=request.pk)
        if request.expires_at <= timezone.now():
            raise errors.PaymentRequestExpired(payment_request=request.pk, expired_at=request.expires_at.isoformat())
        payment = pay(
            wallet=wallet,
            merchant=request.merchant,
            amount=request.amount,
            idempotency_key=idempotency_key,
            reference=request.reference,
            acting_user=acting_user,
        )
        # Conditional, so that even without row locks (SQLite) a request is paid once.
        marked = PaymentRequest.objects.filter(pk=request.pk, status=PaymentRequest.Status.OPEN).update(
            status=PaymentRequest.Status.PAID, payment=payment
        )
        if not marked:
            raise errors.PaymentRequestUsed(payment_request=request.pk)
        return payment


def cancel_payment_request(*, merchant: Merchant, payment_request: PaymentRequest, actor) -> PaymentRequest:
    """Withdraw an open request (the customer left, the amount was wrong): nobody can pay it
    afterwards. Cancelling it again changes nothing; a paid request is refunded, not cancelled."""
    with transaction.atomic():
        request = PaymentRequest.objects.select_for_update(of=("self",)).get(pk=payment_request.pk)
        if request.merchant_id != merchant.pk:
            raise errors.PaymentRequestInvalid(reason="not this merchant's request")
        if request.status == PaymentRequest.Status.PAID:
            raise errors.PaymentRequestUsed(payment_request=request.pk)
        if request.status == PaymentRequest.Status.OPEN:
            request.status = PaymentRequest.Status.CANCELLED
            request.save(update_fields=["status"])
            record_audit(
                actor=actor,
                action="payment_request.cancel",
                target=request,
                before={"status": PaymentRequest.Status.OPEN},
                after={"status": request.status},
            )
    return request


def charge_payment_code(
    *, merchant: Merchant, code: str, amount: int, idempotency_key: str, reference: str = "", acting_user=None
) -> Payment:
    """Charge `amount` to the wallet whose device signed `code`, once, while the code lives.
    `acting_user` (the merchant's member who charged it) is named in the payment's audit row."""
    check_amount(amount)
    check_key(idempotency_key)
    check_reference(reference)
    try:
        fields = payment_codes.decode_code(code)
    except payment_codes.MalformedPayload as error:
        raise errors.PaymentCodeInvalid(reason=str(error))
    wallet = Wallet.objects.select_related("owner").filter(pk=fields["w"]).first()
    message = payment_codes.code_message(wallet_id=fields["w"], expires_at=fields["e"], nonce=fields["n"])
    device = None
    if wallet is not None:
        device = signing_device(party=wallet.owner, device_id=fields["d"], message=message, signature_hex=fields["s"])
    if device is None:
        raise errors.PaymentCodeInvalid(reason="signature does not match")
    with transaction.atomic():
        if Payment.objects.filter(wallet=wallet, idempotency_key=idempotency_key).exists():
            # A retry: pay() returns the first payment, or refuses a changed one.
            return pay(
                wallet=wallet,
                merchant=merchant,
                amount=amount,
                idempotency_key=idempotency_key,
                reference=reference,
                acting_user=acting_user,
            )
        now = timezone.now().timestamp()
        if fields["e"] <= now:
            raise errors.PaymentCodeExpired()
        if fields["e"] > now + min(MAX_CODE_SECONDS, 2 * settings.SIGNED_REQUEST_WINDOW_SECONDS):
            raise errors.PaymentCodeInvalid(reason=f"a code lives at most {MAX_CODE_SECONDS} seconds")
        try:
            consume_nonce(device=device, nonce="code:" + check_nonce(fields["n"]))
        except bank_errors.NonceReplayed:
            raise errors.PaymentCodeUsed()
        except errors.InvalidRequest:
            raise errors.PaymentCodeInvalid(reason="bad nonce")
        # A refused payment rolls the nonce back with it, so the code may be charged again correctly.
        return pay(
            wallet=wallet,
            merchant=merchant,
            amount=amount,
            idempotency_key=idempotency_key,
            reference=reference,
            acting_user=acting_user,
        )
