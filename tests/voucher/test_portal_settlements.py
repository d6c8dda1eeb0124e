"""Settlements in the merchant portal: the merchant's lines with their figures,
CSV (UTF-8 with BOM) and printable statements, and instant settlement, which
only the owner may ask for, once per confirmation."""

import csv
import io
import re
from datetime import timedelta

from django.urls import reverse

from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import services
from voucher.clock import seoul_today
from voucher.models import Payment, SettlementBatch, SettlementLine


def _settle_yesterday(*shops):
    # Tests only: the shops' payments, made through the service, dated back to yesterday.
    for shop in shops:
        Payment.objects.filter(pk=shop.payment.pk).update(created_at=shop.payment.created_at - timedelta(days=1))
    return services.settle_day(day=seoul_today() - timedelta(days=1))


def test_the_list_shows_each_line_with_its_figures(owner_client, shop):
    services.refund_payment(payment=shop.payment, amount=2_000, idempotency_key="r")
    _settle_yesterday(shop)
    line = SettlementLine.objects.get(merchant=shop.merchant)
    page = owner_client.get(reverse("portal:settlements")).content.decode()
    row = re.search(rf'<tr id="line-{line.pk}">(.*?)</tr>', page, re.S).group(1)
    assert "30,000 won" in row and "2,000 won" in row and "28,000 won" in row and "daily" in row


def test_the_csv_starts_with_a_bom_and_holds_the_lines_numbers(owner_client, shop):
    _settle_yesterday(shop)
    line = SettlementLine.objects.get(merchant=shop.merchant)
    response = owner_client.get(reverse("portal:settlement-csv", args=[line.pk]))
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "정산일 / Period"
    record = dict(zip(rows[0], rows[1], strict=True))
    assert (record["결제 건수 / Payments"], record["결제 금액 / Gross"], record["입금액 / Net paid"]) == (
        "1",
        "30000",
        str(line.net),
    )
    statement = owner_client.get(reverse("portal:settlement-statement", args=[line.pk])).content.decode()
    assert shop.merchant.name in statement and "30,000" in statement


def test_another_merchants_settlement_lines_are_not_found(owner_client, shop, other):
    _settle_yesterday(shop, other)
    theirs = SettlementLine.objects.get(merchant=other.merchant)
    assert owner_client.get(reverse("portal:settlement-csv", args=[theirs.pk])).status_code == 404
    assert owner_client.get(reverse("portal:settlement-statement", args=[theirs.pk])).status_code == 404
    assert f'id="line-{theirs.pk}"' not in owner_client.get(reverse("portal:settlements")).content.decode()


def test_the_owner_settles_now_after_confirming_and_a_double_submit_pays_once(owner_client, shop):
    url = reverse("portal:instant-settlement")
    page = owner_client.get(url).content.decode()
    assert "30,000 won" in page
    key = re.search(r'name="key" value="(portal:[0-9a-f]{32})"', page).group(1)
    account_before = natural(shop.merchant.settlement_account)
    done = owner_client.post(url, {"key": key}, follow=True).content.decode()
    owner_client.post(url, {"key": key})
    line = SettlementLine.objects.get(merchant=shop.merchant)
    assert SettlementBatch.objects.filter(kind="instant").count() == 1
    assert "paid to your account" in done and f'id="line-{line.pk}"' in done
    assert natural(shop.merchant.settlement_account) == account_before + line.net
    assert natural(shop.merchant.token_account) == 0
    assert_ledger_ok()


def test_settling_with_nothing_received_shows_the_error_and_writes_nothing(owner_client, shop):
    services.refund_payment(payment=shop.payment, amount=30_000, idempotency_key="all")
    before = ledger_size()
    response = owner_client.post(reverse("portal:instant-settlement"), {"key": "portal:" + "f" * 32})
    assert response.status_code == 409 and "nothing_to_settle" in response.content.decode()
    assert ledger_size() == before and not SettlementLine.objects.exists()


def test_a_clerk_cannot_ask_for_instant_settlement(clerk_client, shop):
    url = reverse("portal:instant-settlement")
    assert clerk_client.get(url).status_code == 403
    assert clerk_client.post(url, {"key": "portal:" + "0" * 32}).status_code == 403
    assert not SettlementLine.objects.exists()
    assert "Settle now" not in clerk_client.get(reverse("portal:settlements")).content.decode()
