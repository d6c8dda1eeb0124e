"""Every state change of the ledger. Only this package writes postings and balances."""

from bank.services.accounts import open_account, open_party, set_account_status
from bank.services.api_tokens import issue_api_token, revoke_api_token, revoke_api_tokens_of, token_digest
from bank.services.approvals import (
    ApprovalKind,
    approve_request,
    register_kind,
    reject_request,
    request_allowance_raise,
    request_approval,
)
from bank.services.audit import record_audit
from bank.services.consortium import generate_validator, register_validator
from bank.services.controls import (
    check_executing,
    check_not_paused,
    payments_paused,
    require_role,
    set_payments_paused,
    use_minter_allowance,
)
from bank.services.enrollment import enroll_device_key, issue_enrollment_code, revoke_own_device_key
from bank.services.holds import capture_hold, expire_holds, place_hold, release_holds, void_hold
from bank.services.identity import (
    check_possession,
    check_signature,
    consume_nonce,
    forget_old_nonces,
    has_active_device,
    register_device_key,
    revoke_device_key,
    stored_response_or_consume_nonce,
)
from bank.services.lockouts import lift_login_lockout
from bank.services.notary import notarize
from bank.services.posting import (
    EntryRequest,
    deferred_balances,
    lock_account_rows,
    lock_accounts,
    post_entries,
    post_entry,
    post_locked,
    reverse_entry,
)
from bank.services.sealing import seal_pending_entries
from bank.services.signed_payloads import check_signed_payload, forget_old_payload_nonces, verify_signed_payload
from bank.services.teller import record_cash_deposit, record_cash_withdrawal, vault_account
from bank.services.verification_runs import run_verification, start_verification_run

__all__ = [
    "ApprovalKind",
    "issue_api_token",
    "revoke_api_token",
    "revoke_api_tokens_of",
    "token_digest",
    "approve_request",
    "check_executing",
    "check_not_paused",
    "payments_paused",
    "register_kind",
    "reject_request",
    "request_allowance_raise",
    "request_approval",
    "require_role",
    "set_payments_paused",
    "use_minter_allowance",
    "EntryRequest",
    "capture_hold",
    "check_possession",
    "check_signature",
    "check_signed_payload",
    "consume_nonce",
    "forget_old_nonces",
    "has_active_device",
    "register_device_key",
    "enroll_device_key",
    "issue_enrollment_code",
    "revoke_own_device_key",
    "revoke_device_key",
    "stored_response_or_consume_nonce",
    "expire_holds",
    "forget_old_payload_nonces",
    "generate_validator",
    "lift_login_lockout",
    "deferred_balances",
    "lock_account_rows",
    "lock_accounts",
    "notarize",
    "open_account",
    "open_party",
    "place_hold",
    "post_entries",
    "post_entry",
    "post_locked",
    "record_audit",
    "release_holds",
    "register_validator",
    "reverse_entry",
    "run_verification",
    "seal_pending_entries",
    "record_cash_deposit",
    "record_cash_withdrawal",
    "vault_account",
    "set_account_status",
    "start_verification_run",
    "verify_signed_payload",
    "void_hold",
]
