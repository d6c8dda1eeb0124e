"""Logging in from the app: username and password for the API token."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import JSONParser

from bank.api.errors import error_responses


@extend_schema(
    tags=["auth"],
    summary="Get my API token",
    description="Send it as `Authorization: Token <token>` on every other request.",
    responses={200: inline_serializer("AuthToken", {"token": serializers.CharField()}), **error_responses(400, 429)},
)
class TokenView(ObtainAuthToken):
    """Username and password in, the login's API token out."""

    parser_classes = [JSONParser]
