"""The merchant side: profile, payments received, refunds, charging a citizen's
one-time code, and merchant-presented QR payment requests.

A merchant acts through its members' logins (owner or clerks); money-moving
POSTs are signed by one of the merchant's device keys.
"""

import io

import segno
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from bank.http.errors import error_responses
from bank.http.schema import READ_ERRORS, SIGNED_POST_ERRORS, SIGNED_POST_HEADERS
from voucher import errors, selectors, services
from voucher.api.access import IsMerchantMember, MerchantSignedPostMixin, membership_of
from voucher.api.pagination import StrictLimitOffsetPagination
from voucher.api.serializers import (
    ChargeInputSerializer,
    DateRangeQuerySerializer,
    MerchantProfileSerializer,
    PaymentRequestInputSerializer,
    PaymentRequestPreviewQuerySerializer,
    PaymentRequestPreviewSerializer,
    PaymentRequestSerializer,
    PaymentSerializer,
    RefundInputSerializer,
    RefundSerializer,
    SupplierPaymentInputSerializer,
    SupplierPaymentSerializer,
)
from voucher.api.views.common import body, merchant_ref, payment_data, payment_queryset, query
from voucher.models import Merchant, MerchantMember, MerchantPayment, PaymentRequest


def _merchant(request):
    return membership_of(request).merchant


@extend_schema(tags=["merchant"])
class MerchantProfileView(GenericAPIView):
    """The merchant the login acts for, with the login's role and the tokens it holds."""

    permission_classes = [IsMerchantMember]
    serializer_class = MerchantProfileSerializer

    @extend_schema(summary="The merchant I act for", responses={200: MerchantProfileSerializer})
    def get(self, request):
        member = membership_of(request)
        merchant = member.merchant
        data = {
            **merchant_ref(merchant),
            "business_registration_number": merchant.business_registration_number,
            "status": merchant.status,
            "role": member.role,
            "token_balance": merchant.token_account.available,
        }
        return Response(MerchantProfileSerializer(data).data)


