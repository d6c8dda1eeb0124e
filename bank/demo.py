"""The ledger's part of the Busan demo: the consortium and the bank's staff login.
Idempotent: every row is found by a stable key before it is created."""

from django.contrib.auth import get_user_model

from bank import services
from bank.models import Party

CONSORTIUM = [
    ("city", "Busan Metropolitan City", Party.Kind.CITY),
    ("bank", "Busan Bank", Party.Kind.BANK),
    ("security-agency", "Korea Internet & Security Agency", Party.Kind.VALIDATOR),
    ("technopark", "Busan Technopark", Party.Kind.VALIDATOR),
]

DEMO_STAFF = ("admin", "busan-demo-2026")


def load_bank_demo(stdout) -> None:
    for name, display_name, kind in CONSORTIUM:
        party = services.open_party(kind=kind, external_ref=f"consortium:{name}", display_name=display_name)
        services.generate_validator(name=name, party=party)
    stdout.write(f"  consortium: {len(CONSORTIUM)} validators with BLS keys")
    username, password = DEMO_STAFF
    User = get_user_model()
    if not User.objects.filter(username=username).exists():
        User.objects.create_superuser(username=username, email="", password=password)
    stdout.write(f"  staff login: {username}")
