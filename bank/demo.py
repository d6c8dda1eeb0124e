"""The ledger's part of the Busan demo: the consortium and the bank's staff login.
Idempotent: every row is found by a stable key before it is created."""

from django.contrib.auth import get_user_model
from django.db import transaction

from bank import services
from bank.models import Party
from bank.roles import grant_role, setup_roles
from bank.services.controls import minter_allowance_row

CONSORTIUM = [
    ("city", "Busan Metropolitan City", Party.Kind.CITY),
    ("bank", "Busan Bank", Party.Kind.BANK),
    ("security-agency", "Korea Internet & Security Agency", Party.Kind.VALIDATOR),
    ("technopark", "Busan Technopark", Party.Kind.VALIDATOR),
]

DEMO_STAFF = ("admin", "busan-demo-2026")
# One login per staff role (the superuser above is for setup only). Seizures need two approvers.
ROLE_PASSWORD = "busan-staff-2026"
ROLE_STAFF = [
    ("teller", "teller"),
    ("program-manager", "program_manager"),
    ("approver", "approver"),
    ("approver2", "approver"),
    ("settlement", "settlement_operator"),
    ("pauser", "pauser"),
    ("auditor", "auditor"),
]
MINTERS = ("wallet_topup", "program_issuance", "staff_issuance")


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
    setup_roles()
    for login, role in ROLE_STAFF:
        user = User.objects.filter(username=login).first()
        if user is None:
            user = User.objects.create_user(username=login, password=ROLE_PASSWORD, is_staff=True)
        grant_role(user, role)
    stdout.write(f"  role logins ({ROLE_PASSWORD}): " + ", ".join(f"{login} ({role})" for login, role in ROLE_STAFF))
    with transaction.atomic():
        for minter in MINTERS:  # first use opens each minter with settings.MINTER_INITIAL_ALLOWANCE
            minter_allowance_row(minter)
    stdout.write(f"  minter allowances: {', '.join(MINTERS)}")
