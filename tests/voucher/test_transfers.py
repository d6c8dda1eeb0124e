import pytest

from bank import errors as bank_errors
from tests.factories.voucher import citizen, grant_lot, staff, wallet_with_tokens
from tests.voucher.support import assert_ledger_ok, ledger_size
from voucher import errors, services
from voucher.models import KycTier, Transfer
from voucher.selectors import lots_of, wallet_balance


def test_only_transferable_lots_move_and_keep_their_program_and_expiry(db):
    # given paid-in tokens, a transferable tour voucher and a non-transferable grant
    alice, bob = wallet_with_tokens(5_000), citizen()
    tour = grant_lot(alice, 3_000, valid_days=20, is_transferable=True)
    relief = grant_lot(alice, 10_000, valid_days=10, is_transferable=False)
    # when
    services.transfer(from_wallet=alice, to_wallet=bob, amount=6_000, idempotency_key="gift")
    # then the tour voucher went first (soonest transferable), then paid-in money
    received = {(lot.program_id, lot.expires_on): lot.balance for lot in lots_of(bob)}
    tour_lot = alice.lots.get(program=tour)
    assert received == {(tour.pk, tour_lot.expires_on): 3_000, (None, alice.lots.get(program=None).expires_on): 3_000}
    assert {lot.program_id: lot.balance for lot in lots_of(alice)} == {relief.pk: 10_000, None: 2_000}
    # and the grant cannot be sent
    before = ledger_size()
    with pytest.raises(errors.InsufficientTransferableBalance) as refused:
        services.transfer(from_wallet=alice, to_wallet=bob, amount=2_001)
    assert refused.value.code == "insufficient_transferable_balance" and ledger_size() == before
    assert_ledger_ok()


def test_the_receivers_kyc_limit_is_checked(db):
    alice, bob = wallet_with_tokens(600_000), wallet_with_tokens(400_000, kyc_tier=KycTier.ANONYMOUS)
    before = ledger_size()
    with pytest.raises(errors.OverWalletLimit) as refused:
        services.transfer(from_wallet=alice, to_wallet=bob, amount=100_001)
    assert refused.value.code == "over_wallet_limit" and ledger_size() == before
    services.transfer(from_wallet=alice, to_wallet=bob, amount=100_000)
    assert wallet_balance(bob) == 500_000


def test_a_frozen_wallet_neither_sends_nor_receives(db):
    alice, bob = wallet_with_tokens(1_000), citizen()
    services.set_wallet_status(actor=staff("officer"), wallet=bob, status="frozen", reason="check")
    with pytest.raises(errors.WalletFrozen):
        services.transfer(from_wallet=alice, to_wallet=bob, amount=1)
    with pytest.raises(errors.WalletFrozen):
        services.transfer(from_wallet=bob, to_wallet=alice, amount=1)


def test_a_transfer_with_a_key_is_idempotent(db):
    alice, bob = wallet_with_tokens(1_000), citizen()
    first = services.transfer(from_wallet=alice, to_wallet=bob, amount=100, idempotency_key="k")
    assert services.transfer(from_wallet=alice, to_wallet=bob, amount=100, idempotency_key="k") == first
    with pytest.raises(bank_errors.IdempotencyConflict):
        services.transfer(from_wallet=alice, to_wallet=bob, amount=200, idempotency_key="k")
    assert Transfer.objects.count() == 1 and wallet_balance(bob) == 100


def test_a_wallet_cannot_send_to_itself(db):
    alice = wallet_with_tokens(1_000)
    with pytest.raises(errors.InvalidRequest):
        services.transfer(from_wallet=alice, to_wallet=alice, amount=1)
