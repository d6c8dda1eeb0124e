"""Settlement benchmark: settle_day over N payments across 10,000 merchants, next
to one raw `GROUP BY merchant` aggregate over the same payment rows, and the
settlement's peak memory at 100k and 1M payments.

The payments are built once per size into `<name>_bench_settle_<size>` and kept
as a template; each run copies it (CREATE DATABASE ... TEMPLATE, a file copy)
and settles the copy, since a settlement cannot be undone in an append-only ledger.
Building is consistent with the ledger: one citizen lot gets the BKRW minted
from the bank's cash through the reserve, and every payment is its own ledger
entry (lot -> merchant token account) posted with post_entries in batches of
1,000, then its Payment row is COPYed in, dated yesterday (Seoul).
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.scratch import Server, django_database, migrate, migration_state

BUILDER_VERSION = "1"
MERCHANTS = 10_000
BATCH = 1_000


@dataclass(frozen=True)
class Settled:
    payments: int
    merchants: int
    settle_seconds: float
    groupby_seconds: float
    peak_rss_mb: float
    baseline_rss_mb: float | None
    paid: int
    net: int
    fees: int
    reconciled: bool
    queries: int
    entries: int


def template_name(server: Server, payments: int) -> str:
    label = f"{payments // 1_000_000}m" if payments % 1_000_000 == 0 else f"{payments // 1000}k"
    return f"{server.name}_bench_settle_{label}"


def ensure_template(server: Server, payments: int, *, rebuild: bool = False) -> tuple[str, str]:
    dbname = template_name(server, payments)
    if not rebuild and server.exists(dbname):
        with django_database(dbname):
            reason = why_not_reusable(payments)
        if reason is None:
            return dbname, "reused"
        print(f"  no reusable payments in {dbname} ({reason}): building them")
    started = time.perf_counter()
    _build(server, dbname, payments)
    return dbname, f"built in {time.perf_counter() - started:.0f} s"


def _fingerprint(payments: int) -> str:
    shape = f"{BUILDER_VERSION}:{payments}:{MERCHANTS}:{BATCH}"
    digest = hashlib.sha256(shape.encode())
    digest.update(Path(__file__).read_bytes())
    root = Path(__file__).resolve().parent.parent
    for migration in sorted([*root.glob("bank/migrations/0*.py"), *root.glob("voucher/migrations/0*.py")]):
        digest.update(migration.read_bytes())  # a schema change (even under the same name) means a rebuild
    return digest.hexdigest()


def why_not_reusable(payments: int) -> str | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_settle_cache') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return "it was never completed"
        cursor.execute("SELECT payments, fingerprint FROM bench_settle_cache")
        if cursor.fetchone() != (payments, _fingerprint(payments)):
            return "it was built by other code or for another size"
    applied, on_disk = migration_state()
    if applied != on_disk:
        return "the migrations changed"
    return None


def _build(server: Server, dbname: str, payments: int) -> None:
    from django.db import connection

    server.create_fresh(dbname)
    with django_database(dbname):
        migrate()
        lot_account, merchants = _accounts_and_merchants(payments)
        _pay(lot_account, merchants, payments)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_settle_cache (payments bigint NOT NULL, fingerprint text NOT NULL)")
            cursor.execute("INSERT INTO bench_settle_cache VALUES (%s, %s)", [payments, _fingerprint(payments)])
        connection.close()
    with server.connect(dbname) as db:
        db.execute("VACUUM (ANALYZE)")


def amount_of(n: int) -> int:
    return 1_000 + (n % 97) * 100


def _accounts_and_merchants(payments: int):
    from bank.models import Account, Party
    from bank.services import open_account, open_party, post_entry
    from voucher.models import Lot, Merchant, MerchantCategory
    from voucher.services import open_wallet
    from voucher.services.common import Lines, token_accounts

    bank = open_party(kind=Party.Kind.BANK, external_ref="consortium:bank", display_name="Busan Bank")
    cash = open_account(owner=bank, code="bench:cash:KRW", currency="KRW", normal_side="asset", may_go_negative=True)
    tokens = token_accounts()
    person = open_party(kind=Party.Kind.PERSON, external_ref="bench:citizen")
    wallet = open_wallet(owner=person)
    lot_account = open_account(owner=person, code="bench:lot", currency="BKRW", normal_side="liability")
    Lot.objects.create(
        wallet=wallet, expires_on="2099-12-31", account=lot_account, funder_account=wallet.deposit_account
    )
    total = sum(amount_of(n) for n in range(payments))
    lines = Lines()
    lines.mint(tokens=tokens, krw_from=cash, to=lot_account, amount=total)
    post_entry(lines=lines.as_list(), kind="bench_mint")

    parties = Party.objects.bulk_create(
        [Party(kind=Party.Kind.MERCHANT, external_ref=f"bench:merchant:{i}") for i in range(MERCHANTS)],
        batch_size=5000,
    )
    parties = list(Party.objects.filter(external_ref__startswith="bench:merchant:").order_by("pk"))
    Account.objects.bulk_create(
        [
            Account(owner=p, code=f"bench:m{p.pk}:{kind}", currency=currency, normal_side="liability")
            for p in parties
            for kind, currency in (("krw", "KRW"), ("bkrw", "BKRW"))
        ],
        batch_size=5000,
    )
    accounts = {a.code: a.pk for a in Account.objects.filter(code__startswith="bench:m")}
    # Revenues across the three fee tiers, so the fee arithmetic is exercised.
    revenues = (300_000_000, 1_000_000_000, 3_000_000_000)
    Merchant.objects.bulk_create(
        [
            Merchant(
                party=p,
                name=f"Bench shop {i}",
                business_registration_number=f"{i:010d}",
                category=MerchantCategory.RESTAURANT,
                district="haeundae",
                annual_revenue=revenues[i % 3],
                settlement_account_id=accounts[f"bench:m{p.pk}:krw"],
                token_account_id=accounts[f"bench:m{p.pk}:bkrw"],
            )
            for i, p in enumerate(parties)
        ],
        batch_size=5000,
    )
    merchants = list(Merchant.objects.order_by("pk").values_list("pk", "token_account_id"))
    return lot_account, merchants


def _pay(lot_account, merchants, payments: int) -> None:
    from django.db import connection, transaction

    from bank.services import EntryRequest, post_entries
    from voucher.clock import seoul_today
    from voucher.models import Wallet

    wallet_id = Wallet.objects.get().pk
    from datetime import datetime, timedelta
    from datetime import time as clock

    from voucher.clock import SEOUL

    day = seoul_today() - timedelta(days=1)
    start = datetime.combine(day, clock(0), tzinfo=SEOUL)
    columns = (
        "wallet_id, merchant_id, amount, refunded_amount, reference, idempotency_key, entry_id, "
        "cashback_amount, cashback_clawed_back, created_at"
    )
    with tqdm(total=payments, desc=f"paying {payments:,}", unit="payment", leave=False) as bar:
        for first in range(0, payments, BATCH):
            numbers = range(first, min(payments, first + BATCH))
            with transaction.atomic():
                entries = post_entries(
                    requests=[
                        EntryRequest(
                            lines=[
                                (lot_account.pk, -amount_of(n)),
                                (merchants[n % len(merchants)][1], amount_of(n)),
                            ],
                            kind="voucher_payment",
                        )
                        for n in numbers
                    ]
                )
                with connection.cursor() as cursor, cursor.copy(f"COPY voucher_payment ({columns}) FROM STDIN") as copy:
                    for n, entry in zip(numbers, entries, strict=True):
                        at = start + timedelta(seconds=(n * 86_399) // payments)
                        copy.write_row(
                            (
                                wallet_id,
                                merchants[n % len(merchants)][0],
                                amount_of(n),
                                0,
                                "",
                                f"b{n}",
                                entry.pk,
                                0,
                                0,
                                at,
                            )
                        )
            bar.update(len(numbers))


def settle_in_child(server: Server, template: str) -> Settled:
    """Copy the template, then settle it in a fresh process: time, peak RSS, and the GROUP BY."""
    run = f"{template}_run"
    with server.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{run}" WITH (FORCE)')
        # FILE_COPY: PostgreSQL 15's default (WAL_LOG) writes the whole copy to the WAL,
        # and the checkpoint that follows ran during the timed settlement.
        strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f'CREATE DATABASE "{run}" TEMPLATE "{template}"{strategy}')
        conn.execute("CHECKPOINT")
    try:
        env = dict(os.environ, DATABASE_URL=server.url_for(run))
        done = subprocess.run(
            [sys.executable, "-m", "bench.settlement_child"],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError("the settlement process failed (its traceback is above)")
        return Settled(**json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        server.drop(run)
