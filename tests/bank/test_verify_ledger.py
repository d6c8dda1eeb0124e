"""verify_ledger re-derives every hash, root, link, signature and balance, and names the first
entry, block or account that does not check out when someone edits the tables behind its back."""

import io

import pytest
from django.core.management import CommandError, call_command

from bank.models import Block, JournalEntry
from bank.verification import verify_ledger
from tests.factories import AccountFactory
from tests.support.ledger import raw_sql


def first_failure():
    report = verify_ledger()
    assert not report.ok
    return report.first_failure


def test_a_clean_ledger_verifies(ledger):
    # when
    report = verify_ledger()
    # then
    assert report.ok, report.failures
    assert (report.entries, report.blocks, report.unsealed) == (JournalEntry.objects.count(), 2, 1)
    assert report.accounts >= 3


def test_verify_ledger_reports_progress_up_to_the_total(ledger):
    # given
    calls = []
    # when
    verify_ledger(progress=lambda done, total: calls.append((done, total)))
    # then
    total = JournalEntry.objects.count()
    assert calls[-1] == (total, total)


@pytest.mark.parametrize("which", ["first", "second"])
def test_a_changed_posting_amount_names_that_entry_first(ledger, which):
    # given
    entry = ledger[which][1]
    posting = entry.postings.order_by("pk").first()
    # when
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_posting SET amount = amount + 1 WHERE id = %s", [posting.pk])
    # then
    failure = first_failure()
    assert (failure.kind, failure.ident) == ("entry", f"#{entry.pk}")


def test_a_changed_posting_of_an_unsealed_entry_names_that_entry_first(ledger):
    # given
    entry = ledger["unsealed"]
    # when
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_posting SET amount = -amount WHERE entry_id = %s", [entry.pk])
    # then
    failure = first_failure()
    assert (failure.kind, failure.ident) == ("entry", f"#{entry.pk}")


def test_postings_moved_to_another_account_in_balance_still_name_the_entry(ledger):
    # given: the entry still sums to zero, so only its hash can tell
    entry = ledger["first"][0]
    other = AccountFactory()
    # when
    with raw_sql() as cursor:
        cursor.execute(
            "UPDATE bank_posting SET account_id = %s WHERE entry_id = %s AND amount > 0", [other.pk, entry.pk]
        )
    # then
    report = verify_ledger()
    assert (report.first_failure.kind, report.first_failure.ident) == ("entry", f"#{entry.pk}")
    assert {f.kind for f in report.failures} == {"entry", "account"}


def test_a_changed_entry_memo_names_that_entry(ledger):
    # given
    entry = ledger["second"][0]
    # when
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_journalentry SET memo = 'edited' WHERE id = %s", [entry.pk])
    # then
    failure = first_failure()
    assert (failure.kind, failure.ident) == ("entry", f"#{entry.pk}")


@pytest.mark.parametrize("height", [0, 1])
def test_a_changed_merkle_root_names_that_block(ledger, height):
    # given
    block = Block.objects.get(height=height)
    # when
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_block SET merkle_root = %s WHERE id = %s", ["11" * 32, block.pk])
    # then
    failure = first_failure()
    assert (failure.kind, failure.ident) == ("block", str(height))


def test_a_replaced_aggregate_signature_names_that_block(ledger):
    # given: block 1's signature pasted onto block 0
    zero, one = Block.objects.get(height=0), Block.objects.get(height=1)
    # when
    with raw_sql() as cursor:
        cursor.execute(
            "UPDATE bank_block SET aggregate_signature = %s WHERE id = %s", [one.aggregate_signature, zero.pk]
        )
    # then
    report = verify_ledger()
    assert (report.first_failure.kind, report.first_failure.ident) == ("block", "0")
    assert "signature" in report.first_failure.message


def test_a_changed_cached_balance_names_that_account(ledger):
    # given
    payee = ledger["payee"]
    # when
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_account SET balance = balance + 1 WHERE id = %s", [payee.pk])
    # then
    failure = first_failure()
    assert failure.kind == "account"
    assert f"#{payee.pk}" in failure.ident and payee.code in failure.ident


def test_a_changed_cached_hold_amount_names_that_account(ledger):
    # given
    payer = ledger["payer"]
    # when
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_account SET on_hold = on_hold + 5 WHERE id = %s", [payer.pk])
    # then
    failure = first_failure()
    assert failure.kind == "account" and f"#{payer.pk}" in failure.ident


def test_verify_ledger_command_succeeds_on_a_clean_ledger(ledger):
    # given
    out = io.StringIO()
    # when
    call_command("verify_ledger", "--no-progress", stdout=out, stderr=io.StringIO())
    # then
    assert "Ledger verified" in out.getvalue()


def test_verify_ledger_command_fails_naming_the_tampered_entry(ledger):
    # given
    entry = ledger["first"][0]
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_posting SET amount = amount - 7 WHERE entry_id = %s AND amount < 0", [entry.pk])
    # when / then
    with pytest.raises(CommandError, match=f"entry #{entry.pk}:"):
        call_command("verify_ledger", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
