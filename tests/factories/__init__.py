"""Factories for test data. Money is put into accounts only through the posting service."""

import factory

from bank import services
from bank.models import Account, Party


class PartyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Party
        django_get_or_create = ("external_ref",)

    kind = Party.Kind.PERSON
    external_ref = factory.Sequence(lambda n: f"party:{n}")


class AccountFactory(factory.django.DjangoModelFactory):
    """A customer's KRW deposit account: credit-normal, may not go negative."""

    class Meta:
        model = Account

    owner = factory.SubFactory(PartyFactory)
    code = factory.Sequence(lambda n: f"test:account:{n}")
    currency = "KRW"
    normal_side = Account.NormalSide.LIABILITY
    may_go_negative = False


def bank_source(currency: str = "KRW") -> Account:
    """The bank's own funding account for tests: debit-normal and allowed to go negative."""
    bank = PartyFactory(kind=Party.Kind.BANK, external_ref="bank:test")
    return services.open_account(
        owner=bank, code=f"test:bank:funding:{currency}", currency=currency, normal_side="asset", may_go_negative=True
    )


def funded_account(amount: int, currency: str = "KRW", **kwargs) -> Account:
    """A customer account holding `amount`, credited by a real ledger entry."""
    account = AccountFactory(currency=currency, **kwargs)
    if amount:
        services.post_entry(lines=[(bank_source(currency), -amount), (account, amount)], kind="test_funding")
        account.refresh_from_db()
    return account
