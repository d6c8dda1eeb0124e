"""Payments in the merchant portal: list, filters, detail, two-step refunds with
the service's rules and error codes, and the payment QR a citizen pays."""

import re
from datetime import timedelta

from django.urls import reverse

from bank.models import AuditEvent
from bank.services import open_account
from tests.factories.voucher import staff, wallet_with_tokens
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import services
from voucher.clock import seoul_today
from voucher.models import Payment, PaymentRequest, Refund


def _key(page: str) -> str:
    return re.search(r'name="key" value="(portal:[0-9a-f]{32})"', page).group(1)


def test_the_list_shows_the_merchants_payments_and_searches_by_reference(owner_client, shop):
    services.pay(wallet=shop.wallet, merchant=shop.merchant, amount=7_000, idempotency_key="p2", reference="takeout-3")
    page = owner_client.get(reverse("portal:payments")).content.decode()
    assert "table-7" in page and "takeout-3" in page and "30,000 won" in page
    found = owner_client.get(reverse("portal:payments"), {"q": "TAKEOUT"}).content.decode()
    assert "takeout-3" in found and "table-7" not in found


def test_the_date_filter_keeps_the_seoul_days_asked_for(owner_client, shop):
    today = seoul_today()
    assert "table-7" in owner_client.get(reverse("portal:payments"), {"since": today, "until": today}).content.decode()
    yesterday = today - timedelta(days=1)
    page = owner_client.get(reverse("portal:payments"), {"since": yesterday, "until": yesterday}).content.decode()
    assert "table-7" not in page and "No payments." in page
    backwards = owner_client.get(reverse("portal:payments"), {"since": today, "until": yesterday}).content.decode()
    assert "The first day must not be after the last." in backwards


