from bank import services
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account


def test_transfer_moves_money_and_the_ledger_verifies(validators):
    # given
    payer = funded_account(10_000)
    payee = AccountFactory()
    # when
    services.post_entry(lines=[(payer, -2_500), (payee, 2_500)], kind="transfer", idempotency_key="t-1")
    services.seal_pending_entries()
    # then
    payer.refresh_from_db()
    payee.refresh_from_db()
    assert (payer.balance, payee.balance) == (7_500, 2_500)
    report = verify_ledger()
    assert report.ok, report.failures
    assert report.blocks == 1 and report.unsealed == 0
