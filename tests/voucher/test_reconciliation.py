"""The reconciliation dashboard: green on demo data, and a red state that cannot
be missed when a raw SQL change breaks the reserve identity or lots sit past expiry."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Sum
from django.urls import reverse

from bank.models import Account
from tests.factories.voucher import UserFactory, grant_lot, wallet_with_tokens
from tests.support.ledger import raw_sql
from voucher.clock import seoul_today
from voucher.demo import load_voucher_demo
from voucher.models import Lot
from voucher.selectors.reconciliation import reconciliation
from voucher.services.common import RESERVE_CODE

URL = reverse("admin:voucher_reconciliation_changelist")


@pytest.fixture
def treasury(client, db):
    """A staff login that may see accounts (what the dashboard asks for)."""
    user = UserFactory(username="treasury", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="bank", codename="view_account"))
    client.force_login(user)
    return client


def test_the_dashboard_is_green_on_demo_data(treasury):
    load_voucher_demo(io.StringIO())
    response = treasury.get(URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert "All reconciled" in page and "RECONCILIATION OFF" not in page
    assert 'id="reserve-difference">0<' in page
    assert "busan-cashback" in page  # per-program budget rows
    assert "No settlement yet" in page or "Settlement batches" in page


def test_the_dashboard_turns_red_when_raw_sql_breaks_the_reserve_identity(treasury):
    # given
    wallet_with_tokens(50_000)
    assert "All reconciled" in treasury.get(URL).content.decode()
    # when: someone takes 1,000 won out of the reserve's balance behind the ledger's back
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_account SET balance = balance - 1000 WHERE code = %s", [RESERVE_CODE])
    # then
    page = treasury.get(URL).content.decode()
    assert "<title>⚠ RECONCILIATION OFF" in page
    assert 'class="recon-off"' in page and "All reconciled" not in page
    assert "Reserve identity broken: 50,000 BKRW outstanding but 49,000 KRW in the reserve" in page
    assert "(difference +1,000 won)" in page
    assert 'id="reserve-difference">1,000<' in page


def test_lots_past_expiry_not_swept_show_red_in_their_month(treasury):
    wallet = wallet_with_tokens(10_000)
    grant_lot(wallet, 3_000, valid_days=1)
    with raw_sql() as cursor:  # as if the expiry sweep had not run for a week
        cursor.execute(
            "UPDATE voucher_lot SET expires_on = %s WHERE program_id IS NOT NULL", [seoul_today() - timedelta(days=7)]
        )
    report = reconciliation()
    assert [row["overdue"] for row in report.lots_by_month if row["is_off"]] == [3_000]
    assert "3,000 won sits in lots past their expiry" in treasury.get(URL).content.decode()


def test_the_dashboard_reads_in_a_fixed_number_of_queries(treasury, django_assert_max_num_queries):
    for n in range(3):
        grant_lot(wallet_with_tokens(1_000 + n), 500)
    with django_assert_max_num_queries(5):
        small = reconciliation()
    for n in range(10):
        grant_lot(wallet_with_tokens(2_000 + n), 700)
    with django_assert_max_num_queries(5):
        large = reconciliation()
    assert len(large.programs) == len(small.programs) + 10
    assert large.is_ok
    in_lots = Account.objects.filter(lot__status=Lot.Status.ACTIVE).aggregate(total=Sum("balance"))["total"]
    assert (
        sum(row["total"] for row in large.lots_by_month)
        == in_lots
        == 3 * 500 + 10 * 700 + sum(range(1_000, 1_003)) + sum(range(2_000, 2_010))
    )


def test_staff_without_account_view_permission_do_not_see_the_dashboard(client, db):
    client.force_login(UserFactory(username="clerk", is_staff=True))
    assert client.get(URL).status_code == 403
    assert "Reconciliation" not in client.get(reverse("admin:index")).content.decode()


def test_the_admin_index_links_the_dashboard(treasury):
    assert URL in treasury.get(reverse("admin:index")).content.decode()
