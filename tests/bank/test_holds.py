"""Holds (two-phase transfers): available balance, capture whole or part, void, expiry."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bank import services
from bank.errors import BankError
from bank.models import Account, Hold, JournalEntry
from tests.factories import AccountFactory, funded_account


def refusal_code(call, **kwargs) -> str:
    with pytest.raises(BankError) as refused:
        call(**kwargs)
    return refused.value.code


def fresh(account: Account) -> Account:
    return Account.objects.get(pk=account.pk)


def hold(payer: Account, shop: Account, amount: int, **kwargs) -> Hold:
    return services.place_hold(account=payer, destination=shop, amount=amount, kind="card_auth", **kwargs)


def hold_expiring_now(payer: Account, shop: Account, amount: int) -> Hold:
    """A hold whose expiry has just passed: placed a minute ago, to expire 150 ms later
    (holds may only be placed with an expiry after the time they are placed at)."""
    placed_at = timezone.now() - timedelta(minutes=1)
    return hold(payer, shop, amount, now=placed_at, expires_at=placed_at + timedelta(milliseconds=150))


def test_hold_lowers_the_available_balance_not_the_posted_one(db):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    entries_before = JournalEntry.objects.count()
    # when
    placed = hold(payer, shop, 3_000)
    # then
    payer = fresh(payer)
    assert (payer.balance, payer.on_hold, payer.available) == (10_000, 3_000, 7_000)
    assert fresh(shop).balance == 0
    assert Hold.objects.get(pk=placed.pk).status == Hold.Status.OPEN
    assert JournalEntry.objects.count() == entries_before


def test_spend_beyond_the_available_balance_is_refused_though_the_posted_balance_covers_it(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    shop, friend = AccountFactory(), AccountFactory()
    hold(payer, shop, 7_000)
    # when / then: 10,000 posted covers 5,000, but only 3,000 is available
    with ledger_unchanged():
        code = refusal_code(services.post_entry, lines=[(payer, -5_000), (friend, 5_000)], kind="transfer")
        assert code == "insufficient_funds"
    services.post_entry(lines=[(payer, -3_000), (friend, 3_000)], kind="transfer")
    payer = fresh(payer)
    assert (payer.balance, payer.on_hold, payer.available) == (7_000, 7_000, 0)


def test_a_second_hold_beyond_the_available_balance_is_refused(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    hold(payer, shop, 6_000)
    # when / then
    with ledger_unchanged():
        assert refusal_code(hold, payer=payer, shop=shop, amount=4_001) == "insufficient_funds"


def test_capture_of_the_whole_hold_moves_the_money_and_releases_the_hold(db):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    placed = hold(payer, shop, 4_000)
    # when
    entry = services.capture_hold(hold=placed)
    # then
    payer, shop = fresh(payer), fresh(shop)
    assert (payer.balance, payer.on_hold, payer.available) == (6_000, 0, 6_000)
    assert shop.balance == 4_000
    captured = Hold.objects.get(pk=placed.pk)
    assert (captured.status, captured.captured_amount, captured.capture_entry_id) == ("captured", 4_000, entry.pk)
    assert sorted(entry.postings.values_list("account_id", "amount")) == sorted([(payer.pk, -4_000), (shop.pk, 4_000)])


def test_capture_of_part_of_a_hold_moves_that_part_and_releases_the_rest(db):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    placed = hold(payer, shop, 5_000)
    # when
    services.capture_hold(hold=placed, amount=2_000)
    # then
    payer = fresh(payer)
    assert (payer.balance, payer.on_hold, payer.available) == (8_000, 0, 8_000)
    assert fresh(shop).balance == 2_000
    assert Hold.objects.get(pk=placed.pk).captured_amount == 2_000


def test_void_releases_the_hold_without_moving_money(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    placed = hold(payer, shop, 5_000)
    entries_before = JournalEntry.objects.count()
    # when
    services.void_hold(hold=placed)
    # then
    payer = fresh(payer)
    assert (payer.balance, payer.on_hold, payer.available) == (10_000, 0, 10_000)
    assert Hold.objects.get(pk=placed.pk).status == Hold.Status.VOIDED
    assert JournalEntry.objects.count() == entries_before


def test_capture_of_more_than_was_held_is_refused_and_the_hold_stays_open(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    placed = hold(payer, shop, 3_000)
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.capture_hold, hold=placed, amount=3_001) == "capture_exceeds_hold"
    assert Hold.objects.get(pk=placed.pk).status == Hold.Status.OPEN


@pytest.mark.parametrize("amount", [0, -100, 100.0, True, "100"], ids=["zero", "negative", "float", "bool", "str"])
def test_capture_of_an_amount_that_is_not_a_positive_int_is_refused_invalid_amount(ledger_unchanged, amount):
    # given
    payer = funded_account(10_000)
    placed = hold(payer, AccountFactory(), 3_000)
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.capture_hold, hold=placed, amount=amount) == "invalid_amount"


@pytest.mark.parametrize("amount", [0, -100, 100.0, True, "100"], ids=["zero", "negative", "float", "bool", "str"])
def test_hold_of_an_amount_that_is_not_a_positive_int_is_refused_invalid_amount(ledger_unchanged, amount):
    # given: an existing hold, which a negative one must not shrink
    payer = funded_account(10_000)
    shop = AccountFactory()
    hold(payer, shop, 3_000)
    # when / then
    with ledger_unchanged():
        assert refusal_code(hold, payer=payer, shop=shop, amount=amount) == "invalid_amount"


@pytest.mark.parametrize("closing", ["capture", "void"])
def test_a_hold_can_be_closed_only_once(ledger_unchanged, closing):
    # given
    payer = funded_account(10_000)
    placed = hold(payer, AccountFactory(), 3_000)
    getattr(services, f"{closing}_hold")(hold=placed)
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.capture_hold, hold=placed) == "hold_not_open"
        assert refusal_code(services.void_hold, hold=placed) == "hold_not_open"


def test_expire_holds_releases_only_the_holds_past_their_expiry(db):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    soon = hold(payer, shop, 1_000, expires_at=timezone.now() + timedelta(minutes=1))
    later = hold(payer, shop, 2_000, expires_at=timezone.now() + timedelta(hours=1))
    # when
    expired = services.expire_holds(now=timezone.now() + timedelta(minutes=5))
    # then
    assert expired == 1
    assert Hold.objects.get(pk=soon.pk).status == Hold.Status.EXPIRED
    assert Hold.objects.get(pk=later.pk).status == Hold.Status.OPEN
    payer = fresh(payer)
    assert (payer.balance, payer.on_hold, payer.available) == (10_000, 2_000, 8_000)
    assert services.expire_holds(now=timezone.now() + timedelta(minutes=5)) == 0  # running again changes nothing


def test_capture_after_expiry_is_refused_hold_expired_before_the_sweep(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    placed = hold_expiring_now(payer, AccountFactory(), 3_000)
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.capture_hold, hold=placed) == "hold_expired"


def test_capture_after_expiry_is_refused_hold_expired_after_the_sweep(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    placed = hold_expiring_now(payer, AccountFactory(), 3_000)
    assert services.expire_holds() == 1
    assert fresh(payer).on_hold == 0
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.capture_hold, hold=placed) == "hold_expired"


def test_hold_must_expire_in_the_future(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    # when / then
    with ledger_unchanged():
        code = refusal_code(hold, payer=payer, shop=shop, amount=1, expires_at=timezone.now())
        assert code == "invalid_entry"


def test_hold_between_two_currencies_is_refused_unbalanced_entry(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    token_shop = AccountFactory(currency="BKRW")
    # when / then
    with ledger_unchanged():
        assert refusal_code(hold, payer=payer, shop=token_shop, amount=1_000) == "unbalanced_entry"


def test_hold_on_a_frozen_account_is_refused_account_frozen(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    services.set_account_status(actor=None, account=payer, status=Account.Status.FROZEN, reason="fraud check")
    # when / then
    with ledger_unchanged():
        assert refusal_code(hold, payer=payer, shop=shop, amount=1_000) == "account_frozen"


def test_capture_is_refused_when_the_payer_was_frozen_after_the_hold(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    placed = hold(payer, AccountFactory(), 1_000)
    services.set_account_status(actor=None, account=payer, status=Account.Status.FROZEN, reason="fraud check")
    # when / then
    with ledger_unchanged():
        assert refusal_code(services.capture_hold, hold=placed) == "account_frozen"
    assert Hold.objects.get(pk=placed.pk).status == Hold.Status.OPEN


def test_same_hold_idempotency_key_returns_the_first_hold_and_another_payload_is_refused(ledger_unchanged):
    # given
    payer = funded_account(10_000)
    shop = AccountFactory()
    first = hold(payer, shop, 2_000, idempotency_key="auth-1")
    # when / then
    with ledger_unchanged():
        assert hold(payer, shop, 2_000, idempotency_key="auth-1").pk == first.pk
        assert refusal_code(hold, payer=payer, shop=shop, amount=2_500, idempotency_key="auth-1") == (
            "idempotency_conflict"
        )
    assert fresh(payer).on_hold == 2_000
