"""Login lockout (django-axes) on every login: the merchant portal, the admin and the
API's token login. LOGIN_MAX_FAILURES (5) failures of one username, as Django
normalises it, from one address lock that pair for LOGIN_LOCKOUT_SECONDS (15 min)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from bank.models import AuditEvent
from bank.roles import grant_role
from tests.voucher.portal_support import PASSWORD, login_user, make_shop

OWNER = "gamcheon-wholesale-owner"
FULL_WIDTH_OWNER = "\uff47amcheon-wholesale-owner"  # U+FF47 FULLWIDTH LATIN SMALL LETTER G


def portal_login(client, username, password):
    return client.post(reverse("portal:login"), {"username": username, "password": password}, HTTP_ACCEPT_LANGUAGE="en")


def admin_login(client, username, password):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        HTTP_ACCEPT_LANGUAGE="en",
    )


def token_login(client, username, password):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")


def staff_login(username: str, role: str | None = None):
    user = login_user(username)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return grant_role(user, role) if role else user


@pytest.fixture
def gamcheon(db):
    return make_shop("gamcheon-wholesale")


def test_a_locked_portal_login_is_locked_in_its_full_width_spelling_too(client, gamcheon):
    for _ in range(5):
        portal_login(client, OWNER, "guess")
    locked = portal_login(client, FULL_WIDTH_OWNER, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The spelling typed does not start a fresh count either way round.
    assert AccessAttempt.objects.get().username == OWNER


def test_failures_in_the_full_width_spelling_count_for_the_plain_name(client, gamcheon):
    for _ in range(5):
        portal_login(client, FULL_WIDTH_OWNER, "guess")
    assert portal_login(client, OWNER, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_admin_login_is_locked_after_five_failures_even_with_the_right_password(client, db):
    staff_login("vault-teller", "teller")
    for _ in range(20):
        admin_login(client, "vault-teller", "guess")
    locked = admin_login(client, "vault-teller", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page
    # In the back office's language (Korean by default), with how long it lasts.
    korean = client.post(reverse("admin:login"), {"username": "vault-teller", "password": PASSWORD})
    assert korean.status_code == 429 and "15분 동안" in korean.content.decode()


def test_the_api_token_login_is_locked_with_the_error_shape(db):
    user = login_user("citizen-phone")
    client = APIClient()
    for _ in range(30):
        token_login(client, "citizen-phone", "guess")
    locked = token_login(client, "citizen-phone", PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "login_locked"
    assert "token" not in locked.json()
    # Another address is not locked out by this one's guesses.
    assert token_login(APIClient(REMOTE_ADDR="10.9.8.7"), user.username, PASSWORD).status_code == 200


def test_an_over_long_api_username_is_refused_without_a_server_error(db):
    response = token_login(APIClient(), "x" * 5000, "guess")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_lockout_ends_after_its_cool_off(client, gamcheon):
    for _ in range(5):
        portal_login(client, OWNER, "guess")
    assert portal_login(client, OWNER, PASSWORD).status_code == 429
    # Fifteen minutes and a second later (the attempt's clock moved back, not ours forward).
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert portal_login(client, OWNER, PASSWORD).status_code == 302


def test_a_successful_login_resets_that_users_count(db):
    login_user("citizen-phone")
    client = APIClient()
    for _ in range(4):
        token_login(client, "citizen-phone", "guess")
    assert token_login(client, "citizen-phone", PASSWORD).status_code == 200
    for _ in range(4):
        token_login(client, "citizen-phone", "guess")
    assert token_login(client, "citizen-phone", PASSWORD).status_code == 200


def test_a_teller_lifts_a_lockout_with_a_reason_and_it_is_audited(client, gamcheon):
    for _ in range(5):
        portal_login(client, OWNER, "guess")
    attempt = AccessAttempt.objects.get()
    teller = Client()
    teller.force_login(staff_login("counter-teller", "teller"))
    page = teller.get(reverse("admin:axes_accessattempt_changelist"))
    assert page.status_code == 200 and OWNER in page.content.decode()
    assert "로그인 실패 기록" in page.content.decode()  # axes' pages in Korean
    detail = teller.get(reverse("admin:axes_accessattempt_change", args=[attempt.pk])).content.decode()
    assert "guess" not in detail and "post_data" not in detail  # the failed logins' form data is not shown
    teller.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "lift_lockout", "_selected_action": [attempt.pk], "apply": "1", "reason": "called the owner back"},
    )
    assert not AccessAttempt.objects.exists()
    event = AuditEvent.objects.get(action="lift_login_lockout")
    assert event.actor.username == "counter-teller" and event.before["username"] == OWNER
    assert portal_login(client, OWNER, PASSWORD).status_code == 302


@pytest.mark.parametrize("role", ["program_manager", "settlement_operator", "pauser"])
def test_only_a_teller_sees_the_lockouts(client, gamcheon, role):
    client.force_login(staff_login(f"staff-{role}", role))
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403


def test_a_role_without_the_lift_permission_cannot_lift_a_lockout(client, gamcheon):
    for _ in range(5):
        portal_login(client, OWNER, "guess")
    attempt = AccessAttempt.objects.get()
    auditor = Client()
    auditor.force_login(staff_login("read-only-auditor", "auditor"))
    auditor.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "lift_lockout", "_selected_action": [attempt.pk], "apply": "1", "reason": "not mine to lift"},
    )
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert not AuditEvent.objects.filter(action="lift_login_lockout").exists()
