"""The rule settlement relies on, as a check: a row that moves a merchant's BKRW is
written only while the transaction holds the merchant's token account locked
(voucher.services.merchant_lock). The helper's own behaviour first, then every
writer of such a row, found by reading the code, must call it before its insert."""

import ast
import re
from pathlib import Path

import pytest
from django.db import connection, transaction

from bank.services import lock_accounts
from tests.factories.voucher import merchant
from tests.voucher.settlement_support import yesterday
from voucher.clock import day_bounds
from voucher.models import SettlementBatch, SettlementLine
from voucher.services.merchant_lock import (
    MerchantLockNotHeld,
    lock_ledger_account_rows,
    lock_ledger_accounts,
    merchant_lock_held,
    note_accounts_locked,
    require_merchant_locked,
)
from voucher.services.settlement import HeldReason
from voucher.services.settlement.chunk import Draft
from voucher.services.settlement.sql import insert_lines

ROOT = Path(__file__).resolve().parents[2]

# --- the helper ----------------------------------------------------------------------------------


def test_a_token_account_locked_by_the_helper_in_this_transaction_passes_the_check(db):
    # given a merchant whose token account this transaction locked
    shop = merchant()
    with transaction.atomic():
        lock_ledger_accounts([shop.token_account_id])
        # then its rows may be written
        assert merchant_lock_held(shop.token_account_id)
        require_merchant_locked([shop.token_account_id])


def test_the_bulk_lock_of_settlement_passes_the_check_for_every_merchant_it_locked(db):
    shops = [merchant() for _ in range(3)]
    with transaction.atomic():
        lock_ledger_account_rows([shop.token_account_id for shop in shops])
        require_merchant_locked([shop.token_account_id for shop in shops])


def test_a_lock_of_other_accounts_does_not_pass_for_the_merchant(db):
    # given a transaction that locked one merchant's account, not another's
    locked, other = merchant(), merchant()
    with transaction.atomic():
        lock_ledger_accounts([locked.token_account_id, other.settlement_account_id])
        # then the other merchant's rows may not be written
        with pytest.raises(MerchantLockNotHeld, match=f"token account {other.token_account_id} "):
            require_merchant_locked([locked.token_account_id, other.token_account_id])


def test_a_lock_taken_without_the_helper_is_not_known_to_the_check(db):
    # given the ledger's own lock, which notes nothing
    shop = merchant()
    with transaction.atomic():
        lock_accounts([shop.token_account_id])
        # then the check refuses: a writer must lock through the helper (or note its own SQL's lock)
        assert not merchant_lock_held(shop.token_account_id)
        note_accounts_locked([shop.token_account_id])
        assert merchant_lock_held(shop.token_account_id)


class _Undone(Exception):
    pass


def test_a_lock_taken_in_a_savepoint_that_was_rolled_back_no_longer_counts(db):
    # given a lock taken inside a savepoint that is then rolled back (which releases it)
    shop = merchant()
    with transaction.atomic():
        with pytest.raises(_Undone), transaction.atomic():
            lock_ledger_accounts([shop.token_account_id])
            raise _Undone
        # then it no longer counts
        assert not merchant_lock_held(shop.token_account_id)
        # while one in a savepoint that was released still does: PostgreSQL keeps it to the end
        with transaction.atomic():
            lock_ledger_accounts([shop.token_account_id])
        assert merchant_lock_held(shop.token_account_id)


@pytest.mark.django_db(transaction=True)
def test_a_lock_ends_with_its_transaction_and_none_is_held_outside_one():
    # given a transaction that locked the merchant's account and committed
    shop = merchant()
    with transaction.atomic():
        lock_ledger_accounts([shop.token_account_id])
    # then nothing is held outside a transaction, where a lock ends with its statement
    assert not connection.in_atomic_block
    note_accounts_locked([shop.token_account_id])
    with pytest.raises(MerchantLockNotHeld):
        require_merchant_locked([shop.token_account_id])
    # nor in the next transaction
    with transaction.atomic():
        assert not merchant_lock_held(shop.token_account_id)


def test_a_settlement_line_is_not_written_without_its_merchants_lock(db):
    # given a line drafted for a merchant whose token account nobody locked
    shop = merchant()
    batch = SettlementBatch.objects.create(
        period=yesterday(), kind=SettlementBatch.Kind.DAILY, cutoff=day_bounds(yesterday())[1]
    )
    draft = Draft(
        shop.pk,
        shop.token_account_id,
        shop.settlement_account_id,
        0,
        status=SettlementLine.Status.HELD,
        held_reason=HeldReason.REFUNDS_EXCEED_RECEIPTS,
    )
    # when the line would be inserted, then it is refused and nothing is written
    with transaction.atomic(), pytest.raises(MerchantLockNotHeld):
        insert_lines(batch, [draft])
    assert not SettlementLine.objects.filter(merchant=shop).exists()
    # and once the account is locked, it is written
    with transaction.atomic():
        lock_ledger_account_rows([shop.token_account_id])
        insert_lines(batch, [draft])
    assert SettlementLine.objects.filter(merchant=shop, batch=batch).count() == 1


