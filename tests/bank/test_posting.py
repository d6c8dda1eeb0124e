"""The posting service: transfers, idempotency, reversals, account status, batches and refused input."""

from decimal import Decimal

import pytest

from bank import services
from bank.errors import BankError
from bank.models import Account, JournalEntry, Posting
from bank.services import EntryRequest
from tests.factories import AccountFactory, bank_source, funded_account
from tests.support.ledger import post_big_batch_with_replays


def refusal_code(call, **kwargs) -> str:
    """Call a service that must refuse, and return the refusal's stable code."""
    with pytest.raises(BankError) as refused:
        call(**kwargs)
    return refused.value.code


def balances(*accounts: Account) -> tuple[int, ...]:
    return tuple(Account.objects.get(pk=a.pk).balance for a in accounts)


def postings_of(entry: JournalEntry) -> list[tuple[int, str, int]]:
    return sorted(entry.postings.values_list("account_id", "currency", "amount"))


# --- transfers ------------------------------------------------------------------------------


def test_transfer_moves_money_and_writes_one_entry_with_two_postings(db):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    entries_before, postings_before = JournalEntry.objects.count(), Posting.objects.count()
    # when
    entry = services.post_entry(
        lines=[(payer, -3_000), (payee, 3_000)], kind="transfer", memo="lunch", reference="ref-1"
    )
    # then
    assert balances(payer, payee) == (7_000, 3_000)
    assert JournalEntry.objects.count() == entries_before + 1
    assert Posting.objects.count() == postings_before + 2
    assert postings_of(entry) == sorted([(payer.pk, "KRW", -3_000), (payee.pk, "KRW", 3_000)])
    stored = JournalEntry.objects.get(pk=entry.pk)
    assert (stored.kind, stored.memo, stored.reference, stored.block_id) == ("transfer", "lunch", "ref-1", None)
    assert len(stored.hash) == 64


def test_transfer_accepts_account_ids_as_well_as_accounts(db):
    # given
    payer = funded_account(5_000)
    payee = AccountFactory()
    # when
    services.post_entry(lines=[(payer.pk, -1_000), (payee.pk, 1_000)], kind="transfer")
    # then
    assert balances(payer, payee) == (4_000, 1_000)


def test_customer_may_spend_its_whole_balance_down_to_zero(db):
    # given
    payer = funded_account(2_500)
    payee = AccountFactory()
    # when
    services.post_entry(lines=[(payer, -2_500), (payee, 2_500)], kind="transfer")
    # then
    assert balances(payer, payee) == (0, 2_500)


def test_account_that_may_go_negative_is_debited_below_zero(db):
    # given
    source = bank_source()
    customer = AccountFactory()
    # when
    services.post_entry(lines=[(source, -50_000), (customer, 50_000)], kind="issue")
    # then
    source.refresh_from_db()
    assert source.balance == -50_000
    assert source.natural_balance == 50_000  # an asset reads debit-positive
    assert balances(customer) == (50_000,)


def test_one_entry_may_move_two_currencies_when_each_sums_to_zero(db):
    # given
    krw_payer, krw_payee = funded_account(10_000), AccountFactory()
    token_payer, token_payee = funded_account(10_000, currency="BKRW"), AccountFactory(currency="BKRW")
    # when
    entry = services.post_entry(
        lines=[(krw_payer, -4_000), (krw_payee, 4_000), (token_payer, -1_000), (token_payee, 1_000)], kind="swap"
    )
    # then
    assert balances(krw_payer, krw_payee, token_payer, token_payee) == (6_000, 4_000, 9_000, 1_000)
    assert {c for _, c, _ in postings_of(entry)} == {"KRW", "BKRW"}


# --- idempotency ----------------------------------------------------------------------------


