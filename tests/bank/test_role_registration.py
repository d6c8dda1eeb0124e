"""Each app contributes its staff permissions from its own roles module
(bank.roles reads STAFF_PERMISSIONS); the groups setup_roles makes are the
same as when bank.roles named every app's permissions itself."""

import pytest
from django.contrib.auth.models import Group

from bank.roles import ROLES, role_permissions, setup_roles
from voucher import roles as voucher_roles

# What setup_roles gave each group on 3e0c318, before the apps registered their own
# permissions (computed once from the database there and pinned).
GROUPS_BEFORE = {
    "approver": [
        "bank.adjust_ledger",
        "bank.approve_request",
        "bank.freeze_account",
        "bank.raise_allowance",
        "bank.start_verificationrun",
        "bank.view_account",
        "bank.view_approvalrequest",
        "bank.view_block",
        "bank.view_controlstate",
        "bank.view_devicekey",
        "bank.view_hold",
        "bank.view_journalentry",
        "bank.view_minterallowance",
        "bank.view_party",
        "bank.view_posting",
        "bank.view_validatorkey",
        "bank.view_verificationrun",
        "voucher.approve_voucherprogram",
        "voucher.freeze_merchant",
        "voucher.freeze_wallet",
        "voucher.review_fraudflag",
        "voucher.seize_wallet",
        "voucher.view_benefit",
        "voucher.view_customerwallet",
        "voucher.view_fraudflag",
        "voucher.view_lot",
        "voucher.view_merchant",
        "voucher.view_merchantmember",
        "voucher.view_merchantpayment",
        "voucher.view_payment",
        "voucher.view_paymentrequest",
        "voucher.view_programrule",
        "voucher.view_reconciliation",
        "voucher.view_redemption",
        "voucher.view_refund",
        "voucher.view_topup",
        "voucher.view_transfer",
        "voucher.view_voucherprogram",
        "voucher.view_wallet",
        "voucher.view_walletlimitrule",
    ],
    "auditor": [
        "auth.view_group",
        "axes.view_accessattempt",
        "bank.export_audit",
        "bank.view_account",
        "bank.view_approvalrequest",
        "bank.view_auditevent",
        "bank.view_block",
        "bank.view_controlstate",
        "bank.view_devicekey",
        "bank.view_hold",
        "bank.view_journalentry",
        "bank.view_minterallowance",
        "bank.view_party",
        "bank.view_posting",
        "bank.view_validatorkey",
        "bank.view_verificationrun",
        "voucher.view_benefit",
        "voucher.view_customerwallet",
        "voucher.view_fraudflag",
        "voucher.view_lot",
        "voucher.view_merchant",
        "voucher.view_merchantmember",
        "voucher.view_merchantpayment",
        "voucher.view_payment",
        "voucher.view_paymentrequest",
        "voucher.view_programrule",
        "voucher.view_reconciliation",
        "voucher.view_redemption",
        "voucher.view_refund",
        "voucher.view_settlementbatch",
        "voucher.view_settlementline",
        "voucher.view_topup",
        "voucher.view_transfer",
        "voucher.view_voucherprogram",
        "voucher.view_wallet",
        "voucher.view_walletlimitrule",
    ],
    "pauser": [
        "bank.pause_payments",
        "bank.view_account",
        "bank.view_approvalrequest",
        "bank.view_controlstate",
        "bank.view_minterallowance",
    ],
    "program_manager": [
        "voucher.add_programrule",
        "voucher.add_voucherprogram",
        "voucher.change_voucherprogram",
        "voucher.close_voucherprogram",
        "voucher.issue_voucher",
        "voucher.submit_voucherprogram",
        "voucher.view_benefit",
        "voucher.view_lot",
        "voucher.view_merchant",
        "voucher.view_merchantmember",
        "voucher.view_merchantpayment",
        "voucher.view_payment",
        "voucher.view_paymentrequest",
        "voucher.view_programrule",
        "voucher.view_redemption",
        "voucher.view_refund",
        "voucher.view_topup",
        "voucher.view_transfer",
        "voucher.view_voucherprogram",
        "voucher.view_wallet",
        "voucher.view_walletlimitrule",
    ],
    "settlement_operator": [
        "bank.view_account",
        "bank.view_journalentry",
        "bank.view_verificationrun",
        "voucher.run_settlement",
        "voucher.view_benefit",
        "voucher.view_lot",
        "voucher.view_merchant",
        "voucher.view_merchantmember",
        "voucher.view_merchantpayment",
        "voucher.view_payment",
        "voucher.view_paymentrequest",
        "voucher.view_programrule",
        "voucher.view_reconciliation",
        "voucher.view_redemption",
        "voucher.view_refund",
        "voucher.view_settlementbatch",
        "voucher.view_settlementline",
        "voucher.view_topup",
        "voucher.view_transfer",
        "voucher.view_voucherprogram",
        "voucher.view_wallet",
        "voucher.view_walletlimitrule",
    ],
    "teller": [
        "axes.delete_accessattempt",
        "axes.view_accessattempt",
        "bank.issue_enrollment_code",
        "bank.record_cash",
        "bank.revoke_api_token",
        "bank.view_account",
        "bank.view_block",
        "bank.view_devicekey",
        "bank.view_hold",
        "bank.view_journalentry",
        "bank.view_party",
        "bank.view_posting",
        "bank.view_validatorkey",
        "voucher.change_kyc_tier",
        "voucher.freeze_wallet",
        "voucher.revoke_device_key",
        "voucher.view_benefit",
        "voucher.view_customerwallet",
        "voucher.view_lot",
        "voucher.view_merchant",
        "voucher.view_merchantmember",
        "voucher.view_merchantpayment",
        "voucher.view_payment",
        "voucher.view_paymentrequest",
        "voucher.view_programrule",
        "voucher.view_redemption",
        "voucher.view_refund",
        "voucher.view_topup",
        "voucher.view_transfer",
        "voucher.view_voucherprogram",
        "voucher.view_wallet",
        "voucher.view_walletlimitrule",
    ],
}


