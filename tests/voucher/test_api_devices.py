"""Device keys through the API: an API token alone can neither enroll nor revoke
one, for a citizen's wallet or a merchant, owner or clerk. A holder without an
active key enrolls with a teller's one-time code; a second key is signed by the first."""

import coincurve
import pytest

from bank import services as bank_services
from bank.models import AuditEvent, DeviceKey, EnrollmentCode, UsedNonce
from bank.roles import grant_role
from tests.factories.api import AppUser, api_client, citizen_app, device_proof, enroll_device, merchant_app
from tests.factories.voucher import UserFactory, citizen, merchant
from tests.voucher.support import ledger_size
from voucher import services
from voucher.models import MerchantMember

DEVICES = "/api/v1/devices/"
PAY = "/api/v1/wallet/payments/"


def _teller():
    return grant_role(UserFactory(), "teller")


def _code_for(party) -> str:
    _, code = bank_services.issue_enrollment_code(actor=_teller(), party=party, reason="ID card checked at the counter")
    return code


def _lose_every_key(party) -> None:
    """The teller revokes the holder's keys (a lost phone), as the customer view does."""
    for device in DeviceKey.objects.filter(party=party, status="active"):
        bank_services.revoke_device_key(actor=None, device=device, reason="phone lost")


def _writes() -> tuple:
    return (DeviceKey.objects.count(), UsedNonce.objects.count(), AuditEvent.objects.count(), ledger_size())


def test_a_second_device_key_is_added_from_the_first_listed_and_revoked(db):
    app = citizen_app(1_000)
    secret = bytes.fromhex("7a" * 32)
    response = enroll_device(app, secret, label="tablet")
    assert response.status_code == 201, response.content
    device = response.json()
    assert device["did"].startswith("did:key:z") and device["holder"] == "wallet"
    assert device["public_key"] == coincurve.PrivateKey(secret).public_key.format().hex()  # stored compressed
    again = enroll_device(app, secret)
    assert (again.status_code, again.json()["id"]) == (200, device["id"])
    assert app.get(DEVICES).json()["count"] == 2
    assert app.delete(f"{DEVICES}{device['id']}/").status_code == 204  # signed by the first phone
    assert app.get(f"{DEVICES}{device['id']}/").json()["status"] == "revoked"
    enrolled = AuditEvent.objects.get(action="device_key.enroll", target_id=str(device["id"]))
    assert (enrolled.actor, enrolled.after["via"], enrolled.after["signed_by"]) == (
        app.user,
        "signature",
        app.device.pk,
    )
    assert AuditEvent.objects.filter(action="device_key.revoke", target_id=str(device["id"])).exists()


def test_a_stolen_token_alone_cannot_add_a_device_key(db):
    app = citizen_app(1_000)  # has a phone's key already
    thief = bytes.fromhex("5c" * 32)
    before = _writes()
    response = enroll_device(app, thief, sign=False)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "signature_missing")
    assert _writes() == before
    signed_by_itself = enroll_device(app, thief, sign=True, label="x")
    assert signed_by_itself.status_code == 201  # the app's own phone signed: that is the legitimate path
    assert DeviceKey.objects.filter(party=app.wallet.owner).count() == 2


@pytest.mark.parametrize("holder", ["wallet", "merchant"])
def test_a_stolen_token_alone_cannot_revoke_a_key(db, holder):
    app = citizen_app(1_000) if holder == "wallet" else merchant_app()
    before = _writes()
    response = app.client.delete(f"{DEVICES}{app.device.pk}/")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "signature_missing")
    forged = app.delete(f"{DEVICES}{app.device.pk}/", secret=bytes.fromhex("5c" * 32))
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "signature_invalid")
    assert DeviceKey.objects.get(pk=app.device.pk).status == "active"
    assert _writes() == before


def test_a_stolen_token_cannot_take_over_a_wallet_whose_phone_was_revoked(db):
    """The attack of issue 13: revoke the phone's key, enroll the thief's, sign top-ups."""
    app, shop = citizen_app(10_000), merchant()
    thief = bytes.fromhex("66" * 32)
    assert app.client.delete(f"{DEVICES}{app.device.pk}/").status_code == 401
    _lose_every_key(app.wallet.owner)  # even when the phone is gone for real
    before = _writes()
    for response in (enroll_device(app, thief, sign=False), enroll_device(app, thief, sign=True)):
        assert (response.status_code, response.json()["error"]["code"]) == (403, "enrollment_code_required")
    guessed = enroll_device(app, thief, sign=False, enrollment_code="ABCD-EFGH-JKMN-PQRS")
    assert (guessed.status_code, guessed.json()["error"]["code"]) == (403, "enrollment_code_invalid")
    assert _writes() == before
    assert not DeviceKey.objects.filter(party=app.wallet.owner, status="active").exists()
    response = app.post(PAY, {"merchant": shop.pk, "amount": 1_000}, secret=thief)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_key_unknown")


