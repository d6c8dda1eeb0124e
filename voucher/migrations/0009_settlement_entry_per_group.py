"""Settlement posts one ledger entry per group of merchants, so a line's entry is
shared (a foreign key, no longer one-to-one); a line's foreign keys lose the
indexes that the unique (batch, merchant) and (merchant, sequence) already
give; and the (merchant, id) index of payments carries the amount and time, so
settlement sums a merchant's new payments from the index alone."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bank", "0009_counter_cash_permission"),
        ("voucher", "0008_payment_request_cancelled"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="payment",
            name="payment_merchant_id",
        ),
        migrations.AlterField(
            model_name="settlementline",
            name="batch",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="lines",
                to="voucher.settlementbatch",
            ),
        ),
        migrations.AlterField(
            model_name="settlementline",
            name="entry",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="settlement_lines",
                to="bank.journalentry",
            ),
        ),
        migrations.AlterField(
            model_name="settlementline",
            name="merchant",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="settlement_lines",
                to="voucher.merchant",
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                fields=["merchant", "id"], include=("amount", "created_at"), name="payment_merchant_id_sums"
            ),
        ),
    ]
