"""`manage.py setup_roles`: create or update the staff roles' groups from bank.roles. Safe to run again."""

from django.core.management.base import BaseCommand

from bank.roles import ROLES, setup_roles


class Command(BaseCommand):
    help = "Create or update the staff role groups (teller, program_manager, approver, ...) from bank.roles."

    def handle(self, *args, **options):
        skipped = setup_roles()
        self.stdout.write(f"  roles: {', '.join(ROLES)}")
        for role, names in skipped.items():
            self.stdout.write(f"  {role}: not installed yet, skipped: {', '.join(names)}")
