import pytest
from django.urls import reverse

from tests.factories.voucher import UserFactory, grant_lot, merchant, program, staff, wallet_with_tokens
from voucher import services
from voucher.models import (
    Benefit,
    Lot,
    Merchant,
    Payment,
    ProgramRule,
    Refund,
    TopUp,
    Transfer,
    VoucherProgram,
    Wallet,
    WalletLimitRule,
)


@pytest.fixture
def admin_client_user(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client, user


@pytest.mark.parametrize(
    "model",
    [VoucherProgram, ProgramRule, WalletLimitRule, Wallet, Merchant, Lot, Payment, Refund, TopUp, Benefit, Transfer],
)
def test_back_office_lists_render(db, admin_client_user, model):
    client, _ = admin_client_user
    wallet = wallet_with_tokens(10_000)
    grant_lot(wallet, 1_000)
    payment = services.pay(wallet=wallet, merchant=merchant(), amount=2_000, idempotency_key="p")
    services.refund_payment(payment=payment, amount=500, idempotency_key="r")
    url = reverse(f"admin:voucher_{model._meta.model_name}_changelist")
    assert client.get(url).status_code == 200


def test_money_records_cannot_be_edited_in_the_admin(db, admin_client_user):
    client, _ = admin_client_user
    payment = services.pay(wallet=wallet_with_tokens(1_000), merchant=merchant(), amount=1_000, idempotency_key="p")
    assert client.get(reverse("admin:voucher_payment_add")).status_code == 403
    response = client.post(reverse("admin:voucher_payment_change", args=[payment.pk]), {"amount": 1})
    assert response.status_code == 403
    payment.refresh_from_db()
    assert payment.amount == 1_000


def test_the_admin_approve_action_keeps_maker_checker(db, client):
    relief = program(active=False, valid_days=30)
    maker = staff("maker")
    services.submit_program(actor=maker, program=relief)
    maker.is_superuser = True
    maker.save()
    client.force_login(maker)
    url = reverse("admin:voucher_voucherprogram_changelist")
    response = client.post(url, {"action": "approve", "_selected_action": [relief.pk]}, follow=True)
    assert "maker_checker_violation" in response.content.decode()
    relief.refresh_from_db()
    assert relief.status == VoucherProgram.Status.PENDING_APPROVAL
