"""One JSON shape for every API error, in one place:

    {"error": {"code": "insufficient_funds", "message": "...", "details": {...}}}

Typed errors (bank.errors.BankError and the apps' subclasses) carry their code
and HTTP status; DRF's own errors get codes here. Nothing reaches the client
as a 500 page for bad input.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from bank import errors
from bank.errors import BankError
from bank.http.authentication import TokenExpired

REQUEST_SHAPE_ERRORS = (
    errors.IdempotencyKeyRequired,
    errors.IdempotencyKeyReused,
    errors.SignatureMissing,
    errors.SignatureInvalid,
    errors.SignatureMalleable,
    errors.TimestampOutOfWindow,
    errors.NonceReplayed,
    errors.DeviceKeyUnknown,
    errors.PaymentsPaused,  # transient: the same request succeeds once the bank resumes
)

_DRF_CODES = {
    exceptions.ValidationError: "invalid_request",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    TokenExpired: "token_expired",  # before its base class, AuthenticationFailed
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def api_exception_handler(exc, context):
    if getattr(context.get("request"), "axes_locked_out", False):
        # django-axes refused a locked login before its password was checked (bank.lockout);
        # the login serializer only saw authenticate() return None.
        exc = errors.LoginLocked()
    if isinstance(exc, BankError):
        response = Response(error_body(exc.code, str(exc), _jsonable(exc.details)), status=exc.http_status)
        # Refusals a retry cannot change are stored for Idempotency-Key replay; request-shape ones are not.
        response.decided_by_bank = not isinstance(exc, REQUEST_SHAPE_ERRORS)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let it surface as a 500 and be logged
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        details = {"fields": exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}}
        message = "The request has invalid fields."
    else:
        details = {"wait_seconds": exc.wait} if isinstance(exc, exceptions.Throttled) and exc.wait else {}
        message = str(exc.detail)
    response.data = error_body(code, message, details)
    return response


def _jsonable(details: dict) -> dict:
    return {
        key: value if isinstance(value, (int, str, bool, type(None), list, dict)) else str(value)
        for key, value in details.items()
    }


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. insufficient_funds.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.DictField(help_text="Extra facts about the error (field errors, amounts).")


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx response."""

    error = ErrorDetailSerializer()


ERROR_STATUSES = (
    status.HTTP_400_BAD_REQUEST,
    status.HTTP_401_UNAUTHORIZED,
    status.HTTP_403_FORBIDDEN,
    status.HTTP_404_NOT_FOUND,
    status.HTTP_409_CONFLICT,
    status.HTTP_429_TOO_MANY_REQUESTS,
)


def error_responses(*statuses: int) -> dict:
    """drf-spectacular `responses` entries for the error shape."""
    return {code: ErrorSerializer for code in (statuses or ERROR_STATUSES)}


def api_not_found(request, exception=None):
    """Django's 404 for URLs no route matches: the error shape under /api/, the HTML page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such endpoint or object."), status=404)
    return page_not_found(request, exception)


def api_server_error(request):
    """A 500 still answers in the error shape under /api/ (and is logged as the bug it is)."""
    from django.http import JsonResponse
    from django.views.defaults import server_error

    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
    return server_error(request)
