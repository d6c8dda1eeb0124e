from datetime import date

import pytest

from bank import services as bank_services
from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import citizen, grant_lot, merchant, program, wallet_with_tokens
from voucher import services
from voucher.models import VoucherProgram
from voucher.selectors import (
    benefits_this_month,
    lots_of,
    spendable_at,
    token_login_with_wallet,
    wallet_balance,
    wallet_of_user,
)


def test_a_wallet_shows_its_total_its_lots_and_what_a_merchant_accepts(db):
    wallet = wallet_with_tokens(10_000)
    relief = grant_lot(wallet, 5_000, valid_days=30, eligible_categories=["grocery"])
    grocer, bookshop = merchant(category="grocery"), merchant(category="bookstore")
    assert wallet_balance(wallet) == 15_000
    assert [(lot.program_id, lot.balance) for lot in lots_of(wallet)] == [(relief.pk, 5_000), (None, 10_000)]
    at_grocer = spendable_at(wallet, grocer)
    assert at_grocer.total == 15_000 and [lot.program_id for lot in at_grocer.lots] == [relief.pk, None]
    assert spendable_at(wallet, bookshop).total == 10_000


def test_an_empty_wallet_is_zero(db):
    assert wallet_balance(citizen()) == 0


def test_benefits_this_month_shows_caps_used_and_left(db):
    cashback = program(
        kind=VoucherProgram.Kind.CASHBACK,
        valid_days=1825,
        per_person_monthly_cap=30_000,
        rules=[{"effective_from": date(2026, 1, 1), "monthly_base_limit": 500_000, "tiers": [(None, 1000)]}],
    )
    wallet = wallet_with_tokens(200_000)
    services.pay(wallet=wallet, merchant=merchant(), amount=200_000, idempotency_key="p")
    summary = benefits_this_month(wallet, cashback)
    assert summary["benefit_used"] == 20_000 and summary["benefit_left"] == 10_000
    assert summary["base_used"] == 200_000 and summary["base_left"] == 300_000
    assert summary["budget_left"] == cashback.budget - 20_000


def test_the_wallet_of_a_login_comes_with_its_owners_active_signing_key_only(db):
    app, other = citizen_app(10_000), citizen_app(10_000)
    wallet, device = wallet_of_user(app.user, device_id=app.device.pk)
    assert (wallet.pk, wallet.owner.pk, device.pk) == (app.wallet.pk, app.wallet.owner_id, app.device.pk)
    assert wallet_of_user(app.user, device_id=other.device.pk) == (wallet, None)  # someone else's key
    assert wallet_of_user(app.user)[1] is None
    bank_services.revoke_device_key(actor=None, device=app.device, reason="phone lost")
    assert wallet_of_user(app.user, device_id=app.device.pk)[1] is None
    assert wallet_of_user(merchant_app().user) == (None, None)


@pytest.mark.postgres
def test_a_token_login_comes_with_the_wallet_and_signing_key_in_one_read(db):
    app, till = citizen_app(10_000), merchant_app()
    digest = bank_services.token_digest(app.token_key)
    token, wallet, device = token_login_with_wallet(digest, device_id=app.device.pk)
    assert (token.digest, token.user.username, wallet.pk, wallet.owner.pk, device.pk) == (
        digest,
        app.user.username,
        app.wallet.pk,
        app.wallet.owner_id,
        app.device.pk,
    )
    assert token_login_with_wallet(digest)[1:] == (wallet, None)
    merchant_token, no_wallet, no_device = token_login_with_wallet(bank_services.token_digest(till.token_key))
    assert (merchant_token.user.pk, no_wallet, no_device) == (till.user.pk, None, None)
    assert token_login_with_wallet(bank_services.token_digest("no-such-token")) is None
    assert token_login_with_wallet(app.token_key) is None  # the raw token is not what is stored