def test_the_list_is_paginated(owner_client, shop):
    for number in range(26):
        services.pay(
            wallet=shop.wallet, merchant=shop.merchant, amount=100, idempotency_key=f"many-{number}", reference="x"
        )
    first = owner_client.get(reverse("portal:payments")).content.decode()
    assert "Page 1 of 2" in first
    second = owner_client.get(reverse("portal:payments"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in second and "table-7" in second


def test_the_detail_shows_lots_and_refunds(owner_client, shop):
    services.refund_payment(payment=shop.payment, amount=4_000, idempotency_key="r")
    page = owner_client.get(reverse("portal:payment-detail", args=[shop.payment.pk])).content.decode()
    assert "paid-in" in page and "4,000 won" in page and "26,000 won" in page


def test_a_partial_refund_is_asked_confirmed_and_then_made_once(clerk_client, shop):
    url = reverse("portal:refund", args=[shop.payment.pk])
    key = _key(clerk_client.get(url).content.decode())
    before_shop = natural(shop.merchant.token_account)
    # the first step only asks for confirmation and writes nothing
    before = ledger_size()
    asked = clerk_client.post(url, {"amount": 12_000, "key": key}).content.decode()
    assert "Refund 12,000 won of payment" in asked and ledger_size() == before
    # the confirmation refunds; submitting it again (a double click) refunds nothing more
    done = clerk_client.post(url, {"amount": 12_000, "key": key, "confirm": "1"}, follow=True).content.decode()
    clerk_client.post(url, {"amount": 12_000, "key": key, "confirm": "1"})
    assert "Refunded 12,000 won." in done
    payment = Payment.objects.get(pk=shop.payment.pk)
    assert payment.refunded_amount == 12_000 and Refund.objects.filter(payment=payment).count() == 1
    assert natural(shop.merchant.token_account) == before_shop - 12_000
    assert_ledger_ok()


def test_a_refund_over_what_is_left_shows_the_services_error_and_writes_nothing(owner_client, shop):
    url = reverse("portal:refund", args=[shop.payment.pk])
    before = ledger_size()
    response = owner_client.post(url, {"amount": 30_001, "key": "portal:" + "c" * 32, "confirm": "1"})
    assert response.status_code == 409
    assert "refund_exceeds_payment" in response.content.decode()
    assert ledger_size() == before and Payment.objects.get(pk=shop.payment.pk).refunded_amount == 0


def test_a_frozen_merchant_cannot_refund_from_the_portal(owner_client, shop):
    services.set_merchant_status(actor=staff("officer"), merchant=shop.merchant, status="frozen", reason="review")
    before = ledger_size()
    response = owner_client.post(
        reverse("portal:refund", args=[shop.payment.pk]), {"amount": 1_000, "key": "portal:" + "d" * 32, "confirm": "1"}
    )
    assert response.status_code == 409 and "merchant_frozen" in response.content.decode()
    assert ledger_size() == before


def test_a_malformed_refund_amount_or_key_is_refused_on_the_form(owner_client, shop):
    url = reverse("portal:refund", args=[shop.payment.pk])
    before = ledger_size()
    for data in (
        {"amount": "0", "key": "portal:" + "e" * 32, "confirm": "1"},
        {"amount": "1.5", "key": "portal:" + "e" * 32, "confirm": "1"},
        {"amount": "1000", "key": "mine", "confirm": "1"},
    ):
        assert owner_client.post(url, data).status_code == 400, data
    assert ledger_size() == before


def test_a_payment_qr_is_signed_for_the_merchant_and_a_citizen_can_pay_it_once(owner_client, shop):
    response = owner_client.post(reverse("portal:qr"), {"amount": 15_000, "reference": "table-9"})
    request = PaymentRequest.objects.get(merchant=shop.merchant)
    assert response["Location"] == reverse("portal:qr-detail", args=[request.pk])
    page = owner_client.get(response["Location"]).content.decode()
    assert "15,000 won" in page and reverse("portal:qr-svg", args=[request.pk]) in page
    image = owner_client.get(reverse("portal:qr-svg", args=[request.pk]))
    assert image["Content-Type"] == "image/svg+xml" and b"<svg" in image.content
    # the payload is one the citizen's app accepts: signed by a device key of this merchant
    payload = services.request_payload(request)
    assert payload in page
    citizen = wallet_with_tokens(50_000)
    payment = services.pay_payment_request(wallet=citizen, payload=payload, idempotency_key="scan-1")
    assert (payment.merchant_id, payment.amount, payment.reference) == (shop.merchant.pk, 15_000, "table-9")
    assert "Paid." in owner_client.get(response["Location"]).content.decode()


def test_a_payment_qr_with_a_bad_amount_is_refused(owner_client, shop):
    for amount in ("0", "-5", "abc"):
        assert owner_client.post(reverse("portal:qr"), {"amount": amount}).status_code == 400
    assert not PaymentRequest.objects.filter(merchant=shop.merchant).exists()


def test_the_owner_moves_settlements_to_another_own_account_with_an_audit_row(owner_client, shop):
    second = open_account(
        owner=shop.merchant.party, code="krw:settlement:second", currency="KRW", normal_side="liability"
    )
    response = owner_client.post(reverse("portal:account"), {"account": second.pk}, follow=True)
    assert "The settlement account was changed." in response.content.decode()
    shop.merchant.refresh_from_db()
    assert shop.merchant.settlement_account_id == second.pk
    event = AuditEvent.objects.get(action="merchant.change_settlement_account")
    assert event.actor == shop.owner and event.after == {"settlement_account": second.pk}


def test_a_clerk_cannot_change_the_settlement_account(clerk_client, shop):
    second = open_account(
        owner=shop.merchant.party, code="krw:settlement:clerk", currency="KRW", normal_side="liability"
    )
    before = shop.merchant.settlement_account_id
    response = clerk_client.post(reverse("portal:account"), {"account": second.pk})
    assert response.status_code == 403
    shop.merchant.refresh_from_db()
    assert shop.merchant.settlement_account_id == before
    assert not AuditEvent.objects.filter(action="merchant.change_settlement_account").exists()


def test_the_settlement_account_may_not_be_another_partys(shop, other):
    import pytest

    from voucher import errors

    with pytest.raises(errors.InvalidRequest):
        services.change_settlement_account(
            actor=shop.owner, merchant=shop.merchant, account=other.merchant.settlement_account
        )
    with pytest.raises(errors.MerchantOwnerOnly):
        services.change_settlement_account(
            actor=shop.clerk, merchant=shop.merchant, account=shop.merchant.settlement_account
        )