def test_a_holder_without_a_key_enrolls_once_with_a_tellers_code(db):
    # given a citizen whose only phone was revoked at the counter, and a new code
    app, shop = citizen_app(10_000), merchant()
    _lose_every_key(app.wallet.owner)
    code = _code_for(app.wallet.owner)
    new_phone = bytes.fromhex("4d" * 32)
    # when the new phone enrolls with it (lower case and without dashes: typed by hand)
    response = enroll_device(
        app, new_phone, sign=False, enrollment_code=code.replace("-", "").lower(), label="new phone"
    )
    # then
    assert response.status_code == 201, response.content
    device = DeviceKey.objects.get(pk=response.json()["id"])
    used = EnrollmentCode.objects.get(party=app.wallet.owner)
    assert (used.status, used.device) == ("used", device)
    actions = set(AuditEvent.objects.filter(target_type="EnrollmentCode").values_list("action", flat=True))
    assert actions == {"enrollment_code.issue", "enrollment_code.use"}
    enrolled = AuditEvent.objects.get(action="device_key.enroll", target_id=str(device.pk))
    assert (enrolled.actor, enrolled.after["via"], enrolled.after["code"]) == (app.user, "enrollment code", used.pk)
    assert (
        app.post(PAY, {"merchant": shop.pk, "amount": 1_000}, secret=new_phone, device_id=device.pk).status_code == 201
    )
    # a retry whose answer was lost gets the same key; the code enrolls nothing else
    retry = enroll_device(app, new_phone, sign=False, enrollment_code=code)
    assert (retry.status_code, retry.json()["id"]) == (200, device.pk)
    before = _writes()
    again = enroll_device(app, bytes.fromhex("4e" * 32), sign=False, enrollment_code=code)
    assert (again.status_code, again.json()["error"]["code"]) == (403, "enrollment_code_invalid")
    assert _writes() == before


def test_a_brand_new_holders_first_key_also_needs_a_code(db):
    user = UserFactory()
    wallet = services.open_wallet(owner=citizen().owner, user=user)
    bob = AppUser(client=api_client(user), user=user, device=None, secret=b"", wallet=wallet)  # never had a key
    response = enroll_device(bob, bytes.fromhex("2b" * 32), sign=False)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "enrollment_code_required")
    assert not DeviceKey.objects.filter(party=wallet.owner).exists()
    code = _code_for(wallet.owner)
    assert enroll_device(bob, bytes.fromhex("2b" * 32), sign=False, enrollment_code=code).status_code == 201


@pytest.mark.parametrize("case", ["another holder's", "expired", "replaced by a newer one"])
def test_an_enrollment_code_only_works_for_its_holder_before_it_expires_and_while_it_is_the_latest(db, settings, case):
    app, other = citizen_app(1_000), citizen_app(1_000)
    _lose_every_key(app.wallet.owner)
    if case == "another holder's":
        code = _code_for(other.wallet.owner)
    elif case == "expired":
        settings.DEVICE_ENROLLMENT_CODE_HOURS = 0
        code = _code_for(app.wallet.owner)
    else:
        code = _code_for(app.wallet.owner)
        _code_for(app.wallet.owner)
    before = _writes()
    response = enroll_device(app, bytes.fromhex("3c" * 32), sign=False, enrollment_code=code)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "enrollment_code_invalid")
    assert _writes() == before


def test_a_phone_revokes_its_own_key_and_a_retry_of_that_request_gets_the_same_answer(db):
    app, shop = citizen_app(10_000), merchant()
    headers = app.signature_headers("DELETE", f"{DEVICES}{app.device.pk}/", b"")
    first = app.client.generic("DELETE", f"{DEVICES}{app.device.pk}/", b"", **headers)
    assert first.status_code == 204
    assert DeviceKey.objects.get(pk=app.device.pk).status == "revoked"
    before = _writes()
    retry = app.client.generic("DELETE", f"{DEVICES}{app.device.pk}/", b"", **headers)
    assert retry.status_code == 204
    assert _writes() == before
    assert AuditEvent.objects.filter(action="device_key.revoke").count() == 1
    refused = app.post(PAY, {"merchant": shop.pk, "amount": 1_000})
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "device_key_unknown")


