"""Read-only views of settlement: a merchant's lines, statements (CSV and the
printable page), a batch's reconciliation, and the estimate of what settling now
would pay. Never writes."""

import csv
import io

from django.db.models import Count, Q, QuerySet, Sum

from bank.models import Posting
from voucher.clock import SEOUL, seoul_today
from voucher.models import Merchant, Payment, SettlementBatch, SettlementLine
from voucher.rules.accounts import ISSUANCE_CODE, RESERVE_CODE
from voucher.rules.fees import fee_for, fee_rate_bp
from voucher.rules.settlement import KINDS, new_rows, watermarks

# Korean first, English after, so Excel in Korea shows Hangul (the BOM tells it UTF-8).
CSV_HEADER = [
    "정산일 / Period",
    "정산번호 / Batch",
    "구분 / Kind",
    "가맹점 / Merchant",
    "사업자등록번호 / Business no.",
    "상태 / Status",
    "보류 사유 / Held reason",
    "결제 건수 / Payments",
    "결제 금액 / Gross",
    "환불 / Refunds",
    "가맹점 간 입금 / From merchants",
    "가맹점 간 지급 / To merchants",
    "수수료율(bp) / Fee rate (bp)",
    "수수료 / Fee",
    "입금액 / Net paid",
    "원장 거래 / Ledger entry",
]


def settlement_lines_for(merchant: Merchant) -> QuerySet[SettlementLine]:
    """The merchant's lines, newest first, with their batch."""
    return SettlementLine.objects.filter(merchant=merchant).select_related("batch").order_by("-period", "-pk")


def lines_of(target: SettlementLine | SettlementBatch, merchant: Merchant | None = None) -> QuerySet[SettlementLine]:
    """The lines a statement shows: one line, or a batch's (only `merchant`'s when given)."""
    if isinstance(target, SettlementLine):
        lines = SettlementLine.objects.filter(pk=target.pk)
    else:
        lines = SettlementLine.objects.filter(batch=target)
    if merchant is not None:
        lines = lines.filter(merchant=merchant)
    return lines.select_related("batch", "merchant").order_by("merchant_id")


def settlement_statement_csv(target: SettlementLine | SettlementBatch, merchant: Merchant | None = None) -> bytes:
    """A statement as CSV bytes: UTF-8 with a BOM, Korean + English headers, whole won."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in lines_of(target, merchant).iterator(chunk_size=2000):
        writer.writerow(
            [
                line.period.isoformat(),
                line.batch_id,
                line.batch.kind,
                line.merchant.name,
                line.merchant.business_registration_number,
                line.status,
                line.held_reason,
                line.payment_count,
                line.gross,
                line.refunds,
                line.from_merchants,
                line.to_merchants,
                line.fee_rate_bp,
                line.fee,
                line.net,
                line.entry_id or "",
            ]
        )
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def settlement_statement_context(target: SettlementLine | SettlementBatch, merchant: Merchant | None = None) -> dict:
    """Context of voucher/settlement_statement.html (a printable statement)."""
    lines = list(lines_of(target, merchant))
    batch = target.batch if isinstance(target, SettlementLine) else target
    paid = [line for line in lines if line.status == SettlementLine.Status.PAID]
    return {
        "batch": batch,
        "merchant": merchant or (target.merchant if isinstance(target, SettlementLine) else None),
        "lines": lines,
        "finished_at": batch.finished_at.astimezone(SEOUL) if batch.finished_at else None,
        "totals": {
            "payment_count": sum(line.payment_count for line in paid),
            "gross": sum(line.gross for line in paid),
            "refunds": sum(line.refunds for line in paid),
            "from_merchants": sum(line.from_merchants for line in paid),
            "to_merchants": sum(line.to_merchants for line in paid),
            "fee": sum(line.fee for line in paid),
            "net": sum(line.net for line in paid),
        },
    }


def batch_reconciliation(batch: SettlementBatch) -> dict:
    """Does the batch add up? sum(net) + sum(fee) must equal the BKRW burned and the
    KRW taken out of the reserve, read from the ledger's own postings."""
    lines = batch.lines.aggregate(
        net=Sum("net", filter=Q(status=SettlementLine.Status.PAID)),
        fees=Sum("fee", filter=Q(status=SettlementLine.Status.PAID)),
        paid=Count("pk", filter=Q(status=SettlementLine.Status.PAID)),
        held=Count("pk", filter=~Q(status=SettlementLine.Status.PAID)),
        with_entry=Count("entry"),
    )
    # An entry settles a group of merchants: take each of the batch's entries once.
    postings = Posting.objects.filter(entry_id__in=batch.lines.exclude(entry=None).values("entry_id"))
    burned = postings.filter(account__code=ISSUANCE_CODE).aggregate(total=Sum("amount"))["total"] or 0
    reserve_out = -(postings.filter(account__code=RESERVE_CODE).aggregate(total=Sum("amount"))["total"] or 0)
    net, fees = lines["net"] or 0, lines["fees"] or 0
    return {
        "batch": batch.pk,
        "paid_lines": lines["paid"],
        "held_lines": lines["held"],
        "net": net,
        "fees": fees,
        "net_plus_fees": net + fees,
        "bkrw_burned": burned,
        "krw_out_of_reserve": reserve_out,
        "balanced": net + fees == burned == reserve_out,
    }


def payments_covered_by(line: SettlementLine) -> QuerySet[Payment]:
    """The payments a line settled (for a held line: those it would have)."""
    return Payment.objects.filter(
        merchant_id=line.merchant_id, pk__gt=line.payments_after, pk__lte=line.payments_through
    ).order_by("pk")


def settlement_line_of(payment: Payment) -> SettlementLine | None:
    """The paid line that settled this payment, or None while it is unsettled."""
    return (
        SettlementLine.objects.filter(
            merchant_id=payment.merchant_id,
            status=SettlementLine.Status.PAID,
            payments_after__lt=payment.pk,
            payments_through__gte=payment.pk,
        )
        .select_related("batch")
        .first()
    )


def unsettled_payments(merchant: Merchant) -> QuerySet[Payment]:
    """The merchant's payments no paid line covers yet."""
    last = (
        SettlementLine.objects.filter(merchant=merchant, status=SettlementLine.Status.PAID)
        .order_by("-sequence")
        .values_list("payments_through", flat=True)
        .first()
    )
    return Payment.objects.filter(merchant=merchant, pk__gt=last or 0)


def estimate_next_settlement(merchant: Merchant) -> dict:
    """What settling the merchant now would pay, at the daily rate: gross,
    refunds, merchant-to-merchant in and out, fee and net. Reads only."""
    starts = watermarks([merchant.pk])[merchant.pk]
    got = {kind: new_rows(kind, {merchant.pk: starts[kind]}, None).get(merchant.pk, (0, 0, 0)) for kind in KINDS}
    gross, refunded, received, paid_out = (got[kind][2] for kind in KINDS)
    burned = max(0, gross + received - refunded - paid_out)
    rate = fee_rate_bp(merchant, seoul_today())
    fee = fee_for(burned, rate)
    return {
        "payment_count": got["payments"][1],
        "gross": gross,
        "refunds": refunded,
        "from_merchants": received,
        "to_merchants": paid_out,
        "fee_rate_bp": rate,
        "fee": fee,
        "net": burned - fee,
    }
