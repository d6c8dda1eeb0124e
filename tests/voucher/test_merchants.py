import pytest

from bank.errors import ApprovalRequired
from bank.models import Account, AuditEvent
from bank.roles import grant_role
from bank.services import approve_request
from tests.factories.voucher import UserFactory, merchant, staff, valid_brn
from voucher import errors, services
from voucher.models import Merchant


def _onboard(**overrides):
    fields = {
        "actor": staff("officer"),
        "business_registration_number": valid_brn(),
        "name": "Jagalchi Fish Stall 12",
        "category": "fish_market",
        "district": "jung",
        "annual_revenue": 300_000_000,
        **overrides,
    }
    return services.onboard_merchant(**fields)


def test_staff_onboard_a_merchant_with_its_ledger_accounts(db):
    shop = _onboard(business_registration_number="1234567891")
    assert shop.business_registration_number == "123-45-67891"
    assert (shop.token_account.currency, shop.settlement_account.currency) == ("BKRW", "KRW")
    assert not shop.token_account.may_go_negative
    assert AuditEvent.objects.filter(action="merchant.onboard", target_id=str(shop.pk)).exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"business_registration_number": "1234567890"},  # wrong check digit
        {"business_registration_number": "12345"},
        {"category": "casino"},
        {"district": "gangnam"},
        {"annual_revenue": -1},
        {"annual_revenue": 1.5},
        {"name": " "},
    ],
)
def test_invalid_registration_data_are_refused(db, overrides):
    with pytest.raises(errors.InvalidMerchant):
        _onboard(**overrides)
    assert not Merchant.objects.exists()


def test_a_business_registers_once(db):
    number = valid_brn()
    _onboard(business_registration_number=number)
    with pytest.raises(errors.MerchantAlreadyRegistered):
        _onboard(business_registration_number=number)


def test_only_staff_onboard(db):
    with pytest.raises(errors.StaffOnly):
        _onboard(actor=UserFactory(username="someone"))


def test_freezing_a_merchant_freezes_its_token_account_and_is_audited(db):
    shop, officer = merchant(), staff("officer")
    services.set_merchant_status(actor=officer, merchant=shop, status="frozen", reason="cashing-out")
    shop.token_account.refresh_from_db()
    assert shop.token_account.status == Account.Status.FROZEN
    with pytest.raises(ApprovalRequired):  # an unfreeze needs a second staff member
        services.set_merchant_status(actor=officer, merchant=shop, status="active", reason="cleared")
    unfreeze = services.request_unfreeze(actor=grant_role(officer, "approver"), target=shop, reason="cleared")
    approve_request(actor=grant_role(staff("checker"), "approver"), request=unfreeze)
    shop.token_account.refresh_from_db()
    assert shop.token_account.status == Account.Status.ACTIVE
    assert list(
        AuditEvent.objects.filter(target_type="Merchant", action__startswith="merchant.").values_list(
            "action", flat=True
        )
    ) == ["merchant.active", "merchant.frozen", "merchant.onboard"]
