"""API tokens: stored as a digest and shown once, refused when expired (401
token_expired) or logged out, by the holder (DELETE /auth/token/) or by a teller
from the customer view (audited), for citizens and merchants alike."""

import hashlib
from datetime import datetime, timedelta

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from bank.models import ApiToken, AuditEvent
from bank.roles import grant_role
from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import staff
from tests.voucher.support import ledger_size
from voucher import services
from voucher.models import MerchantMember, Payment, Refund

TOKEN = "/api/v1/auth/token/"
ME = "/api/v1/auth/me/"
PAY = "/api/v1/wallet/payments/"
PASSWORD = "correct horse battery"


def _with_password(app):
    app.user.set_password(PASSWORD)
    app.user.save(update_fields=["password"])
    return app


def _log_in(app, client=None):
    return (client or APIClient()).post(TOKEN, {"username": app.user.username, "password": PASSWORD}, format="json")


def _signed_post_of(kind):
    """A money-moving signed POST of a citizen or a merchant, and how to count what it wrote."""
    if kind == "citizen":
        app, shop = citizen_app(10_000), merchant_app()
        return app, lambda: app.post(PAY, {"merchant": shop.merchant.pk, "amount": 1_000}), Payment.objects.count
    app = merchant_app()
    payment = services.pay(wallet=citizen_app(5_000).wallet, merchant=app.merchant, amount=2_000, idempotency_key="p")
    path = f"/api/v1/merchant/payments/{payment.pk}/refunds/"
    return app, lambda: app.post(path, {"amount": 500}), Refund.objects.count


def test_a_login_gets_a_new_token_shown_once_and_only_its_digest_is_stored(db):
    app = _with_password(citizen_app(1_000))
    first, second = _log_in(app), _log_in(app)
    assert first.status_code == second.status_code == 200
    keys = [first.json()["token"], second.json()["token"]]
    assert keys[0] != keys[1]  # each login its own token, so logging one phone out leaves the other
    digests = set(ApiToken.objects.filter(user=app.user).values_list("digest", flat=True))
    assert {hashlib.sha256(key.encode()).hexdigest() for key in keys} <= digests
    with connection.cursor() as cursor:  # the raw token is in no column of the table
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        assert not {key for key in keys for row in cursor.fetchall() for value in row if str(value) == key}
    for key in keys:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert client.get("/api/v1/wallet/").json()["id"] == app.wallet.pk


@override_settings(API_TOKEN_TTL_HOURS=2)
def test_a_token_expires_after_the_configured_hours_and_says_so_when_asked(db):
    app = _with_password(citizen_app(1_000))
    before = timezone.now()
    answer = _log_in(app).json()
    token = ApiToken.objects.get(digest=hashlib.sha256(answer["token"].encode()).hexdigest())
    assert timedelta(hours=2) <= token.expires_at - before < timedelta(hours=2, seconds=30)
    assert datetime.fromisoformat(answer["expires_at"]) == token.expires_at


@pytest.mark.parametrize("kind", ["citizen", "merchant"])
def test_an_expired_token_is_refused_with_token_expired_and_moves_nothing(db, kind):
    # given a holder whose token's expiry has passed
    app, signed_post, count = _signed_post_of(kind)
    ApiToken.objects.filter(user=app.user).update(expires_at=timezone.now() - timedelta(seconds=1))
    entries, written = ledger_size(), count()
    # when it signs a money-moving request, and when it asks who it is
    moved, me = signed_post(), app.client.get(ME)
    # then both are 401 token_expired (with the scheme to log in again), and nothing is written
    for response in (moved, me):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_expired"
        assert response["WWW-Authenticate"] == "Token"
    assert (ledger_size(), count()) == (entries, written)


def test_logging_in_again_works_while_the_app_still_sends_its_expired_token(db):
    app = _with_password(citizen_app(1_000))
    ApiToken.objects.filter(user=app.user).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = _log_in(app, client=app.client)  # app.client still carries the expired token
    assert again.status_code == 200, again.content


@pytest.mark.parametrize("kind", ["citizen", "merchant"])
def test_the_holder_logs_a_token_out_and_it_moves_nothing_after(db, kind):
    # given a holder with two logins (phone and tablet)
    app, signed_post, count = _signed_post_of(kind)
    tablet = APIClient()
    tablet.credentials(HTTP_AUTHORIZATION=f"Token {_with_password(app) and _log_in(app).json()['token']}")
    # when the phone logs out
    assert app.client.delete(TOKEN).status_code == 204
    # then its token is refused everywhere, writes nothing, and cannot log out twice
    entries, written = ledger_size(), count()
    moved = signed_post()
    assert (moved.status_code, moved.json()["error"]["code"]) == (401, "authentication_failed")
    assert app.client.get(ME).status_code == 401
    assert app.client.delete(TOKEN).status_code == 401
    assert (ledger_size(), count()) == (entries, written)
    # and the tablet's token still works
    assert tablet.get(ME).json()["username"] == app.user.username
    assert ApiToken.objects.filter(user=app.user, revoked_at__isnull=False).count() == 1


