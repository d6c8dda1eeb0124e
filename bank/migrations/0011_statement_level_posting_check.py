"""The per-posting balance check of 0005 becomes one check per INSERT statement.

0005 queued a deferred row trigger for every posting, which at commit ran a
query to find that the posting was written with its entry and so had nothing
to check. Measured on settlement (20,000 postings per run), those events were
about half of the time spent committing. Now one statement-level trigger per
INSERT (or COPY) into bank_posting looks at the statement's new postings as a
set: only those added to an entry written by another (sub)transaction, i.e.
appended to an existing entry, get their entries checked, right away. Postings
written with their entry are covered, as before, by the entry's own deferred
check at commit, which sees all of its postings by then.

The rule is unchanged except that appending to an existing entry is now checked
at the end of the statement instead of at commit, which is stricter: a posting
added to an existing entry must leave it balanced by itself.

On other databases this migration does nothing, like 0002 and 0005.
"""

from django.db import migrations

from bank.migration_sql import vendor_sql

CHECK_APPENDED_POSTINGS = """
CREATE OR REPLACE FUNCTION bank_check_appended_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    writer xid;
    appended bigint;
BEGIN
    -- Every row of the statement has the (sub)transaction id of its writer.
    SELECT p.xmin INTO writer FROM bank_posting p WHERE p.id = (SELECT min(id) FROM new_postings);
    FOR appended IN
        SELECT e.id FROM bank_journalentry e
         WHERE e.id IN (SELECT DISTINCT entry_id FROM new_postings) AND NOT (e.xmin = writer)
    LOOP
        PERFORM bank_assert_entry_balanced(appended);
    END LOOP;
    RETURN NULL;
END $$;
"""

FORWARD = [
    CHECK_APPENDED_POSTINGS,
    "DROP TRIGGER IF EXISTS bank_posting_balanced ON bank_posting;",
    "CREATE TRIGGER bank_posting_balanced AFTER INSERT ON bank_posting "
    "REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION bank_check_appended_postings();",
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS bank_posting_balanced ON bank_posting;",
    "DROP FUNCTION IF EXISTS bank_check_appended_postings();",
    "CREATE CONSTRAINT TRIGGER bank_posting_balanced AFTER INSERT ON bank_posting "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bank_check_posting_balanced();",
]


class Migration(migrations.Migration):
    dependencies = [("bank", "0010_inline_entry_balance_check")]
    operations = [vendor_sql({"postgresql": FORWARD}, {"postgresql": BACKWARD})]
