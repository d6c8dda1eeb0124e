"""Serializers of the wallet API: what each request may carry and what each
response holds. Money is a whole number of won: an amount given as a float,
a string or a boolean is refused (400 invalid_request), never coerced."""

import re
from datetime import date

from django.core.validators import MaxValueValidator, MinValueValidator
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bank.models import MAX_AMOUNT  # far above any limit; keeps sums inside a 64-bit integer
from voucher import payment_codes
from voucher.models import District, KycTier, MerchantCategory, MerchantMember, VoucherProgram
from voucher.selectors import HISTORY_KINDS

MAX_ID = 2**63 - 1
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON integer: not 1.0, not "1", not true."""

    default_error_messages = {"invalid": "A whole number (JSON integer) is required."}

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        return data


class QueryIntegerField(serializers.IntegerField):
    """An integer query parameter written as digits (not "1.0", not "1e3")."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.fullmatch(r"-?[0-9]{1,20}", data):
            self.fail("invalid")
        return super().to_internal_value(data)


def amount_field(**kwargs) -> StrictIntegerField:
    kwargs.setdefault("help_text", "Whole won (JSON integer).")
    return StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, **kwargs)


def id_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class TextField(serializers.CharField):
    """Text that is safe to store and sign: printable characters only (no control
    characters, no lone surrogates)."""

    default_error_messages = {"unprintable": "Only printable characters are allowed."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.isprintable() or any("\ud800" <= ch <= "\udfff" for ch in value):
            self.fail("unprintable")
        return value


def _printable_bmp_pattern() -> str:
    """TextField's rule as a pattern a client's regex engine reads (JavaScript's and
    Python's alike): the printable characters of the Basic Multilingual Plane, listed
    as ranges. The server also takes printable characters beyond it (emoji); a client
    kept to this pattern never sends what is always refused."""
    ranges, start = [], None
    for point in range(0x10000):
        printable = chr(point).isprintable() and not 0xD800 <= point <= 0xDFFF
        if printable and start is None:
            start = point
        elif not printable and start is not None:
            ranges.append((start, point - 1))
            start = None
    if start is not None:
        ranges.append((start, 0xFFFF))
    return "^[" + "".join(f"\\u{a:04x}" + (f"-\\u{b:04x}" if b > a else "") for a, b in ranges) + "]*$"


class TextFieldSchema(OpenApiSerializerFieldExtension):
    """TextField in the schema: a string with its lengths, and the printable rule as a pattern."""

    target_class = TextField
    match_subclasses = True
    pattern = _printable_bmp_pattern()

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        return {**schema, "pattern": self.pattern}


def reference_field(**kwargs) -> TextField:
    return TextField(
        max_length=100, allow_blank=True, trim_whitespace=False, help_text="The merchant's order reference.", **kwargs
    )


# An ISO day in FIRST_DAY's year to LAST_DAY's (change them together): OpenAPI 3.0
# cannot bound a date, a pattern can.
DAY_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


@extend_schema_field({"type": "string", "format": "date", "pattern": DAY_PATTERN})
class DayField(serializers.DateField):
    """A day (YYYY-MM-DD) between FIRST_DAY and LAST_DAY, as the schema says."""


def _day(**kwargs) -> DayField:
    # Bounded, so that a far-off day never overflows the day arithmetic behind it.
    bounds = [MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)]
    return DayField(required=False, validators=bounds, **kwargs)


def _payload_schema(prefix: str) -> dict:
    """What a QR payload looks like (voucher.payment_codes): its prefix, then base64url.
    Anything else is refused; a payload of this shape may still be unknown or altered."""
    return {
        "type": "string",
        "pattern": f"^{re.escape(prefix)}[A-Za-z0-9_-]+$",
        "maxLength": payment_codes.MAX_PAYLOAD_LENGTH,
    }


@extend_schema_field(_payload_schema(payment_codes.REQUEST_PREFIX))
class PaymentRequestPayloadField(TextField):
    def __init__(self, **kwargs):
        super().__init__(max_length=payment_codes.MAX_PAYLOAD_LENGTH, **kwargs)


