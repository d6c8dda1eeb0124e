"""The token app's permissions per staff role (bank.roles holds the roles and
applies this table: setup_roles reads STAFF_PERMISSIONS from each app's roles
module). Names only; nothing here grants anything until setup_roles runs."""

_VIEW_TOKEN = [
    "voucher.view_wallet",
    "voucher.view_merchant",
    "voucher.view_lot",
    "voucher.view_topup",
    "voucher.view_payment",
    "voucher.view_refund",
    "voucher.view_transfer",
    "voucher.view_benefit",
    "voucher.view_redemption",
    "voucher.view_voucherprogram",
    "voucher.view_programrule",
    "voucher.view_walletlimitrule",
    "voucher.view_merchantmember",
    "voucher.view_merchantpayment",
    "voucher.view_paymentrequest",
]
# The back office's own pages and the batches behind them.
_VIEW_OVERSIGHT = [
    "voucher.view_customerwallet",
    "voucher.view_fraudflag",
    "voucher.view_reconciliation",
    "voucher.view_settlementbatch",
    "voucher.view_settlementline",
]

STAFF_PERMISSIONS: dict[str, list[str]] = {
    "teller": _VIEW_TOKEN
    + [
        "voucher.view_customerwallet",
        "voucher.change_kyc_tier",
        "voucher.revoke_device_key",
        "voucher.freeze_wallet",
    ],
    "program_manager": _VIEW_TOKEN
    + [
        "voucher.add_voucherprogram",
        "voucher.change_voucherprogram",
        "voucher.submit_voucherprogram",
        "voucher.close_voucherprogram",
        "voucher.add_programrule",
        "voucher.issue_voucher",
    ],
    "approver": _VIEW_TOKEN
    + [
        "voucher.approve_voucherprogram",
        "voucher.freeze_wallet",
        "voucher.freeze_merchant",
        "voucher.seize_wallet",
        # the compliance desk reviews the nightly fraud flags and watches the books
        "voucher.view_fraudflag",
        "voucher.review_fraudflag",
        "voucher.view_customerwallet",
        "voucher.view_reconciliation",
    ],
    "settlement_operator": _VIEW_TOKEN
    + [
        "voucher.view_settlementbatch",
        "voucher.view_settlementline",
        "voucher.run_settlement",
        "voucher.view_reconciliation",
    ],
    # An explicit list, like the bank's: a voucher model added later is not readable until it is named here.
    "auditor": _VIEW_TOKEN + _VIEW_OVERSIGHT,
}
