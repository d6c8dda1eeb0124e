"""The citizen's wallet: balance and lots, history, payments, top-ups and transfers.

Reads need only the login's token; every POST here moves money and is signed
by a device key of the wallet's owner, with an Idempotency-Key.
"""

from django.db.models import prefetch_related_objects
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from bank.http.schema import READ_ERRORS, READ_ERRORS_WITH_404, SIGNED_POST_ERRORS, SIGNED_POST_HEADERS
from voucher import selectors, services
from voucher.api.access import IsWalletHolder, WalletSignedPostMixin, wallet_of
from voucher.api.pagination import StrictLimitOffsetPagination
from voucher.api.serializers import (
    HistoryItemSerializer,
    HistoryQuerySerializer,
    PayInputSerializer,
    PaymentSerializer,
    RedemptionSerializer,
    TopUpInputSerializer,
    TopUpSerializer,
    TransferInputSerializer,
    TransferSerializer,
    WalletQuerySerializer,
    WalletSerializer,
)
from voucher.api.views.common import body, merchant_ref, payment_data, payment_queryset, query, render_payment
from voucher.clock import seoul_today
from voucher.limits import limits_on
from voucher.models import Merchant, Wallet
from voucher.wallet_holds_read import held_on


def _lot_data(lot) -> dict:
    program = lot.program
    return {
        "id": lot.pk,
        "program": None if program is None else {"code": program.code, "name": program.name, "kind": program.kind},
        "expires_on": lot.expires_on,
        "balance": lot.balance,
        "is_transferable": program is None or program.is_transferable,
    }


@extend_schema(tags=["wallet"])
class WalletView(GenericAPIView):
    """The wallet's total, its lots, and with ?merchant= what a payment there could spend."""

    permission_classes = [IsWalletHolder]
    serializer_class = WalletSerializer

    @extend_schema(
        summary="My wallet: balance, lots, and what is spendable at a merchant",
        parameters=[WalletQuerySerializer],
        responses={200: WalletSerializer, **READ_ERRORS_WITH_404},
    )
    def get(self, request):
        params = query(WalletQuerySerializer, request)
        wallet = wallet_of(request)
        spendable = None
        if "merchant" in params:
            merchant = get_object_or_404(Merchant, pk=params["merchant"])
            found = selectors.spendable_at(wallet, merchant)
            spendable = {
                "merchant": merchant_ref(merchant),
                "total": found.total,
                "lots": [{"lot": lot.pk, "amount": lot.balance} for lot in found.lots],
            }
        data = {
            "id": wallet.pk,
            "status": wallet.status,
            "kyc_tier": wallet.kyc_tier,
            "balance": selectors.wallet_balance(wallet),
            "held": held_on(wallet),
            "max_balance": limits_on(seoul_today()).max_balance(wallet.kyc_tier),
            "lots": [_lot_data(lot) for lot in selectors.lots_of(wallet)],
            "spendable": spendable,
        }
        return Response(WalletSerializer(data).data)


def _history_item(entry) -> dict:
    payment = getattr(entry, "payment", None)
    refund = getattr(entry, "refund", None)
    transfer = getattr(entry, "transfer", None)
    paid = payment or (refund.payment if refund else None)
    counterparty = None
    if transfer is not None:
        counterparty = transfer.to_wallet_id if (entry.net or 0) < 0 else transfer.from_wallet_id
    return {
        "id": entry.pk,
        "kind": selectors.history_kind(entry),
        "amount": entry.net or 0,
        "created_at": entry.created_at,
        "reference": entry.reference,
        "merchant": merchant_ref(paid.merchant) if paid else None,
        "payment": paid.pk if paid else None,
        "counterparty_wallet": counterparty,
        "benefits": list(entry.benefits.all()),
        "entry_hash": entry.hash,
    }


