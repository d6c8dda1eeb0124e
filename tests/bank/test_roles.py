"""What each staff role can and cannot do in the back office: one table of
(role, step, expected outcome), each step driven through the admin as that role
logs in (or through the service, for steps that have no page)."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from bank.errors import BankError
from bank.models import (
    ApiToken,
    ApprovalRequest,
    AuditEvent,
    ControlState,
    EnrollmentCode,
    JournalEntry,
    MinterAllowance,
)
from bank.roles import CREDENTIAL_MODELS, ROLES, grant_role, setup_roles
from tests.factories.api import citizen_app
from tests.factories.voucher import citizen, city_budget, merchant, program, staff
from voucher import services
from voucher.models import Benefit, VoucherProgram, Wallet


def changelist(model_label: str) -> str:
    return reverse(f"admin:{model_label}_changelist")


def run_action(client, model_label: str, action: str, ids, **fields):
    """POST an admin action with its reason page already filled in, as a browser would after the form."""
    data = {"action": action, "_selected_action": [str(i) for i in ids], "apply": "1", "reason": "table test", **fields}
    return client.post(changelist(model_label), data)


# --- steps: each makes its own data, acts as `user` through `client`, and says whether it took effect ---


def freeze_wallet(client, user):
    wallet = citizen()
    run_action(client, "voucher_wallet", "freeze", [wallet.pk])
    return Wallet.objects.get(pk=wallet.pk).status == "frozen"


def change_kyc_tier(client, user):
    wallet = citizen()
    run_action(client, "voucher_wallet", "change_kyc_tier", [wallet.pk], kyc_tier="anonymous")
    return Wallet.objects.get(pk=wallet.pk).kyc_tier == "anonymous"


def approve_unfreeze(client, user):
    wallet = citizen()
    services.set_wallet_status(actor=staff("officer"), wallet=wallet, status="frozen", reason="check")
    request = services.request_unfreeze(actor=grant_role(staff("maker-x"), "approver"), target=wallet, reason="ok")
    run_action(client, "bank_approvalrequest", "approve", [request.pk])
    return Wallet.objects.get(pk=wallet.pk).status == "active"


def pause_payments(client, user):
    ControlState.objects.get_or_create(pk=1)
    run_action(client, "bank_controlstate", "pause", [1])
    return ControlState.objects.get(pk=1).payments_paused


def approve_own_program(client, user):
    made = services.create_program(
        actor=user, code="own", name="Own", kind="grant", funder_account=city_budget(1_000), budget=1_000, valid_days=9
    )
    services.submit_program(actor=user, program=made)
    run_action(client, "voucher_voucherprogram", "approve", [made.pk])
    return VoucherProgram.objects.get(pk=made.pk).status == "active"


def approve_others_program(client, user):
    made = program(active=False)
    services.submit_program(actor=staff("maker"), program=made)
    run_action(client, "voucher_voucherprogram", "approve", [made.pk])
    return VoucherProgram.objects.get(pk=made.pk).status == "active"


def mint_grant(client, user):
    try:
        services.issue_by_staff(
            actor=user, program=program(), wallet=citizen(), amount=1_000, idempotency_key="m", reason="grant"
        )
    except BankError:
        pass
    return Benefit.objects.filter(issued_by=user).exists()


def export_audit(client, user):
    event = AuditEvent.objects.first() or AuditEvent.objects.create(
        actor_label="x", action="seed", target_type="T", target_id="1", at="2026-01-01T00:00:00Z"
    )
    response = run_action(client, "bank_auditevent", "export_csv", [event.pk])
    return response.get("Content-Type", "").startswith("text/csv")


def change_a_wallet_by_post(client, user):
    wallet = citizen()
    response = client.post(reverse("admin:voucher_wallet_change", args=[wallet.pk]), {"kyc_tier": "anonymous"})
    return response.status_code != 403 and Wallet.objects.get(pk=wallet.pk).kyc_tier == "anonymous"


def issue_enrollment_code(client, user):
    wallet = citizen()
    url = reverse("admin:voucher_customerwallet_enrollment_code", args=[wallet.pk])
    client.post(url, {"identity_checked": "on", "reason": "ID card checked"})
    return EnrollmentCode.objects.filter(party=wallet.owner).exists()


ACTIONS = [
    ("teller", freeze_wallet, True),
    ("teller", issue_enrollment_code, True),
    ("program_manager", issue_enrollment_code, False),
    ("approver", issue_enrollment_code, False),
    ("auditor", issue_enrollment_code, False),
    ("teller", change_kyc_tier, True),
    ("teller", approve_unfreeze, False),
    ("teller", pause_payments, False),
    ("teller", export_audit, False),
    ("teller", mint_grant, False),
    ("program_manager", approve_own_program, False),
    ("program_manager", mint_grant, True),
    ("program_manager", freeze_wallet, False),
    ("approver", approve_unfreeze, True),
    ("approver", approve_others_program, True),
    ("approver", pause_payments, False),
    ("settlement_operator", mint_grant, False),
    ("settlement_operator", approve_unfreeze, False),
    ("settlement_operator", freeze_wallet, False),
    ("pauser", pause_payments, True),
    ("pauser", approve_unfreeze, False),
    ("auditor", freeze_wallet, False),
    ("auditor", change_kyc_tier, False),
    ("auditor", approve_unfreeze, False),
    ("auditor", pause_payments, False),
    ("auditor", approve_others_program, False),
    ("auditor", mint_grant, False),
    ("auditor", export_audit, True),
    ("auditor", change_a_wallet_by_post, False),
]


@pytest.fixture
def as_role(db, client):
    def login(role: str):
        user = grant_role(staff(f"{role}-user"), role)
        client.force_login(user)
        return client, user

    return login


@pytest.mark.parametrize(("role", "step", "takes_effect"), ACTIONS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_role_can_do_only_its_own_actions(as_role, role, step, takes_effect):
    client, user = as_role(role)
    assert step(client, user) is takes_effect


PAGES = [
    ("teller", "voucher_wallet", 200),
    ("teller", "bank_account", 200),
    ("teller", "bank_approvalrequest", 403),
    ("teller", "bank_auditevent", 403),
    ("program_manager", "voucher_voucherprogram", 200),
    ("program_manager", "bank_journalentry", 403),
    ("approver", "bank_approvalrequest", 200),
    ("approver", "bank_minterallowance", 200),
    ("settlement_operator", "voucher_payment", 200),
    ("settlement_operator", "bank_auditevent", 403),
    ("pauser", "bank_controlstate", 200),
    ("pauser", "voucher_wallet", 403),
    ("auditor", "bank_auditevent", 200),
]


@pytest.mark.parametrize(("role", "page", "status"), PAGES)
def test_each_role_sees_only_its_pages(as_role, role, page, status):
    client, _ = as_role(role)
    assert client.get(changelist(page)).status_code == status


def test_the_auditor_can_view_every_admin_list_but_the_credentials_and_add_nothing(as_role):
    client, _ = as_role("auditor")
    for model in admin.site._registry:
        label = f"{model._meta.app_label}_{model._meta.model_name}"
        expected = 403 if model._meta.label_lower in CREDENTIAL_MODELS else 200
        assert client.get(changelist(label)).status_code == expected, label
        if label != "bank_controlstate":
            assert client.get(reverse(f"admin:{label}_add")).status_code == 403, label


def _a_citizens_login_with_an_api_token():
    app = citizen_app(1_000)
    app.user.set_password("citizen-password-for-tests")
    app.user.save(update_fields=["password"])
    return app.user, app.token_key, ApiToken.objects.get(user=app.user)


# Credential pages: (path, a page that would show the secret). Every role is refused.
CREDENTIAL_PAGES = [
    lambda user, token: changelist("bank_apitoken"),
    lambda user, token: reverse("admin:bank_apitoken_change", args=[token.pk]),
    lambda user, token: changelist("auth_user"),
    lambda user, token: reverse("admin:auth_user_change", args=[user.pk]),
    lambda user, token: reverse("admin:auth_user_password_change", args=[user.pk]),
]


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("page", range(len(CREDENTIAL_PAGES)))
def test_no_staff_role_opens_a_credential_page(as_role, role, page):
    client, _ = as_role(role)
    user, key, token = _a_citizens_login_with_an_api_token()
    response = client.get(CREDENTIAL_PAGES[page](user, token))
    assert response.status_code == 403
    for secret in (key, token.digest, user.password.split("$")[-1]):
        assert secret not in response.content.decode()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_old_token_page_is_gone_and_no_role_can_hold_a_credential_permission(as_role, role):
    client, member = as_role(role)
    _, key, _ = _a_citizens_login_with_an_api_token()
    response = client.get("/admin/authtoken/tokenproxy/")
    assert response.status_code == 404 and key not in response.content.decode()
    held = {f"{p.content_type.app_label}.{p.content_type.model}.{p.codename}" for p in _group_permissions(role)}
    assert not {h for h in held if h.rsplit(".", 1)[0] in CREDENTIAL_MODELS and h.split(".")[-1].startswith("view_")}
    assert not member.has_perm("auth.view_user") and not member.has_perm("bank.view_apitoken")


def _group_permissions(role):
    return Permission.objects.select_related("content_type").filter(group__name=role)


def test_a_role_table_naming_a_credential_permission_is_refused(db, monkeypatch):
    monkeypatch.setitem(ROLES, "auditor", [*ROLES["auditor"], "auth.view_user"])
    with pytest.raises(ValueError, match="auth.view_user reads credentials"):
        setup_roles()


def test_the_superuser_sees_api_tokens_masked(db, client):
    client.force_login(get_user_model().objects.create_superuser(username="root", password="pw-for-tests-only"))
    user, key, token = _a_citizens_login_with_an_api_token()
    pages = [
        client.get(changelist("bank_apitoken")),
        client.get(reverse("admin:bank_apitoken_change", args=[token.pk])),
    ]
    for page in pages:
        text = page.content.decode()
        assert page.status_code == 200
        assert user.username in text and "••••••••" in text
        assert key not in text and token.digest not in text and key[:8] not in text


def test_setup_roles_is_idempotent_and_skips_permissions_not_installed_yet(db):
    first = setup_roles()
    second = setup_roles()
    assert first == second
    assert set(first.get("settlement_operator", [])) <= {"voucher.view_settlementbatch", "voucher.run_settlement"}
    assert set(ROLES) == {"teller", "program_manager", "approver", "settlement_operator", "pauser", "auditor"}


def test_a_refused_approval_in_the_admin_says_why(as_role):
    client, user = as_role("approver")
    wallet = citizen()
    services.set_wallet_status(actor=user, wallet=wallet, status="frozen", reason="check")
    own = services.request_unfreeze(actor=user, target=wallet, reason="mine")
    response = client.post(
        changelist("bank_approvalrequest"),
        {"action": "approve", "_selected_action": [own.pk], "apply": "1", "reason": ""},
        follow=True,
    )
    assert "maker_checker_violation" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=own.pk).status == "pending"


def test_a_freeze_asks_for_a_reason_first_and_refuses_an_empty_one(as_role):
    client, _ = as_role("teller")
    wallet = citizen()
    url = changelist("voucher_wallet")
    page = client.post(url, {"action": "freeze", "_selected_action": [wallet.pk]})
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()
    empty = client.post(url, {"action": "freeze", "_selected_action": [wallet.pk], "apply": "1", "reason": ""})
    assert empty.status_code == 200 and 'name="reason"' in empty.content.decode()
    assert Wallet.objects.get(pk=wallet.pk).status == "active"
    client.post(url, {"action": "freeze", "_selected_action": [wallet.pk], "apply": "1", "reason": "lost card"})
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"
    assert AuditEvent.objects.get(action="wallet.frozen").reason == "lost card"


@pytest.mark.parametrize(
    ("model_label", "action"),
    [
        ("voucher_wallet", "freeze"),
        ("voucher_wallet", "request_unfreeze"),
        ("voucher_wallet", "request_seizure"),
        ("voucher_wallet", "change_kyc_tier"),
        ("voucher_merchant", "freeze"),
        ("voucher_merchant", "request_unfreeze"),
        ("voucher_voucherprogram", "close"),
        ("bank_account", "freeze"),
        ("bank_account", "request_unfreeze"),
        ("bank_journalentry", "request_reversal"),
        ("bank_approvalrequest", "approve"),
        ("bank_approvalrequest", "reject"),
        ("bank_minterallowance", "request_raise"),
        ("bank_controlstate", "pause"),
        ("bank_controlstate", "resume"),
    ],
)
def test_every_staff_action_shows_its_reason_page(db, client, model_label, action):
    client.force_login(get_user_model().objects.create_superuser(username="setup", password="pw-for-tests-only"))
    wallet = citizen()
    made = program()
    entry = JournalEntry.objects.first()
    request = services.request_unfreeze(
        actor=grant_role(staff("maker"), "approver"),
        target=services.set_wallet_status(actor=staff("o"), wallet=wallet, status="frozen", reason="x"),
        reason="x",
    )
    ControlState.objects.get_or_create(pk=1)
    MinterAllowance.objects.get_or_create(minter="wallet_topup")
    ids = {
        "voucher_wallet": wallet.pk,
        "voucher_merchant": merchant().pk,
        "voucher_voucherprogram": made.pk,
        "bank_account": wallet.deposit_account_id,
        "bank_journalentry": entry.pk,
        "bank_approvalrequest": request.pk,
        "bank_minterallowance": MinterAllowance.objects.get(minter="wallet_topup").pk,
        "bank_controlstate": 1,
    }
    response = client.post(changelist(model_label), {"action": action, "_selected_action": [ids[model_label]]})
    assert response.status_code == 200
    assert 'name="reason"' in response.content.decode()


def _program_form(funder, **changes):
    data = {
        "code": "relief-2027",
        "name": "Relief 2027",
        "kind": "grant",
        "funder_account": funder.pk,
        "face_value": "100000",
        "budget": "5000000",
        "valid_days": "90",
        "eligible_categories": "[]",
        "excluded_categories": '["gambling"]',
        "eligible_districts": "[]",
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
        **changes,
    }
    return data


def test_a_program_manager_makes_a_program_in_the_admin_and_an_approver_approves_it(as_role, client):
    client, manager = as_role("program_manager")
    funder = city_budget(5_000_000)
    add = reverse("admin:voucher_voucherprogram_add")
    # bad input is a form error, never a 500, and writes nothing
    refused = client.post(add, _program_form(funder, budget="0"))
    assert refused.status_code == 200 and "invalid_program" in refused.content.decode()
    assert not VoucherProgram.objects.exists()
    # when
    assert client.post(add, _program_form(funder)).status_code == 302
    made = VoucherProgram.objects.get(code="relief-2027")
    assert (made.status, made.created_by, made.budget) == ("draft", manager, 5_000_000)
    change = reverse("admin:voucher_voucherprogram_change", args=[made.pk])
    assert client.post(change, _program_form(funder, name="Relief 2027 (typhoon)")).status_code == 302
    run_action(client, "voucher_voucherprogram", "submit", [made.pk])
    run_action(client, "voucher_voucherprogram", "approve", [made.pk])  # not offered to a program manager
    assert VoucherProgram.objects.get(pk=made.pk).status == "pending_approval"
    # then an approver approves it
    client.force_login(grant_role(staff("checker"), "approver"))
    run_action(client, "voucher_voucherprogram", "approve", [made.pk])
    made.refresh_from_db()
    assert (made.status, made.name, made.approved_by.username) == ("active", "Relief 2027 (typhoon)", "checker")
    assert set(AuditEvent.objects.filter(target_type="VoucherProgram").values_list("action", flat=True)) >= {
        "voucher_program.create",
        "voucher_program.update",
        "voucher_program.submit",
        "voucher_program.approve",
    }
