"""Small helpers the wallet API's views share."""

from rest_framework import serializers

from voucher.api.serializers import PaymentSerializer
from voucher.models import Merchant, Payment


def query(serializer_class: type[serializers.Serializer], request) -> dict:
    """Validated query parameters (400 invalid_request with field details otherwise).
    A parameter given twice or given empty is refused, not read as absent."""
    fields = serializer_class().fields
    odd = {
        name: ["Give this parameter once, with a value."]
        for name in fields
        if name in request.query_params
        and (len(request.query_params.getlist(name)) > 1 or not request.query_params[name])
    }
    if odd:
        raise serializers.ValidationError(odd)
    data = serializer_class(data={name: request.query_params[name] for name in fields if name in request.query_params})
    data.is_valid(raise_exception=True)
    return data.validated_data


def body(serializer_class: type[serializers.Serializer], request) -> dict:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


def merchant_ref(merchant: Merchant) -> dict:
    return {"id": merchant.pk, "name": merchant.name, "category": merchant.category, "district": merchant.district}


def payment_data(payment) -> dict:
    """A Payment as PaymentSerializer shows it (lots and refunds prefetched by the caller)."""
    return {
        "id": payment.pk,
        "merchant": merchant_ref(payment.merchant),
        "amount": payment.amount,
        "refunded_amount": payment.refunded_amount,
        "refundable": payment.refundable,
        "cashback_amount": payment.cashback_amount,
        "reference": payment.reference,
        "created_at": payment.created_at,
        "entry": payment.entry,
        "lots": list(payment.lots.all()),
        "refunds": list(payment.refunds.all()),
    }


# DRF deep-copies a serializer's declared fields for every instance, the nested
# lot, refund and merchant serializers included: about 0.3 ms, ten times the
# rendering itself. Rendering only reads the bound fields, so the responses to
# payments share one instance.
_PAYMENT_OUTPUT = PaymentSerializer()


def render_payment(payment) -> dict:
    """A Payment as PaymentSerializer renders it (lots and refunds prefetched by the caller)."""
    return _PAYMENT_OUTPUT.to_representation(payment_data(payment))


def payment_queryset():
    return Payment.objects.select_related("merchant", "entry").prefetch_related("lots", "refunds__entry")
