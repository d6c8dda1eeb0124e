"""Merchant settlement through voucher.services: what each line pays, fees,
frozen merchants, instant settlement, re-runs, statements and reconciliation."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from bank.errors import BankError
from bank.models import Posting
from bank.roles import grant_role
from bank.services import approve_request
from tests.factories.voucher import UserFactory, merchant, staff, wallet_with_tokens
from tests.voucher.settlement_support import fee_income, on_day, paid_on, sale, settled_total, times_settled, yesterday
from tests.voucher.support import assert_ledger_ok, ledger_size, natural, outstanding_bkrw, reserve_krw
from voucher import errors, services
from voucher.clock import seoul_today
from voucher.models import Merchant, MerchantPayment, SettlementBatch, SettlementLine
from voucher.selectors import (
    batch_reconciliation,
    payments_covered_by,
    settlement_line_of,
    settlement_statement_context,
    settlement_statement_csv,
    unsettled_payments,
)


def test_a_day_is_settled_as_received_minus_refunds_burned_and_paid_in_krw(db):
    # given two sales yesterday at a small shop, one partly refunded, and one sale today
    shop = merchant(annual_revenue=500_000_000)
    first = sale(shop, 10_000)
    second = sale(shop, 5_000)
    services.refund_payment(payment=first, amount=2_000, idempotency_key="r")
    services.pay(wallet=wallet_with_tokens(700), merchant=shop, amount=700, idempotency_key="today")
    reserve_before, outstanding_before = reserve_krw(), outstanding_bkrw()
    # when
    batch = services.settle_day(day=yesterday())
    # then yesterday's takings less the refund are burned and paid out, today's wait
    [line] = batch.lines.all()
    assert (line.status, line.payment_count, line.gross, line.refunds, line.fee, line.net) == (
        "paid",
        2,
        15_000,
        2_000,
        0,
        13_000,
    )
    assert natural(shop.settlement_account) == 13_000
    assert natural(shop.token_account) == 700
    assert reserve_krw() == reserve_before - 13_000 and outstanding_bkrw() == outstanding_before - 13_000
    assert (batch.status, batch.paid_count, batch.held_count, batch.net, batch.gross) == ("done", 1, 0, 13_000, 15_000)
    assert list(payments_covered_by(line)) == [first, second]
    assert unsettled_payments(shop).count() == 1
    assert_ledger_ok()


@pytest.mark.parametrize(
    "revenue, rate_bp, fee",
    [
        (800_000_000, 0, 0),
        (800_000_001, 30, 30),
        (1_200_000_000, 30, 30),
        (1_200_000_001, 50, 50),
    ],
)
def test_the_fee_follows_the_revenue_tier_at_its_boundaries_rounded_down(db, revenue, rate_bp, fee):
    shop = merchant(annual_revenue=revenue)
    sale(shop, 10_001)  # 0.3% of 10,001 is 30.003 won: the merchant pays 30
    batch = services.settle_day(day=yesterday())
    [line] = batch.lines.all()
    assert (line.fee_rate_bp, line.fee, line.net) == (rate_bp, fee, 10_001 - fee)
    assert natural(shop.settlement_account) == 10_001 - fee
    assert fee_income() == fee
    assert batch_reconciliation(batch)["balanced"]
    assert_ledger_ok()


def test_fee_schedule_is_dated_and_a_day_uses_the_schedule_in_force_then(db, settings):
    settings.VOUCHER_SETTLEMENT_FEE_SCHEDULE = [
        {"effective_from": "2019-01-01", "tiers": [[None, 100]]},
        {"effective_from": (seoul_today() - timedelta(days=2)).isoformat(), "tiers": [[None, 20]]},
    ]
    shop = merchant()
    sale(shop, 50_000, day=seoul_today() - timedelta(days=3))
    sale(shop, 50_000, day=yesterday())
    old = services.settle_day(day=seoul_today() - timedelta(days=3)).lines.get()
    new = services.settle_day(day=yesterday()).lines.get()
    assert (old.fee_rate_bp, old.fee, new.fee_rate_bp, new.fee) == (100, 500, 20, 100)


def test_a_frozen_merchant_is_held_and_listed_then_paid_once_unfrozen(db):
    officer = staff("risk-officer")
    frozen, fine = merchant(), merchant()
    day_before = yesterday() - timedelta(days=1)
    sale(frozen, 8_000, day=day_before)
    sale(fine, 3_000, day=day_before)
    services.set_merchant_status(actor=officer, merchant=frozen, status="frozen", reason="investigation")
    # when the day is settled
    batch = services.settle_day(day=day_before)
    # then the frozen shop is listed as held, with its figures, and not paid
    held = batch.lines.get(merchant=frozen)
    assert (held.status, held.held_reason, held.gross, held.net, held.entry) == (
        "held",
        "merchant_frozen",
        8_000,
        0,
        None,
    )
    assert (batch.paid_count, batch.held_count, batch.net) == (1, 1, 3_000)
    assert natural(frozen.settlement_account) == 0 and natural(frozen.token_account) == 8_000
    assert unsettled_payments(frozen).count() == 1
    # and once unfrozen, the next day's batch pays it, once
    unfreeze = services.request_unfreeze(actor=grant_role(officer, "approver"), target=frozen, reason="cleared")
    approve_request(actor=grant_role(staff("checker"), "approver"), request=unfreeze)
    later = services.settle_day(day=yesterday())
    paid = later.lines.get(merchant=frozen)
    assert (paid.status, paid.gross, paid.net) == ("paid", 8_000, 8_000)
    assert natural(frozen.settlement_account) == 8_000 and settled_total(frozen) == 8_000
    assert not later.lines.filter(merchant=fine).exists()
    assert_ledger_ok()


def test_running_a_day_again_pays_nobody_twice(db):
    shop = merchant()
    sale(shop, 4_000)
    first = services.settle_day(day=yesterday())
    before = ledger_size()
    again = services.settle_day(day=yesterday(), acting_user=grant_role(staff("ops"), "settlement_operator"))
    assert again.pk == first.pk and ledger_size() == before
    assert natural(shop.settlement_account) == 4_000


def test_a_payment_that_commits_after_the_batch_is_settled_in_the_next_one(db):
    # given the day before yesterday settled, then a payment dated that day shows up (committed late)
    shop = merchant()
    day_before = yesterday() - timedelta(days=1)
    sale(shop, 1_000, day=day_before)
    services.settle_day(day=day_before)
    late = sale(shop, 2_500, day=day_before)
    # when the next day is settled
    batch = services.settle_day(day=yesterday())
    # then the late payment is paid then, once
    line = batch.lines.get(merchant=shop)
    assert (line.payment_count, line.gross) == (1, 2_500)
    late.refresh_from_db()
    assert settlement_line_of(late) == line and times_settled(late) == 1 and settled_total(shop) == 3_500


def test_instant_settlement_pays_now_and_the_daily_batch_covers_only_the_rest(db, settings):
    settings.VOUCHER_INSTANT_SETTLEMENT_FEE_BP = 10
    shop = merchant(annual_revenue=1_000_000_000)  # 0.3% tier
    owner = UserFactory(username="shop-owner")
    services.add_merchant_member(actor=staff("onboarding-officer"), merchant=shop, user=owner, role="owner")
    sale(shop, 100_000)
    # when the owner asks for instant settlement
    line = services.settle_merchant_now(merchant=shop, acting_user=owner, idempotency_key="now-1")
    # then everything received so far is paid at the tier rate plus the instant fee
    assert (line.batch.kind, line.gross, line.fee_rate_bp, line.fee, line.net) == (
        "instant",
        100_000,
        40,
        400,
        99_600,
    )
    # and the same key again pays nothing new
    before = ledger_size()
    assert services.settle_merchant_now(merchant=shop, acting_user=owner, idempotency_key="now-1").pk == line.pk
    assert ledger_size() == before
    # and a later sale of yesterday goes into the daily batch, not the instant one again
    sale(shop, 20_000)
    daily = services.settle_day(day=yesterday())
    rest = daily.lines.get(merchant=shop)
    assert (rest.gross, rest.fee_rate_bp, rest.fee, rest.net) == (20_000, 30, 60, 19_940)
    assert natural(shop.settlement_account) == 99_600 + 19_940 and fee_income() == 460
    assert_ledger_ok()


def test_a_clerk_cannot_ask_for_instant_settlement_and_nothing_is_written(db):
    shop = merchant()
    clerk = UserFactory(username="clerk")
    services.add_merchant_member(actor=staff("onboarding-officer"), merchant=shop, user=clerk, role="clerk")
    sale(shop, 5_000)
    before = ledger_size()
    with pytest.raises(errors.MerchantOwnerOnly) as refused:
        services.settle_merchant_now(merchant=shop, acting_user=clerk, idempotency_key="k")
    assert refused.value.code == "merchant_owner_only"
    other_owner = UserFactory(username="other-owner")
    services.add_merchant_member(actor=staff("onboarding-officer"), merchant=merchant(), user=other_owner, role="owner")
    with pytest.raises(errors.MerchantOwnerOnly):
        services.settle_merchant_now(merchant=shop, acting_user=other_owner, idempotency_key="k")
    assert ledger_size() == before and not SettlementBatch.objects.exists()


def test_instant_settlement_with_nothing_to_settle_or_a_frozen_merchant_is_refused_writing_nothing(db):
    shop = merchant()
    ops = grant_role(staff("ops"), "settlement_operator")
    with pytest.raises(errors.NothingToSettle) as nothing:
        services.settle_merchant_now(merchant=shop, acting_user=ops, idempotency_key="k1")
    assert nothing.value.code == "nothing_to_settle"
    sale(shop, 1_000)
    services.set_merchant_status(actor=staff("risk"), merchant=shop, status="frozen", reason="check")
    before = ledger_size()
    with pytest.raises(errors.MerchantFrozen):
        services.settle_merchant_now(merchant=shop, acting_user=ops, idempotency_key="k2")
    assert ledger_size() == before and not SettlementBatch.objects.exists() and not SettlementLine.objects.exists()


@pytest.mark.parametrize(
    "day, user, code",
    [
        ("2024-01-01", None, "invalid_request"),
        (None, None, "invalid_request"),
        ("today", None, "invalid_request"),
        ("tomorrow", None, "invalid_request"),
        ("yesterday", "not-staff", "role_required"),
        ("yesterday", "staff-without-the-role", "role_required"),
    ],
)
def test_settle_day_refuses_bad_input_and_writes_nothing(db, day, user, code):
    sale(merchant(), 1_000)
    days = {"today": seoul_today(), "tomorrow": seoul_today() + timedelta(days=1), "yesterday": yesterday()}
    actor = UserFactory(username="nobody", is_staff=user == "staff-without-the-role") if user else None
    before = ledger_size()
    with pytest.raises(BankError) as refused:
        services.settle_day(day=days.get(day, day), acting_user=actor)
    assert refused.value.code == code
    assert ledger_size() == before and not SettlementBatch.objects.exists()


def test_refunds_of_settled_sales_are_netted_against_the_next_settlement(db):
    shop = merchant()
    big = sale(shop, 30_000, day=yesterday() - timedelta(days=1))
    services.settle_day(day=yesterday() - timedelta(days=1))
    # today: a new sale, and a refund of the sale settled the day before
    sale(shop, 20_000, day=yesterday())
    services.refund_payment(payment=big, amount=5_000, idempotency_key="late-refund")
    line = services.settle_day(day=yesterday()).lines.get()
    assert (line.gross, line.refunds, line.net) == (20_000, 5_000, 15_000)
    assert natural(shop.settlement_account) == 45_000 and natural(shop.token_account) == 0
    assert_ledger_ok()


def test_when_refunds_exceed_the_days_takings_the_line_is_held_and_the_refund_carried(db):
    shop = merchant()
    big = sale(shop, 30_000, day=yesterday() - timedelta(days=1))
    services.settle_day(day=yesterday() - timedelta(days=1))
    small = sale(shop, 1_000, day=yesterday())
    services.pay(wallet=wallet_with_tokens(9_000), merchant=shop, amount=9_000, idempotency_key="today")
    services.refund_payment(payment=big, amount=6_000, idempotency_key="r")  # paid out of today's takings
    line = services.settle_day(day=yesterday()).lines.get()
    assert (line.status, line.held_reason, line.net) == ("held", "refunds_exceed_receipts", 0)
    small.refresh_from_db()
    assert settlement_line_of(small) is None and natural(shop.token_account) == 4_000
    assert_ledger_ok()


def test_tokens_from_other_merchants_count_as_received_and_tokens_paid_out_are_not_settled(db):
    supplier, shop = merchant(category="wholesale"), merchant()
    sale(shop, 50_000)
    services.pay_merchant(payer=shop, payee=supplier, amount=12_000, idempotency_key="fish")
    MerchantPayment.objects.update(created_at=on_day(yesterday()))
    batch = services.settle_day(day=yesterday())
    shop_line, supplier_line = batch.lines.get(merchant=shop), batch.lines.get(merchant=supplier)
    assert (shop_line.gross, shop_line.to_merchants, shop_line.net) == (50_000, 12_000, 38_000)
    assert (supplier_line.gross, supplier_line.from_merchants, supplier_line.net) == (0, 12_000, 12_000)
    assert natural(shop.token_account) == 0 and natural(supplier.token_account) == 0
    assert_ledger_ok()


def test_reconciliation_of_a_batch_adds_up_to_the_ledger(db):
    shops = [merchant(annual_revenue=revenue) for revenue in (100_000_000, 900_000_000, 2_000_000_000)]
    for index, shop in enumerate(shops):
        sale(shop, 10_000 * (index + 1) + 7)
    batch = services.settle_day(day=yesterday())
    report = batch_reconciliation(batch)
    burned = sum(
        p.amount for p in Posting.objects.filter(entry__settlement_lines__batch=batch, amount__gt=0).distinct()
    ) - (report["net"] + report["fees"])
    assert report["balanced"] and report["net_plus_fees"] == report["bkrw_burned"] == report["krw_out_of_reserve"]
    assert report["fees"] == fee_income() > 0 and burned == report["bkrw_burned"]
    assert_ledger_ok()


def test_a_group_entry_pays_each_merchant_its_own_postings_and_splits_past_the_line_limit(db, settings):
    # given more merchants than one ledger entry can hold, at three fee tiers
    from bank.services.posting import MAX_LINES
    from voucher.services.settlement import MERCHANTS_PER_ENTRY

    shops = [merchant(annual_revenue=(500_000_000, 1_000_000_000, 3_000_000_000)[i % 3]) for i in range(50)]
    wallet = wallet_with_tokens(50 * 20_000)
    for index, shop in enumerate(shops):
        payment = services.pay(wallet=wallet, merchant=shop, amount=10_000 + index, idempotency_key=f"s{index}")
        paid_on(yesterday(), payment)
    # when
    batch = services.settle_day(day=yesterday())
    # then the lines share two entries, each within the ledger's line limit
    lines = list(batch.lines.select_related("merchant"))
    entries = {line.entry_id for line in lines}
    assert len(lines) == 50 and len(entries) == 2 and MERCHANTS_PER_ENTRY < 50
    for entry_id in entries:
        postings = list(Posting.objects.filter(entry_id=entry_id))
        assert len(postings) <= MAX_LINES
    # and each merchant's own two postings in its line's entry are its burn and its net
    for line in lines:
        mine = dict(
            Posting.objects.filter(
                entry_id=line.entry_id,
                account__in=[line.merchant.token_account_id, line.merchant.settlement_account_id],
            ).values_list("account_id", "amount")
        )
        assert mine[line.merchant.token_account_id] == -line.gross
        assert mine[line.merchant.settlement_account_id] == line.net == line.gross - line.fee
        assert natural(line.merchant.settlement_account) == line.net
    assert batch_reconciliation(batch)["balanced"]
    assert_ledger_ok()


def test_post_locked_refuses_an_account_the_caller_did_not_lock(db):
    from django.db import transaction

    from bank.services import EntryRequest, lock_account_rows, post_locked

    shop, other = merchant(), merchant()
    sale(shop, 5_000)
    with pytest.raises(BankError) as refused, transaction.atomic():
        rows = lock_account_rows([shop.token_account_id])
        post_locked([EntryRequest(lines=[(shop.token_account_id, -1), (other.token_account_id, 1)], kind="test")], rows)
    assert refused.value.code == "invalid_entry"
    assert natural(other.token_account) == 0 and natural(shop.token_account) == 5_000


def test_the_statement_csv_starts_with_a_bom_and_carries_the_lines_figures(db):
    shop = merchant(annual_revenue=1_000_000_000, name="해운대 횟집")
    payment = sale(shop, 123_457)
    services.refund_payment(payment=payment, amount=3_000, idempotency_key="r")
    batch = services.settle_day(day=yesterday())
    line = batch.lines.get()
    data = settlement_statement_csv(line)
    assert data.startswith(b"\xef\xbb\xbf")
    header, row = data.decode("utf-8-sig").strip().split("\r\n")
    assert "결제 금액 / Gross" in header
    fields = row.split(",")
    assert fields[3] == "해운대 횟집" and fields[7:10] == ["1", "123457", "3000"]
    assert fields[13:15] == [str(line.fee), str(line.net)] and line.fee == 120_457 * 30 // 10_000
    # a batch's statement for one merchant holds that merchant's line only
    other = merchant()
    sale(other, 1_000, day=yesterday() - timedelta(days=5))
    rows = settlement_statement_csv(batch, merchant=other).decode("utf-8-sig").strip().split("\r\n")
    assert len(rows) == 1
    context = settlement_statement_context(line)
    assert context["totals"]["net"] == line.net and context["merchant"] == shop


def test_the_estimate_shows_what_settling_now_would_pay(db):
    shop = merchant(annual_revenue=1_000_000_000)
    payment = sale(shop, 10_000)
    services.pay(wallet=wallet_with_tokens(5_000), merchant=shop, amount=5_000, idempotency_key="today")
    services.refund_payment(payment=payment, amount=1_000, idempotency_key="r")
    estimate = services.estimate_next_settlement(shop)
    assert estimate == {
        "payment_count": 2,
        "gross": 15_000,
        "refunds": 1_000,
        "from_merchants": 0,
        "to_merchants": 0,
        "fee_rate_bp": 30,
        "fee": 42,
        "net": 13_958,
    }


def test_a_row_out_of_clock_order_below_the_last_settled_one_is_settled_with_it_not_skipped(db):
    # given a payment stamped today, then one stamped yesterday with a higher id (a clock stepped back)
    shop = merchant()
    today = services.pay(wallet=wallet_with_tokens(1_000), merchant=shop, amount=1_000, idempotency_key="today")
    earlier = sale(shop, 2_000)
    assert today.pk < earlier.pk
    # when yesterday is settled
    line = services.settle_day(day=yesterday()).lines.get()
    # then everything up to the last of yesterday's ids is covered, the odd one included, once
    assert (line.payment_count, line.gross) == (2, 3_000)
    assert times_settled(today) == times_settled(earlier) == 1
    assert natural(shop.settlement_account) == 3_000


def test_a_line_naming_a_missing_batch_merchant_or_entry_is_refused_and_writes_nothing(db):
    # given a settled day (its line names the batch, the merchant and the entry)
    shop = merchant()
    sale(shop, 10_000)
    batch = services.settle_day(day=yesterday())
    [line] = batch.lines.all()
    # when a line naming ids that do not exist is inserted (as a writer bypassing the service would)
    for field in ("batch_id", "merchant_id", "entry_id"):
        values = {"batch_id": batch.pk, "merchant_id": shop.pk, "entry_id": line.entry_id, field: 10**9}
        row = SettlementLine(period=batch.period, status=SettlementLine.Status.HELD, **values)
        # then the statement is refused and writes nothing
        with pytest.raises(IntegrityError), transaction.atomic():
            SettlementLine.objects.bulk_create([row])
    assert SettlementLine.objects.count() == 1


@pytest.mark.postgres  # SQLite has the reference checks but not the deletion guards (voucher 0010)
def test_neither_a_batch_nor_a_merchant_its_line_names_can_be_deleted(db):
    # given a settled day
    shop = merchant()
    sale(shop, 10_000)
    batch = services.settle_day(day=yesterday())
    # when / then
    for model, pk in ((SettlementBatch, batch.pk), (Merchant, shop.pk)):
        with pytest.raises(IntegrityError), transaction.atomic():
            model.objects.filter(pk=pk)._raw_delete(connection.alias)
    assert SettlementBatch.objects.filter(pk=batch.pk).exists() and Merchant.objects.filter(pk=shop.pk).exists()


def test_a_merchant_with_no_settlement_lines_can_still_be_deleted(db):
    # given a merchant registered by mistake, never paid nor settled
    shop = merchant()
    # when
    Merchant.objects.filter(pk=shop.pk)._raw_delete(connection.alias)
    # then
    assert not Merchant.objects.filter(pk=shop.pk).exists()