@pytest.mark.parametrize("kind", ["citizen", "merchant"])
def test_the_holder_lists_its_live_tokens_and_logs_another_one_out(db, kind):
    # given a holder logged in on a phone (this client) and a tablet, and someone else
    app = _with_password(citizen_app(1_000) if kind == "citizen" else merchant_app())
    tablet = APIClient()
    tablet.credentials(HTTP_AUTHORIZATION=f"Token {_log_in(app).json()['token']}")
    stranger = citizen_app(1_000)
    # when it lists its tokens
    listed = app.client.get("/api/v1/auth/tokens/").json()
    # then it sees both, which one is this request's, and no token value
    assert listed["count"] == 2 and [t["current"] for t in listed["results"]] == [True, False]
    assert set(listed["results"][0]) == {"id", "created_at", "expires_at", "current"}
    tablet_id = listed["results"][1]["id"]
    # a stranger's token id is not found, and nothing is revoked
    stranger_id = ApiToken.objects.get(user=stranger.user).pk
    refused = app.client.delete(f"/api/v1/auth/tokens/{stranger_id}/")
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found")
    assert stranger.client.get(ME).status_code == 200
    # logging the tablet out stops it, and leaves the phone
    assert app.client.delete(f"/api/v1/auth/tokens/{tablet_id}/").status_code == 204
    assert tablet.get(ME).status_code == 401 and app.client.get(ME).status_code == 200
    assert app.client.get("/api/v1/auth/tokens/").json()["count"] == 1
    assert app.client.delete(f"/api/v1/auth/tokens/{tablet_id}/").status_code == 404


def test_logging_out_needs_a_token(db):
    response = APIClient().delete(TOKEN)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "not_authenticated")


# --- a teller logs a customer's API logins out from the customer view ---------------------------


def _revoke(client, wallet, reason):
    url = reverse("admin:voucher_customerwallet_revoke_api_tokens", args=[wallet.pk])
    return client.post(url, {"reason": reason}, follow=True)


def _live(user):
    return ApiToken.objects.filter(user=user, revoked_at=None).count()


def test_a_teller_logs_every_api_login_of_a_customer_out_with_a_reason(db, client):
    # given a citizen logged in on two devices, and another citizen
    app, other = _with_password(citizen_app(5_000)), citizen_app(1_000)
    _log_in(app)
    teller = grant_role(staff("teller-kim"), "teller")
    client.force_login(teller)
    page = client.get(reverse("admin:voucher_customerwallet_change", args=[app.wallet.pk])).content.decode()
    assert reverse("admin:voucher_customerwallet_revoke_api_tokens", args=[app.wallet.pk]) in page
    for token in ApiToken.objects.filter(user=app.user):
        assert token.digest not in page
    # when
    response = _revoke(client, app.wallet, "phone stolen, reported at the counter")
    # then
    assert response.status_code == 200
    assert (_live(app.user), _live(other.user)) == (0, 1)
    assert app.client.get(ME).status_code == 401
    event = AuditEvent.objects.get(action="api_token.revoke_all")
    assert (event.actor, event.target_id, event.reason) == (
        teller,
        str(app.user.pk),
        "phone stolen, reported at the counter",
    )
    assert event.before == {"live_tokens": 2}


@pytest.mark.parametrize("reason", ["", "   ", "x" * 301])
def test_a_teller_without_a_reason_revokes_nothing(db, client, reason):
    app = citizen_app(1_000)
    client.force_login(grant_role(staff("teller-lee"), "teller"))
    response = _revoke(client, app.wallet, reason)
    assert response.status_code == 200
    assert [message.level_tag for message in response.context["messages"]] == ["error"]
    assert _live(app.user) == 1 and not AuditEvent.objects.filter(action="api_token.revoke_all").exists()


@pytest.mark.parametrize("role", ["auditor", "approver", "program_manager"])
def test_only_a_role_with_the_permission_revokes_tokens(db, client, role):
    app = citizen_app(1_000)
    client.force_login(grant_role(staff(f"{role}-x"), role))
    response = _revoke(client, app.wallet, "not mine to do")
    assert response.status_code == 403
    assert _live(app.user) == 1 and not AuditEvent.objects.filter(action="api_token.revoke_all").exists()


def test_the_revoke_service_checks_the_permission_again(db):
    from bank.errors import BankError
    from bank.services import revoke_api_tokens_of

    app = citizen_app(1_000)
    viewer = staff("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_customerwallet"))
    with pytest.raises(BankError) as refused:
        revoke_api_tokens_of(actor=viewer, user=app.user, reason="crafted POST")
    assert refused.value.code == "role_required" and _live(app.user) == 1


def test_the_schema_has_one_token_scheme_that_names_token_expired(db, tmp_path):
    """Every view authenticates with the one ApiTokenAuthentication class, so the
    schema is made without the "tokenAuth" name-clash warnings (--fail-on-warn)."""
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"]["in"] == "header" and "token_expired" in schemes["tokenAuth"]["description"]
    assert [name for name, scheme in schemes.items() if scheme.get("name") == "Authorization"] == ["tokenAuth"]
    token = schema["paths"]["/api/v1/auth/token/"]
    assert token["post"]["security"] == [{}] and {"tokenAuth": []} in token["delete"]["security"]
    assert "expires_at" in schema["components"]["schemas"]["AuthToken"]["properties"]


@pytest.mark.parametrize(("role", "takes_effect"), [("teller", True), ("auditor", False), ("approver", False)])
def test_a_teller_logs_a_merchant_members_api_logins_out_from_the_members_list(db, client, role, takes_effect):
    # given a shop's owner and clerk, each logged in
    clerk = merchant_app(role="clerk")
    owner = merchant_app(clerk.merchant)
    member = MerchantMember.objects.get(user=clerk.user)
    client.force_login(grant_role(staff(f"{role}-m"), role))
    # when the clerk's till phone is reported lost
    url = reverse("admin:voucher_merchantmember_changelist")
    data = {"action": "revoke_tokens", "_selected_action": [member.pk], "apply": "1", "reason": "till phone lost"}
    client.post(url, data)
    # then (only for a role that may) the clerk's tokens stop working, the owner's do not
    assert (_live(clerk.user) == 0) is takes_effect and _live(owner.user) == 1
    assert (clerk.client.get(ME).status_code == 401) is takes_effect
    assert AuditEvent.objects.filter(action="api_token.revoke_all", reason="till phone lost").exists() is takes_effect