@extend_schema_field(_payload_schema(payment_codes.CODE_PREFIX))
class PaymentCodeField(TextField):
    def __init__(self, **kwargs):
        super().__init__(max_length=payment_codes.MAX_PAYLOAD_LENGTH, **kwargs)


# --- shared pieces ------------------------------------------------------------------------------


class MerchantRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    category = serializers.ChoiceField(choices=MerchantCategory.choices)
    district = serializers.ChoiceField(choices=District.choices)


class ProgramRefSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=VoucherProgram.Kind.choices)


# --- devices ------------------------------------------------------------------------------------

HOLDERS = [("wallet", "the login's wallet"), ("merchant", "the merchant the login acts for")]


class DeviceRegisterSerializer(serializers.Serializer):
    public_key = serializers.RegexField(
        r"^(0[23][0-9a-fA-F]{64}|04[0-9a-fA-F]{128})$",
        help_text="SEC1 secp256k1 public key, hex: compressed (66 digits) or uncompressed (130).",
    )
    label = TextField(max_length=80, required=False, default="", allow_blank=True)
    holder = serializers.ChoiceField(
        choices=HOLDERS, required=False, help_text="Whose key: default the wallet, else the merchant."
    )
    proof = serializers.RegexField(
        r"^[0-9a-fA-F]{130}$",
        help_text="Proof that the phone holds the key: hex of the new key's 65-byte recoverable low-s signature "
        'over SHA-256 of the lines "BKRW-DEVICE-KEY-1", the login\'s username, the holder ("wallet" or '
        '"merchant") and the compressed public key in hex, joined by "\\n".',
    )
    enrollment_code = serializers.CharField(
        max_length=40,
        required=False,
        help_text="The one-time code the bank's counter gave after checking the holder's identity "
        '(e.g. "ABCD-EFGH-JKMN-PQRS"; case, dashes and spaces do not matter). Needed when the holder has no '
        "active device key to sign this request (a first phone, or the last one revoked); then the request "
        "need not be signed.",
    )


class DeviceSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Send as X-Device-Key on signed requests.")
    did = serializers.CharField(help_text="did:key identifier of the public key.")
    public_key = serializers.CharField()
    label = serializers.CharField()
    holder = serializers.ChoiceField(choices=HOLDERS)
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


# --- wallet -------------------------------------------------------------------------------------


class WalletQuerySerializer(serializers.Serializer):
    merchant = QueryIntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Also show what is spendable at this merchant."
    )


class LotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    program = ProgramRefSerializer(allow_null=True, help_text="null: paid-in tokens, spendable everywhere.")
    expires_on = serializers.DateField(help_text="Spendable through this day (Asia/Seoul).")
    balance = serializers.IntegerField()
    is_transferable = serializers.BooleanField()


class SpendableLotSerializer(serializers.Serializer):
    lot = serializers.IntegerField()
    amount = serializers.IntegerField()


class SpendableSerializer(serializers.Serializer):
    merchant = MerchantRefSerializer()
    total = serializers.IntegerField()
    lots = SpendableLotSerializer(many=True, help_text="In the order a payment would spend them.")


class WalletSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Give this to someone who sends you tokens.")
    status = serializers.CharField()
    kyc_tier = serializers.ChoiceField(choices=KycTier.choices)
    balance = serializers.IntegerField()
    held = serializers.IntegerField(
        help_text="Part of the balance reserved by open holds (a pass bought, not yet used): not spendable."
    )
    max_balance = serializers.IntegerField(help_text="Most the wallet may hold at its KYC tier.")
    lots = LotSerializer(many=True)
    spendable = SpendableSerializer(allow_null=True, help_text="Only with ?merchant=.")


class HistoryQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(HISTORY_KINDS), required=False)
    since = _day(help_text="First day (Asia/Seoul), included.")
    until = _day(help_text="Last day (Asia/Seoul), included.")


class HistoryBenefitSerializer(serializers.Serializer):
    program = serializers.CharField(source="program.code")
    amount = serializers.IntegerField()


class HistoryItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The ledger entry's id.")
    kind = serializers.CharField(help_text=f"One of {', '.join(HISTORY_KINDS)}.")
    amount = serializers.IntegerField(help_text="Change of the wallet's balance, won (negative: out).")
    created_at = serializers.DateTimeField()
    reference = serializers.CharField()
    merchant = MerchantRefSerializer(allow_null=True)
    payment = serializers.IntegerField(allow_null=True, help_text="The payment paid or refunded.")
    counterparty_wallet = serializers.IntegerField(allow_null=True, help_text="The other wallet of a transfer.")
    benefits = HistoryBenefitSerializer(many=True, help_text="Bonus, cashback, grant or reward in this entry.")
    entry_hash = serializers.CharField()


class TopUpInputSerializer(serializers.Serializer):
    amount = amount_field()


class TopUpSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField()
    bonus_amount = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    entry_hash = serializers.CharField(source="entry.hash")


class PayInputSerializer(serializers.Serializer):
    merchant = id_field(required=False, help_text="Pay this merchant `amount`; or give payment_request.")
    amount = amount_field(required=False)
    reference = reference_field(required=False, default="")
    payment_request = PaymentRequestPayloadField(
        required=False, help_text="A merchant-presented QR payload: its amount to its merchant."
    )

    def validate(self, data):
        if ("merchant" in data) == ("payment_request" in data):
            raise serializers.ValidationError("Give either merchant (with amount) or payment_request.")
        if "merchant" in data and "amount" not in data:
            raise serializers.ValidationError({"amount": "Required when paying a merchant by id."})
        if "payment_request" in data and ("amount" in data or data.get("reference")):
            raise serializers.ValidationError("A payment request carries its own amount and reference.")
        return data


class PaymentLotSerializer(serializers.Serializer):
    lot = serializers.IntegerField(source="lot_id")
    amount = serializers.IntegerField()
    refunded_amount = serializers.IntegerField()


class RefundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    payment = serializers.IntegerField(source="payment_id")
    amount = serializers.IntegerField()
    to_funder_amount = serializers.IntegerField(help_text="Part that went back to funders (expired lots).")
    cashback_clawed_back = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    entry_hash = serializers.CharField(source="entry.hash")


class PaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    merchant = MerchantRefSerializer()
    amount = serializers.IntegerField()
    refunded_amount = serializers.IntegerField()
    refundable = serializers.IntegerField()
    cashback_amount = serializers.IntegerField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()
    entry_hash = serializers.CharField(source="entry.hash")
    lots = PaymentLotSerializer(many=True, help_text="What the payment took from each lot, in spend order.")
    refunds = RefundSerializer(many=True)


class TransferInputSerializer(serializers.Serializer):
    to_wallet = id_field(help_text="The receiver's wallet id.")
    amount = amount_field()


class TransferSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    to_wallet = serializers.IntegerField(source="to_wallet_id")
    amount = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    entry_hash = serializers.CharField(source="entry.hash")


class RedemptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Won paid back to the deposit account.")
    paid_in = serializers.IntegerField(help_text="Paid-in total the used share was measured against.")
    created_at = serializers.DateTimeField()
    entry_hash = serializers.CharField(source="entry.hash")


# --- merchants ----------------------------------------------------------------------------------


class MerchantDirectoryQuerySerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=MerchantCategory.choices, required=False)
    district = serializers.ChoiceField(choices=District.choices, required=False)


class MerchantProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    business_registration_number = serializers.CharField()
    category = serializers.ChoiceField(choices=MerchantCategory.choices)
    district = serializers.ChoiceField(choices=District.choices)
    status = serializers.CharField()
    role = serializers.ChoiceField(choices=MerchantMember.Role.choices, help_text="Your role at this merchant.")
    token_balance = serializers.IntegerField(help_text="BKRW received and not yet settled.")


class DateRangeQuerySerializer(serializers.Serializer):
    since = _day(help_text="First day (Asia/Seoul), included.")
    until = _day(help_text="Last day (Asia/Seoul), included.")


class RefundInputSerializer(serializers.Serializer):
    amount = amount_field(required=False, help_text="Whole won to refund; default: all that is left.")


