import hashlib
import io
import re

import coincurve
from rest_framework.test import APIClient

from bank import identity
from bank.models import Account, JournalEntry
from bank.services import seal_pending_entries
from tests.voucher.support import assert_ledger_ok
from voucher.demo import CITIZEN_PASSWORD, MERCHANT_PASSWORD, load_voucher_demo
from voucher.models import Benefit, Lot, Merchant, MerchantMember, Payment, ProgramRule, VoucherProgram, Wallet
from voucher.selectors import daily_sales


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (Account, JournalEntry, Wallet, Merchant, VoucherProgram, ProgramRule, Lot, Payment, Benefit)
    }


def test_the_voucher_demo_loads_once_however_often_it_runs(db):
    # when
    load_voucher_demo(io.StringIO())
    first = _counts()
    load_voucher_demo(io.StringIO())
    # then
    assert _counts() == first
    assert first["Wallet"] == 20 and first["Merchant"] == 13
    # 20 payments, settled, then 3 more; and the portal's sales history (demo:sales:*)
    assert Payment.objects.exclude(idempotency_key__startswith="demo:sales:").count() == 23
    assert set(VoucherProgram.objects.values_list("status", flat=True)) == {"active"}
    assert VoucherProgram.objects.get(code="busan-cashback").rules.count() == 2
    assert len({m.district for m in Merchant.objects.all()}) >= 6
    assert_ledger_ok()


def test_the_voucher_demo_seals_into_attested_blocks_when_validators_exist(validators):
    load_voucher_demo(io.StringIO())
    assert seal_pending_entries()
    assert JournalEntry.objects.filter(block__isnull=True).count() == 0
    assert_ledger_ok()


def test_demo_citizens_and_merchants_log_in_to_the_wallet_api_without_a_device_key(db):
    # given the demo, loaded twice
    out = io.StringIO()
    load_voucher_demo(io.StringIO())
    load_voucher_demo(out)
    # then it names the logins, and a login's password gets its token
    text = out.getvalue()
    assert f"citizen login: citizen01 / {CITIZEN_PASSWORD}" in text
    assert f"merchant login: milmyeon-owner / {MERCHANT_PASSWORD}" in text
    client = APIClient()
    for username, password, path in (
        ("citizen01", CITIZEN_PASSWORD, "/api/v1/wallet/"),
        ("citizen20", CITIZEN_PASSWORD, "/api/v1/wallet/history/"),
        ("milmyeon-owner", MERCHANT_PASSWORD, "/api/v1/merchant/payments/"),
        ("milmyeon-clerk", MERCHANT_PASSWORD, "/api/v1/merchant/"),
    ):
        token = client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")
        assert token.status_code == 200, username
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
        assert client.get(path).status_code == 200, path
        client.credentials()
    # the tokens the demo printed work as they are (a new login gets a new token, shown once)
    for printed in re.findall(r"API token ([0-9a-f]{64})", text):
        client.credentials(HTTP_AUTHORIZATION=f"Token {printed}")
        assert client.get("/api/v1/auth/me/").status_code == 200
    assert len(re.findall(r"API token ([0-9a-f]{64})", text)) == 2
    client.credentials()
    assert Wallet.objects.filter(user__isnull=True).count() == 0
    assert MerchantMember.objects.count() == Merchant.objects.count() + 1


def test_every_demo_merchant_has_sales_today_and_over_the_last_30_days_for_the_portal(db):
    load_voucher_demo(io.StringIO())
    for merchant in Merchant.objects.all():
        sales = daily_sales(merchant)
        assert sales[-1].count >= 2, merchant
        assert sum(1 for day in sales[:-1] if day.count) >= 9, merchant
    assert_ledger_ok()


def test_the_demo_prints_enrollment_codes_that_enroll_the_demo_logins_first_phones(db):
    out = io.StringIO()
    load_voucher_demo(out)
    codes = dict(re.findall(r"(citizen01|milmyeon-owner) ([A-Z0-9]{4}(?:-[A-Z0-9]{4}){3})", out.getvalue()))
    assert set(codes) == {"citizen01", "milmyeon-owner"}
    client = APIClient()
    for username, password, holder in (
        ("citizen01", CITIZEN_PASSWORD, "wallet"),
        ("milmyeon-owner", MERCHANT_PASSWORD, "merchant"),
    ):
        token = client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
        secret = hashlib.sha256(username.encode()).digest()
        public = coincurve.PrivateKey(secret).public_key.format()
        message = identity.device_proof_message(username=username, holder=holder, public_key=public)
        proof = identity.sign_digest(secret, identity.payload_digest(message)).hex()
        body = {"public_key": public.hex(), "proof": proof, "holder": holder, "enrollment_code": codes[username]}
        response = client.post("/api/v1/devices/", body, format="json")
        assert response.status_code == 201, response.content
        client.credentials()
