"""schemathesis against our own /api/schema/: no 5xx, every response as the schema says.

Bounded examples per operation so the suite stays fast. Each app's endpoints
join this run by being in the schema; the fixtures give them data to find.
"""

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from bank import services
from config.wsgi import application
from tests.factories import AccountFactory, funded_account


@pytest.fixture
def api_schema(db, validators):
    payer = funded_account(50_000)
    services.post_entry(lines=[(payer, -1_000), (AccountFactory(), 1_000)], kind="transfer")
    services.seal_pending_entries()
    # Calls go straight to the WSGI app; like Django's test client, keep the test's
    # transaction open across them instead of closing the connection after each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def citizen_token(db):
    user = get_user_model().objects.create_user(username="fuzz-citizen", password="unused-password-1")
    return Token.objects.create(user=user).key


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema_and_never_answers_5xx(case, citizen_token):
    case.call_and_validate(headers={"Authorization": f"Token {citizen_token}"})
