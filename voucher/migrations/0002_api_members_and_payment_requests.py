"""Merchant logins become MerchantMember rows (owner or clerk), and merchant-presented
QR payment requests get their table. An existing Merchant.user becomes its owner."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def users_become_owners(apps, schema_editor):
    Merchant = apps.get_model("voucher", "Merchant")
    MerchantMember = apps.get_model("voucher", "MerchantMember")
    for merchant in Merchant.objects.exclude(user=None):
        MerchantMember.objects.get_or_create(user_id=merchant.user_id, defaults={"merchant": merchant, "role": "owner"})


def owners_become_users(apps, schema_editor):
    Merchant = apps.get_model("voucher", "Merchant")
    MerchantMember = apps.get_model("voucher", "MerchantMember")
    for member in MerchantMember.objects.filter(role="owner").order_by("pk"):
        Merchant.objects.filter(pk=member.merchant_id, user=None).update(user_id=member.user_id)


class Migration(migrations.Migration):
    dependencies = [
        ("bank", "0003_device_keys"),
        ("voucher", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="MerchantMember",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "role",
                    models.CharField(choices=[("owner", "owner"), ("clerk", "clerk")], default="clerk", max_length=8),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "merchant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="members", to="voucher.merchant"
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="merchant_membership",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="PaymentRequest",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("amount", models.BigIntegerField()),
                ("reference", models.CharField(blank=True, max_length=100)),
                ("nonce", models.CharField(max_length=64)),
                ("expires_at", models.DateTimeField()),
                (
                    "signature",
                    models.CharField(help_text="Hex of the merchant device's recoverable signature.", max_length=130),
                ),
                (
                    "status",
                    models.CharField(choices=[("open", "open"), ("paid", "paid")], default="open", max_length=8),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "device",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="bank.devicekey"
                    ),
                ),
                (
                    "merchant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payment_requests",
                        to="voucher.merchant",
                    ),
                ),
                (
                    "payment",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payment_request",
                        to="voucher.payment",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("merchant", "nonce"), name="one_payment_request_per_nonce"),
                    models.CheckConstraint(
                        condition=models.Q(("amount__gt", 0)), name="payment_request_amount_positive"
                    ),
                ],
            },
        ),
        migrations.RunPython(users_become_owners, owners_become_users),
        migrations.RemoveField(
            model_name="merchant",
            name="user",
        ),
    ]
