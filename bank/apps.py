from axes.apps import AppConfig as AxesConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BankConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "bank"
    verbose_name = "Ledger"

    def ready(self):
        import bank.signals  # noqa: F401  copies admin LogEntry rows into the audit log


class LoginLockoutConfig(AxesConfig):
    """django-axes (login lockout), under a name the back office shows in its language."""

    verbose_name = _("Login lockouts")
