import pytest

from tests.factories.voucher import citizen, grant_lot, merchant, staff, wallet_with_tokens
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import errors, services
from voucher.selectors import wallet_balance


def test_cash_out_needs_60_percent_of_the_paid_in_money_used(db):
    # given 100,000 paid in and 59,000 used
    wallet, shop = wallet_with_tokens(100_000), merchant()
    services.pay(wallet=wallet, merchant=shop, amount=59_000, idempotency_key="p1")
    before = ledger_size()
    with pytest.raises(errors.RedemptionNotAllowed) as refused:
        services.redeem(wallet=wallet, idempotency_key="x1")
    assert refused.value.code == "redemption_not_allowed"
    assert refused.value.details["used_percent"] == 59 and ledger_size() == before
    # when 60% is used
    services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="p2")
    deposit_before = natural(wallet.deposit_account)
    redemption = services.redeem(wallet=wallet, idempotency_key="x2")
    # then the unused 40,000 goes back to the deposit account
    assert redemption.amount == 40_000 and redemption.paid_in == 100_000
    assert natural(wallet.deposit_account) == deposit_before + 40_000
    assert wallet_balance(wallet) == 0
    assert services.redeem(wallet=wallet, idempotency_key="x2") == redemption
    assert_ledger_ok()


def test_bonuses_and_grants_are_never_cashed_out(db):
    wallet = wallet_with_tokens(10_000)
    relief = grant_lot(wallet, 50_000)
    services.pay(wallet=wallet, merchant=merchant(), amount=50_000 + 8_000, idempotency_key="p")
    redemption = services.redeem(wallet=wallet, idempotency_key="x")
    assert redemption.amount == 2_000
    assert wallet.lots.get(program=relief).balance == 0  # spent first, nothing of it cashed out


def test_a_second_cash_out_counts_only_what_was_paid_in_since(db):
    wallet, shop = wallet_with_tokens(10_000, extra_krw=10_000), merchant()
    services.pay(wallet=wallet, merchant=shop, amount=7_000, idempotency_key="p1")
    services.redeem(wallet=wallet, idempotency_key="x1")
    services.top_up(wallet=wallet, amount=10_000, idempotency_key="t2")
    with pytest.raises(errors.RedemptionNotAllowed):
        services.redeem(wallet=wallet, idempotency_key="x2")


def test_nothing_to_cash_out_is_refused(db):
    wallet = citizen()
    with pytest.raises(errors.RedemptionNotAllowed):
        services.redeem(wallet=wallet, idempotency_key="x")


def test_a_frozen_wallet_cannot_cash_out(db):
    wallet = wallet_with_tokens(1_000)
    services.pay(wallet=wallet, merchant=merchant(), amount=900, idempotency_key="p")
    services.set_wallet_status(actor=staff("officer"), wallet=wallet, status="frozen", reason="check")
    with pytest.raises(errors.WalletFrozen):
        services.redeem(wallet=wallet, idempotency_key="x")