def test_same_idempotency_key_and_payload_returns_first_entry_and_writes_nothing(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    first = services.post_entry(lines=[(payer, -1_000), (payee, 1_000)], kind="transfer", idempotency_key="pay-1")
    # when
    with ledger_unchanged():
        again = services.post_entry(lines=[(payer, -1_000), (payee, 1_000)], kind="transfer", idempotency_key="pay-1")
    # then
    assert again.pk == first.pk
    assert balances(payer, payee) == (9_000, 1_000)


def test_retry_returns_first_entry_even_after_the_money_was_spent_elsewhere(ledger_unchanged):
    # given
    payer = funded_account(1_000)
    payee, other = AccountFactory(), AccountFactory()
    first = services.post_entry(lines=[(payer, -600), (payee, 600)], kind="transfer", idempotency_key="pay-2")
    services.post_entry(lines=[(payer, -400), (other, 400)], kind="transfer")
    # when
    with ledger_unchanged():
        again = services.post_entry(lines=[(payer, -600), (payee, 600)], kind="transfer", idempotency_key="pay-2")
    # then
    assert again.pk == first.pk
    assert balances(payer, payee, other) == (0, 600, 400)


@pytest.mark.parametrize(
    "changed",
    [
        {"amount": 1_001},
        {"memo": "another memo"},
        {"kind": "refund"},
        {"reference": "ref-2"},
        {"payee": "other"},
    ],
    ids=lambda changed: next(iter(changed)),
)
def test_same_idempotency_key_with_another_payload_is_refused_and_writes_nothing(ledger_unchanged, changed):
    # given
    payer = funded_account(10_000)
    payee, other = AccountFactory(), AccountFactory()
    request = {"amount": 1_000, "memo": "", "kind": "transfer", "reference": "ref-1", "payee": "payee"}
    targets = {"payee": payee, "other": other}

    def post(amount, memo, kind, reference, payee):
        return services.post_entry(
            lines=[(payer, -amount), (targets[payee], amount)],
            kind=kind,
            memo=memo,
            reference=reference,
            idempotency_key="pay-3",
        )

    post(**request)
    # when / then
    with ledger_unchanged():
        assert refusal_code(post, **(request | changed)) == "idempotency_conflict"
    assert balances(payer, payee, other) == (9_000, 1_000, 0)


# --- reversals ------------------------------------------------------------------------------


def test_reversal_negates_every_posting_and_points_at_the_original(db):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    original = services.post_entry(lines=[(payer, -2_500), (payee, 2_500)], kind="transfer", reference="order-9")
    # when
    reversal = services.reverse_entry(entry=original, memo="wrong payee")
    # then
    assert balances(payer, payee) == (10_000, 0)
    assert reversal.reverses_id == original.pk
    assert JournalEntry.objects.get(pk=original.pk).reversed_by.pk == reversal.pk
    assert (reversal.kind, reversal.memo, reversal.reference) == ("reversal", "wrong payee", "order-9")
    assert postings_of(reversal) == sorted((a, c, -n) for a, c, n in postings_of(original))
    assert postings_of(original) == sorted([(payer.pk, "KRW", -2_500), (payee.pk, "KRW", 2_500)])


@pytest.mark.parametrize("second_key", [None, "reverse-again"])
def test_second_reversal_is_refused_already_reversed(ledger_unchanged, second_key):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    original = services.post_entry(lines=[(payer, -2_500), (payee, 2_500)], kind="transfer")
    services.reverse_entry(entry=original, idempotency_key="reverse-1" if second_key else None)
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.reverse_entry, entry=original, idempotency_key=second_key) == "already_reversed"
    assert balances(payer, payee) == (10_000, 0)


