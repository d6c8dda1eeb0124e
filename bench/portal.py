"""The merchant portal's dashboard for a merchant with 100,000 payments: server
time per request (p50, p95) and the number of SQL queries one request makes.

The merchant's payments are real ledger entries (a citizen's lot debited, the
merchant's token account credited, posted by post_entries in batches of 1,000)
with their Payment rows, spread over the last 100 Seoul days, plus 500 refunds
made by the refund service. Every day before today is then settled with the
settlement service, as the daily batch would have done, so the dashboard sees
what a busy shop sees on a normal day.

Timed in-process with Django's test Client (the whole request: middleware,
session, view, template), after a few warm-up requests.
"""

import statistics
import time
from datetime import timedelta

from tqdm import tqdm

PAYMENTS = 100_000
DAYS = 100
REFUNDS = 500
BATCH = 1_000
WARM_UP = 5
MIN_REQUESTS = 50


def build_merchant(payments: int = PAYMENTS, *, progress: bool = True):
    """A merchant with `payments` payments over DAYS days; returns its owner login."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from bank.models import Party
    from bank.services import EntryRequest, open_account, open_party, post_entries, post_entry
    from voucher import services
    from voucher.clock import seoul_today
    from voucher.models import Lot, MerchantMember, Payment, PaymentLot
    from voucher.services.common import Lines, token_accounts
    from voucher.services.merchants import brn_check_digit

    User = get_user_model()
    officer = User.objects.create(username="bench-officer", is_staff=True)
    owner = User.objects.create(username="bench-owner")
    merchant = services.onboard_merchant(
        actor=officer,
        business_registration_number="617809999" + str(brn_check_digit("617809999")),
        name="Bench Milmyeon 밀면",
        category="restaurant",
        district="haeundae",
        annual_revenue=500_000_000,
    )
    services.add_merchant_member(actor=officer, merchant=merchant, user=owner, role=MerchantMember.Role.OWNER)
    wallet = services.open_wallet(owner=open_party(kind=Party.Kind.PERSON, external_ref="bench:citizen"))
    bank = open_party(kind=Party.Kind.BANK, external_ref="bench:bank")
    cash = open_account(owner=bank, code="bench:cash", currency="KRW", normal_side="asset", may_go_negative=True)
    amounts = [1_000 + (i * 7_919) % 49 * 1_000 for i in range(payments)]
    total = sum(amounts)
    post_entry(lines=[(cash, -total), (wallet.deposit_account, total)], kind="bench_cash_deposit")
    services.top_up(wallet=wallet, amount=1_000, idempotency_key="bench:first-lot")  # opens the paid-in lot
    lot = Lot.objects.get(wallet=wallet)
    # The rest minted straight into that lot: a top-up service call would stop at the wallet's legal cap.
    lines = Lines()
    lines.mint(tokens=token_accounts(), krw_from=wallet.deposit_account_id, to=lot.account_id, amount=total - 1_000)
    post_entry(lines=lines.as_list(), kind="voucher_topup", idempotency_key="bench:mint")

    today = seoul_today()
    with tqdm(total=payments, desc="payments", unit="pay", disable=not progress, leave=False) as bar:
        for start in range(0, payments, BATCH):
            chunk = range(start, min(start + BATCH, payments))
            with transaction.atomic():
                entries = post_entries(
                    requests=[
                        EntryRequest(
                            lines=[(lot.account_id, -amounts[i]), (merchant.token_account_id, amounts[i])],
                            kind="voucher_payment",
                            idempotency_key=f"bench:pay:{i}",
                        )
                        for i in chunk
                    ]
                )
                made = Payment.objects.bulk_create(
                    [
                        Payment(
                            wallet=wallet,
                            merchant=merchant,
                            amount=amounts[i],
                            reference=f"table-{i % 40}",
                            idempotency_key=f"bench:pay:{i}",
                            entry=entry,
                        )
                        for i, entry in zip(chunk, entries, strict=True)
                    ]
                )
                PaymentLot.objects.bulk_create(
                    [PaymentLot(payment=p, lot=lot, amount=p.amount, spend_order=0) for p in made]
                )
            bar.update(len(chunk))
    # Spread the rows over DAYS Seoul days, set-based (bench data: the ledger entries keep their real time).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE voucher_payment SET created_at = created_at - (id %% %s) * interval '1 day' "
            "- (id %% 600) * interval '1 minute' WHERE merchant_id = %s",
            [DAYS, merchant.pk],
        )
        cursor.execute("ANALYZE voucher_payment")
    recent = list(Payment.objects.filter(merchant=merchant).order_by("-created_at")[: REFUNDS * 2 : 2])
    for number, payment in enumerate(tqdm(recent, desc="refunds", disable=not progress, leave=False)):
        services.refund_payment(payment=payment, amount=500, idempotency_key=f"bench:refund:{number}")
    services.settle_day(day=today - timedelta(days=1))  # what the nightly batch would have done
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) voucher_payment")  # what autovacuum does to a table this size
        cursor.execute("VACUUM (ANALYZE) voucher_refund")
    return owner


def time_dashboard(owner, seconds: float) -> dict:
    """Request the dashboard for `seconds` (at least MIN_REQUESTS times); p50/p95 in ms and queries per request."""
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_ACCEPT_LANGUAGE="ko")
    client.force_login(owner)
    for _ in range(WARM_UP):
        assert client.get("/portal/").status_code == 200
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):  # survives the connection being closed after the request
        client.get("/portal/")
    times = []
    deadline = time.perf_counter() + seconds
    while len(times) < MIN_REQUESTS or time.perf_counter() < deadline:
        started = time.perf_counter()
        response = client.get("/portal/")
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    times.sort()
    return {
        "requests": len(times),
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "queries": len(queries),
    }


def run(server, seconds: int, figures: dict, notes: dict, step) -> None:
    from bench.scratch import django_database, migrate

    scratch = f"{server.name}_bench_portal"
    print(f"portal: scratch database {scratch} (created fresh), one merchant with {PAYMENTS:,} payments")
    server.create_fresh(scratch)
    with django_database(scratch):
        migrate()
        started = time.perf_counter()
        owner = build_merchant()
        step(
            f"built {PAYMENTS:,} payments, {REFUNDS} refunds, past days settled: {time.perf_counter() - started:.0f} s"
        )
        timed = time_dashboard(owner, seconds)
    step(
        f"dashboard x{timed['requests']}: p50 {timed['p50_ms']:.1f} ms, p95 {timed['p95_ms']:.1f} ms, "
        f"{timed['queries']} queries per request"
    )
    figures["portal_dashboard_p50_ms"] = timed["p50_ms"]
    figures["portal_dashboard_p95_ms"] = timed["p95_ms"]
    figures["portal_dashboard_queries"] = timed["queries"]
    notes["portal_dashboard_p95_ms"] = (
        f"{PAYMENTS:,} payments over {DAYS} days; {timed['requests']} requests in-process"
    )
    server.drop(scratch)
