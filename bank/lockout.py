"""Login lockout hooks for django-axes, which guards every login form: the merchant
portal, the admin and the API's token login (settings name these functions).

axes counts failures per (normalised username, address) in its database tables;
this module only says what a username is and how a locked login is answered.
"""

import unicodedata

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from bank.errors import LoginLocked
from bank.http.errors import error_body

# axes' AccessAttempt.username is a varchar(255); a longer name (the API's token
# login does not bound it) must not turn a failed login into a database error.
_USERNAME_MAX = 255


def normalised_username(request, credentials) -> str | None:
    """The username as Django authenticates it: a login form strips it and applies
    NFKC (AbstractBaseUser.normalize_username), so a full-width `ｇ` is a plain `g`.
    Counting the name as typed would let each spelling start a fresh count."""
    username = (credentials or {}).get("username")
    if username is None and request is not None:
        username = request.POST.get("username")
    if not isinstance(username, str):
        return None
    return unicodedata.normalize("NFKC", username.strip()).strip()[:_USERNAME_MAX]


def lockout_response(request, original_response, credentials):
    """A locked login's answer: the API's error shape under /api/; the page the view
    already rendered when it answered the lockout itself (the portal's login, 429);
    otherwise (the admin's login) a page saying so."""
    error = LoginLocked()
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(error.code, str(error)), status=error.http_status)
    if original_response is not None and original_response.status_code == error.http_status:
        return original_response
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {"title": _("Log in"), "lockout_minutes": minutes}
    return render(request, "admin/login_locked.html", context, status=error.http_status)


class PasswordBackend(ModelBackend):
    """Django's username-and-password check (after axes' backend, which refuses a locked
    pair first). A right password also clears the pair's failed logins, for every login:
    the API's token login never calls login(), so axes' reset on user_logged_in would
    miss it."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and request is not None and settings.AXES_ENABLED:
            AxesProxyHandler.update_request(request)
            AxesProxyHandler.get_implementation().reset_user_attempts(request, {"username": username})
        return user