@extend_schema(tags=["merchant"])
class MerchantPaymentListView(GenericAPIView):
    """Payments the merchant received, with their refunds."""

    permission_classes = [IsMerchantMember]
    serializer_class = PaymentSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(
        summary="Payments received, newest first",
        parameters=[DateRangeQuerySerializer],
        responses={200: PaymentSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        params = query(DateRangeQuerySerializer, request)
        payments = selectors.merchant_payments(_merchant(request), **params).select_related("entry")
        page = self.paginate_queryset(payments.prefetch_related("lots", "refunds__entry"))
        return self.get_paginated_response(PaymentSerializer([payment_data(p) for p in page], many=True).data)


@extend_schema(tags=["merchant"])
class MerchantPaymentDetailView(GenericAPIView):
    """One payment the merchant received."""

    permission_classes = [IsMerchantMember]
    serializer_class = PaymentSerializer

    @extend_schema(summary="One payment received", responses={200: PaymentSerializer})
    def get(self, request, payment_id: int):
        payment = get_object_or_404(payment_queryset(), pk=payment_id, merchant=_merchant(request))
        return Response(PaymentSerializer(payment_data(payment)).data)


@extend_schema(tags=["merchant"])
class RefundView(MerchantSignedPostMixin, GenericAPIView):
    """Refund of a payment the merchant received (signed by a merchant device, idempotent)."""

    serializer_class = RefundSerializer

    @extend_schema(
        summary="Refund a payment, whole or in part",
        description="Back to the lots the payment came from (a lot expired meanwhile refunds to its program's "
        "funder); cashback it earned is taken back in proportion. Without `amount`, refunds all that is left.",
        parameters=SIGNED_POST_HEADERS,
        request=RefundInputSerializer,
        responses={201: RefundSerializer, **SIGNED_POST_ERRORS},
    )
    def post(self, request, payment_id: int):
        data = body(RefundInputSerializer, request)
        payment = get_object_or_404(payment_queryset(), pk=payment_id, merchant=_merchant(request))
        amount = data.get("amount", payment.refundable)
        if amount == 0:  # "all that is left" of a payment refunded in full
            raise errors.RefundExceedsPayment(refundable=0, requested=0)
        refund = services.refund_payment(
            payment=payment, amount=amount, idempotency_key=self.voucher_key(), acting_user=request.user
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["merchant"])
class ChargeView(MerchantSignedPostMixin, GenericAPIView):
    """Charging a citizen-presented one-time code (signed by a merchant device, idempotent)."""

    serializer_class = PaymentSerializer

    @extend_schema(
        summary="Charge a citizen-presented one-time payment code",
        description="The citizen's app shows a short-lived code signed by its device key: `bkrw:pc1:` and "
        'base64url of {"w": wallet id, "e": expiry (Unix seconds, at most 120 s ahead), "n": nonce, '
        '"d": device key id, "s": hex signature over SHA-256 of the compact JSON array '
        '["BKRW-PAYMENT-CODE-1", w, e, n]}. The merchant scans it and charges `amount`, once.',
        parameters=SIGNED_POST_HEADERS,
        request=ChargeInputSerializer,
        responses={201: PaymentSerializer, **SIGNED_POST_ERRORS},
    )
    def post(self, request):
        data = body(ChargeInputSerializer, request)
        payment = services.charge_payment_code(
            merchant=_merchant(request),
            code=data["code"],
            amount=data["amount"],
            reference=data["reference"],
            idempotency_key=self.voucher_key(),
            acting_user=request.user,
        )
        return Response(PaymentSerializer(payment_data(payment_queryset().get(pk=payment.pk))).data, status=201)


def _request_data(payment_request: PaymentRequest) -> dict:
    return {
        "id": payment_request.pk,
        "merchant": merchant_ref(payment_request.merchant),
        "amount": payment_request.amount,
        "reference": payment_request.reference,
        "expires_at": payment_request.expires_at,
        "status": payment_request.status,
        "is_expired": payment_request.expires_at <= timezone.now(),
        "payment_id": payment_request.payment_id,
        "device": payment_request.device,
        "payload": services.request_payload(payment_request),
        "qr_png": reverse("voucher-api:payment-request-qr-png", args=[payment_request.pk]),
        "qr_svg": reverse("voucher-api:payment-request-qr-svg", args=[payment_request.pk]),
    }


def _requests_of(request):
    return PaymentRequest.objects.select_related("merchant", "device").filter(merchant=_merchant(request))


@extend_schema(tags=["payment requests"])
class PaymentRequestListView(GenericAPIView):
    """The merchant's QR payment requests; POST creates one signed by a merchant device."""

    permission_classes = [IsMerchantMember]
    serializer_class = PaymentRequestSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(
        summary="My merchant's payment requests, newest first",
        responses={200: PaymentRequestSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        page = self.paginate_queryset(_requests_of(request).order_by("-pk"))
        return self.get_paginated_response(PaymentRequestSerializer([_request_data(r) for r in page], many=True).data)

    @extend_schema(
        summary="Create a merchant-presented QR payment request",
        description="The merchant's device signs SHA-256 of the compact JSON array "
        '["BKRW-PAYMENT-REQUEST-1", merchant id, amount, reference, expires_at, nonce] (low-s, recoverable, hex) '
        "and sends it with the fields. The answer's `payload` is what the QR code shows; a citizen pays it once "
        "with POST /api/v1/wallet/payments/ {payment_request: payload}. Sending the same signed request again "
        "returns the first (200); the same nonce with other fields is refused (409).",
        request=PaymentRequestInputSerializer,
        responses={201: PaymentRequestSerializer, 200: PaymentRequestSerializer, **error_responses(400, 403, 409)},
    )
    def post(self, request):
        data = body(PaymentRequestInputSerializer, request)
        payment_request, created = services.create_payment_request(
            merchant=_merchant(request),
            device_id=data["device_key"],
            amount=data["amount"],
            reference=data["reference"],
            expires_at=data["expires_at"],
            nonce=data["nonce"],
            signature_hex=data["signature"],
            created_by=request.user,
        )
        payment_request = _requests_of(request).get(pk=payment_request.pk)
        return Response(
            PaymentRequestSerializer(_request_data(payment_request)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema(tags=["payment requests"])
class PaymentRequestDetailView(GenericAPIView):
    """One QR payment request of the merchant, with its payload and QR image paths."""

    permission_classes = [IsMerchantMember]
    serializer_class = PaymentRequestSerializer

    @extend_schema(summary="One of my merchant's payment requests", responses={200: PaymentRequestSerializer})
    def get(self, request, request_id: int):
        payment_request = get_object_or_404(_requests_of(request), pk=request_id)
        return Response(PaymentRequestSerializer(_request_data(payment_request)).data)


@extend_schema(tags=["merchant"])
class PaymentRequestCancelView(GenericAPIView):
    """Withdrawing an open QR payment request, so nobody can pay it."""

    permission_classes = [IsMerchantMember]
    serializer_class = PaymentRequestSerializer

    @extend_schema(
        summary="Cancel one of my merchant's open payment requests",
        description="Cancelling again changes nothing; a paid request answers 409 payment_request_used "
        "(refund the payment instead).",
        request=None,
        responses={200: PaymentRequestSerializer, **error_responses(401, 403, 404, 409, 429)},
    )
    def post(self, request, request_id: int):
        payment_request = get_object_or_404(_requests_of(request), pk=request_id)
        payment_request = services.cancel_payment_request(
            merchant=_merchant(request), payment_request=payment_request, actor=request.user
        )
        return Response(PaymentRequestSerializer(_request_data(payment_request)).data)


class _QrView(APIView):
    """A payment request's payload as a QR image (segno). Errors still answer in JSON."""

    permission_classes = [IsMerchantMember]
    kind = ""
    content_type = ""

    def perform_content_negotiation(self, request, force=False):
        # The image is returned as it is; the renderers only ever render JSON errors.
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, request_id: int):
        payment_request = get_object_or_404(_requests_of(request), pk=request_id)
        buffer = io.BytesIO()
        segno.make(services.request_payload(payment_request), error="m").save(buffer, kind=self.kind, scale=6, border=4)
        return HttpResponse(buffer.getvalue(), content_type=self.content_type)


@extend_schema(
    tags=["payment requests"],
    summary="A payment request's QR code, PNG",
    responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="The QR code.")},
)
class PaymentRequestQrPngView(_QrView):
    kind, content_type = "png", "image/png"


@extend_schema(
    tags=["payment requests"],
    summary="A payment request's QR code, SVG",
    responses={(200, "image/svg+xml"): OpenApiResponse(OpenApiTypes.STR, description="The QR code.")},
)
class PaymentRequestQrSvgView(_QrView):
    kind, content_type = "svg", "image/svg+xml"


@extend_schema(tags=["payment requests"])
class PaymentRequestPreviewView(GenericAPIView):
    """A scanned payment-request payload, checked and shown before paying."""

    serializer_class = PaymentRequestPreviewSerializer

    @extend_schema(
        summary="What a scanned payment request asks for",
        description="For the citizen's app, before paying: the merchant, amount, reference and expiry of a "
        "payload, checked against the merchant's signing key. A payload that was altered or is unknown is "
        "refused with payment_request_invalid.",
        parameters=[PaymentRequestPreviewQuerySerializer],
        responses={200: PaymentRequestPreviewSerializer, **READ_ERRORS},
    )
    def get(self, request):
        params = query(PaymentRequestPreviewQuerySerializer, request)
        payment_request = services.read_payment_request(params["payload"])
        data = {
            "id": payment_request.pk,
            "merchant": merchant_ref(payment_request.merchant),
            "amount": payment_request.amount,
            "reference": payment_request.reference,
            "expires_at": payment_request.expires_at,
            "status": payment_request.status,
            "is_expired": payment_request.expires_at <= timezone.now(),
            "device": payment_request.device,
        }
        return Response(PaymentRequestPreviewSerializer(data).data)


def _supplier_payment_data(merchant_payment: MerchantPayment) -> dict:
    return {
        "id": merchant_payment.pk,
        "payer": merchant_ref(merchant_payment.payer),
        "payee": merchant_ref(merchant_payment.payee),
        "amount": merchant_payment.amount,
        "reference": merchant_payment.reference,
        "created_at": merchant_payment.created_at,
        "entry": merchant_payment.entry,
    }


@extend_schema(tags=["merchant"])
class SupplierPaymentView(MerchantSignedPostMixin, GenericAPIView):
    """Paying another merchant (a supplier) with the BKRW the merchant holds, instead of settling it."""

    serializer_class = SupplierPaymentSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(
        summary="Payments to and from other merchants, newest first",
        responses={200: SupplierPaymentSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        merchant = _merchant(request)
        rows = (
            MerchantPayment.objects.filter(Q(payer=merchant) | Q(payee=merchant))
            .select_related("payer", "payee", "entry")
            .order_by("-created_at", "-pk")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            SupplierPaymentSerializer([_supplier_payment_data(row) for row in page], many=True).data
        )

    @extend_schema(
        summary="Pay a supplier with the tokens I hold (owners only)",
        description="Moves BKRW from this merchant's token account to the payee's; the payee may spend it on or "
        "settle it. Clerks may take payments and refund, but only the owner pays suppliers.",
        parameters=SIGNED_POST_HEADERS,
        request=SupplierPaymentInputSerializer,
        responses={201: SupplierPaymentSerializer, **SIGNED_POST_ERRORS},
    )
    def post(self, request):
        data = body(SupplierPaymentInputSerializer, request)
        member = membership_of(request)
        if member.role != MerchantMember.Role.OWNER:
            raise exceptions.PermissionDenied("Only the merchant's owner pays suppliers.")
        payee = Merchant.objects.filter(pk=data["payee"]).first()
        if payee is None:
            raise exceptions.NotFound("No such merchant.")
        merchant_payment = services.pay_merchant(
            payer=member.merchant,
            payee=payee,
            amount=data["amount"],
            reference=data["reference"],
            idempotency_key=self.voucher_key(),
        )
        return Response(
            SupplierPaymentSerializer(_supplier_payment_data(merchant_payment)).data, status=status.HTTP_201_CREATED
        )
