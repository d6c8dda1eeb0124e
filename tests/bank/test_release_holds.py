"""bank.services.release_holds: several holds closed at once for a caller that posts its own entry."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from bank import errors, services
from bank.models import Account, Hold
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account

pytestmark = pytest.mark.django_db


def _hold(payer, shop, amount, **fields):
    return services.place_hold(account=payer, destination=shop, amount=amount, kind="test_reservation", **fields)


def _available(account) -> int:
    return Account.objects.get(pk=account.pk).available


def test_a_capture_releases_every_hold_and_the_callers_entry_moves_what_it_took():
    first, second, shop = funded_account(5_000), funded_account(5_000), AccountFactory()
    holds = [_hold(first, shop, 3_000), _hold(second, shop, 2_000)]
    with transaction.atomic():
        locked = services.release_holds(
            holds=holds, status=Hold.Status.CAPTURED, captured_amounts={holds[0].pk: 3_000}, lock_also=[shop.pk]
        )
        assert set(locked) == {first.pk, second.pk, shop.pk}
        # the caller's own entry, which the released holds now leave room for
        services.post_entry(lines=[(first, -3_000), (shop, 3_000)], kind="test_capture")
    assert [(h.status, h.captured_amount) for h in Hold.objects.order_by("pk")] == [("captured", 3_000), ("voided", 0)]
    assert (_available(first), _available(second)) == (2_000, 5_000)
    assert verify_ledger().ok


def test_a_capture_is_refused_when_a_hold_expired_or_closed_or_the_amount_is_more_than_held():
    payer, shop = funded_account(9_000), AccountFactory()
    soon = _hold(payer, shop, 1_000, expires_at=timezone.now() + timedelta(minutes=1))
    later = _hold(payer, shop, 1_000)
    with pytest.raises(errors.HoldExpired), transaction.atomic():
        services.release_holds(holds=[soon], status=Hold.Status.CAPTURED, now=timezone.now() + timedelta(minutes=2))
    with pytest.raises(errors.CaptureExceedsHold), transaction.atomic():
        services.release_holds(holds=[later], status=Hold.Status.CAPTURED, captured_amounts={later.pk: 1_001})
    services.void_hold(hold=later)
    with pytest.raises(errors.HoldNotOpen), transaction.atomic():
        services.release_holds(holds=[later], status=Hold.Status.CAPTURED, captured_amounts={later.pk: 1_000})
    assert _available(payer) == 8_000 and Hold.objects.get(pk=soon.pk).status == "open"


def test_voiding_or_expiring_leaves_holds_another_sweep_closed_as_they_are():
    payer, shop = funded_account(9_000), AccountFactory()
    gone, kept = _hold(payer, shop, 1_000), _hold(payer, shop, 2_000)
    services.void_hold(hold=gone)
    with transaction.atomic():
        services.release_holds(holds=[gone, kept], status=Hold.Status.EXPIRED)
    assert [h.status for h in Hold.objects.order_by("pk")] == ["voided", "expired"]
    assert _available(payer) == 9_000 and verify_ledger().ok
    with pytest.raises(errors.InvalidEntry):
        services.release_holds(holds=[10**9], status=Hold.Status.VOIDED)
    with pytest.raises(errors.InvalidEntry):
        services.release_holds(holds=[kept], status=Hold.Status.OPEN)
