"""Settlement batches, read-only: batches are made by voucher.services.settle_day /
settle_merchant_now; a stopped daily batch can be resumed here."""

from django.contrib import admin

from bank.admin.common import ReadOnlyAdmin, ReadOnlyInline, run_each
from voucher import services
from voucher.models import SettlementBatch, SettlementLine
from voucher.selectors import batch_reconciliation


class SettlementLineInline(ReadOnlyInline):
    model = SettlementLine
    fields = [
        "merchant",
        "status",
        "held_reason",
        "payment_count",
        "gross",
        "refunds",
        "from_merchants",
        "to_merchants",
        "fee_rate_bp",
        "fee",
        "net",
        "entry",
    ]
    readonly_fields = fields


@admin.register(SettlementBatch)
class SettlementBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "period",
        "kind",
        "status",
        "merchant_count",
        "paid_count",
        "held_count",
        "payment_count",
        "gross",
        "refunds",
        "fees",
        "net",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    date_hierarchy = "period"
    readonly_fields = ["reconciliation"]
    inlines = [SettlementLineInline]
    actions = ["resume"]

    @admin.display(description="reconciliation: net + fees == BKRW burned == KRW out of the reserve")
    def reconciliation(self, batch):
        report = batch_reconciliation(batch)
        verdict = "balanced" if report["balanced"] else "DOES NOT BALANCE"
        return (
            f"{verdict}: net {report['net']:,} + fees {report['fees']:,} = {report['net_plus_fees']:,}; "
            f"burned {report['bkrw_burned']:,}; reserve out {report['krw_out_of_reserve']:,}"
        )

    def has_run_permission(self, request):
        return request.user.has_perm("voucher.run_settlement")

    @admin.action(description="Finish the selected daily batches now (resume a stopped run)", permissions=["run"])
    def resume(self, request, queryset):
        daily = queryset.exclude(kind=SettlementBatch.Kind.INSTANT)
        run_each(
            self,
            request,
            daily,
            "settled",
            lambda batch: services.settle_day(day=batch.period, acting_user=request.user),
        )
