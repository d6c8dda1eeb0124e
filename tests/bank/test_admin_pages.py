import pytest
from django.contrib.auth import get_user_model

from bank import services
from tests.factories import AccountFactory, funded_account


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser(username="ops", password="pw-for-tests-only")
    client.force_login(user)
    return client


def test_staff_see_accounts_entries_and_blocks_read_only(staff_client, validators):
    # given
    payer, payee = funded_account(5_000), AccountFactory()
    entry = services.post_entry(lines=[(payer, -1_200), (payee, 1_200)], kind="transfer", reference="ref-admin-1")
    [block] = services.seal_pending_entries()
    # when
    pages = {
        "accounts": staff_client.get("/admin/bank/account/"),
        "entries": staff_client.get("/admin/bank/journalentry/"),
        "entry": staff_client.get(f"/admin/bank/journalentry/{entry.pk}/change/"),
        "blocks": staff_client.get("/admin/bank/block/"),
        "block": staff_client.get(f"/admin/bank/block/{block.pk}/change/"),
        "add entry": staff_client.get("/admin/bank/journalentry/add/"),
    }
    # then
    assert {name: page.status_code for name, page in pages.items()} == {
        "accounts": 200,
        "entries": 200,
        "entry": 200,
        "blocks": 200,
        "block": 200,
        "add entry": 403,
    }
    assert payee.code in pages["accounts"].content.decode()
    assert "ref-admin-1" in pages["entries"].content.decode()
    assert "-1200" in pages["entry"].content.decode().replace(",", "")
    assert block.merkle_root in pages["block"].content.decode()
    assert b"Save" not in pages["entry"].content