def _groups() -> dict[str, list[str]]:
    return {
        group.name: sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all())
        for group in Group.objects.prefetch_related("permissions__content_type").order_by("name")
    }


def test_setup_roles_makes_the_same_groups_as_before_the_apps_registered_their_own(db):
    # when
    skipped = setup_roles()
    # then
    assert skipped == {}
    assert _groups() == GROUPS_BEFORE


def test_the_bank_names_no_other_apps_permission_and_voucher_only_its_own():
    bank_apps = {"bank", "auth", "axes"}  # the bank configures login lockouts and reads the role groups
    assert {name.split(".")[0] for names in ROLES.values() for name in names} <= bank_apps
    assert {name.split(".")[0] for names in voucher_roles.STAFF_PERMISSIONS.values() for name in names} == {"voucher"}


def test_an_apps_permissions_reach_the_role_and_a_role_the_bank_does_not_declare_is_refused(monkeypatch):
    # given
    monkeypatch.setitem(voucher_roles.STAFF_PERMISSIONS, "pauser", ["voucher.view_wallet"])
    # then
    assert "voucher.view_wallet" in role_permissions()["pauser"]
    # given
    monkeypatch.setitem(voucher_roles.STAFF_PERMISSIONS, "gate_keeper", ["voucher.view_wallet"])
    # then
    with pytest.raises(ValueError, match=r"voucher.roles names roles \['gate_keeper'\]"):
        role_permissions()


def test_a_voucher_model_the_auditors_list_does_not_name_is_not_readable_by_the_auditor(db, monkeypatch):
    # given: the auditor's voucher list without one model, as if it had been added later
    auditor = [name for name in voucher_roles.STAFF_PERMISSIONS["auditor"] if name != "voucher.view_lot"]
    monkeypatch.setitem(voucher_roles.STAFF_PERMISSIONS, "auditor", auditor)
    # when
    setup_roles()
    # then
    assert "voucher.view_lot" not in _groups()["auditor"]


def test_an_app_naming_a_credential_permission_is_refused_like_the_bank(db, monkeypatch):
    monkeypatch.setitem(voucher_roles.STAFF_PERMISSIONS, "teller", ["bank.view_apitoken"])
    with pytest.raises(ValueError, match="bank.view_apitoken reads credentials"):
        setup_roles()
