"""`manage.py load_demo`: load the Busan demo data. Safe to run again: nothing is duplicated."""

import importlib
import importlib.util

from django.apps import apps
from django.core.management.base import BaseCommand
from tqdm import tqdm

from bank.demo import DEMO_STAFF, ROLE_PASSWORD, ROLE_STAFF
from bank.services import seal_pending_entries
from bank.verification import verify_ledger


def _demo_steps():
    """Each project app may have a `demo` module with `load_<label>_demo(stdout)`; they run
    in INSTALLED_APPS order (bank first), so nothing here imports an app above the ledger."""
    steps = []
    for app in apps.get_app_configs():
        if app.name.startswith("django.") or not importlib.util.find_spec(f"{app.name}.demo"):
            continue
        module = importlib.import_module(f"{app.name}.demo")
        loader = getattr(module, f"load_{app.label}_demo", None)
        if loader is not None:
            steps.append((app.verbose_name, loader))
    return steps


class Command(BaseCommand):
    help = "Load the Busan demo data (idempotent), seal it into blocks and verify the ledger."

    def handle(self, *args, **options):
        steps = _demo_steps()
        for title, step in tqdm(steps, desc="demo", unit="step", file=self.stderr._out):
            self.stdout.write(f"{title}:")
            step(self.stdout)
        blocks = seal_pending_entries()
        report = verify_ledger()
        self.stdout.write(f"sealed {len(blocks)} new block(s); ledger verified: {report.ok}")
        username, password = DEMO_STAFF
        self.stdout.write(
            self.style.SUCCESS(
                "\nBusan demo ready.\n"
                "  Back office (Django admin): http://127.0.0.1:8000/admin/\n"
                f"    staff login: {username} / {password} (setup only)\n"
                f"    role logins: {', '.join(login for login, _ in ROLE_STAFF)} / {ROLE_PASSWORD}\n"
                "  Merchant portal:            http://127.0.0.1:8000/portal/ (merchant logins above)\n"
                "  Wallet API docs (OpenAPI):  http://127.0.0.1:8000/api/docs/\n"
                "  Latest attested block:      http://127.0.0.1:8000/api/v1/ledger/blocks/latest/\n"
            )
        )
