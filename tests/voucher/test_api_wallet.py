"""Reading the wallet through the API: balance and lots, spendable at a merchant,
history with pagination and filters, programs, benefits, and login."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import grant_lot, merchant, program
from voucher import services
from voucher.clock import seoul_today
from voucher.models import VoucherProgram

TIERS_2026 = [(1_000_000_000, 1000), (3_000_000_000, 800)]


def test_the_wallet_shows_its_total_lots_and_what_is_spendable_at_a_merchant(db):
    # given paid-in tokens and a grant only good in Yeongdo-gu
    app = citizen_app(10_000)
    relief = grant_lot(app.wallet, 3_000, valid_days=30, eligible_districts=["yeongdo"])
    here, yeongdo = merchant(district="haeundae"), merchant(district="yeongdo")
    # when
    plain = app.get("/api/v1/wallet/").json()
    at_here = app.get("/api/v1/wallet/", merchant=here.pk).json()
    at_yeongdo = app.get("/api/v1/wallet/", merchant=yeongdo.pk).json()
    # then
    assert (plain["id"], plain["balance"], plain["max_balance"], plain["spendable"]) == (
        app.wallet.pk,
        13_000,
        2_000_000,
        None,
    )
    assert [(lot["program"] and lot["program"]["code"], lot["balance"]) for lot in plain["lots"]] == [
        (relief.code, 3_000),
        (None, 10_000),
    ]
    assert at_here["spendable"]["total"] == 10_000
    assert at_yeongdo["spendable"]["total"] == 13_000
    assert [row["amount"] for row in at_yeongdo["spendable"]["lots"]] == [3_000, 10_000]  # spend order


@pytest.mark.parametrize("merchant_id", ["abc", "0", "-3", "1.5", str(2**70)])
def test_a_bad_merchant_parameter_is_a_400(db, merchant_id):
    app = citizen_app(1_000)
    response = app.client.get("/api/v1/wallet/", {"merchant": merchant_id})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_an_unknown_merchant_parameter_is_a_404(db):
    assert citizen_app(1_000).get("/api/v1/wallet/", merchant=10**9).status_code == 404


def _history_wallet():
    """A wallet with a top-up, a grant, two payments, a refund and a transfer out."""
    app, friend, shop = citizen_app(10_000), citizen_app(0), merchant()
    grant_lot(app.wallet, 2_000)
    first = services.pay(wallet=app.wallet, merchant=shop, amount=1_000, idempotency_key="p1", reference="r1")
    services.pay(wallet=app.wallet, merchant=shop, amount=3_000, idempotency_key="p2")
    services.refund_payment(payment=first, amount=400, idempotency_key="r1")
    services.transfer(from_wallet=app.wallet, to_wallet=friend.wallet, amount=500, idempotency_key="t1")
    return app, friend, shop, first


def test_history_lists_every_movement_newest_first_with_its_kind_and_amount(db):
    app, friend, shop, first = _history_wallet()
    body = app.get("/api/v1/wallet/history/").json()
    assert body["count"] == 6
    rows = [(row["kind"], row["amount"]) for row in body["results"]]
    assert rows == [
        ("transfer_out", -500),
        ("refund", 400),
        ("payment", -3_000),
        ("payment", -1_000),
        ("grant", 2_000),
        ("top_up", 10_000),
    ]
    refund = body["results"][1]
    assert (refund["payment"], refund["merchant"]["id"]) == (first.pk, shop.pk)
    assert body["results"][0]["counterparty_wallet"] == friend.wallet.pk
    assert body["results"][4]["benefits"][0]["amount"] == 2_000
    # the receiver sees it come in
    assert [(r["kind"], r["amount"]) for r in friend.get("/api/v1/wallet/history/").json()["results"]] == [
        ("transfer_in", 500)
    ]


def test_history_is_paginated_with_limit_and_offset(db):
    app, *_ = _history_wallet()
    page = app.get("/api/v1/wallet/history/", limit=2, offset=2).json()
    assert page["count"] == 6
    assert [row["kind"] for row in page["results"]] == ["payment", "payment"]
    assert page["next"] and page["previous"]
    last = app.get("/api/v1/wallet/history/", limit=2, offset=4).json()
    assert last["next"] is None and len(last["results"]) == 2


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("payment", [-3_000, -1_000]),
        ("refund", [400]),
        ("transfer_out", [-500]),
        ("transfer_in", []),
        ("top_up", [10_000]),
    ],
)
def test_history_filters_by_kind(db, kind, expected):
    app, *_ = _history_wallet()
    rows = app.get("/api/v1/wallet/history/", kind=kind).json()["results"]
    assert [row["amount"] for row in rows] == expected


def test_history_filters_by_seoul_date_range(db, monkeypatch):
    # given a top-up made a week ago (entries are append-only, so the clock is moved, not the row)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(days=7))
    app = citizen_app(10_000)
    monkeypatch.setattr(timezone, "now", real_now)
    # and a payment today
    services.pay(wallet=app.wallet, merchant=merchant(), amount=1_000, idempotency_key="today")
    today = seoul_today()
    week_ago = (today - timedelta(days=7)).isoformat()
    # then
    assert [r["kind"] for r in app.get("/api/v1/wallet/history/", since=today.isoformat()).json()["results"]] == [
        "payment"
    ]
    until_yesterday = app.get("/api/v1/wallet/history/", until=(today - timedelta(days=1)).isoformat()).json()
    assert [row["kind"] for row in until_yesterday["results"]] == ["top_up"]
    assert app.get("/api/v1/wallet/history/", since=week_ago, until=week_ago).json()["count"] == 1
    assert app.get("/api/v1/wallet/history/", since=week_ago).json()["count"] == 2


@pytest.mark.parametrize(
    "params", [{"kind": "theft"}, {"since": "yesterday"}, {"until": "9999-12-31"}, {"since": "0001-01-01"}]
)
def test_bad_history_filters_are_a_400(db, params):
    response = citizen_app(1_000).client.get("/api/v1/wallet/history/", params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_citizen_sees_the_programs_they_can_use_and_a_merchant_those_it_takes(db):
    app = citizen_app(1_000)
    cashback = program(kind=VoucherProgram.Kind.CASHBACK, rules=[{"tiers": TIERS_2026, "monthly_base_limit": 500_000}])
    relief = grant_lot(app.wallet, 3_000)
    program(kind=VoucherProgram.Kind.GRANT)  # active, but this wallet holds none of it
    seoul_only_yeongdo = program(kind=VoucherProgram.Kind.GRANT, eligible_districts=["yeongdo"])
    mine = {p["code"]: p for p in app.get("/api/v1/programs/").json()}
    assert set(mine) == {cashback.code, relief.code}
    assert (mine[relief.code]["my_balance"], mine[cashback.code]["applies_automatically"]) == (3_000, True)

    till = merchant_app(district="haeundae")
    taken = {p["code"] for p in till.get("/api/v1/programs/").json()}
    assert {cashback.code, relief.code} <= taken and seoul_only_yeongdo.code not in taken


def test_benefits_this_month_show_caps_used_and_left(db):
    app = citizen_app(0, extra_krw=500_000)
    bonus = program(
        kind=VoucherProgram.Kind.TOPUP_BONUS,
        per_person_monthly_cap=20_000,
        rules=[{"rate_bp": 1000, "monthly_base_limit": 300_000}],
    )
    services.top_up(wallet=app.wallet, amount=100_000, idempotency_key="t1")
    [row] = [b for b in app.get("/api/v1/wallet/benefits/").json() if b["program"] == bonus.code]
    assert (row["benefit_used"], row["benefit_cap"], row["benefit_left"]) == (10_000, 20_000, 10_000)
    assert (row["base_used"], row["base_limit"], row["base_left"]) == (100_000, 300_000, 200_000)


def test_a_login_gets_its_token_with_username_and_password(db):
    app = citizen_app(1_000)
    app.user.set_password("correct horse battery")
    app.user.save()
    from rest_framework.test import APIClient

    client = APIClient()
    good = client.post(
        "/api/v1/auth/token/", {"username": app.user.username, "password": "correct horse battery"}, format="json"
    )
    assert good.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {good.json()['token']}")
    assert client.get("/api/v1/wallet/").json()["id"] == app.wallet.pk
    bad = APIClient().post("/api/v1/auth/token/", {"username": app.user.username, "password": "wrong"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_request"


def test_wallet_endpoints_are_for_wallet_holders_and_merchant_ones_for_merchants(db):
    citizen, till = citizen_app(1_000), merchant_app()
    for path in ("/api/v1/wallet/", "/api/v1/wallet/history/", "/api/v1/wallet/benefits/"):
        assert till.get(path).json()["error"]["code"] == "permission_denied"
    for path in ("/api/v1/merchant/", "/api/v1/merchant/payments/", "/api/v1/payment-requests/"):
        assert citizen.get(path).json()["error"]["code"] == "permission_denied"


def test_the_merchant_directory_filters_by_district_and_category(db):
    app = citizen_app(1_000)
    cafe = merchant(category="cafe", district="suyeong")
    merchant(category="restaurant", district="suyeong")
    merchant(category="cafe", district="jung")
    rows = app.get("/api/v1/merchants/", district="suyeong", category="cafe").json()["results"]
    assert [row["id"] for row in rows] == [cafe.pk]
    assert app.get(f"/api/v1/merchants/{cafe.pk}/").json()["name"] == cafe.name