class ChargeInputSerializer(serializers.Serializer):
    code = PaymentCodeField(help_text="The citizen-presented one-time payment code (QR payload).")
    amount = amount_field()
    reference = reference_field(required=False, default="")


@extend_schema_field({"type": "string", "pattern": "^[ -~]{8,64}$", "minLength": 8, "maxLength": 64})
class PaymentRequestNonceField(TextField):
    """The nonce of a payment request: printable ASCII, as create_payment_request checks."""

    def __init__(self, **kwargs):
        super().__init__(min_length=8, max_length=64, **kwargs)


class PaymentRequestInputSerializer(serializers.Serializer):
    amount = amount_field()
    reference = reference_field(required=False, default="")
    expires_at = StrictIntegerField(min_value=0, max_value=MAX_ID, help_text="Unix seconds; at most a day ahead.")
    nonce = PaymentRequestNonceField(help_text="Unique per merchant; 8-64 printable ASCII characters.")
    device_key = id_field(help_text="Id of the merchant device key that signed.")
    signature = serializers.RegexField(
        r"^[0-9a-fA-F]{130}$",
        help_text="Hex of the 65-byte low-s recoverable signature over SHA-256 of the compact JSON array "
        '["BKRW-PAYMENT-REQUEST-1", merchant id, amount, reference, expires_at, nonce].',
    )


class PaymentRequestPreviewQuerySerializer(serializers.Serializer):
    payload = PaymentRequestPayloadField()


class PaymentRequestPreviewSerializer(serializers.Serializer):
    """What the citizen's app shows before paying a scanned request."""

    id = serializers.IntegerField()
    merchant = MerchantRefSerializer()
    amount = serializers.IntegerField()
    reference = serializers.CharField()
    expires_at = serializers.DateTimeField()
    status = serializers.CharField()
    is_expired = serializers.BooleanField()
    device_did = serializers.CharField(source="device.did", help_text="The merchant key that signed it.")


class PaymentRequestSerializer(PaymentRequestPreviewSerializer):
    """The merchant's own view of a request: the preview plus its payment, payload and QR images."""

    payment = serializers.IntegerField(source="payment_id", allow_null=True)
    payload = serializers.CharField(help_text="Show this as a QR code; the citizen's app pays with it.")
    qr_png = serializers.CharField(help_text="Path of the QR code as PNG.")
    qr_svg = serializers.CharField(help_text="Path of the QR code as SVG.")


# --- programs and benefits ----------------------------------------------------------------------


class ProgramSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=VoucherProgram.Kind.choices)
    applies_automatically = serializers.BooleanField(help_text="Bonus and cashback programs apply by themselves.")
    expires_on = serializers.DateField(allow_null=True)
    valid_days = serializers.IntegerField(allow_null=True)
    eligible_categories = serializers.ListField(child=serializers.CharField())
    excluded_categories = serializers.ListField(child=serializers.CharField())
    eligible_districts = serializers.ListField(child=serializers.CharField())
    max_merchant_annual_revenue = serializers.IntegerField(allow_null=True)
    is_transferable = serializers.BooleanField()
    my_balance = serializers.IntegerField(allow_null=True, help_text="Wallet holders: unexpired tokens held.")


class BenefitSerializer(serializers.Serializer):
    program = serializers.CharField()
    month = serializers.DateField()
    benefit_used = serializers.IntegerField()
    benefit_cap = serializers.IntegerField(allow_null=True)
    benefit_left = serializers.IntegerField(allow_null=True)
    base_used = serializers.IntegerField(help_text="Top-up or spending that earned a bonus this month.")
    base_limit = serializers.IntegerField(allow_null=True)
    base_left = serializers.IntegerField(allow_null=True)
    budget_left = serializers.IntegerField()


class SupplierPaymentInputSerializer(serializers.Serializer):
    payee = id_field(help_text="The merchant (supplier) paid.")
    amount = amount_field()
    reference = reference_field(required=False, default="")


class SupplierPaymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    payer = MerchantRefSerializer()
    payee = MerchantRefSerializer()
    amount = serializers.IntegerField()
    reference = serializers.CharField()
    created_at = serializers.DateTimeField()
    entry_hash = serializers.CharField(source="entry.hash")