# --- every writer goes through it ---------------------------------------------------------------

# Rows that move a merchant's BKRW, and the tables behind them (for plain SQL writers).
MERCHANT_MONEY_MODELS = {"Payment", "Refund", "MerchantPayment", "SettlementLine"}
MERCHANT_MONEY_TABLES = {"voucher_payment", "voucher_refund", "voucher_merchantpayment", "voucher_settlementline"}
_INSERTING_METHODS = {"create", "bulk_create", "get_or_create", "update_or_create"}
_INSERT_SQL = re.compile(r"\b(?:INSERT\s+INTO|COPY)\s+\"?(\w+|\{\})", re.IGNORECASE)

# Every function that inserts such a row, as (file, function). Each calls
# require_merchant_locked before its insert.
WRITERS = {
    ("voucher/services/refunds.py", "refund_payment"),  # a refund the merchant gives
    ("voucher/services/settlement/sql.py", "insert_lines"),  # settlement lines, batch and instant
    ("voucher/services/payment_store.py", "_insert_generic"),  # a payment (pay, a captured hold): the ORM
    ("voucher/services/payment_store.py", "_insert_postgresql"),  # the same, in one statement on PostgreSQL
    ("voucher/services/payments.py", "pay_merchant"),  # a payment between merchants
}


def _sql_text(node) -> str | None:
    """A string literal's text, an f-string's with {} for each placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    return None


def _inserts_sql(text: str | None, names_a_money_table: bool) -> bool:
    for table in _INSERT_SQL.findall(text or ""):
        if table.lower() in MERCHANT_MONEY_TABLES or (table == "{}" and names_a_money_table):
            return True
    return False


def _insert_lines_of(function: ast.FunctionDef, module_strings: dict[str, str]) -> list[int]:
    """Where `function` inserts a merchant-money row: an ORM create of the model, or SQL
    (its own literal, or a module constant it names) inserting into the table."""
    nodes = list(ast.walk(function))
    names_a_money_table = any(  # SettlementLine._meta.db_table and the like, for SQL built with {table}
        isinstance(n, ast.Attribute)
        and n.attr == "db_table"
        and isinstance(n.value, ast.Attribute)
        and n.value.attr == "_meta"
        and isinstance(n.value.value, ast.Name)
        and n.value.value.id in MERCHANT_MONEY_MODELS
        for n in nodes
    )
    lines = []
    for node in nodes:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _INSERTING_METHODS
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "objects"
            and isinstance(node.func.value.value, ast.Name)
            and node.func.value.value.id in MERCHANT_MONEY_MODELS
        ):
            lines.append(node.lineno)
        elif _inserts_sql(_sql_text(node), names_a_money_table):
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and _inserts_sql(module_strings.get(node.id), names_a_money_table):
            lines.append(node.lineno)
    return lines


def _checks_of(function: ast.FunctionDef) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "require_merchant_locked"
    ]


def _writers() -> dict[tuple[str, str], tuple[list[int], list[int]]]:
    """Every function under voucher/ that inserts a merchant-money row: (insert lines, check lines)."""
    found = {}
    for path in sorted((ROOT / "voucher").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        module_strings = {
            target.id: text
            for node in tree.body
            if isinstance(node, ast.Assign) and (text := _sql_text(node.value)) is not None
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                inserts = _insert_lines_of(function, module_strings)
                if inserts:
                    found[(path.relative_to(ROOT).as_posix(), function.name)] = (inserts, _checks_of(function))
    return found


def test_every_writer_of_a_merchants_bkrw_rows_is_known():
    # given every function of the app that inserts a payment, refund, merchant
    # payment or settlement line, found by reading the code
    found = set(_writers())
    # then it is one of the writers held to the rule (a new writer must be added, and call the check)
    assert found == WRITERS


@pytest.mark.parametrize("writer", sorted(WRITERS), ids=lambda writer: writer[1])
def test_each_writer_checks_the_merchants_lock_before_it_inserts(writer):
    # given a writer of a merchant's BKRW rows
    inserts, checks = _writers()[writer]
    # then it calls require_merchant_locked before every insert
    assert checks, f"{writer[1]} in {writer[0]} never calls require_merchant_locked"
    assert min(checks) < min(inserts), f"{writer[1]} inserts (line {min(inserts)}) before it checks the lock"
