from axes.apps import AppConfig as AxesConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BankConfig(AppConfig):
    # This module holds two configs (and imports axes' one), so Django needs telling which
    # is the app's own: without it "bank" gets a bare AppConfig and ready() never runs.
    default = True
    default_auto_field = "django.db.models.BigAutoField"
    name = "bank"
    verbose_name = "Ledger"

    def ready(self):
        import bank.signals  # noqa: F401  copies admin LogEntry rows into the audit log


class LoginLockoutConfig(AxesConfig):
    """django-axes (login lockout), under a name the back office shows in its language."""

    verbose_name = _("Login lockouts")
