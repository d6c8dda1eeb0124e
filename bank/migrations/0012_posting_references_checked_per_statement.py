"""A posting's entry and account are checked once per INSERT statement, not per row.

Postings referenced their entry and account through deferred foreign keys, so
every posting queued two row triggers, each running a `SELECT ... FOR KEY SHARE`
at commit. Measured on settlement (20,000 postings per 1M-payment run), those
checks were most of the time its transactions spent committing. The references
are now checked by the statement-level trigger that already looks at each
INSERT's postings as a set (0011): two index lookups for all the statement's
distinct entries and accounts together, at the end of the statement instead of
at commit.

What a foreign key also did, keep a referenced row from being deleted, is done
by the rows themselves: entries are append-only (0002), and an account can no
longer be deleted at all (a bank closes an account; it never removes one that
may carry history). So the lock a foreign-key check takes is not needed either.

On SQLite the references are checked by a row trigger (its foreign keys would
have been the only guard there). Deletion is refused on PostgreSQL only, like
the ledger's other guards: Django empties SQLite tables with DELETE between
tests, where PostgreSQL's TRUNCATE fires no row trigger.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

from bank.migration_sql import vendor_sql

# 0011's function, with the references checked first. The lookups run through
# EXECUTE, planned for each statement with the ids in hand and the tables' sizes
# now. PL/pgSQL would keep a query's first plan for the session: planned while a
# table was small, a lookup became a scan of the whole table and stayed one as
# the table grew (a 1M-entry load slowed to a third before this was found).
CHECK_NEW_POSTINGS = """
CREATE OR REPLACE FUNCTION bank_check_appended_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    accounts bigint[];
    entries bigint[];
    first_id bigint;
    found_accounts bigint;
    found_entries bigint;
    appended bigint[];
    entry bigint;
BEGIN
    SELECT array_agg(DISTINCT account_id), array_agg(DISTINCT entry_id), min(id)
      INTO accounts, entries, first_id FROM new_postings;
    -- Every row of the statement has the (sub)transaction id of its writer, that of
    -- its first row; an entry written by another one is being appended to.
    EXECUTE $q$
        SELECT (SELECT count(*) FROM bank_account WHERE id = ANY($1)),
               (SELECT count(*) FROM bank_journalentry WHERE id = ANY($2)),
               ARRAY(SELECT e.id FROM bank_journalentry e WHERE e.id = ANY($2)
                      AND NOT (e.xmin = (SELECT p.xmin FROM bank_posting p WHERE p.id = $3)))
    $q$ INTO found_accounts, found_entries, appended USING accounts, entries, first_id;
    IF found_accounts <> cardinality(accounts) THEN
        RAISE EXCEPTION 'a posting names an account that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF found_entries <> cardinality(entries) THEN
        RAISE EXCEPTION 'a posting names a journal entry that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    FOREACH entry IN ARRAY appended LOOP
        PERFORM bank_assert_entry_balanced(entry);
    END LOOP;
    RETURN NULL;
END $$;
"""

REFUSE_ACCOUNT_DELETE = """
CREATE OR REPLACE FUNCTION bank_refuse_account_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'account % cannot be deleted: close it instead', OLD.id
        USING ERRCODE = 'foreign_key_violation';
END $$;
"""

POSTGRESQL_FORWARD = [
    CHECK_NEW_POSTINGS,
    REFUSE_ACCOUNT_DELETE,
    "CREATE TRIGGER bank_account_kept BEFORE DELETE ON bank_account "
    "FOR EACH ROW EXECUTE FUNCTION bank_refuse_account_delete();",
]

POSTGRESQL_BACKWARD = [
    "DROP TRIGGER IF EXISTS bank_account_kept ON bank_account;",
    "DROP FUNCTION IF EXISTS bank_refuse_account_delete();",
    import_module("bank.migrations.0011_statement_level_posting_check").CHECK_APPENDED_POSTINGS,
]

SQLITE_FORWARD = [
    """CREATE TRIGGER bank_posting_references BEFORE INSERT ON bank_posting
       WHEN NOT EXISTS (SELECT 1 FROM bank_account WHERE id = NEW.account_id)
         OR NOT EXISTS (SELECT 1 FROM bank_journalentry WHERE id = NEW.entry_id)
       BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END""",
]

SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS bank_posting_references"]


class Migration(migrations.Migration):
    dependencies = [("bank", "0011_statement_level_posting_check")]
    operations = [
        migrations.AlterField(
            model_name="posting",
            name="entry",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="postings",
                to="bank.journalentry",
            ),
        ),
        migrations.AlterField(
            model_name="posting",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="postings",
                to="bank.account",
            ),
        ),
        vendor_sql(
            {"postgresql": POSTGRESQL_FORWARD, "sqlite": SQLITE_FORWARD},
            {"postgresql": POSTGRESQL_BACKWARD, "sqlite": SQLITE_BACKWARD},
        ),
    ]
