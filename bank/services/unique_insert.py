"""Inserting a row that a unique constraint lets exist once (a used nonce, a stored response).

A duplicate raises IntegrityError. Inside a transaction the INSERT needs a
savepoint, so the caller's transaction stays usable after the duplicate; in
autocommit the single INSERT is its own transaction already, and a BEGIN and
COMMIT around it would only cost two round trips on every signed request.
"""

from django.db import connection, transaction


def insert_unique(model, **fields):
    if connection.in_atomic_block:
        with transaction.atomic():
            return model.objects.create(**fields)
    return model.objects.create(**fields)
