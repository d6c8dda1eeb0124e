"""Logging in from the app: username and password for an API token, and logging out."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from bank import services as bank_services
from bank.http.authentication import live_tokens_of
from bank.http.errors import error_responses
from bank.models import ApiToken
from voucher.api.pagination import StrictLimitOffsetPagination
from voucher.api.serializers import TextField
from voucher.models import MerchantMember, Wallet


class LoginSerializer(AuthTokenSerializer):
    """Django's login check, with the schema stating what a username and password may
    hold: printable text (a NUL or a control character is always refused)."""

    username = TextField(label=_("Username"), max_length=150, write_only=True)
    password = TextField(
        label=_("Password"), max_length=1024, style={"input_type": "password"}, trim_whitespace=False, write_only=True
    )


class TokenView(APIView):
    """POST: username and password in, a new API token out, shown this once (only
    its digest is stored). DELETE: log the token of this request out."""

    parser_classes = [JSONParser]

    def get_authenticators(self):
        # Logging in needs no token: an expired one the app still sends must not stop it.
        return [] if self._logging_in() else super().get_authenticators()

    def get_permissions(self):
        return [AllowAny()] if self._logging_in() else [IsAuthenticated()]

    def _logging_in(self) -> bool:
        return getattr(self.request, "method", None) == "POST"  # no request while the schema is made

    @extend_schema(
        tags=["auth"],
        summary="Log in: get a new API token",
        description="Send it as `Authorization: Token <token>` on every other request. It is shown only in this "
        "answer (the bank keeps its digest), and refused with 401 `token_expired` after `expires_at`: then log in "
        "again. Each login gets its own token.",
        request=LoginSerializer,
        responses={
            200: inline_serializer(
                "AuthToken", {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
            ),
            **error_responses(400, 429),
        },
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)  # django.contrib.auth.authenticate(request=..., ...)
        issued = bank_services.issue_api_token(user=serializer.validated_data["user"])
        return Response({"token": issued.key, "expires_at": issued.token.expires_at})

    @extend_schema(
        tags=["auth"],
        summary="Log out: revoke this token",
        description="The token of this request stops working at once (401 `authentication_failed` after). "
        "Other logins' tokens are not touched.",
        responses={204: None, **error_responses(400, 401, 429)},
    )
    def delete(self, request):
        if not isinstance(request.auth, ApiToken):
            raise ValidationError("Only an API token can be logged out here.", code="not_a_token")
        bank_services.revoke_api_token(token=request.auth)
        return Response(status=204)


class ApiTokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    current = serializers.BooleanField(help_text="The token this request was sent with.")


class TokenListView(GenericAPIView):
    """The login's live tokens (one per login on a device), never their values."""

    permission_classes = [IsAuthenticated]
    serializer_class = ApiTokenSerializer
    pagination_class = StrictLimitOffsetPagination

    @extend_schema(tags=["auth"], summary="My live API tokens", responses={200: ApiTokenSerializer(many=True)})
    def get(self, request):
        page = self.paginate_queryset(live_tokens_of(request.user))
        current = getattr(request.auth, "pk", None)
        data = [{**_token_data(token), "current": token.pk == current} for token in page]
        return self.get_paginated_response(ApiTokenSerializer(data, many=True).data)


def _token_data(token: ApiToken) -> dict:
    return {"id": token.pk, "created_at": token.created_at, "expires_at": token.expires_at}


class TokenDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["auth"],
        summary="Log one of my tokens out",
        description="E.g. a tablet left behind. Another login's token id is 404.",
        responses={204: None, **error_responses(401, 404, 429)},
    )
    def delete(self, request, token_id: int):
        token = get_object_or_404(live_tokens_of(request.user), pk=token_id)
        bank_services.revoke_api_token(token=token)
        return Response(status=204)


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
