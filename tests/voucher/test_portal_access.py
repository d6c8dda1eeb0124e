"""Who gets into the merchant portal: login, throttling, logout, CSRF, session
cookies, language, and no merchant ever seeing another's data."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories.voucher import UserFactory
from tests.voucher.portal_support import PASSWORD, login_user
from tests.voucher.support import ledger_size
from voucher import services
from voucher.models import Payment

PAGES = ["dashboard", "payments", "qr", "account", "settlements"]


@pytest.mark.parametrize("page", PAGES)
def test_a_page_sends_a_visitor_who_is_not_logged_in_to_the_login_page(client, db, page):
    response = client.get(reverse(f"portal:{page}"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_an_owner_logs_in_with_the_password_and_lands_on_the_dashboard(client, shop):
    response = client.post(reverse("portal:login"), {"username": "mine-owner", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("portal:dashboard")
    session_cookie = response.cookies["sessionid"]
    assert session_cookie["httponly"] and session_cookie["samesite"] == "Lax"


def test_a_wrong_password_is_refused_with_a_message(client, shop):
    response = client.post(
        reverse("portal:login"), {"username": "mine-owner", "password": "nope"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_login_that_acts_for_no_merchant_is_refused(client, db):
    login_user("citizen-login")
    response = client.post(
        reverse("portal:login"), {"username": "citizen-login", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "This login does not act for a merchant." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_five_failed_logins_lock_the_username_from_that_address_even_with_the_right_password(client, shop, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(5):
        client.post(reverse("portal:login"), {"username": "mine-owner", "password": "guess"})
    locked = client.post(
        reverse("portal:login"), {"username": "mine-owner", "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The owner at the shop's own address is not locked out by a stranger elsewhere.
    elsewhere = Client(REMOTE_ADDR="10.9.8.7").post(
        reverse("portal:login"), {"username": "mine-owner", "password": PASSWORD}
    )
    assert elsewhere.status_code == 302


def test_a_successful_login_clears_earlier_failures(client, shop, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        client.post(reverse("portal:login"), {"username": "mine-owner", "password": "guess"})
    assert client.post(reverse("portal:login"), {"username": "mine-owner", "password": PASSWORD}).status_code == 302
    client.post(reverse("portal:logout"))
    for _ in range(2):
        client.post(reverse("portal:login"), {"username": "mine-owner", "password": "guess"})
    assert client.post(reverse("portal:login"), {"username": "mine-owner", "password": PASSWORD}).status_code == 302


def test_logout_is_a_post_and_ends_the_session(owner_client):
    assert owner_client.get(reverse("portal:logout")).status_code == 405
    assert owner_client.get(reverse("portal:dashboard")).status_code == 200
    assert owner_client.post(reverse("portal:logout")).status_code == 302
    assert owner_client.get(reverse("portal:dashboard")).status_code == 302


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(shop):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(shop.owner)
    before = ledger_size()
    response = browser.post(
        reverse("portal:refund", args=[shop.payment.pk]),
        {"amount": 1_000, "key": "portal:" + "a" * 32, "confirm": "1"},
    )
    assert response.status_code == 403
    assert ledger_size() == before
    assert Payment.objects.get(pk=shop.payment.pk).refunded_amount == 0


def test_pages_are_korean_by_default_and_english_on_request(client, shop):
    client.force_login(shop.owner)
    assert "오늘 매출" in client.get(reverse("portal:dashboard")).content.decode()
    client.post(reverse("portal:set-language"), {"language": "en", "next": reverse("portal:dashboard")})
    assert "Sales today" in client.get(reverse("portal:dashboard")).content.decode()


def test_every_page_has_a_phone_viewport(owner_client):
    page = owner_client.get(reverse("portal:payments")).content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


def test_another_merchants_ids_are_not_found_on_any_page(owner_client, shop, other):
    their_payment = other.payment.pk
    their_request = services.create_portal_payment_request(
        member=other.owner.merchant_membership, amount=5_000, reference="theirs"
    ).pk
    urls = [
        reverse("portal:payment-detail", args=[their_payment]),
        reverse("portal:refund", args=[their_payment]),
        reverse("portal:qr-detail", args=[their_request]),
        reverse("portal:qr-svg", args=[their_request]),
    ]
    for url in urls:
        assert owner_client.get(url).status_code == 404, url
    before = ledger_size()
    refund = owner_client.post(
        reverse("portal:refund", args=[their_payment]), {"amount": 1_000, "key": "portal:" + "b" * 32, "confirm": "1"}
    )
    assert refund.status_code == 404 and ledger_size() == before
    listing = owner_client.get(reverse("portal:payments")).content.decode()
    assert "their-ref" not in listing and "table-7" in listing
    assert "theirs" not in owner_client.get(reverse("portal:qr")).content.decode()


def test_a_staff_user_without_a_merchant_cannot_use_the_portal(client, db):
    staff_user = UserFactory(username="back-office", is_staff=True)
    client.force_login(staff_user)
    assert client.get(reverse("portal:dashboard")).status_code == 302


def test_login_returns_to_the_page_asked_for_but_never_to_another_site(client, shop):
    login = reverse("portal:login")
    back = client.post(login, {"username": "mine-owner", "password": PASSWORD, "next": reverse("portal:payments")})
    assert back["Location"] == reverse("portal:payments")
    client.post(reverse("portal:logout"))
    away = client.post(login, {"username": "mine-owner", "password": PASSWORD, "next": "https://evil.example/"})
    assert away["Location"] == reverse("portal:dashboard")
