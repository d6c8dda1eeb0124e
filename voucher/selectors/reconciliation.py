"""What the reconciliation dashboard shows, read in a fixed handful of SQL
aggregates whatever the number of programs, lots or batches. Read-only.

Anything off (the reserve identity broken, a program past its budget or holding
more than it issued, expired lots not yet swept, a settlement batch stuck) lands
in `problems`, which the page shows as a red banner."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.apps import apps
from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from voucher.clock import seoul_today
from voucher.models import Lot, VoucherProgram
from voucher.verification import reserve_position

STUCK_SETTLEMENT_AFTER = timedelta(hours=24)


@dataclass
class Reconciliation:
    outstanding_bkrw: int
    reserve_krw: int
    programs: list[dict]
    lots_by_month: list[dict]
    settlement: list[dict] | None  # None: settlement is not installed on this branch
    problems: list[str] = field(default_factory=list)

    @property
    def difference(self) -> int:
        return self.outstanding_bkrw - self.reserve_krw

    @property
    def is_ok(self) -> bool:
        return not self.problems


def reconciliation(today: date | None = None) -> Reconciliation:
    today = today or seoul_today()
    outstanding, reserve = reserve_position()
    report = Reconciliation(
        outstanding_bkrw=outstanding,
        reserve_krw=reserve,
        programs=_programs(),
        lots_by_month=_lots_by_month(today),
        settlement=_settlement(),
    )
    if report.difference:
        report.problems.append(
            f"Reserve identity broken: {outstanding:,} BKRW outstanding but {reserve:,} KRW in the reserve "
            f"(difference {report.difference:+,} won)."
        )
    for row in report.programs:
        if row["is_off"]:
            report.problems.append(f"Program {row['code']}: {row['problem']}.")
    overdue = sum(row["overdue"] for row in report.lots_by_month)
    if overdue:
        report.problems.append(f"{overdue:,} won sits in lots past their expiry, not swept back to funders.")
    for row in report.settlement or []:
        if row["is_off"]:
            report.problems.append(f"{row['stuck']} settlement batch(es) running for over a day.")
    return report


def _programs() -> list[dict]:
    live = Q(lots__status=Lot.Status.ACTIVE)
    rows = (
        VoucherProgram.objects.values("pk", "code", "name", "status", "budget", "issued_total")
        .annotate(
            outstanding=Sum("lots__account__balance", filter=live, default=0), funder=F("funder_account__balance")
        )
        .order_by("pk")
    )
    programs = []
    for row in rows:
        row["left"] = row["budget"] - row["issued_total"]
        row["used_percent"] = row["issued_total"] * 100 // row["budget"] if row["budget"] else 0
        row["problem"] = ""
        if row["issued_total"] > row["budget"]:
            row["problem"] = f"issued {row['issued_total']:,} over its budget of {row['budget']:,}"
        elif row["outstanding"] > row["issued_total"]:
            row["problem"] = f"its lots hold {row['outstanding']:,}, more than the {row['issued_total']:,} it issued"
        row["is_off"] = bool(row["problem"])
        row["underfunded"] = row["funder"] < row["left"]
        programs.append(row)
    return programs


def _lots_by_month(today: date) -> list[dict]:
    rows = (
        Lot.objects.filter(status=Lot.Status.ACTIVE, account__balance__gt=0)
        .annotate(month=TruncMonth("expires_on"))
        .values("month")
        .annotate(
            lots=Count("pk"),
            total=Sum("account__balance"),
            overdue=Sum("account__balance", filter=Q(expires_on__lt=today), default=0),
        )
        .order_by("month")
    )
    rows = list(rows)
    largest = max((row["total"] for row in rows), default=0)
    return [
        {**row, "is_off": row["overdue"] > 0, "bar_percent": row["total"] * 100 // largest if largest else 0}
        for row in rows
    ]


def _settlement() -> list[dict] | None:
    """Settlement batches by status, if the settlement models are installed."""
    try:
        batch = apps.get_model("voucher", "SettlementBatch")
    except LookupError:
        return None
    stuck_before = timezone.now() - STUCK_SETTLEMENT_AFTER
    rows = (
        batch.objects.values("status")
        .annotate(
            batches=Count("pk"),
            net=Sum("net", default=0),
            oldest=Min("started_at"),
            stuck=Count("pk", filter=Q(finished_at__isnull=True, started_at__lt=stuck_before)),
        )
        .order_by("status")
    )
    return [{**row, "is_off": row["stuck"] > 0} for row in rows]
