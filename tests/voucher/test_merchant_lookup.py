"""voucher.services.merchants.get_merchant: a missing merchant is a typed error, never Merchant.DoesNotExist."""

import pytest

from bank.models import ApprovalRequest
from bank.roles import grant_role
from bank.services import approve_request
from tests.factories.voucher import merchant, staff
from voucher import errors, services
from voucher.models import Merchant
from voucher.services.merchants import get_merchant


def test_get_merchant_returns_the_merchant_with_that_id(db):
    shop = merchant()
    assert get_merchant(shop.pk) == shop


@pytest.mark.parametrize("pk", [10**9, "1", None, True, 1.0])
def test_get_merchant_refuses_an_unknown_or_malformed_id_with_merchant_not_found(db, pk):
    merchant()  # id 1 may exist: "1", True and 1.0 are still not ids
    with pytest.raises(errors.MerchantNotFound) as caught:
        get_merchant(pk)
    assert caught.value.code == "merchant_not_found" and caught.value.http_status == 404


def test_an_approved_unfreeze_of_a_merchant_that_is_gone_fails_with_merchant_not_found(db):
    # given a frozen merchant's unfreeze request, whose target id then names no merchant
    shop = merchant()
    officer = staff("officer")
    services.set_merchant_status(actor=officer, merchant=shop, status=Merchant.Status.FROZEN, reason="audit")
    unfreeze = services.request_unfreeze(actor=grant_role(officer, "approver"), target=shop, reason="cleared")
    checker = grant_role(staff("checker"), "approver")
    ApprovalRequest.objects.filter(pk=unfreeze.pk).update(target_id="999999999")
    # when the checker approves it
    approve_request(actor=checker, request=unfreeze)
    # then the change failed with the typed error's code (Merchant.DoesNotExist would have been a 500)
    unfreeze.refresh_from_db()
    assert unfreeze.status == ApprovalRequest.Status.FAILED
    assert unfreeze.result["error"] == "merchant_not_found"
