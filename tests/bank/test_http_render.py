"""A service's typed error on a page for people (bank.http.render): its message
with its code, and the page's status from the error's own status."""

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.test import RequestFactory

from bank import errors as bank_errors
from bank.http.render import error_message, error_response, page_status
from voucher import errors


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.RefundExceedsPayment(), 409),  # the error's own status
        (errors.InvalidRequest(), 400),
        (bank_errors.AccountNotFound(), 404),
        (bank_errors.PaymentsPaused(), 503),
        # a login that may open the page, refused for the state of what it acts on
        (errors.MerchantFrozen(), 409),
        (bank_errors.AccountFrozen(), 409),
        (bank_errors.SignatureMissing(), 409),
    ],
    ids=lambda v: getattr(v, "code", str(v)),
)
def test_a_page_answers_with_the_errors_own_status_and_409_for_a_refusal_of_state(error, status):
    assert page_status(error) == status


def test_the_message_carries_the_errors_code():
    assert error_message(errors.NothingToSettle()) == f"{errors.NothingToSettle.message} (nothing_to_settle)"


def _request():
    request = RequestFactory().post("/portal/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def test_the_refusal_goes_on_the_pages_form_with_its_status(db):
    # given
    request = _request()
    form = forms.Form(data={})
    assert form.is_valid()  # as in a view: the form passed, then the service refused
    # when
    response = error_response(request, "portal/login.html", {"form": form}, errors.MerchantFrozen())
    # then
    assert response.status_code == 409
    assert "The merchant is frozen. (merchant_frozen)" in response.content.decode()
    assert not list(get_messages(request))


def test_a_page_without_a_form_gets_the_refusal_as_a_message(db):
    # given
    request = _request()
    # when
    response = error_response(request, "portal/login.html", {}, bank_errors.PaymentsPaused())
    # then
    assert response.status_code == 503
    assert [str(m) for m in get_messages(request)] == [error_message(bank_errors.PaymentsPaused())]
