from django.core.management import call_command

from bank.models import Account, Block, JournalEntry, Party, ValidatorKey
from bank.verification import verify_ledger


def _counts():
    return {model.__name__: model.objects.count() for model in (Party, Account, JournalEntry, ValidatorKey, Block)}


def test_load_demo_twice_duplicates_nothing_and_the_ledger_verifies(db, settings, tmp_path):
    # given
    settings.LEDGER_VALIDATOR_KEY_DIR = tmp_path / "keys"
    call_command("load_demo")
    first = _counts()
    # when
    call_command("load_demo")
    # then
    assert _counts() == first
    assert first["ValidatorKey"] == 4
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == [
        "bank.key",
        "city.key",
        "security-agency.key",
        "technopark.key",
    ]
    report = verify_ledger()
    assert report.ok, report.failures
    assert report.unsealed == 0
