"""Typed errors of the token. Each has a stable `code` the API, the admin and
the tests use; they subclass the ledger's BankError so one handler maps both."""

from bank.errors import BankError


class VoucherError(BankError):
    code = "voucher_error"
    message = "The voucher service refused the request."


class InvalidRequest(VoucherError):
    code = "invalid_request"
    message = "The request is malformed."


class WalletFrozen(VoucherError):
    code = "wallet_frozen"
    http_status = 403
    message = "The wallet is frozen."


class MerchantFrozen(VoucherError):
    code = "merchant_frozen"
    http_status = 403
    message = "The merchant is frozen."


class MerchantNotFound(VoucherError):
    code = "merchant_not_found"
    http_status = 404
    message = "No such merchant."


class HoldNotFound(VoucherError):
    code = "hold_not_found"
    http_status = 404
    message = "No such hold on this wallet."


class InsufficientEligibleBalance(VoucherError):
    code = "insufficient_eligible_balance"
    http_status = 409
    message = "Not enough balance that may be spent at this merchant."


class InsufficientTransferableBalance(VoucherError):
    code = "insufficient_transferable_balance"
    http_status = 409
    message = "Not enough balance that may be sent to another person."


class OverPaymentLimit(VoucherError):
    code = "over_payment_limit"
    http_status = 409
    message = "The amount is over the per-payment limit."


class OverDailyLimit(VoucherError):
    code = "over_daily_limit"
    http_status = 409
    message = "The payment would go over today's spending limit."


class OverWalletLimit(VoucherError):
    code = "over_wallet_limit"
    http_status = 409
    message = "The wallet would hold more than its KYC tier allows."


class RefundExceedsPayment(VoucherError):
    code = "refund_exceeds_payment"
    http_status = 409
    message = "A refund may not exceed what is left of the payment."


class RedemptionNotAllowed(VoucherError):
    code = "redemption_not_allowed"
    http_status = 409
    message = "Cash-out needs most of the paid-in money used first, and only paid-in money is cashed out."


class ProgramNotActive(VoucherError):
    code = "program_not_active"
    http_status = 409
    message = "The program is not active."


class ProgramKindMismatch(VoucherError):
    code = "program_kind_mismatch"
    message = "This program does not issue that way."


class InvalidProgram(VoucherError):
    code = "invalid_program"
    message = "The program's settings are invalid."


class InvalidProgramTransition(VoucherError):
    code = "invalid_program_transition"
    http_status = 409
    message = "The program cannot move to that status from where it is."


class MakerCheckerViolation(VoucherError):
    code = "maker_checker_violation"
    http_status = 403
    message = "The staff member who made or changed a program cannot approve it."


class WalletNotFrozen(VoucherError):
    code = "wallet_not_frozen"
    http_status = 409
    message = "Only a frozen wallet's balance can be seized."


class StaffOnly(VoucherError):
    code = "staff_only"
    http_status = 403
    message = "Only bank staff may do this."


class BudgetExhausted(VoucherError):
    code = "budget_exhausted"
    http_status = 409
    message = "The program's budget is used up."


class OverPersonCap(VoucherError):
    code = "over_person_cap"
    http_status = 409
    message = "The person has reached the program's cap."


class InvalidMerchant(VoucherError):
    code = "invalid_merchant"
    message = "The merchant's registration data are invalid."


class MerchantAlreadyRegistered(VoucherError):
    code = "merchant_already_registered"
    http_status = 409
    message = "A merchant with this business registration number is already registered."


class PaymentRequestInvalid(VoucherError):
    code = "payment_request_invalid"
    message = "The payment request is not one this merchant signed (malformed, altered or unknown)."


class PaymentRequestExpired(VoucherError):
    code = "payment_request_expired"
    http_status = 409
    message = "The payment request has expired; ask the merchant for a new one."


class PaymentRequestCancelled(VoucherError):
    code = "payment_request_cancelled"
    http_status = 409
    message = "The merchant cancelled this payment request; ask for a new one."


class PaymentRequestUsed(VoucherError):
    code = "payment_request_used"
    http_status = 409
    message = "The payment request has already been paid."


class PaymentCodeInvalid(VoucherError):
    code = "payment_code_invalid"
    message = "The payment code is not one the wallet's device signed (malformed, altered or unknown)."


class PaymentCodeExpired(VoucherError):
    code = "payment_code_expired"
    http_status = 409
    message = "The payment code has expired; ask the customer to show a new one."


class PaymentCodeUsed(VoucherError):
    code = "payment_code_used"
    http_status = 409
    message = "The payment code has already been used."


class NothingToSettle(VoucherError):
    code = "nothing_to_settle"
    http_status = 409
    message = "There is nothing to settle: no BKRW received since the last settlement, or refunds exceed it."


class MerchantOwnerOnly(VoucherError):
    code = "merchant_owner_only"
    http_status = 403
    message = "Only the merchant's owner (or bank staff) may do this."


# --- back office (issue 6, oversight) --------------------------------------------------------


class FraudFlagAlreadyReviewed(VoucherError):
    code = "fraud_flag_already_reviewed"
    http_status = 409
    message = "This flag was already reviewed."
