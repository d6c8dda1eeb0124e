"""One user's objects are invisible to another (404, never 403)."""

import pytest

from bank.models import DeviceKey
from tests.factories.api import citizen_app, merchant_app
from tests.voucher.support import ledger_size
from voucher import services
from voucher.models import MerchantMember


@pytest.fixture
def two_of_each(db):
    alice, bob = citizen_app(10_000), citizen_app(10_000)
    shop, other_shop = merchant_app(), merchant_app()
    payment = services.pay(wallet=alice.wallet, merchant=shop.merchant, amount=1_000, idempotency_key="p")
    request = shop.client.post("/api/v1/payment-requests/", shop.payment_request(500), format="json").json()
    return alice, bob, shop, other_shop, payment, request


def test_another_citizens_payment_is_not_found(two_of_each):
    alice, bob, _, _, payment, _ = two_of_each
    assert alice.get(f"/api/v1/wallet/payments/{payment.pk}/").status_code == 200
    response = bob.get(f"/api/v1/wallet/payments/{payment.pk}/")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert bob.get("/api/v1/wallet/payments/").json()["count"] == 0


def test_another_merchants_payment_and_requests_are_not_found(two_of_each):
    _, _, shop, other_shop, payment, request = two_of_each
    for path in (
        f"/api/v1/merchant/payments/{payment.pk}/",
        f"/api/v1/payment-requests/{request['id']}/",
        request["qr_png"],
        request["qr_svg"],
    ):
        assert shop.client.get(path).status_code == 200, path
        response = other_shop.client.get(path)
        assert (response.status_code, response["Content-Type"]) == (404, "application/json"), path
        assert response.json()["error"]["code"] == "not_found"
    assert other_shop.get("/api/v1/merchant/payments/").json()["count"] == 0


def test_another_merchant_cannot_refund_a_payment(two_of_each):
    _, _, _, other_shop, payment, _ = two_of_each
    before = ledger_size()
    response = other_shop.post(f"/api/v1/merchant/payments/{payment.pk}/refunds/", {"amount": 1_000})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert ledger_size() == before


def test_another_users_device_is_not_found(two_of_each):
    alice, bob, *_ = two_of_each
    assert bob.get(f"/api/v1/devices/{alice.device.pk}/").status_code == 404
    assert bob.client.delete(f"/api/v1/devices/{alice.device.pk}/").status_code == 404
    assert bob.delete(f"/api/v1/devices/{alice.device.pk}/").status_code == 404  # signed by bob's own key
    assert DeviceKey.objects.get(pk=alice.device.pk).status == "active"


def test_a_clerk_acts_for_the_merchant_of_its_owner(db):
    owner = merchant_app()
    clerk = merchant_app(owner.merchant, role=MerchantMember.Role.CLERK)
    profile = clerk.get("/api/v1/merchant/").json()
    assert (profile["id"], profile["role"]) == (owner.merchant.pk, "clerk")
    # the till's device keys are the merchant's: each member sees them
    assert {d["id"] for d in clerk.get("/api/v1/devices/").json()["results"]} == {owner.device.pk, clerk.device.pk}
