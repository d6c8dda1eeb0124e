"""Logging in from the app: username and password for the API token."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from bank.api.errors import error_responses
from voucher.models import MerchantMember, Wallet


@extend_schema(
    tags=["auth"],
    summary="Get my API token",
    description="Send it as `Authorization: Token <token>` on every other request.",
    responses={200: inline_serializer("AuthToken", {"token": serializers.CharField()}), **error_responses(400, 429)},
)
class TokenView(ObtainAuthToken):
    """Username and password in, the login's API token out."""

    parser_classes = [JSONParser]


@extend_schema(
    tags=["auth"],
    summary="Who I am",
    description="The login the token belongs to and what it acts as: a wallet holder, a merchant member, or both.",
    responses={
        200: inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "wallet": serializers.IntegerField(allow_null=True),
                "merchant": serializers.IntegerField(allow_null=True),
                "role": serializers.CharField(allow_null=True, help_text="owner or clerk, for a merchant member"),
            },
        ),
        **error_responses(401, 429),
    },
)
class MeView(APIView):
    """A cheap authenticated read: one query for the token and its user, one for what it acts as."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        user = request.user
        member = MerchantMember.objects.filter(user=user).values_list("merchant_id", "role").first()
        wallet = Wallet.objects.filter(user=user).values_list("pk", flat=True).first()
        merchant, role = member if member else (None, None)
        return Response({"username": user.get_username(), "wallet": wallet, "merchant": merchant, "role": role})
