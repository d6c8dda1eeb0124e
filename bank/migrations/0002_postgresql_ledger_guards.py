"""PostgreSQL guards the model layer cannot give: append-only ledger tables even
against raw SQL, and the sum-to-zero rule checked at commit.

On other databases (SQLite for a first look) this migration does nothing; the
model layer's AppendOnlyModel and the posting service still hold the rules.
"""

from django.db import migrations

from bank.migration_sql import vendor_sql

APPEND_ONLY = ["bank_posting", "bank_block", "bank_blockattestation", "bank_auditevent"]

FORWARD = [
    """
    CREATE FUNCTION bank_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger rows in % are append-only (% refused)', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    """,
    *[
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION bank_refuse_change();"
        for table in APPEND_ONLY
    ],
    # An entry may change once: sealing sets block_id where it was empty. Nothing else.
    """
    CREATE FUNCTION bank_entry_only_sealing() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.block_id IS NULL AND NEW.block_id IS NOT NULL
           AND (to_jsonb(NEW) - 'block_id') = (to_jsonb(OLD) - 'block_id') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'journal entries are append-only (% refused)', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    """,
    "CREATE TRIGGER bank_journalentry_append_only BEFORE UPDATE OR DELETE ON bank_journalentry "
    "FOR EACH ROW EXECUTE FUNCTION bank_entry_only_sealing();",
    # Checked at commit, when all of an entry's postings are in.
    """
    CREATE FUNCTION bank_assert_entry_balanced(entry bigint) RETURNS void LANGUAGE plpgsql AS $$
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
    """,
    """
    CREATE FUNCTION bank_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM bank_assert_entry_balanced(NEW.id);
        RETURN NULL;
    END $$;
    """,
    """
    CREATE FUNCTION bank_check_posting_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM bank_assert_entry_balanced(NEW.entry_id);
        RETURN NULL;
    END $$;
    """,
    "CREATE CONSTRAINT TRIGGER bank_entry_balanced AFTER INSERT ON bank_journalentry "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bank_check_entry_balanced();",
    "CREATE CONSTRAINT TRIGGER bank_posting_balanced AFTER INSERT ON bank_posting "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bank_check_posting_balanced();",
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS bank_posting_balanced ON bank_posting;",
    "DROP TRIGGER IF EXISTS bank_entry_balanced ON bank_journalentry;",
    "DROP FUNCTION IF EXISTS bank_check_posting_balanced();",
    "DROP FUNCTION IF EXISTS bank_check_entry_balanced();",
    "DROP FUNCTION IF EXISTS bank_assert_entry_balanced(bigint);",
    "DROP TRIGGER IF EXISTS bank_journalentry_append_only ON bank_journalentry;",
    "DROP FUNCTION IF EXISTS bank_entry_only_sealing();",
    *[f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in APPEND_ONLY],
    "DROP FUNCTION IF EXISTS bank_refuse_change();",
]


class Migration(migrations.Migration):
    dependencies = [("bank", "0001_initial")]
    operations = [vendor_sql({"postgresql": FORWARD}, {"postgresql": BACKWARD})]
