"""The sum-to-zero triggers of 0002, same rules and same errors, at a fraction of the cost.

Measured on the benchmark (docs/BENCHMARKS.md), the deferred checks were most
of PostgreSQL's work per transfer: one entry fired three checks (its own and
one per posting), each of three queries, one of them a join whose plan turns
into a scan of every account when the statistics lag behind the inserts.

Now one check runs per entry, as one query that reads the account's currency
by primary key (an index lookup whatever the statistics say). A posting still
fires its own check, except when it was written by the same (sub)transaction
as its entry: then the entry's deferred check, which fires at commit and sees
every posting by then, already covers it. A posting added to an entry written
elsewhere (an older entry, raw SQL) is checked as before. The one way around
it is to run `SET CONSTRAINTS bank_entry_balanced IMMEDIATE` and then add a
posting to that entry in the same transaction; verify_ledger still catches
that, as it catches any change to an entry after it was hashed.

On other databases this migration does nothing, like 0002.
"""

from django.db import migrations

from bank.migration_sql import vendor_sql

ASSERT_ENTRY_BALANCED = """
CREATE OR REPLACE FUNCTION bank_assert_entry_balanced(entry bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lines integer;
    unbalanced boolean;
    mismatched boolean;
BEGIN
    SELECT coalesce(sum(per_currency.n), 0), coalesce(bool_or(per_currency.total <> 0), false),
           coalesce(bool_or(per_currency.mismatched), false)
      INTO lines, unbalanced, mismatched
      FROM (SELECT count(*) AS n, sum(p.amount) AS total,
                   bool_or(p.currency <> (SELECT a.currency FROM bank_account a WHERE a.id = p.account_id))
                       AS mismatched
              FROM bank_posting p
             WHERE p.entry_id = entry
             GROUP BY p.currency) per_currency;
    IF lines < 2 THEN
        RAISE EXCEPTION 'journal entry % has % postings; at least 2 are needed', entry, lines
            USING ERRCODE = 'check_violation';
    END IF;
    IF unbalanced THEN
        RAISE EXCEPTION 'journal entry % does not sum to zero in every currency', entry
            USING ERRCODE = 'check_violation';
    END IF;
    IF mismatched THEN
        RAISE EXCEPTION 'journal entry % posts in another currency than its account', entry
            USING ERRCODE = 'check_violation';
    END IF;
END $$;
"""

CHECK_POSTING_BALANCED = """
CREATE OR REPLACE FUNCTION bank_check_posting_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Written together with its entry: the entry's own deferred check covers it.
    IF EXISTS (SELECT 1 FROM bank_journalentry e, bank_posting p
                WHERE e.id = NEW.entry_id AND p.id = NEW.id AND e.xmin = p.xmin) THEN
        RETURN NULL;
    END IF;
    PERFORM bank_assert_entry_balanced(NEW.entry_id);
    RETURN NULL;
END $$;
"""

# 0002's definitions, for going back.
ASSERT_ENTRY_BALANCED_0002 = """
CREATE OR REPLACE FUNCTION bank_assert_entry_balanced(entry bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lines integer;
BEGIN
    SELECT count(*) INTO lines FROM bank_posting WHERE entry_id = entry;
    IF lines < 2 THEN
        RAISE EXCEPTION 'journal entry % has % postings; at least 2 are needed', entry, lines
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM bank_posting WHERE entry_id = entry
               GROUP BY currency HAVING sum(amount) <> 0) THEN
        RAISE EXCEPTION 'journal entry % does not sum to zero in every currency', entry
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM bank_posting p JOIN bank_account a ON a.id = p.account_id
               WHERE p.entry_id = entry AND p.currency <> a.currency) THEN
        RAISE EXCEPTION 'journal entry % posts in another currency than its account', entry
            USING ERRCODE = 'check_violation';
    END IF;
END $$;
"""

CHECK_POSTING_BALANCED_0002 = """
CREATE OR REPLACE FUNCTION bank_check_posting_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bank_assert_entry_balanced(NEW.entry_id);
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("bank", "0004_stored_responses")]
    operations = [
        vendor_sql(
            {"postgresql": [ASSERT_ENTRY_BALANCED, CHECK_POSTING_BALANCED]},
            {"postgresql": [ASSERT_ENTRY_BALANCED_0002, CHECK_POSTING_BALANCED_0002]},
        )
    ]
