"""Scratch databases on the PostgreSQL server of DATABASE_URL, and pointing Django at one.

The benchmarks write hundreds of thousands of append-only rows, so they never
run in the database DATABASE_URL names: they create `<name>_bench` (fresh each
run) and the cached ledgers `<name>_bench_100k` / `<name>_bench_1m` beside it,
on the same server, and migrate them with the project's own migrations.
"""

import os
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "postgis")


class Missing(Exception):
    """Something the benchmarks need is not there; the message says what and how to get it."""


@dataclass(frozen=True)
class Server:
    """The PostgreSQL server of DATABASE_URL and the database it names."""

    url: str

    @classmethod
    def from_environment(cls) -> "Server":
        # The benchmark harness, like manage.py, reads its own few variables;
        # the application's settings stay in config/settings.py.
        url = os.environ.get("DATABASE_URL", "")
        if not url:
            raise Missing(
                "DATABASE_URL is not set. The benchmarks run against PostgreSQL, e.g.\n"
                "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/bkrw make bench"
            )
        scheme = urlsplit(url).scheme.split("+")[0]
        if scheme not in POSTGRES_SCHEMES:
            raise Missing(
                f"DATABASE_URL points at {scheme or 'something'!r}, not PostgreSQL. The benchmarks compare "
                "the ledger with pgbench on the same PostgreSQL server, so they need one, e.g.\n"
                "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/bkrw make bench"
            )
        server = cls(url)
        if not server.name:
            raise Missing("DATABASE_URL names no database; scratch databases are named after it.")
        try:
            with psycopg.connect(server.url_for(server.name), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as error:
            raise Missing(f"PostgreSQL at DATABASE_URL does not answer: {error}".strip()) from None
        return server

    @property
    def name(self) -> str:
        return urlsplit(self.url).path.lstrip("/")

    def url_for(self, dbname: str) -> str:
        """The same server and credentials, another database (as a libpq URI)."""
        parts = urlsplit(self.url)
        return urlunsplit(("postgresql", parts.netloc, "/" + dbname, parts.query, ""))

    def libpq_env(self, dbname: str) -> dict[str, str]:
        """PG* variables for command-line clients (pgbench) to reach `dbname`."""
        parts = urlsplit(self.url)
        env = dict(os.environ)
        for key, value in (
            ("PGHOST", parts.hostname),
            ("PGPORT", str(parts.port) if parts.port else None),
            ("PGUSER", parts.username),
            ("PGPASSWORD", parts.password),
        ):
            if value:
                env[key] = value
        env["PGDATABASE"] = dbname
        return env

    def connect(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(self.url_for(dbname), autocommit=True)

    def admin(self) -> psycopg.Connection:
        return self.connect(self.name)

    def exists(self, dbname: str) -> bool:
        with self.admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone() is not None

    def create_fresh(self, dbname: str) -> None:
        """Drop `dbname` if it is there (closing its sessions) and create it empty."""
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))

    def checkpoint(self) -> bool:
        """Write out every dirty page now, so that the WAL an earlier group wrote
        (a million-entry ledger, a settlement) is not checkpointed during the next
        group's timed slots. Needs a superuser or pg_checkpoint; False without."""
        try:
            with self.admin() as conn:
                conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def drop(self, dbname: str) -> None:
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@contextmanager
def django_database(dbname: str):
    """Point Django's default connection at another database on the same server, then back."""
    from django.db import connection

    from bank.services.consortium import signing_keys

    settings_dict = connection.settings_dict  # the same dict as settings.DATABASES["default"]
    previous = settings_dict["NAME"]
    connection.close()
    settings_dict["NAME"] = dbname
    signing_keys.cache_clear()
    try:
        yield
    finally:
        connection.close()
        settings_dict["NAME"] = previous
        signing_keys.cache_clear()


def migrate() -> None:
    """Bring the database Django points at to the project's migrations."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def migration_state() -> tuple[set, set]:
    """(applied, on disk) migrations of the database Django points at."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return set(loader.applied_migrations), set(loader.disk_migrations)
