"""How a service's typed error is shown on a page for people (the merchant portal,
the admin): its message with its code, and the page's HTTP status from the error's
own status, in one place instead of in each view. The API's counterpart is
bank.http.errors (the JSON error shape, with the status unchanged)."""

from django.contrib import messages
from django.shortcuts import render

from bank.errors import BankError

# On a page, 401 and 403 answer who may open it or act: the view's access check
# (portal.access.member_required, the admin's permissions) runs before any service.
# A service refusing a login that may act there, because of the state of what it acts
# on (a frozen merchant or account), is a conflict with that state.
_ACCESS_STATUSES = {401, 403}


def error_message(error: BankError) -> str:
    """The error's message followed by its stable code, which tests and support look for."""
    return f"{error} ({error.code})"


def page_status(error: BankError) -> int:
    return 409 if error.http_status in _ACCESS_STATUSES else error.http_status


def error_response(request, template: str, context: dict, error: BankError):
    """The page again with the refusal on it: on its form (context["form"]) as an
    error of the whole form, or else as a message, with page_status(error)."""
    form = context.get("form")
    if form is not None:
        form.add_error(None, error_message(error))
    else:
        messages.error(request, error_message(error))
    return render(request, template, context, status=page_status(error))
