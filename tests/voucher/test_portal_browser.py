"""The merchant portal in a real browser: Debian's Chromium, headless, driven by
Playwright against pytest-django's live server.

A merchant's owner logs in, sees today's sales, makes a partial refund and sees
the figures change, downloads a settlement CSV and checks its numbers, and
makes a payment QR. The dashboard's screenshot is kept in test-artifacts/.
Every page runs under the Content-Security-Policy: a test fails if the browser
reports a violation (an inline script, handler or style the policy refused).
"""

import csv
import io
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from tests.voucher.portal_support import PASSWORD, make_shop
from voucher import services
from voucher.clock import seoul_today
from voucher.models import Payment, PaymentRequest, SettlementLine

CHROMIUM = Path("/usr/bin/chromium")
CSP_VIOLATIONS: list[str] = []
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (requirements-dev.txt)")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium")


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an asyncio loop in this thread, and Django refuses
    # ORM calls from a thread with a running loop. The tests' own ORM calls (the
    # arrange and assert steps) run in this thread, never inside the loop's callbacks.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def site(live_server, transactional_db, settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # the live server speaks plain HTTP
    return live_server.url


@pytest.fixture(autouse=True)
def no_csp_violation():
    CSP_VIOLATIONS.clear()
    yield
    assert CSP_VIOLATIONS == [], "the browser refused something under the Content-Security-Policy"


def _page(browser, *, locale="en-US", width=1200, height=900):
    context = browser.new_context(locale=locale, viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    # Chromium reports each refusal on the console ("Refused to ... Content Security Policy ...").
    page.on(
        "console", lambda message: "Content Security Policy" in message.text and CSP_VIOLATIONS.append(message.text)
    )
    return page


def _log_in(page, site, username):
    page.goto(f"{site}/portal/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/portal/")


def test_the_owner_logs_in_and_sees_todays_sales_in_korean_on_a_phone(browser, site):
    shop = make_shop("web")
    services.pay(wallet=shop.wallet, merchant=shop.merchant, amount=12_500, idempotency_key="w2", reference="포장-1")
    page = _page(browser, locale="ko-KR", width=390, height=844)
    _log_in(page, site, "web-owner")
    tile = page.locator("#sales-today")
    assert "오늘 매출" in tile.inner_text()
    assert "42,500원" in tile.inner_text() and "결제 2건" in tile.inner_text()
    assert page.locator("#sales-chart rect").count() == 30
    # the page fits a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "portal-dashboard.png"), full_page=True)


def test_a_partial_refund_in_the_browser_changes_the_refunded_amount_and_todays_refunds(browser, site):
    shop = make_shop("refund")
    page = _page(browser)
    _log_in(page, site, "refund-clerk")
    page.click("nav >> text=Payments")
    page.click(f"#payments a:text-is('{shop.payment.pk}')")
    assert page.inner_text("#refunded") == "0 won"
    page.click("a.button:text-is('Refund')")
    page.fill("input[name=amount]", "12000")
    page.click("button:text('Continue')")
    assert "Refund 12,000 won of payment" in page.inner_text("#confirm-text")
    page.click("button:text('Yes, refund')")
    assert "Refunded 12,000 won." in page.inner_text("main")
    assert page.inner_text("#refunded") == "12,000 won"
    assert page.inner_text("#refundable") == "18,000 won"
    assert Payment.objects.get(pk=shop.payment.pk).refunded_amount == 12_000
    page.click("nav >> text=Dashboard")
    assert "12,000 won" in page.inner_text("#refunds-today")
    assert "18,000 won" in page.inner_text("#next-settlement")


def test_the_owner_downloads_a_settlement_csv_with_the_lines_numbers(browser, site):
    shop = make_shop("csv")
    services.refund_payment(payment=shop.payment, amount=1_000, idempotency_key="r")
    # the payment dated back to yesterday (test data), then yesterday's daily batch
    Payment.objects.filter(pk=shop.payment.pk).update(created_at=shop.payment.created_at - timedelta(days=1))
    services.settle_day(day=seoul_today() - timedelta(days=1))
    line = SettlementLine.objects.get(merchant=shop.merchant)
    page = _page(browser)
    _log_in(page, site, "csv-owner")
    page.click("nav >> text=Settlements")
    assert "29,000 won" in page.inner_text(f"#line-{line.pk}")
    with page.expect_download() as download:
        page.click(f"#line-{line.pk} a.csv")
    raw = Path(download.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header, row = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))[:2]
    record = dict(zip(header, row, strict=True))
    assert record["결제 금액 / Gross"] == "30000" and record["환불 / Refunds"] == "1000"
    assert int(record["수수료 / Fee"]) + int(record["입금액 / Net paid"]) == 29_000
    assert record["입금액 / Net paid"] == str(line.net)
    # The printable statement: its styles and its Print button come from static files.
    page.goto(f"{site}/portal/settlements/{line.pk}/statement/")
    assert page.evaluate("getComputedStyle(document.querySelector('table')).borderCollapse") == "collapse"
    page.evaluate("window.print = () => { document.body.dataset.printed = 'yes'; }")
    page.click("#print-statement")
    assert page.evaluate("document.body.dataset.printed") == "yes"


def test_the_clerk_makes_a_payment_qr_and_sees_its_image(browser, site):
    shop = make_shop("qr")
    page = _page(browser)
    _log_in(page, site, "qr-clerk")
    page.click("nav >> text=Payment QR")
    page.fill("input[name=amount]", "15000")
    page.fill("input[name=reference]", "table-9")
    page.click("button:text('Create QR')")
    page.wait_for_url(re.compile(r".*/portal/qr/\d+/$"))
    assert page.inner_text("#qr-amount") == "15,000 won"
    image = page.locator("#qr-image")
    image.wait_for()
    assert page.evaluate("document.getElementById('qr-image').naturalWidth") > 100
    request = PaymentRequest.objects.get(merchant=shop.merchant)
    assert (request.amount, request.reference, request.created_by_id) == (15_000, "table-9", shop.clerk.pk)


def test_the_admin_and_the_api_docs_work_under_the_policy(browser, site):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("csp-admin", password=PASSWORD)
    page = _page(browser)
    page.goto(f"{site}/admin/login/")
    page.fill("input[name=username]", "csp-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{site}/admin/")
    page.goto(f"{site}/admin/voucher/reconciliation/")
    assert page.locator("#recon-state").is_visible()
    page.goto(f"{site}/api/docs/")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "Busan digital-voucher bank API" in page.inner_text(".swagger-ui .info .title")
