"""Every page carries the Content-Security-Policy (django-csp): scripts and styles from
our own origin only, never 'unsafe-inline'. The browser tests (test_portal_browser.py) check that the pages then work and nothing is refused."""

import pytest
from django.test import Client


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/portal/login/", "/admin/login/", "/api/docs/", "/api/docs/?script="])
def test_public_pages_carry_a_policy_without_unsafe_inline(db, path):
    response = Client().get(path)
    assert response.status_code == 200
    directives = policy(response)
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_a_logged_in_portal_page_carries_the_policy_too(shop):
    client = Client()
    client.force_login(shop.owner)
    response = client.get("/portal/")
    assert response.status_code == 200
    assert policy(response)["script-src"] == ["'self'"]


def test_the_api_docs_page_has_no_inline_script_or_style(db):
    page = Client().get("/api/docs/").content.decode()
    assert "<style" not in page
    assert "<script>" not in page  # every script has a src (the init script is /api/docs/?script=)
