"""Wallet holds racing on PostgreSQL: threads started together at a barrier, each with its own connection."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from bank.models import Account, Hold
from bank.services import expire_holds
from tests.factories.voucher import merchant, wallet_with_tokens
from tests.voucher.support import assert_ledger_ok, natural, race
from voucher import services
from voucher.models import Payment, WalletHold
from voucher.selectors import wallet_balance
from voucher.wallet_holds_read import held_on

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _authorize(wallet, shop, amount, key="h1", minutes=30):
    return services.authorize_hold(
        wallet=wallet,
        merchant=shop,
        amount=amount,
        idempotency_key=key,
        expires_at=timezone.now() + timedelta(minutes=minutes),
    )


def _kind(outcome) -> str:
    if isinstance(outcome, Payment):
        return "captured"
    if isinstance(outcome, WalletHold):
        return outcome.status
    return outcome


@pytest.mark.parametrize("round_", range(3))
def test_captures_and_voids_of_one_hold_racing_exactly_one_wins(round_):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    hold = _authorize(wallet, shop, 6_000)
    calls = []
    for i in range(4):
        calls.append(lambda i=i: services.capture_hold(hold=hold, amount=5_000, idempotency_key=f"c{i}"))
        calls.append(lambda: services.void_hold(hold=hold))
    outcomes = Counter(_kind(o) for o in race(calls))
    hold.refresh_from_db()
    if hold.status == WalletHold.Status.CAPTURED:
        # one capture; every other capture and every void came after it
        assert outcomes == {"captured": 1, "hold_not_open": 7}, outcomes
        assert Payment.objects.get().amount == 5_000
        assert wallet_balance(wallet) == 5_000 and natural(shop.token_account) == 5_000
    else:
        # the void won: later voids answer with it, no capture took anything
        assert hold.status == WalletHold.Status.VOIDED
        assert outcomes == {"voided": 4, "hold_not_open": 4}, outcomes
        assert not Payment.objects.exists()
        assert wallet_balance(wallet) == 10_000 and natural(shop.token_account) == 0
    assert held_on(wallet) == 0 and not Account.objects.filter(on_hold__gt=0).exists()
    assert_ledger_ok()


def test_authorisations_and_payments_racing_for_one_balance_never_spend_it_twice():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    calls = []
    for i in range(3):
        calls.append(lambda i=i: _authorize(wallet, shop, 4_000, key=f"h{i}"))
        calls.append(lambda i=i: services.pay(wallet=wallet, merchant=shop, amount=4_000, idempotency_key=f"p{i}"))
    outcomes = Counter(type(o).__name__ if not isinstance(o, str) else o for o in race(calls))
    # 10,000 covers two of the six, whichever they are
    assert outcomes["insufficient_eligible_balance"] == 4, outcomes
    assert outcomes["WalletHold"] + outcomes["Payment"] == 2, outcomes
    paid = 4_000 * outcomes["Payment"]
    assert wallet_balance(wallet) == 10_000 - paid and natural(shop.token_account) == paid
    assert held_on(wallet) == 4_000 * outcomes["WalletHold"]
    wallet_lot_accounts = Account.objects.filter(code__startswith="voucher:lot:")
    assert all(a.balance - a.on_hold >= 0 for a in wallet_lot_accounts)
    assert_ledger_ok()


def test_concurrent_retries_of_one_authorisation_reserve_once():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    expires_at = timezone.now() + timedelta(hours=1)
    outcomes = race(
        [
            lambda: services.authorize_hold(
                wallet=wallet, merchant=shop, amount=3_000, idempotency_key="same", expires_at=expires_at
            )
            for _ in range(6)
        ]
    )
    assert {o.pk for o in outcomes} == {WalletHold.objects.get().pk}, outcomes
    assert held_on(wallet) == 3_000 and Hold.objects.count() == 1
    assert_ledger_ok()


def test_two_sweeps_and_the_ledgers_own_expiry_release_each_hold_once():
    wallets = [wallet_with_tokens(5_000) for _ in range(6)]
    shop = merchant()
    holds = [_authorize(w, shop, 500 * (i + 1), key="h") for i, w in enumerate(wallets)]
    past = timezone.now() - timedelta(seconds=1)
    WalletHold.objects.update(expires_at=past)
    Hold.objects.update(expires_at=past)
    outcomes = race(
        [
            lambda: services.expire_wallet_holds(batch_size=2),
            lambda: services.expire_wallet_holds(batch_size=2),
            lambda: expire_holds(batch_size=2),
        ]
    )
    assert outcomes[0] + outcomes[1] == 6, outcomes
    assert set(WalletHold.objects.values_list("status", flat=True)) == {WalletHold.Status.EXPIRED}
    assert set(Hold.objects.values_list("status", flat=True)) == {Hold.Status.EXPIRED}
    assert not Account.objects.filter(on_hold__gt=0).exists()
    assert all(held_on(w) == 0 and wallet_balance(w) == 5_000 for w in wallets) and len(holds) == 6
    assert_ledger_ok()
