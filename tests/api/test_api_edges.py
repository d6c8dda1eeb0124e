"""What /api/ answers outside its views: a path no route matches (a non-integer id)
and an over-long query string, always in the error shape, also with DEBUG on."""

import re

import pytest
from rest_framework.test import APIClient

from tests.factories.api import citizen_app


@pytest.mark.parametrize("path", ["/api/v1/devices/abc/", "/api/v1/payments/abc/", "/api/v1/no-such-thing/"])
@pytest.mark.parametrize("debug", [True, False])
def test_an_unrouted_api_path_answers_json_404_in_every_mode(db, settings, path, debug):
    settings.DEBUG = debug
    response = citizen_app(0).client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_an_over_long_query_string_is_refused_with_414_and_nothing_runs(db, settings):
    settings.DEBUG = True
    app = citizen_app(0)
    response = app.client.get("/api/v1/wallet/history/", {"kind": "x" * settings.API_MAX_QUERY_STRING})
    assert response.status_code == 414
    assert response.json()["error"] == {
        "code": "query_too_long",
        "message": "The query string is too long.",
        "details": {"max_length": settings.API_MAX_QUERY_STRING},
    }
    # At the bound it reaches the view (and its own validation).
    at_bound = app.client.get("/api/v1/wallet/history/", {"kind": "x" * (settings.API_MAX_QUERY_STRING - 5)})
    assert at_bound.status_code == 400 and at_bound.json()["error"]["code"] == "invalid_request"


def test_the_schema_documents_414_and_the_payload_and_day_formats(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    history = schema["paths"]["/api/v1/wallet/history/"]["get"]
    assert "414" in history["responses"]
    since = next(p for p in history["parameters"] if p["name"] == "since")["schema"]
    assert since["format"] == "date" and since["pattern"].startswith("^(20[0-9]{2}|2100)-")
    preview = schema["paths"]["/api/v1/payment-requests/preview/"]["get"]
    payload = next(p for p in preview["parameters"] if p["name"] == "payload")["schema"]
    assert (payload["pattern"], payload["maxLength"]) == ("^bkrw:pr1:[A-Za-z0-9_-]+$", 1000)


def test_the_schema_states_the_printable_rule_of_free_text(db):
    schemas = APIClient().get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    reference = schemas["PayInputRequest"]["properties"]["reference"]
    reference = next(branch for branch in reference.get("oneOf", [reference]) if "pattern" in branch)
    assert reference["maxLength"] == 100 and reference["pattern"].startswith("^[\\u0020-\\u007e")
    # A control character is outside the pattern, as the server refuses it.
    assert not re.fullmatch(reference["pattern"], "table\x85")
    assert re.fullmatch(reference["pattern"], "포장-1 table 7")
