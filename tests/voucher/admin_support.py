"""Staff with voucher permissions, and payments and fraud-rule runs, that the admin tests share."""

import itertools

from django.contrib.auth.models import Permission

from tests.factories.voucher import UserFactory
from voucher import services, tasks
from voucher.clock import seoul_today
from voucher.models import FraudFlag


def teller(*codenames, username="teller"):
    """A staff user holding these voucher permissions."""
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="voucher", codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


_keys = itertools.count(1)


def run_rules():
    """The nightly task, over the window ending today (so this test's payments count)."""
    tasks.flag_fraud_patterns.delay(seoul_today().isoformat()).get()
    return list(FraudFlag.objects.order_by("pk"))


def pay_many(wallet, shop, amounts):
    """One payment per amount, each under a key of its own."""
    return [
        services.pay(wallet=wallet, merchant=shop, amount=amount, idempotency_key=f"p-{next(_keys)}")
        for amount in amounts
    ]


def reviewer(username="investigator"):
    """A staff user who may see and review fraud flags."""
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="voucher", codename__in=["view_fraudflag", "review_fraudflag"]
        )
    )
    return type(user).objects.get(pk=user.pk)