def test_reversal_retried_with_its_idempotency_key_returns_the_first_reversal(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    original = services.post_entry(lines=[(payer, -2_500), (payee, 2_500)], kind="transfer")
    first = services.reverse_entry(entry=original, idempotency_key="reverse-2")
    # when
    with ledger_unchanged():
        again = services.reverse_entry(entry=original, idempotency_key="reverse-2")
    # then
    assert again.pk == first.pk


def test_reversal_is_refused_when_the_payee_already_spent_the_money(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    payee, shop = AccountFactory(), AccountFactory()
    original = services.post_entry(lines=[(payer, -2_500), (payee, 2_500)], kind="transfer")
    services.post_entry(lines=[(payee, -2_000), (shop, 2_000)], kind="payment")
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.reverse_entry, entry=original) == "insufficient_funds"


# --- frozen and closed accounts -------------------------------------------------------------


def freeze(account: Account) -> None:
    services.set_account_status(actor=None, account=account, status=Account.Status.FROZEN, reason="court order")


def test_frozen_account_can_neither_pay_nor_receive(ledger_unchanged):
    # given
    frozen = funded_account(10_000)
    other = funded_account(10_000)
    freeze(frozen)
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(frozen, -100), (other, 100)], kind="t") == "account_frozen"
        assert refusal_code(services.post_entry, lines=[(other, -100), (frozen, 100)], kind="t") == "account_frozen"


def test_allow_frozen_credit_lets_a_frozen_account_receive_but_never_pay(ledger_unchanged):
    # given
    frozen = funded_account(10_000)
    merchant = funded_account(10_000)
    freeze(frozen)
    # when
    services.post_entry(lines=[(merchant, -700), (frozen, 700)], kind="refund", allow_frozen_credit=True)
    # then
    assert balances(frozen, merchant) == (10_700, 9_300)
    with ledger_unchanged():
        code = refusal_code(
            services.post_entry, lines=[(frozen, -100), (merchant, 100)], kind="t", allow_frozen_credit=True
        )
        assert code == "account_frozen"


def test_closed_account_refuses_every_posting_even_a_frozen_credit(ledger_unchanged):
    # given
    closed = AccountFactory()
    payer = funded_account(10_000)
    services.set_account_status(actor=None, account=closed, status=Account.Status.CLOSED, reason="customer left")
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(payer, -100), (closed, 100)], kind="t") == "account_closed"
        code = refusal_code(
            services.post_entry, lines=[(payer, -100), (closed, 100)], kind="t", allow_frozen_credit=True
        )
        assert code == "account_closed"


# --- batches --------------------------------------------------------------------------------


def test_post_entries_writes_every_entry_of_a_batch_in_order(db):
    # given
    a = funded_account(1_000)
    b, c = AccountFactory(), AccountFactory()
    entries_before = JournalEntry.objects.count()
    # when: the second entry spends what the first one credited
    entries = services.post_entries(
        requests=[
            EntryRequest(lines=[(a, -1_000), (b, 1_000)], kind="transfer"),
            EntryRequest(lines=[(b, -1_000), (c, 1_000)], kind="transfer"),
        ]
    )
    # then
    assert balances(a, b, c) == (0, 0, 1_000)
    assert JournalEntry.objects.count() == entries_before + 2
    assert entries[0].pk < entries[1].pk


def test_post_entries_is_all_or_nothing_when_one_entry_is_refused(ledger_unchanged):
    # given
    a = funded_account(1_000)
    b = AccountFactory()
    requests = [
        EntryRequest(lines=[(a, -600), (b, 600)], kind="transfer"),
        EntryRequest(lines=[(b, -100), (a, 100)], kind="transfer"),
        EntryRequest(lines=[(a, -600), (b, 600)], kind="transfer"),  # 500 left: refused
    ]
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entries, requests=requests) == "insufficient_funds"
    assert balances(a, b) == (1_000, 0)


def test_post_entries_with_one_key_twice_in_a_batch_posts_it_once(db):
    # given
    a = funded_account(1_000)
    b = AccountFactory()
    request = EntryRequest(lines=[(a, -300), (b, 300)], kind="transfer", idempotency_key="batch-1")
    entries_before = JournalEntry.objects.count()
    # when
    first, second = services.post_entries(requests=[request, request])
    # then
    assert first.pk == second.pk
    assert JournalEntry.objects.count() == entries_before + 1
    assert balances(a, b) == (700, 300)


