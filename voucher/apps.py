from django.apps import AppConfig


class VoucherConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "voucher"
    verbose_name = "Token and vouchers"

    def ready(self):
        from bank.verification import register_check
        from voucher.verification import CHECK_NAME, check_reserve_identity

        register_check(CHECK_NAME, check_reserve_identity)
        import voucher.services.controls  # noqa: F401  registers the token's maker-checker kinds
