"""Read-only queries of the token for views, tasks and other apps. Nothing here writes.

A wallet's (wallets), the wallet API's view of merchants (merchants), the merchant
portal's (portal), settlement's (settlement) and the reconciliation dashboard's
(reconciliation). Never imports voucher.services, which imports selectors: a rule
both need lives in voucher.rules (tests/voucher/test_import_layers.py checks it).
"""

from voucher.selectors.merchants import merchant_directory, merchant_payments, programs_for_merchant
from voucher.selectors.portal import (
    CHART_DAYS,
    DaySales,
    daily_sales,
    open_requests_count,
    payment_for_portal,
    payment_requests_for_portal,
    payments_for_portal,
    refunds_on,
)
from voucher.selectors.reconciliation import STUCK_SETTLEMENT_AFTER, Reconciliation, reconciliation
from voucher.selectors.settlement import (
    CSV_HEADER,
    batch_reconciliation,
    estimate_next_settlement,
    lines_of,
    payments_covered_by,
    settlement_line_of,
    settlement_lines_for,
    settlement_statement_context,
    settlement_statement_csv,
    unsettled_payments,
)
from voucher.selectors.wallets import (
    HISTORY_KINDS,
    Spendable,
    benefits_this_month,
    history_kind,
    lots_of,
    programs_for_wallet,
    spendable_at,
    token_login_with_wallet,
    wallet_balance,
    wallet_benefits,
    wallet_history,
    wallet_of_user,
)

__all__ = [
    "CHART_DAYS",
    "CSV_HEADER",
    "DaySales",
    "HISTORY_KINDS",
    "Reconciliation",
    "STUCK_SETTLEMENT_AFTER",
    "Spendable",
    "batch_reconciliation",
    "benefits_this_month",
    "daily_sales",
    "estimate_next_settlement",
    "history_kind",
    "lines_of",
    "lots_of",
    "merchant_directory",
    "merchant_payments",
    "open_requests_count",
    "payment_for_portal",
    "payment_requests_for_portal",
    "payments_covered_by",
    "payments_for_portal",
    "programs_for_merchant",
    "programs_for_wallet",
    "reconciliation",
    "refunds_on",
    "settlement_line_of",
    "settlement_lines_for",
    "settlement_statement_context",
    "settlement_statement_csv",
    "spendable_at",
    "token_login_with_wallet",
    "unsettled_payments",
    "wallet_balance",
    "wallet_benefits",
    "wallet_history",
    "wallet_of_user",
]