def test_a_revoked_key_signs_nothing_but_its_own_revocation(db):
    app = citizen_app(1_000)
    second = bytes.fromhex("7b" * 32)
    tablet = enroll_device(app, second).json()["id"]
    assert app.delete(f"{DEVICES}{app.device.pk}/").status_code == 204
    before = _writes()
    response = app.delete(f"{DEVICES}{tablet}/")  # signed by the revoked phone
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_key_unknown")
    assert DeviceKey.objects.get(pk=tablet).status == "active"
    assert _writes() == before


def test_a_key_of_another_holder_cannot_sign_a_revocation(db):
    alice, bob = citizen_app(1_000), citizen_app(1_000)
    response = alice.delete(f"{DEVICES}{alice.device.pk}/", device_id=bob.device.pk, secret=bob.secret)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_key_unknown")
    assert DeviceKey.objects.get(pk=alice.device.pk).status == "active"


def test_a_clerk_can_neither_revoke_nor_enroll_the_merchants_keys(db):
    owner = merchant_app()
    clerk = merchant_app(owner.merchant, role=MerchantMember.Role.CLERK)
    before = _writes()
    # signed by a merchant key (the clerk's till), still not the owner
    response = clerk.delete(f"{DEVICES}{owner.device.pk}/")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "merchant_owner_only")
    response = enroll_device(clerk, bytes.fromhex("6c" * 32), holder="merchant")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "merchant_owner_only")
    assert _writes() == before
    # and once the merchant has no key left, not even with a teller's code
    _lose_every_key(owner.merchant.party)
    code = _code_for(owner.merchant.party)
    response = enroll_device(clerk, bytes.fromhex("6c" * 32), holder="merchant", sign=False, enrollment_code=code)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "merchant_owner_only")
    assert not DeviceKey.objects.filter(party=owner.merchant.party, status="active").exists()
    assert EnrollmentCode.objects.get(party=owner.merchant.party).status == "issued"


def test_the_owner_manages_the_merchants_keys_signed_and_recovers_with_a_code(db):
    owner = merchant_app()
    till = enroll_device(owner, bytes.fromhex("6b" * 32), holder="merchant")
    assert till.status_code == 201 and till.json()["holder"] == "merchant"
    assert DeviceKey.objects.get(pk=till.json()["id"]).party_id == owner.merchant.party_id
    assert owner.delete(f"{DEVICES}{till.json()['id']}/").status_code == 204
    assert owner.delete(f"{DEVICES}{owner.device.pk}/").status_code == 204  # its own, last key
    response = enroll_device(owner, bytes.fromhex("6d" * 32), holder="merchant", sign=False)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "enrollment_code_required")
    code = _code_for(owner.merchant.party)
    response = enroll_device(owner, bytes.fromhex("6d" * 32), holder="merchant", sign=False, enrollment_code=code)
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"public_key": "02" + "00" * 32, "proof": "00" * 65}, 400, "invalid_public_key"),  # not on the curve
        ({"public_key": "hello", "proof": "00" * 65}, 400, "invalid_request"),
        ({"public_key": "02" + "11" * 32}, 400, "invalid_request"),  # no proof
        ({"public_key": "02" + "11" * 32, "proof": "00" * 65, "holder": "merchant"}, 403, "permission_denied"),
        ({"public_key": "02" + "11" * 32, "proof": "00" * 65, "enrollment_code": "x" * 41}, 400, "invalid_request"),
    ],
)
def test_a_bad_device_key_is_refused(db, body, status, code):
    app = citizen_app(1_000)
    response = app.client.post(DEVICES, body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_a_proof_made_by_another_key_or_for_another_login_is_refused(db):
    app, other = citizen_app(1_000), citizen_app(1_000)
    _lose_every_key(app.wallet.owner)
    code = _code_for(app.wallet.owner)
    secret, public = bytes.fromhex("3e" * 32), coincurve.PrivateKey(bytes.fromhex("3e" * 32)).public_key.format().hex()
    for proof in (
        device_proof(app, bytes.fromhex("3f" * 32)),
        device_proof(other, secret),
        device_proof(app, secret, "merchant"),
    ):
        body = {"public_key": public, "proof": proof, "enrollment_code": code}
        response = app.client.post(DEVICES, body, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "device_proof_invalid")
    assert not DeviceKey.objects.filter(public_key=public).exists()
    assert EnrollmentCode.objects.get(party=app.wallet.owner).status == "issued"  # a refusal does not use it up


def test_a_revoked_device_can_no_longer_sign(db):
    app, shop = citizen_app(10_000), merchant_app()
    assert app.delete(f"{DEVICES}{app.device.pk}/").status_code == 204
    before = ledger_size()
    response = app.post(PAY, {"merchant": shop.merchant.pk, "amount": 1_000})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "device_key_unknown")
    assert ledger_size() == before
