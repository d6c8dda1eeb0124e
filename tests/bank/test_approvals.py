"""Maker-checker: bypass attempts are refused and audited, a request runs
exactly once, manual adjustments are new entries (never edits), and the audit
log is append-only, filterable and exportable."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.urls import reverse

from bank import errors
from bank.models import Account, ApprovalRequest, AuditEvent, JournalEntry
from bank.roles import grant_role
from bank.services import approve_request, post_entry, reject_request, request_approval, set_account_status
from tests.factories import funded_account
from tests.factories.voucher import citizen, staff, wallet_with_tokens
from tests.voucher.support import race
from voucher import services
from voucher.models import Wallet
from voucher.selectors import wallet_balance

APPROVALS = "/admin/bank/approvalrequest/"


def role(username: str, name: str):
    return grant_role(staff(username), name)


def frozen_wallet(tokens: int = 1_000) -> Wallet:
    wallet = wallet_with_tokens(tokens)
    services.set_wallet_status(actor=staff("officer"), wallet=wallet, status="frozen", reason="check")
    return wallet


def refusals(code: str, request) -> int:
    return AuditEvent.objects.filter(action__endswith="_refused", target_id=str(request.pk), after__code=code).count()


def post_approve(client, request_ids, reason="ok"):
    ids = request_ids if isinstance(request_ids, list) else [request_ids]
    return client.post(
        APPROVALS, {"action": "approve", "_selected_action": ids, "apply": "1", "reason": reason}, follow=True
    )


# --- bypass attempts -----------------------------------------------------------------------------


def test_a_maker_cannot_approve_their_own_request_through_the_admin_action(db, client):
    wallet = frozen_wallet()
    maker = role("maker", "approver")
    request = services.request_unfreeze(actor=maker, target=wallet, reason="cleared")
    client.force_login(maker)
    response = post_approve(client, request.pk)
    assert response.status_code == 200
    assert "maker_checker_violation" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "pending" and not request.votes.exists()
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"
    assert refusals("maker_checker_violation", request) == 1


def test_a_crafted_post_by_a_maker_without_the_approver_role_is_refused_and_audited(db, client):
    wallet = frozen_wallet()
    maker = role("teller", "teller")
    request = services.request_unfreeze(actor=maker, target=wallet, reason="cleared")
    client.force_login(maker)
    # the teller's own form never offers "approve"; the POST is made by hand, reason page skipped
    response = client.post(APPROVALS, {"action": "approve", "_selected_action": [request.pk], "apply": "1"})
    assert response.status_code == 403
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"
    assert refusals("role_required", request) == 1


def test_a_crafted_post_that_slips_the_makers_request_in_with_others_approves_only_the_others(db, client):
    checker = role("checker", "approver")
    other_maker = role("other", "approver")
    mine = services.request_unfreeze(actor=checker, target=frozen_wallet(), reason="mine")
    theirs = services.request_unfreeze(actor=other_maker, target=frozen_wallet(), reason="theirs")
    client.force_login(checker)
    post_approve(client, [mine.pk, theirs.pk])
    assert ApprovalRequest.objects.get(pk=mine.pk).status == "pending"
    assert ApprovalRequest.objects.get(pk=theirs.pk).status == "executed"
    assert refusals("maker_checker_violation", mine) == 1


def test_a_crafted_post_with_a_malformed_selection_is_refused_without_an_error_page(db, client):
    client.force_login(role("checker", "approver"))
    response = post_approve(client, ["[1, 2]", "1 OR 1=1"])
    assert response.status_code == 200
    assert "invalid_selection" in response.content.decode()


def test_a_maker_calling_the_service_directly_is_refused_and_audited(db):
    wallet = frozen_wallet()
    maker = role("maker", "approver")
    request = services.request_unfreeze(actor=maker, target=wallet, reason="cleared")
    with pytest.raises(errors.MakerCheckerViolation):
        approve_request(actor=maker, request=request.pk)
    assert ApprovalRequest.objects.get(pk=request.pk).status == "pending"
    assert refusals("maker_checker_violation", request) == 1


def test_the_same_approver_twice_on_a_seizure_counts_once(db):
    wallet = frozen_wallet(5_000)
    maker, first, second = role("maker", "approver"), role("first", "approver"), role("second", "approver")
    seizure = services.request_seizure(actor=maker, wallet=wallet, order_reference="2026-KA-9", reason="court")
    approve_request(actor=first, request=seizure)
    with pytest.raises(errors.DuplicateApproval):
        approve_request(actor=first, request=seizure)
    seizure.refresh_from_db()
    assert (seizure.status, seizure.votes.count(), wallet_balance(wallet)) == ("pending", 1, 5_000)
    assert refusals("duplicate_approval", seizure) == 1
    approve_request(actor=second, request=seizure)
    assert wallet_balance(wallet) == 0


def test_a_decided_request_is_never_run_again(db):
    wallet = frozen_wallet(5_000)
    maker, a, b, c = (role(n, "approver") for n in ("maker", "a", "b", "c"))
    seizure = services.request_seizure(actor=maker, wallet=wallet, order_reference="O-1", reason="court")
    approve_request(actor=a, request=seizure)
    approve_request(actor=b, request=seizure)
    with pytest.raises(errors.ApprovalNotPending):
        approve_request(actor=c, request=seizure)
    with pytest.raises(errors.ApprovalNotPending):
        reject_request(actor=c, request=seizure, reason="too late")
    assert JournalEntry.objects.filter(kind="voucher_seizure").count() == 1


def test_a_rejected_request_changes_nothing(db):
    wallet = frozen_wallet()
    request = services.request_unfreeze(actor=role("maker", "approver"), target=wallet, reason="cleared")
    reject_request(actor=role("checker", "approver"), request=request, reason="order still in force")
    with pytest.raises(errors.ApprovalNotPending):
        approve_request(actor=role("late", "approver"), request=request)
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_racing_on_one_request_run_it_once():
    wallet = frozen_wallet(5_000)
    maker, a, b, c = (role(n, "approver") for n in ("maker", "a", "b", "c"))
    seizure = services.request_seizure(actor=maker, wallet=wallet, order_reference="O-2", reason="court")
    approve_request(actor=a, request=seizure)
    connections.close_all()
    outcomes = race([lambda u=u: approve_request(actor=u, request=seizure.pk).status for u in (b, c)])
    assert sorted(outcomes) == ["approval_not_pending", "executed"], outcomes
    assert JournalEntry.objects.filter(kind="voucher_seizure").count() == 1
    assert wallet_balance(wallet) == 0


# --- ledger kinds --------------------------------------------------------------------------------


def test_a_manual_reversal_is_a_new_entry_pointing_at_the_original(db):
    source, target = funded_account(10_000), funded_account(0)
    mistake = post_entry(lines=[(source, -3_000), (target, 3_000)], kind="test_transfer")
    maker, checker = role("ops", "approver"), role("checker", "approver")
    request = request_approval(
        actor=maker, kind="manual_adjustment", target=mistake, payload={"mode": "reverse"}, reason="wrong account"
    )
    approve_request(actor=checker, request=request)
    request.refresh_from_db()
    reversal = JournalEntry.objects.get(pk=request.result["entry"])
    assert reversal.reverses_id == mistake.pk
    target.refresh_from_db()
    assert target.natural_balance == 0
    assert mistake.postings.count() == 2  # the original is untouched


def test_an_adjusting_entry_must_balance_before_it_is_even_filed(db):
    source, target = funded_account(10_000), funded_account(0)
    mistake = post_entry(lines=[(source, -3_000), (target, 3_000)], kind="test_transfer")
    maker = role("ops", "approver")
    for lines, code in (
        ([[target.pk, -1_000], [source.pk, 999]], "unbalanced_entry"),
        ([[target.pk, -1_000], [source.pk, 1_000.0]], "invalid_amount"),
        ([[target.pk, True], [source.pk, -1]], "invalid_amount"),
        ([[10**12, -1], [source.pk, 1]], "account_not_found"),
    ):
        with pytest.raises(errors.BankError) as refused:
            request_approval(
                actor=maker,
                kind="manual_adjustment",
                target=mistake,
                payload={"mode": "adjust", "lines": lines},
                reason="fix",
            )
        assert refused.value.code == code
    assert not ApprovalRequest.objects.exists()
    request = request_approval(
        actor=maker,
        kind="manual_adjustment",
        target=mistake,
        payload={"mode": "adjust", "lines": [[target.pk, -1_000], [source.pk, 1_000]]},
        reason="overpaid by 1,000",
    )
    approve_request(actor=role("checker", "approver"), request=request)
    target.refresh_from_db()
    assert target.natural_balance == 2_000
    assert JournalEntry.objects.get(kind="manual_adjustment").reference == f"adjusts #{mistake.pk}"


def test_an_account_is_unfrozen_only_through_approval(db):
    account = funded_account(1_000)
    set_account_status(actor=None, account=account, status=Account.Status.FROZEN, reason="fraud check")
    with pytest.raises(errors.ApprovalRequired):
        set_account_status(actor=None, account=account, status=Account.Status.ACTIVE, reason="direct")
    request = request_approval(actor=role("desk", "approver"), kind="unfreeze_account", target=account, reason="ok")
    approve_request(actor=role("checker", "approver"), request=request)
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE


# --- the audit log -------------------------------------------------------------------------------


@pytest.fixture
def root(db, client):
    user = get_user_model().objects.create_superuser(username="root", password="pw-for-tests-only")
    client.force_login(user)
    return client


def test_admin_changes_land_in_the_audit_log(root):
    response = root.post(
        reverse("admin:voucher_walletlimitrule_add"),
        {
            "effective_from": "2031-01-01",
            "named_max_balance": 2_000_000,
            "anonymous_max_balance": 500_000,
            "per_payment_limit": 1_000_000,
            "daily_payment_limit": 2_000_000,
            "redeem_min_used_percent": 60,
            "plain_lot_valid_days": 1825,
        },
    )
    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="admin.add")
    assert (event.actor_label, event.target_type) == ("root", "WalletLimitRule")


def test_the_audit_log_cannot_be_changed_or_deleted_even_by_a_superuser(root):
    services.set_wallet_status(actor=staff("officer"), wallet=citizen(), status="frozen", reason="check")
    event = AuditEvent.objects.get(action="wallet.frozen")
    assert root.get(reverse("admin:bank_auditevent_delete", args=[event.pk])).status_code == 403
    assert root.post(reverse("admin:bank_auditevent_change", args=[event.pk]), {"reason": "x"}).status_code == 403
    root.post(
        reverse("admin:bank_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    event.refresh_from_db()
    assert event.reason == "check"


def test_the_audit_log_filters_and_exports_csv_with_a_bom(root):
    officer = staff("officer")
    services.set_wallet_status(actor=officer, wallet=citizen(), status="frozen", reason="부산 사기 의심")
    url = reverse("admin:bank_auditevent_changelist")
    page = root.get(url, {"action": "wallet.frozen", "actor__id__exact": officer.pk})
    assert page.status_code == 200 and "부산 사기 의심" in page.content.decode()
    event = AuditEvent.objects.get(action="wallet.frozen")
    response = root.post(url, {"action": "export_csv", "_selected_action": [event.pk]})
    body = response.content.decode("utf-8")
    assert response["Content-Type"].startswith("text/csv")
    assert body.startswith("\ufeffat,actor_label,action")
    assert "officer,wallet.frozen,Wallet" in body and "부산 사기 의심" in body
