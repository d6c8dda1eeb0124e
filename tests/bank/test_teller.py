"""Cash at the counter: a teller pays cash into or out of a customer's KRW deposit, through the admin."""

import pytest
from django.test import override_settings
from django.urls import reverse

from bank import services
from bank.errors import BankError
from bank.models import MAX_AMOUNT, Account, ApprovalRequest, AuditEvent, JournalEntry
from bank.roles import grant_role
from tests.factories import funded_account
from tests.factories.voucher import citizen, staff
from tests.voucher.support import ledger_size, natural, race

ACCOUNTS = reverse("admin:bank_account_changelist")
APPROVALS = reverse("admin:bank_approvalrequest_changelist")


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


def _messages(page) -> list[str]:
    return [str(m) for m in page.wsgi_request._messages]


def _stock_vault(client, amount: int) -> None:
    """Cash paid in by another customer, so the vault holds `amount` won."""
    _cash(client, citizen().deposit_account, "cash_deposit", amount, form_key=f"stock-{amount}")


def _approve(client, approver, request: ApprovalRequest):
    client.force_login(approver)
    return client.post(
        APPROVALS, {"action": "approve", "_selected_action": [request.pk], "apply": "1", "reason": "slip seen"}
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
    _stock_vault(client, 100_000)
    _cash(client, deposit, "cash_withdrawal", 20_000)
    assert natural(deposit) == 10_000
    before = ledger_size()
    page = _cash(client, deposit, "cash_withdrawal", 10_001, form_key="slip-2")
    assert page.status_code == 302
    assert ledger_size() == before and natural(deposit) == 10_000
    messages = [str(m) for m in page.wsgi_request._messages]
    assert any("insufficient_funds" in m for m in messages)


@pytest.mark.parametrize("amount", [0, -5, "1.5", "", 10**30, MAX_AMOUNT + 1])
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


# --- large cash needs an approver; the vault holds what it pays out (issue 13) --------------------


def test_a_deposit_beyond_what_a_ledger_line_carries_is_a_form_error(client, teller):
    deposit = citizen().deposit_account
    before = ledger_size()
    page = _cash(client, deposit, "cash_deposit", 5_000_000_000_000)
    assert page.status_code == 200 and "amount" in page.context["form"].errors
    assert ledger_size() == before and not ApprovalRequest.objects.exists()


@override_settings(COUNTER_CASH_APPROVAL_THRESHOLD=10_000_000)
def test_cash_above_the_threshold_is_posted_only_once_an_approver_agrees(client, teller):
    deposit = citizen().deposit_account
    before = ledger_size()
    # when: the teller counts 50 million won, and sends the form twice
    for _ in range(2):
        page = _cash(client, deposit, "cash_deposit", 50_000_000)
        assert page.status_code == 302
        filed = ApprovalRequest.objects.get(kind="counter_cash")
        assert any(f"#{filed.pk}" in m for m in _messages(page))  # the message names the request filed
    # then: nothing moved yet; one request waits for an approver
    assert ledger_size() == before and natural(deposit) == 0
    request = ApprovalRequest.objects.get(kind="counter_cash")
    assert (request.status, request.maker_id, request.payload["amount"]) == ("pending", teller.pk, 50_000_000)
    # the teller cannot approve it themselves, however they post
    with pytest.raises(BankError) as refused:
        services.approve_request(actor=teller, request=request)
    assert refused.value.code in ("role_required", "maker_checker_violation")
    # an approver's approval posts it once
    approver = grant_role(staff("approver-park"), "approver")
    assert _approve(client, approver, request).status_code == 302
    request.refresh_from_db()
    assert request.status == "executed"
    assert natural(deposit) == 50_000_000 and natural(services.vault_account()) == 50_000_000
    assert JournalEntry.objects.filter(kind="cash_deposit").count() == 1
    assert AuditEvent.objects.get(action="cash.deposit.approved").after["teller"] == teller.pk
    with pytest.raises(BankError) as again:
        services.approve_request(actor=grant_role(staff("approver-lim"), "approver"), request=request)
    assert again.value.code == "approval_not_pending"
    assert natural(deposit) == 50_000_000


@override_settings(COUNTER_CASH_APPROVAL_THRESHOLD=10_000_000, COUNTER_CASH_TELLER_DAILY_LIMIT=15_000_000)
def test_a_tellers_counter_total_for_the_day_above_the_limit_needs_an_approver(client, teller):
    deposit = citizen().deposit_account
    assert _cash(client, deposit, "cash_deposit", 9_000_000, form_key="a").status_code == 302
    assert natural(deposit) == 9_000_000
    before = ledger_size()
    page = _cash(client, deposit, "cash_deposit", 9_000_000, form_key="b")  # 18 million today
    assert any(f"#{ApprovalRequest.objects.get(kind='counter_cash').pk}" in m for m in _messages(page))
    assert ledger_size() == before and natural(deposit) == 9_000_000
    assert ApprovalRequest.objects.get(kind="counter_cash").payload["amount"] == 9_000_000
    # another teller's day is their own
    client.force_login(grant_role(staff("teller-choi"), "teller"))
    assert _cash(client, deposit, "cash_deposit", 6_000_000, form_key="c").status_code == 302
    assert natural(deposit) == 15_000_000


def test_the_vault_never_pays_out_more_cash_than_it_holds(client, teller):
    deposit = citizen(krw=100_000).deposit_account  # money in the bank, not cash in the vault
    _stock_vault(client, 30_000)
    before = ledger_size()
    page = _cash(client, deposit, "cash_withdrawal", 30_001)
    assert page.status_code == 302
    assert any("vault_cash_insufficient" in m for m in _messages(page))
    assert ledger_size() == before and natural(deposit) == 100_000
    assert natural(services.vault_account()) == 30_000
    assert _cash(client, deposit, "cash_withdrawal", 30_000, form_key="slip-2").status_code == 302
    assert natural(services.vault_account()) == 0 and natural(deposit) == 70_000


@override_settings(COUNTER_CASH_APPROVAL_THRESHOLD=10_000_000)
def test_an_approved_withdrawal_the_vault_cannot_cover_fails_with_its_code_and_moves_nothing(client, teller):
    deposit = citizen(krw=20_000_000).deposit_account
    _stock_vault(client, 5_000_000)
    _cash(client, deposit, "cash_withdrawal", 12_000_000)
    request = ApprovalRequest.objects.get(kind="counter_cash")
    before = ledger_size()
    page = _approve(client, grant_role(staff("approver-park"), "approver"), request)
    assert any("vault_cash_insufficient" in m for m in _messages(page))
    request.refresh_from_db()
    assert (request.status, request.result["error"]) == ("failed", "vault_cash_insufficient")
    assert ledger_size() == before and natural(deposit) == 20_000_000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_tellers_paying_out_the_vaults_last_cash_at_once_pay_it_once():
    tellers = [grant_role(staff(f"teller-{n}"), "teller") for n in range(2)]
    services.record_cash_deposit(
        actor=tellers[0], account=citizen().deposit_account, amount=10_000, reference="in", idempotency_key="in"
    )
    deposits = [citizen(krw=50_000).deposit_account for _ in tellers]
    outcomes = race(
        [
            lambda teller=teller, account=account: (
                services.record_cash_withdrawal(
                    actor=teller, account=account, amount=8_000, reference="out", idempotency_key="out"
                )
                and "paid"
            )
            for teller, account in zip(tellers, deposits, strict=True)
        ]
    )
    assert sorted(outcomes) == ["paid", "vault_cash_insufficient"], outcomes
    assert natural(services.vault_account()) == 2_000
