"""Logging in to the API with a token: `Authorization: Token <token>`, looked up
by its SHA-256 (bank.models.ApiToken), refused when unknown, revoked or expired."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from bank.models import ApiToken
from bank.services.api_tokens import token_digest


class TokenExpired(exceptions.AuthenticationFailed):
    """401 with code token_expired (bank/http/errors.py): log in again for a new token."""

    default_detail = _("The token has expired; log in again.")
    default_code = "token_expired"


def token_by_digest(digest: str, request) -> ApiToken | None:
    return ApiToken.objects.select_related("user").filter(digest=digest).first()


def live_tokens_of(user):
    """The login's tokens that still work, oldest first."""
    return ApiToken.objects.filter(user=user, revoked_at=None, expires_at__gt=timezone.now()).order_by("pk")


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication (the same header rules and refusals) over stored digests.

    `login` reads the token with its user by digest; a view may pass a read that
    fetches more in the same statement (the wallet API's signed POSTs,
    voucher/api/access.py), so every view still has this one class and the
    schema one security scheme."""

    def __init__(self, login=token_by_digest):
        self.login = login

    def authenticate(self, request):
        self._request = request  # authenticators are made per request (APIView.get_authenticators)
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        token = self.login(token_digest(key), self._request)
        if token is None or token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token.expires_at <= timezone.now():
            raise TokenExpired()
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Send "Token <token>" (from POST /api/v1/auth/token/). A wrong or revoked token '
            "is 401 authentication_failed; an expired one is 401 token_expired: log in again.",
        }
