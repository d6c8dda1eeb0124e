"""Raw SQL that migrations run for one kind of database only: the ledger's
triggers and functions, which Django's schema editor does not describe."""

from collections.abc import Mapping, Sequence

from django.db import migrations


def vendor_sql(forward: Mapping[str, Sequence[str]], backward: Mapping[str, Sequence[str]]) -> migrations.RunPython:
    """A migration operation running `forward[vendor]` (and `backward[vendor]` when
    reversed) on the database in use; nothing on a database not named."""
    return migrations.RunPython(_runner(forward), _runner(backward))


def _runner(statements: Mapping[str, Sequence[str]]):
    def run(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            for statement in statements.get(schema_editor.connection.vendor, ()):
                cursor.execute(statement)  # no params: the SQL's % signs are PL/pgSQL's

    return run
