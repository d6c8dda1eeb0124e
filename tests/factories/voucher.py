"""Factories of the token's test data. Everything is made through voucher.services
and money arrives through the posting service, as in production."""

import itertools
from datetime import date

import factory
from django.contrib.auth import get_user_model

from bank import services as bank_services
from bank.models import Account, Party
from tests.factories import bank_source
from voucher import services
from voucher.models import KycTier, Merchant, MerchantCategory, VoucherProgram, Wallet
from voucher.services.merchants import brn_check_digit

_serial = itertools.count(1)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = False


def staff(username: str):
    return UserFactory(username=username, is_staff=True)


def deposit(account: Account, amount: int) -> Account:
    """Cash paid in at the bank's counter: KRW into a customer's deposit account."""
    bank_services.post_entry(lines=[(bank_source("KRW"), -amount), (account, amount)], kind="test_cash_deposit")
    account.refresh_from_db()
    return account


def citizen(krw: int = 0, kyc_tier: str = KycTier.NAMED) -> Wallet:
    """A person with a wallet and `krw` won in their deposit account."""
    party = bank_services.open_party(kind=Party.Kind.PERSON, external_ref=f"test:person:{next(_serial)}")
    wallet = services.open_wallet(owner=party, kyc_tier=kyc_tier)
    if krw:
        deposit(wallet.deposit_account, krw)
    return wallet


def wallet_with_tokens(amount: int, kyc_tier: str = KycTier.NAMED, extra_krw: int = 0) -> Wallet:
    """A wallet holding `amount` paid-in BKRW (topped up from its deposit)."""
    wallet = citizen(krw=amount + extra_krw, kyc_tier=kyc_tier)
    services.top_up(wallet=wallet, amount=amount, idempotency_key=f"seed-{wallet.pk}")
    return wallet


def city_budget(amount: int) -> Account:
    """A city department's KRW budget account holding `amount`."""
    city = bank_services.open_party(kind=Party.Kind.CITY, external_ref="test:city")
    account = bank_services.open_account(
        owner=city, code=f"test:city:budget:{next(_serial)}", currency="KRW", normal_side="liability"
    )
    return deposit(account, amount) if amount else account


def valid_brn() -> str:
    first_nine = f"{next(_serial):09d}"
    return first_nine + str(brn_check_digit(first_nine))


def merchant(
    category: str = MerchantCategory.RESTAURANT,
    district: str = "haeundae",
    annual_revenue: int = 500_000_000,
    name: str = "",
) -> Merchant:
    return services.onboard_merchant(
        actor=staff("onboarding-officer"),
        business_registration_number=valid_brn(),
        name=name or f"Shop {next(_serial)}",
        category=category,
        district=district,
        annual_revenue=annual_revenue,
    )


def program(
    kind: str = VoucherProgram.Kind.GRANT,
    budget: int = 100_000_000,
    funder_krw: int | None = None,
    active: bool = True,
    rules: list[dict] = (),
    **fields,
) -> VoucherProgram:
    """A program made by `maker`, with `rules` (add_program_rule keywords), approved by `checker`."""
    maker, checker = staff("maker"), staff("checker")
    fields.setdefault("valid_days", None if "expires_on" in fields else 365)
    made = services.create_program(
        actor=maker,
        code=f"program-{next(_serial)}",
        name=f"Test {kind}",
        kind=kind,
        funder_account=city_budget(budget if funder_krw is None else funder_krw),
        budget=budget,
        **fields,
    )
    for rule in rules:
        services.add_program_rule(actor=maker, program=made, **{"effective_from": date(2020, 1, 1), **rule})
    if active:
        services.submit_program(actor=maker, program=made)
        services.approve_program(actor=checker, program=made)
    made.refresh_from_db()
    return made


def grant_lot(wallet: Wallet, amount: int, **program_fields) -> VoucherProgram:
    """Issue a grant of `amount` to `wallet` under a fresh program; returns the program."""
    granted = program(kind=VoucherProgram.Kind.GRANT, **program_fields)
    services.issue_voucher(program=granted, wallet=wallet, amount=amount, idempotency_key=f"grant-{next(_serial)}")
    return granted
