"""Every state change of the token. Money moves only through bank.services.post_entry
and post_entries; nothing here writes a posting or a balance itself."""

from voucher.services.controls import (
    court_holding_account,
    issue_by_staff,
    request_seizure,
    request_unfreeze,
)
from voucher.services.expiry import ExpiryResult, expire_lots
from voucher.services.fraud import dismiss_fraud_flag, flag_fraud_patterns, freeze_fraud_flag_subject
from voucher.services.issuance import issue_voucher
from voucher.services.kyc import set_kyc_tier
from voucher.services.merchants import (
    add_merchant_member,
    change_settlement_account,
    get_merchant,
    onboard_merchant,
    set_merchant_status,
)
from voucher.services.payments import pay, pay_merchant
from voucher.services.portal_requests import create_portal_payment_request
from voucher.services.programs import (
    add_program_rule,
    approve_program,
    close_program,
    create_program,
    submit_program,
    update_program,
)
from voucher.services.qr_payments import (
    cancel_payment_request,
    charge_payment_code,
    create_payment_request,
    pay_payment_request,
    read_payment_request,
    request_payload,
)
from voucher.services.refunds import refund_payment
from voucher.services.settlement import estimate_next_settlement, settle_day, settle_merchant_now
from voucher.services.topups import redeem, top_up
from voucher.services.transfers import transfer
from voucher.services.wallet_holds import authorize_hold, capture_hold, expire_wallet_holds, void_hold
from voucher.services.wallets import open_wallet, set_wallet_status

__all__ = [
    "ExpiryResult",
    "add_merchant_member",
    "add_program_rule",
    "change_settlement_account",
    "cancel_payment_request",
    "charge_payment_code",
    "create_payment_request",
    "create_portal_payment_request",
    "approve_program",
    "authorize_hold",
    "capture_hold",
    "close_program",
    "court_holding_account",
    "issue_by_staff",
    "request_seizure",
    "request_unfreeze",
    "set_kyc_tier",
    "create_program",
    "estimate_next_settlement",
    "dismiss_fraud_flag",
    "expire_lots",
    "expire_wallet_holds",
    "flag_fraud_patterns",
    "freeze_fraud_flag_subject",
    "get_merchant",
    "issue_voucher",
    "onboard_merchant",
    "open_wallet",
    "pay",
    "pay_merchant",
    "pay_payment_request",
    "read_payment_request",
    "redeem",
    "refund_payment",
    "request_payload",
    "set_merchant_status",
    "set_wallet_status",
    "settle_day",
    "settle_merchant_now",
    "submit_program",
    "top_up",
    "transfer",
    "update_program",
    "void_hold",
]
