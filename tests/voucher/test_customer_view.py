"""The customer view: a teller finds a citizen, sees wallet, lots, limits, history
and devices, revokes a lost phone's key (its signatures are then refused) and
changes the KYC tier with a reason; both audited."""

import hashlib
import re

import coincurve
import pytest
from django.urls import reverse

from bank import identity
from bank import services as bank_services
from bank.errors import BankError
from bank.models import AuditEvent, DeviceKey, EnrollmentCode
from bank.roles import grant_role
from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import UserFactory, grant_lot, merchant
from tests.voucher.admin_support import teller
from voucher import services
from voucher.models import Wallet

PAY = "/api/v1/wallet/payments/"


@pytest.fixture
def counter(client, db):
    user = teller("view_customerwallet", "change_kyc_tier", "revoke_device_key")
    client.force_login(user)
    return client, user


def page_of(client, wallet, **params) -> str:
    response = client.get(reverse("admin:voucher_customerwallet_change", args=[wallet.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_a_teller_finds_a_customer_by_party_ref(counter):
    client, _ = counter
    app, other = citizen_app(5_000), citizen_app(1_000)
    ref = app.wallet.owner.external_ref
    listing = client.get(reverse("admin:voucher_customerwallet_changelist"), {"q": ref}).content.decode()
    assert ref in listing and other.wallet.owner.external_ref not in listing


def test_the_customer_page_shows_lots_limits_history_and_devices(counter):
    client, _ = counter
    app = citizen_app(10_000)
    program = grant_lot(app.wallet, 3_000)
    shop = merchant(name="Jagalchi Fish Stall")
    services.pay(wallet=app.wallet, merchant=shop, amount=4_000, idempotency_key="p1")
    page = page_of(client, app.wallet)
    assert "9,000 BKRW" in page  # 10,000 + 3,000 - 4,000
    assert program.name in page and "paid-in" in page  # lots by program
    assert "2,000,000" in page and "1,000,000" in page  # named tier's balance and per-payment caps
    assert "payment" in page and "Jagalchi Fish Stall" in page and "-4,000" in page and "top_up" in page
    assert "phone" in page and app.device.did[:20] in page and "Revoke" in page


def test_history_is_paginated(counter):
    client, _ = counter
    app, shop = citizen_app(100_000), merchant()
    for n in range(30):
        services.pay(wallet=app.wallet, merchant=shop, amount=100 + n, idempotency_key=f"p{n}")
    first = page_of(client, app.wallet)
    assert "Page 1 of 2" in first and "-129" in first and "-100<" not in first
    second = page_of(client, app.wallet, page=2)
    assert "Page 2 of 2" in second and "-100" in second and "top_up" in second


def test_revoking_a_lost_phone_makes_its_signatures_refused(counter):
    client, user = counter
    app, shop = citizen_app(10_000), merchant()
    assert app.post(PAY, {"merchant": shop.pk, "amount": 1_000}).status_code == 201
    # when
    response = client.post(
        reverse("admin:voucher_customerwallet_revoke_device", args=[app.wallet.pk]),
        {"device": app.device.pk, "reason": "phone lost on the subway"},
    )
    # then
    assert response.status_code == 302
    assert DeviceKey.objects.get(pk=app.device.pk).status == "revoked"
    refused = app.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    assert refused.status_code in (401, 403) and refused.json()["error"]["code"] == "device_key_unknown"
    event = AuditEvent.objects.get(action="device_key.revoke")
    assert (event.actor, event.reason) == (user, "phone lost on the subway")


def test_a_device_is_not_revoked_without_a_reason_or_for_another_customer(counter):
    client, _ = counter
    app, stranger = citizen_app(1_000), citizen_app(1_000)
    url = reverse("admin:voucher_customerwallet_revoke_device", args=[app.wallet.pk])
    client.post(url, {"device": app.device.pk, "reason": ""})
    client.post(url, {"device": stranger.device.pk, "reason": "wrong customer"})
    assert set(DeviceKey.objects.values_list("status", flat=True)) == {"active"}
    assert not AuditEvent.objects.filter(action="device_key.revoke").exists()


def test_changing_the_kyc_tier_is_audited_with_its_reason(counter):
    client, user = counter
    app = citizen_app(10_000, kyc_tier="anonymous")
    client.post(
        reverse("admin:voucher_customerwallet_kyc_tier", args=[app.wallet.pk]),
        {"kyc_tier": "named", "reason": "ID card checked at the branch"},
    )
    assert Wallet.objects.get(pk=app.wallet.pk).kyc_tier == "named"
    event = AuditEvent.objects.get(action="wallet.kyc_tier")
    assert (event.actor, event.before, event.after) == (user, {"kyc_tier": "anonymous"}, {"kyc_tier": "named"})
    assert "named (verified)" in page_of(client, app.wallet)


def test_a_wallet_over_the_anonymous_cap_cannot_be_moved_down(counter):
    _, user = counter
    app = citizen_app(600_000, extra_krw=0)
    with pytest.raises(BankError) as refused:
        services.set_kyc_tier(actor=user, wallet=app.wallet, kyc_tier="anonymous", reason="customer asked")
    assert refused.value.code == "over_wallet_limit"
    assert Wallet.objects.get(pk=app.wallet.pk).kyc_tier == "named"


def test_staff_without_the_teller_permissions_cannot_revoke_or_change_tier_by_a_crafted_post(client, db):
    viewer = teller("view_customerwallet", username="auditor")
    client.force_login(viewer)
    app = citizen_app(1_000, kyc_tier="anonymous")
    page = page_of(client, app.wallet)
    assert "Revoke" not in page and "Change KYC tier" not in page
    revoke = reverse("admin:voucher_customerwallet_revoke_device", args=[app.wallet.pk])
    tier = reverse("admin:voucher_customerwallet_kyc_tier", args=[app.wallet.pk])
    assert client.post(revoke, {"device": app.device.pk, "reason": "x"}).status_code == 403
    assert client.post(tier, {"kyc_tier": "named", "reason": "x"}).status_code == 403
    with pytest.raises(BankError) as refused:
        services.set_kyc_tier(actor=viewer, wallet=app.wallet, kyc_tier="named", reason="x")
    assert refused.value.code == "role_required"
    assert DeviceKey.objects.get(pk=app.device.pk).status == "active"
    assert Wallet.objects.get(pk=app.wallet.pk).kyc_tier == "anonymous"


# --- inputs are forms, and the enrollment code of a holder with no device key left (issue 13) ---


@pytest.mark.parametrize("device", ["abc", "", "99999999999999999999", "-1"])
def test_a_malformed_device_id_gets_a_message_not_a_500_and_revokes_nothing(counter, device):
    client, _ = counter
    app = citizen_app(1_000)
    url = reverse("admin:voucher_customerwallet_revoke_device", args=[app.wallet.pk])
    response = client.post(url, {"device": device, "reason": "phone lost"}, follow=True)
    assert response.status_code == 200
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert DeviceKey.objects.get(pk=app.device.pk).status == "active"
    assert not AuditEvent.objects.filter(action="device_key.revoke").exists()


def _code_from(page: str) -> str:
    return re.search(r'id="the-code">([A-Z0-9-]+)<', page).group(1)


@pytest.fixture
def real_teller(client, db):
    user = grant_role(UserFactory(username="counter-teller"), "teller")
    client.force_login(user)
    return client, user


def test_a_teller_issues_an_enrollment_code_shown_once_that_enrolls_the_new_phone(real_teller):
    client, user = real_teller
    app = citizen_app(1_000)
    bank_services.revoke_device_key(actor=user, device=app.device, reason="phone lost")
    assert "enrollment-code-form" in page_of(client, app.wallet)
    # when
    url = reverse("admin:voucher_customerwallet_enrollment_code", args=[app.wallet.pk])
    response = client.post(url, {"identity_checked": "on", "reason": "ID card checked at the Seomyeon branch"})
    # then the code is on this page only, stored as its digest, audited
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    code = _code_from(response.content.decode())
    stored = EnrollmentCode.objects.get(party=app.wallet.owner)
    assert stored.digest == hashlib.sha256(code.replace("-", "").encode()).hexdigest() and code not in stored.digest
    assert code not in page_of(client, app.wallet)
    event = AuditEvent.objects.get(action="enrollment_code.issue")
    assert (event.actor, event.reason, event.target_id) == (
        user,
        "ID card checked at the Seomyeon branch",
        str(stored.pk),
    )
    # and the new phone enrolls with it
    secret = bytes.fromhex("4d" * 32)
    public = coincurve.PrivateKey(secret).public_key.format()
    message = identity.device_proof_message(username=app.user.get_username(), holder="wallet", public_key=public)
    proof = identity.sign_digest(secret, identity.payload_digest(message)).hex()
    enrolled = app.post(
        "/api/v1/devices/", {"public_key": public.hex(), "proof": proof, "enrollment_code": code}, key=None, sign=False
    )
    assert enrolled.status_code == 201, enrolled.content


@pytest.mark.parametrize(
    "form",
    [
        {"reason": "ID checked"},
        {"identity_checked": "on", "reason": ""},
        {"identity_checked": "on", "reason": "x" * 301},
    ],
)
def test_no_code_is_issued_without_the_identity_check_and_a_reason(real_teller, form):
    client, _ = real_teller
    app = citizen_app(1_000)
    url = reverse("admin:voucher_customerwallet_enrollment_code", args=[app.wallet.pk])
    response = client.post(url, form, follow=True)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert (
        not EnrollmentCode.objects.exists() and not AuditEvent.objects.filter(action__startswith="enrollment").exists()
    )


def test_staff_without_the_permission_cannot_issue_a_code_by_a_crafted_post(counter):
    client, user = counter  # may revoke devices, may not issue codes
    app = citizen_app(1_000)
    assert "enrollment-code-form" not in page_of(client, app.wallet)
    url = reverse("admin:voucher_customerwallet_enrollment_code", args=[app.wallet.pk])
    assert client.post(url, {"identity_checked": "on", "reason": "x"}).status_code == 403
    with pytest.raises(BankError) as refused:
        bank_services.issue_enrollment_code(actor=user, party=app.wallet.owner, reason="x")
    assert refused.value.code == "role_required"
    assert not EnrollmentCode.objects.exists()


def test_a_teller_revokes_a_merchants_key_and_issues_its_code_from_the_merchants_page(real_teller):
    client, _ = real_teller
    owner = merchant_app()
    page = client.get(reverse("admin:voucher_merchant_change", args=[owner.merchant.pk])).content.decode()
    assert owner.device.did[:20] in page and "enrollment-code-form" in page
    revoke = reverse("admin:voucher_merchant_revoke_device", args=[owner.merchant.pk])
    stranger = citizen_app(1_000)
    for device in ("abc", stranger.device.pk):
        response = client.post(revoke, {"device": device, "reason": "till stolen"}, follow=True)
        assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert set(DeviceKey.objects.values_list("status", flat=True)) == {"active"}
    client.post(revoke, {"device": owner.device.pk, "reason": "till stolen"})
    assert DeviceKey.objects.get(pk=owner.device.pk).status == "revoked"
    url = reverse("admin:voucher_merchant_enrollment_code", args=[owner.merchant.pk])
    response = client.post(url, {"identity_checked": "on", "reason": "owner's ID and business registration"})
    code = _code_from(response.content.decode())
    assert EnrollmentCode.objects.get(party=owner.merchant.party).status == "issued" and code
