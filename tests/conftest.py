"""Fixtures shared by the whole suite, and the rules that skip tests whose service is absent."""

import os
from pathlib import Path

import pytest
from django.db import connection

from bank import bls
from bank.models import ValidatorKey
from bank.services.consortium import signing_keys

VALIDATOR_NAMES = ["city", "bank", "security-agency", "technopark"]


def pytest_collection_modifyitems(config, items):
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    has_redis = bool(os.environ.get("REDIS_URL"))
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (CI does)"))
        if "redis" in item.keywords and not (has_redis and on_postgres):
            item.add_marker(
                pytest.mark.skip(
                    reason="needs Redis and PostgreSQL for a real Celery worker: set REDIS_URL and DATABASE_URL"
                )
            )


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """One test database per pytest process (test_<name>_<pid>), so two runs on one
    PostgreSQL, a developer's and CI's, never drop each other's database."""
    from django.conf import settings

    for alias in settings.DATABASES.values():
        if alias["ENGINE"].endswith("postgresql"):
            alias.setdefault("TEST", {})["NAME"] = f"test_{alias['NAME']}_{os.getpid()}"


@pytest.fixture(scope="session")
def validator_key_material(tmp_path_factory) -> tuple[Path, list[tuple[str, bytes, bytes, bytes]]]:
    """Four validator key pairs with proofs of possession, made once per run
    (py-ecc's proof takes ~100 ms each). Secret keys are written as key files."""
    key_dir = tmp_path_factory.mktemp("validator-keys")
    material = []
    for index, name in enumerate(VALIDATOR_NAMES):
        secret = bls.secret_key_bytes(0xB05A + index * 7919)
        (key_dir / f"{name}.key").write_text(secret.hex())
        material.append((name, secret, bls.public_key(secret), bls.prove_possession(secret)))
    return key_dir, material


@pytest.fixture
def validators(db, settings, validator_key_material) -> list[ValidatorKey]:
    """The demo consortium registered in this test's database, its key files on disk."""
    key_dir, material = validator_key_material
    settings.LEDGER_VALIDATOR_KEY_DIR = key_dir
    keys = [
        ValidatorKey.objects.create(name=name, public_key=public.hex(), proof_of_possession=proof.hex())
        for name, _, public, proof in material
    ]
    signing_keys.cache_clear()
    yield keys
    signing_keys.cache_clear()


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def celery_tasks_run_eagerly():
    """Tasks run in-process unless a test starts a real worker (it turns this off itself),
    so a test calling .delay().get() never waits for a worker that is not there."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
