"""A merchant with an owner and a clerk who can log in to the portal, and a second
merchant whose ids every page must refuse to show."""

from dataclasses import dataclass

import pytest

from tests.factories.voucher import UserFactory, merchant, staff, wallet_with_tokens
from voucher import services
from voucher.models import Merchant, MerchantMember, Payment, Wallet

PASSWORD = "till-password-2026"


def login_user(username: str):
    user = UserFactory(username=username)
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def member(shop: Merchant, username: str, role: str):
    user = login_user(username)
    services.add_merchant_member(actor=staff("onboarding-officer"), merchant=shop, user=user, role=role)
    return user


@dataclass
class Shop:
    merchant: Merchant
    owner: object
    clerk: object
    wallet: Wallet
    payment: Payment


def make_shop(prefix: str, *, amount: int = 30_000, reference: str = "table-7") -> Shop:
    shop = merchant(name=f"{prefix} Milmyeon 밀면")
    wallet = wallet_with_tokens(200_000)
    payment = services.pay(
        wallet=wallet, merchant=shop, amount=amount, idempotency_key=f"{prefix}-p1", reference=reference
    )
    return Shop(
        merchant=shop,
        owner=member(shop, f"{prefix}-owner", MerchantMember.Role.OWNER),
        clerk=member(shop, f"{prefix}-clerk", MerchantMember.Role.CLERK),
        wallet=wallet,
        payment=payment,
    )


@pytest.fixture
def shop(db) -> Shop:
    return make_shop("mine")


@pytest.fixture
def other(db) -> Shop:
    return make_shop("theirs", amount=44_000, reference="their-ref")


@pytest.fixture
def owner_client(client, shop):
    client.force_login(shop.owner)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def clerk_client(client, shop):
    client.force_login(shop.clerk)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client