def test_post_entries_with_one_key_for_two_payloads_is_refused_whole(ledger_unchanged):
    # given
    a = funded_account(1_000)
    b = AccountFactory()
    requests = [
        EntryRequest(lines=[(a, -300), (b, 300)], kind="transfer", idempotency_key="batch-2"),
        EntryRequest(lines=[(a, -400), (b, 400)], kind="transfer", idempotency_key="batch-2"),
    ]
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entries, requests=requests) == "idempotency_conflict"


def test_post_entries_writes_a_big_batch_with_replays_in_request_order(db):
    post_big_batch_with_replays()


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [0, 100.0, 0.5, "100", True, False, Decimal("100"), None],
    ids=["zero", "float", "fraction", "str", "true", "false", "decimal", "none"],
)
def test_amount_that_is_not_a_nonzero_int_is_refused_invalid_amount(ledger_unchanged, amount):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(payer, -100), (payee, amount)], kind="t") == "invalid_amount"
        assert refusal_code(services.post_entry, lines=[(payee, amount), (payer, -100)], kind="t") == "invalid_amount"


def test_zero_amounts_that_sum_to_zero_are_still_refused_invalid_amount(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(payer, 0), (payee, 0)], kind="t") == "invalid_amount"


@pytest.mark.parametrize("unknown", ["missing-id", "string-id", "unsaved-account"])
def test_unknown_account_is_refused_account_not_found(ledger_unchanged, unknown):
    # given
    payer = funded_account(10_000)
    missing_id = (Account.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    account = {"missing-id": missing_id, "string-id": str(payer.pk), "unsaved-account": Account(currency="KRW")}[
        unknown
    ]
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(payer, -100), (account, 100)], kind="t") == "account_not_found"


@pytest.mark.parametrize("lines", ["none", "one"])
def test_entry_with_fewer_than_two_lines_is_refused_invalid_entry(ledger_unchanged, lines):
    # given
    payer = funded_account(10_000)
    # when / then
    with ledger_unchanged():
        given = [] if lines == "none" else [(payer, -100)]
        assert refusal_code(services.post_entry, lines=given, kind="t") == "invalid_entry"


def test_mixed_currencies_that_do_not_balance_are_refused_unbalanced_entry(ledger_unchanged):
    # given
    krw = funded_account(10_000)
    token = AccountFactory(currency="BKRW")
    # when / then: 100 KRW out and 100 BKRW in sum to zero only if currencies are ignored
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(krw, -100), (token, 100)], kind="t") == "unbalanced_entry"


def test_lines_that_do_not_sum_to_zero_are_refused_unbalanced_entry(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(payer, -100), (payee, 99)], kind="t") == "unbalanced_entry"


def test_spending_more_than_the_balance_is_refused_insufficient_funds(ledger_unchanged):
    # given
    payer = funded_account(1_000)
    payee = AccountFactory()
    # when / then
    with ledger_unchanged():
        code = refusal_code(services.post_entry, lines=[(payer, -1_001), (payee, 1_001)], kind="t")
        assert code == "insufficient_funds"
    assert balances(payer, payee) == (1_000, 0)


def test_guarded_account_with_nothing_in_it_cannot_be_debited(ledger_unchanged):
    # given
    empty = AccountFactory()
    payee = AccountFactory()
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.post_entry, lines=[(empty, -1), (payee, 1)], kind="t") == "insufficient_funds"


@pytest.mark.parametrize("field", ["kind", "memo", "reference", "idempotency_key"])
def test_text_fields_that_are_too_long_or_not_text_are_refused_invalid_entry(ledger_unchanged, field):
    # given
    payer = funded_account(1_000)
    payee = AccountFactory()
    request = {"lines": [(payer, -1), (payee, 1)], "kind": "t"}
    # when / then
    with ledger_unchanged():
        for bad in ("x" * 201, 42):
            assert refusal_code(services.post_entry, **(request | {field: bad})) == "invalid_entry"