@extend_schema(tags=["wallet"])
class HistoryView(GenericAPIView):
    """Every ledger entry that changed the wallet, with what it was (payment, top-up, refund, ...)."""

    permission_classes = [IsWalletHolder]
    serializer_class = HistoryItemSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(
        summary="My wallet's history, newest first",
        parameters=[HistoryQuerySerializer],
        responses={200: HistoryItemSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        params = query(HistoryQuerySerializer, request)
        entries = selectors.wallet_history(wallet_of(request), **params)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(HistoryItemSerializer([_history_item(e) for e in page], many=True).data)


@extend_schema(tags=["wallet"])
class PaymentListView(WalletSignedPostMixin, GenericAPIView):
    """The wallet's payments; POST pays a merchant (signed, idempotent)."""

    serializer_class = PaymentSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(summary="My payments, newest first", responses={200: PaymentSerializer(many=True), **READ_ERRORS})
    def get(self, request):
        payments = payment_queryset().filter(wallet=wallet_of(request)).order_by("-pk")
        page = self.paginate_queryset(payments)
        return self.get_paginated_response(PaymentSerializer([payment_data(p) for p in page], many=True).data)

    @extend_schema(
        summary="Pay a merchant",
        description="Either `merchant` and `amount` (and an optional `reference`), or `payment_request`: the payload "
        "of a merchant-presented QR code, which carries its merchant, amount and reference and is paid once. "
        "Spends the lots eligible at the merchant, soonest-expiring first.",
        parameters=SIGNED_POST_HEADERS,
        request=PayInputSerializer,
        responses={201: PaymentSerializer, **SIGNED_POST_ERRORS},
    )
    def post(self, request):
        data = body(PayInputSerializer, request)
        wallet = wallet_of(request)
        if "payment_request" in data:
            payment = services.pay_payment_request(
                wallet=wallet,
                payload=data["payment_request"],
                idempotency_key=self.voucher_key(),
                acting_user=request.user,
            )
        else:
            # pay() reads the merchant itself, in the statement that reads the wallet's lots
            # (an unknown one is 404 merchant_not_found).
            payment = services.pay(
                wallet=wallet,
                merchant=Merchant(pk=data["merchant"]),
                amount=data["amount"],
                reference=data["reference"],
                idempotency_key=self.voucher_key(),
                acting_user=request.user,
            )
        # A payment just made has its merchant, entry, lots and refunds in memory already; a replay fetches them.
        prefetch_related_objects([payment], "lots", "refunds__entry")
        return Response(render_payment(payment), status=status.HTTP_201_CREATED)


@extend_schema(tags=["wallet"])
class PaymentDetailView(GenericAPIView):
    """One payment of the wallet, with the lots it spent and its refunds."""

    permission_classes = [IsWalletHolder]
    serializer_class = PaymentSerializer

    @extend_schema(summary="One of my payments", responses={200: PaymentSerializer})
    def get(self, request, payment_id: int):
        payment = get_object_or_404(payment_queryset(), pk=payment_id, wallet=wallet_of(request))
        return Response(PaymentSerializer(payment_data(payment)).data)


@extend_schema(tags=["wallet"])
class TopUpView(WalletSignedPostMixin, GenericAPIView):
    """Top-up from the owner's KRW deposit account (signed, idempotent)."""

    serializer_class = TopUpSerializer

    @extend_schema(
        summary="Top up from my KRW deposit account",
        description="KRW from the deposit account into the reserve, the same BKRW into the wallet, plus any active "
        "top-up bonus within its caps and budget.",
        parameters=SIGNED_POST_HEADERS,
        request=TopUpInputSerializer,
        responses={201: TopUpSerializer, **SIGNED_POST_ERRORS},
    )
    def post(self, request):
        data = body(TopUpInputSerializer, request)
        topup = services.top_up(wallet=wallet_of(request), amount=data["amount"], idempotency_key=self.voucher_key())
        return Response(TopUpSerializer(topup).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["wallet"])
class TransferView(WalletSignedPostMixin, GenericAPIView):
    """Person-to-person transfer of transferable tokens (signed, idempotent)."""

    serializer_class = TransferSerializer

    @extend_schema(
        summary="Send tokens to another person",
        description="Only transferable lots move (paid-in tokens and programs that allow it), soonest-expiring "
        "first; each keeps its program and expiry at the receiver.",
        parameters=SIGNED_POST_HEADERS,
        request=TransferInputSerializer,
        responses={201: TransferSerializer, **SIGNED_POST_ERRORS},
    )
    def post(self, request):
        data = body(TransferInputSerializer, request)
        receiver = Wallet.objects.filter(pk=data["to_wallet"]).first()
        if receiver is None:
            raise exceptions.NotFound("No such wallet.")
        transfer = services.transfer(
            from_wallet=wallet_of(request),
            to_wallet=receiver,
            amount=data["amount"],
            idempotency_key=self.voucher_key(),
        )
        return Response(TransferSerializer(transfer).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["wallet"])
class RedemptionView(WalletSignedPostMixin, GenericAPIView):
    """Cashing out the unused paid-in tokens (signed, idempotent)."""

    serializer_class = RedemptionSerializer

    @extend_schema(
        summary="Cash out my unused paid-in tokens",
        description="Allowed once the ruling share (60% by default) of what was paid in since the last cash-out "
        "has been spent. Only paid-in lots are cashed out, all of them; bonuses, grants and rewards never are. "
        "The BKRW is burned and the same KRW goes back to the deposit account. No request body.",
        parameters=SIGNED_POST_HEADERS,
        request=None,
        responses={201: RedemptionSerializer, **SIGNED_POST_ERRORS},
    )
    def post(self, request):
        redemption = services.redeem(wallet=wallet_of(request), idempotency_key=self.voucher_key())
        return Response(RedemptionSerializer(redemption).data, status=status.HTTP_201_CREATED)
