"""What a citizen or merchant may look up: the merchant directory, the programs
they can use, and a citizen's benefits this month."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from bank.http.schema import READ_ERRORS
from voucher import selectors
from voucher.api.access import IsWalletHolder, membership_of, wallet_of
from voucher.api.pagination import StrictLimitOffsetPagination
from voucher.api.serializers import (
    BenefitSerializer,
    MerchantDirectoryQuerySerializer,
    MerchantRefSerializer,
    ProgramSerializer,
)
from voucher.api.views.common import merchant_ref, query
from voucher.models import VoucherProgram


@extend_schema(tags=["catalog"])
class MerchantDirectoryView(GenericAPIView):
    """Active merchants, by name, filtered by category and district."""

    serializer_class = MerchantRefSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(
        summary="Merchants that take the token",
        parameters=[MerchantDirectoryQuerySerializer],
        responses={200: MerchantRefSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        params = query(MerchantDirectoryQuerySerializer, request)
        page = self.paginate_queryset(selectors.merchant_directory(**params))
        return self.get_paginated_response(MerchantRefSerializer([merchant_ref(m) for m in page], many=True).data)


@extend_schema(tags=["catalog"])
class MerchantDirectoryDetailView(GenericAPIView):
    """One active merchant."""

    serializer_class = MerchantRefSerializer

    @extend_schema(summary="One merchant that takes the token", responses={200: MerchantRefSerializer})
    def get(self, request, merchant_id: int):
        merchant = get_object_or_404(selectors.merchant_directory(), pk=merchant_id)
        return Response(MerchantRefSerializer(merchant_ref(merchant)).data)


def _program_data(program: VoucherProgram, my_balance: int | None) -> dict:
    return {
        "code": program.code,
        "name": program.name,
        "kind": program.kind,
        "applies_automatically": program.kind in VoucherProgram.BONUS_KINDS,
        "expires_on": program.expires_on,
        "valid_days": program.valid_days,
        "eligible_categories": program.eligible_categories,
        "excluded_categories": program.excluded_categories,
        "eligible_districts": program.eligible_districts,
        "max_merchant_annual_revenue": program.max_merchant_annual_revenue,
        "is_transferable": program.is_transferable,
        "my_balance": my_balance,
    }


@extend_schema(tags=["catalog"])
class ProgramListView(GenericAPIView):
    """Voucher programs the login can use."""

    serializer_class = ProgramSerializer
    pagination_class = None

    @extend_schema(
        summary="Programs I can use",
        description="A wallet holder: bonus and cashback programs (they apply by themselves) and the programs "
        "whose unexpired tokens the wallet holds, with my_balance. A merchant: the programs whose money may be "
        "spent at (or whose cashback is earned at) the shop; my_balance is null.",
        responses={200: ProgramSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        wallet, member = wallet_of(request), membership_of(request)
        if wallet is not None:
            data = [_program_data(p, p.my_balance) for p in selectors.programs_for_wallet(wallet)]
        elif member is not None:
            data = [_program_data(p, None) for p in selectors.programs_for_merchant(member.merchant)]
        else:
            raise exceptions.PermissionDenied("Your login has no wallet and acts for no merchant.")
        return Response(ProgramSerializer(data, many=True).data)


@extend_schema(tags=["wallet"])
class BenefitsView(GenericAPIView):
    """Per program: this month's benefit and the base that earned it, against caps and budget."""

    permission_classes = [IsWalletHolder]
    serializer_class = BenefitSerializer
    pagination_class = None

    @extend_schema(
        summary="My benefits this month: caps used and left",
        responses={200: BenefitSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        return Response(BenefitSerializer(selectors.wallet_benefits(wallet_of(request)), many=True).data)
