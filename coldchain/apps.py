from django.apps import AppConfig


class ColdchainConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "coldchain"
