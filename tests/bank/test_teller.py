"""Cash at the counter: a teller pays cash into or out of a customer's KRW deposit, through the admin."""

import pytest
from django.urls import reverse

from bank import services
from bank.errors import BankError
from bank.models import Account, AuditEvent, JournalEntry
from bank.roles import grant_role
from tests.factories import funded_account
from tests.factories.voucher import citizen, staff
from tests.voucher.support import ledger_size, natural

ACCOUNTS = reverse("admin:bank_account_changelist")


def _cash(client, account: Account, action: str, amount, *, form_key="slip-1", reference="slip 0042"):
    return client.post(
        ACCOUNTS,
        {
            "action": action,
            "_selected_action": [account.pk],
            "apply": "1",
            "amount": amount,
            "reason": reference,
            "form_key": form_key,
        },
    )


@pytest.fixture
def teller(client, db):
    user = grant_role(staff("teller-kim"), "teller")
    client.force_login(user)
    return user


def test_a_teller_records_cash_paid_in_and_sending_the_form_twice_counts_it_once(client, teller):
    deposit = citizen(krw=10_000).deposit_account
    assert _cash(client, deposit, "cash_deposit", 50_000).status_code == 302
    assert _cash(client, deposit, "cash_deposit", 50_000).status_code == 302  # the same form sent again
    assert natural(deposit) == 60_000
    assert natural(services.vault_account()) == 50_000  # cash on hand grew by what came in
    entry = JournalEntry.objects.get(kind="cash_deposit")
    assert entry.reference == "slip 0042"
    event = AuditEvent.objects.get(action="cash.deposit")
    assert (event.actor_id, event.after["amount"], event.reason) == (teller.pk, 50_000, "slip 0042")


def test_cash_paid_out_never_exceeds_the_deposit(client, teller):
    deposit = citizen(krw=30_000).deposit_account
    _cash(client, deposit, "cash_withdrawal", 20_000)
    assert natural(deposit) == 10_000
    before = ledger_size()
    page = _cash(client, deposit, "cash_withdrawal", 10_001, form_key="slip-2")
    assert page.status_code == 302
    assert ledger_size() == before and natural(deposit) == 10_000
    messages = [str(m) for m in page.wsgi_request._messages]
    assert any("insufficient_funds" in m for m in messages)


@pytest.mark.parametrize("amount", [0, -5, "1.5", ""])
def test_a_bad_amount_shows_the_form_again_and_writes_nothing(client, teller, amount):
    deposit = citizen(krw=1_000).deposit_account
    before = ledger_size()
    page = _cash(client, deposit, "cash_deposit", amount)
    assert page.status_code == 200 and b"amount" in page.content
    assert ledger_size() == before


def test_the_counter_moves_only_customers_krw(db):
    teller = grant_role(staff("teller-lee"), "teller")
    bank_own = services.vault_account()
    token_account = funded_account(0, currency="BKRW")
    for account in (bank_own, token_account):
        with pytest.raises(BankError) as refused:
            services.record_cash_deposit(
                actor=teller, account=account, amount=1_000, reference="x", idempotency_key=f"k{account.pk}"
            )
        assert refused.value.code == "invalid_account"


@pytest.mark.parametrize("role", ["auditor", "approver", "settlement_operator"])
def test_other_roles_cannot_take_cash_even_by_a_crafted_post(client, db, role):
    client.force_login(grant_role(staff(f"{role}-1"), role))
    deposit = citizen(krw=1_000).deposit_account
    before = ledger_size()
    _cash(client, deposit, "cash_deposit", 1_000)
    assert ledger_size() == before
    with pytest.raises(BankError) as refused:
        services.record_cash_deposit(
            actor=grant_role(staff(f"{role}-2"), role), account=deposit, amount=1, reference="x", idempotency_key="k"
        )
    assert refused.value.code == "role_required"
