"""Settlement seen from outside the services: the Celery task, the management
command, the back-office admin and the printable statement."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.template.loader import render_to_string

from tests.factories.voucher import merchant
from tests.voucher.settlement_support import sale, yesterday
from voucher import services, tasks
from voucher.models import SettlementBatch
from voucher.selectors import settlement_statement_context


def test_the_beat_task_settles_yesterday_and_a_second_delivery_changes_nothing(db):
    shop = merchant()
    sale(shop, 12_000)
    first = tasks.settle_yesterday.delay().get()
    again = tasks.settle_yesterday.delay().get()
    assert first == again == {"batch": first["batch"], "status": "done", "paid": 1, "held": 0}
    assert SettlementBatch.objects.get().net == 12_000


def test_the_command_settles_a_date_and_prints_the_reconciliation(db):
    shop = merchant()
    sale(shop, 7_500)
    out = io.StringIO()
    call_command("settle_day", "--date", yesterday().isoformat(), "--no-progress", stdout=out)
    text = out.getvalue()
    assert "1 merchants paid, 0 held" in text and "net 7,500 won" in text
    assert "Reconciled: net + fees 7,500 == BKRW burned 7,500 == KRW out of the reserve 7,500" in text


@pytest.mark.parametrize("given", ["2024-13-01", "yesterday"])
def test_the_command_refuses_a_bad_date_with_a_clear_message(db, given):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("settle_day", "--date", given, "--no-progress", stdout=io.StringIO())
    assert not SettlementBatch.objects.exists()


def test_staff_see_a_batch_its_lines_and_its_reconciliation_read_only(client, db):
    shop = merchant(name="Jagalchi Fresh Fish")
    sale(shop, 33_000)
    batch = services.settle_day(day=yesterday())
    client.force_login(get_user_model().objects.create_superuser(username="ops", password="pw-for-tests-only"))
    listing = client.get("/admin/voucher/settlementbatch/")
    page = client.get(f"/admin/voucher/settlementbatch/{batch.pk}/change/")
    add = client.get("/admin/voucher/settlementbatch/add/")
    assert (listing.status_code, page.status_code, add.status_code) == (200, 200, 403)
    text = page.content.decode()
    assert "Jagalchi Fresh Fish" in text and "balanced: net 33,000 + fees 0 = 33,000" in text


def test_the_printable_statement_shows_the_lines_and_totals(db):
    shop = merchant(annual_revenue=2_000_000_000, name="Millak Raw Fish Town")
    sale(shop, 100_000)
    line = services.settle_day(day=yesterday()).lines.get()
    html = render_to_string("voucher/settlement_statement.html", settlement_statement_context(line))
    # The print layout (@media print) is in its stylesheet, as the Content-Security-Policy wants.
    assert "Millak Raw Fish Town" in html and "voucher/settlement_statement.css" in html
    assert "99,500" in html and "500" in html  # net and the 0.5% fee
