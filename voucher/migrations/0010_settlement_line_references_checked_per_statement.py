"""A settlement line's batch, merchant and entry are checked once per INSERT
statement, not per row, for the reason and in the way of bank's migration 0012:
a settlement writes ten thousand lines in a few statements, and the three
deferred foreign keys queued thirty thousand `SELECT ... FOR KEY SHARE` checks
for its commits.

What the foreign keys also did, keep a referenced row from being deleted, is
done by triggers: a batch is never deleted (it is the record of money paid
out), a merchant only while no line names it (settlement holds the merchant's
row locked while it writes the merchant's line, so a concurrent delete waits
and then sees the line), and entries are append-only (bank 0002).

On SQLite the references are checked by a row trigger; deletion is refused on
PostgreSQL only (see bank 0012).
"""

import django.db.models.deletion
from django.db import migrations, models

from bank.migration_sql import vendor_sql

# The lookups run through EXECUTE, planned for each statement with the ids in
# hand (see bank 0012 for why not PL/pgSQL's cached plans).
CHECK_NEW_LINES = """
CREATE OR REPLACE FUNCTION voucher_check_new_settlement_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    batches bigint[];
    merchants bigint[];
    entries bigint[];
    found_batches bigint;
    found_merchants bigint;
    found_entries bigint;
BEGIN
    SELECT array_agg(DISTINCT batch_id), array_agg(DISTINCT merchant_id),
           coalesce(array_agg(DISTINCT entry_id) FILTER (WHERE entry_id IS NOT NULL), '{}')
      INTO batches, merchants, entries FROM new_lines;
    EXECUTE $q$
        SELECT (SELECT count(*) FROM voucher_settlementbatch WHERE id = ANY($1)),
               (SELECT count(*) FROM voucher_merchant WHERE id = ANY($2)),
               (SELECT count(*) FROM bank_journalentry WHERE id = ANY($3))
    $q$ INTO found_batches, found_merchants, found_entries USING batches, merchants, entries;
    IF found_batches <> cardinality(batches) THEN
        RAISE EXCEPTION 'a settlement line names a batch that does not exist' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF found_merchants <> cardinality(merchants) THEN
        RAISE EXCEPTION 'a settlement line names a merchant that does not exist' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF found_entries <> cardinality(entries) THEN
        RAISE EXCEPTION 'a settlement line names a journal entry that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
"""

KEEP_REFERENCED = """
CREATE OR REPLACE FUNCTION voucher_keep_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'voucher_settlementbatch'
       OR EXISTS (SELECT 1 FROM voucher_settlementline WHERE merchant_id = OLD.id) THEN
        RAISE EXCEPTION '% % has settlement lines and cannot be deleted', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
"""

POSTGRESQL_FORWARD = [
    CHECK_NEW_LINES,
    "CREATE TRIGGER voucher_settlementline_references AFTER INSERT ON voucher_settlementline "
    "REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION voucher_check_new_settlement_lines();",
    KEEP_REFERENCED,
    "CREATE TRIGGER voucher_settlementbatch_kept BEFORE DELETE ON voucher_settlementbatch "
    "FOR EACH ROW EXECUTE FUNCTION voucher_keep_settled();",
    "CREATE TRIGGER voucher_merchant_settled_kept BEFORE DELETE ON voucher_merchant "
    "FOR EACH ROW EXECUTE FUNCTION voucher_keep_settled();",
]

POSTGRESQL_BACKWARD = [
    "DROP TRIGGER IF EXISTS voucher_merchant_settled_kept ON voucher_merchant;",
    "DROP TRIGGER IF EXISTS voucher_settlementbatch_kept ON voucher_settlementbatch;",
    "DROP FUNCTION IF EXISTS voucher_keep_settled();",
    "DROP TRIGGER IF EXISTS voucher_settlementline_references ON voucher_settlementline;",
    "DROP FUNCTION IF EXISTS voucher_check_new_settlement_lines();",
]

SQLITE_FORWARD = [
    """CREATE TRIGGER voucher_settlementline_references BEFORE INSERT ON voucher_settlementline
       WHEN NOT EXISTS (SELECT 1 FROM voucher_settlementbatch WHERE id = NEW.batch_id)
         OR NOT EXISTS (SELECT 1 FROM voucher_merchant WHERE id = NEW.merchant_id)
         OR (NEW.entry_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bank_journalentry WHERE id = NEW.entry_id))
       BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END""",
]

SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS voucher_settlementline_references"]


def _unchecked(to, related_name, **options):
    return models.ForeignKey(
        db_constraint=False,
        db_index=False,
        on_delete=django.db.models.deletion.PROTECT,
        related_name=related_name,
        to=to,
        **options,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("bank", "0012_posting_references_checked_per_statement"),
        ("voucher", "0009_settlement_entry_per_group"),
    ]

    operations = [
        migrations.AlterField(
            model_name="settlementline", name="batch", field=_unchecked("voucher.settlementbatch", "lines")
        ),
        migrations.AlterField(
            model_name="settlementline", name="merchant", field=_unchecked("voucher.merchant", "settlement_lines")
        ),
        migrations.AlterField(
            model_name="settlementline",
            name="entry",
            field=_unchecked("bank.journalentry", "settlement_lines", null=True, blank=True),
        ),
        vendor_sql(
            {"postgresql": POSTGRESQL_FORWARD, "sqlite": SQLITE_FORWARD},
            {"postgresql": POSTGRESQL_BACKWARD, "sqlite": SQLITE_BACKWARD},
        ),
    ]
