"""Admin views and actions validate what they are posted with forms: a bad value is
a message on the page, never a 500, and changes nothing (issue 13)."""

import pytest
from django.urls import reverse

from bank.models import AuditEvent
from bank.roles import grant_role
from tests.factories.api import citizen_app
from tests.factories.voucher import merchant, staff, wallet_with_tokens
from tests.voucher.admin_support import pay_many, reviewer, run_rules, teller
from voucher.models import FraudFlag, Wallet


def _messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


@pytest.mark.parametrize(
    "data",
    [
        {"kyc_tier": "platinum", "reason": "ID card checked"},
        {"kyc_tier": "named", "reason": "ID card\x00 checked"},
        {"kyc_tier": "named", "reason": "x" * 301},
        {"kyc_tier": "named"},
        {},
    ],
    ids=["unknown-tier", "nul-in-reason", "long-reason", "no-reason", "nothing"],
)
def test_a_bad_kyc_tier_post_is_a_message_and_changes_nothing(client, db, data):
    client.force_login(teller("view_customerwallet", "change_kyc_tier"))
    app = citizen_app(1_000, kyc_tier="anonymous")
    events = AuditEvent.objects.count()
    response = client.post(reverse("admin:voucher_customerwallet_kyc_tier", args=[app.wallet.pk]), data)
    assert response.status_code == 302
    assert any("invalid_request" in m for m in _messages(response)), _messages(response)
    assert Wallet.objects.get(pk=app.wallet.pk).kyc_tier == "anonymous"
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    "data",
    [
        {"decision": "burn", "reason": "checked the till"},
        {"decision": "dismiss", "reason": "checked\x00 the till"},
        {"decision": "freeze", "reason": "x" * 5_000},
        {"reason": "checked the till"},
    ],
    ids=["unknown-decision", "nul-in-reason", "long-reason", "no-decision"],
)
def test_a_bad_fraud_flag_review_is_a_message_and_changes_nothing(client, db, data):
    pay_many(wallet_with_tokens(100_000), merchant(), [10_000, 20_000, 30_000])
    [flag] = run_rules()
    client.force_login(reviewer())
    events = AuditEvent.objects.count()
    response = client.post(reverse("admin:voucher_fraudflag_review", args=[flag.pk]), data)
    assert response.status_code == 302
    assert any("invalid_request" in m for m in _messages(response)), _messages(response)
    assert FraudFlag.objects.get(pk=flag.pk).status == "open"
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("role", ["teller", "approver"])  # a teller's attempt is audited first
@pytest.mark.parametrize("selected", [["7\x00"], ["abc"], ["²"], ["9" * 30]], ids=["nul", "letters", "sup", "huge"])
def test_a_crafted_approval_post_with_a_bad_selection_is_a_message(client, db, role, selected):
    client.force_login(grant_role(staff(f"{role}-crafty"), role))
    response = client.post(
        reverse("admin:bank_approvalrequest_changelist"),
        {"action": "approve", "_selected_action": selected, "apply": "1", "reason": "x"},
    )
    assert response.status_code == 302
    assert any("invalid_selection" in m for m in _messages(response))
